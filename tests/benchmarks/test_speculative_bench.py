"""Smoke test of benchmarks/bench_speculative.py at `--quick` sizes, nothing recorded.

The build step checks that every speculative variant's tokens equal greedy decoding of the
target (it raises otherwise) and measures the acceptance, so this also runs that equality
with a draft that always agrees and one that does not.
"""

import sys
from pathlib import Path

import pytest

try:
    from benchmarks import bench_speculative
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_speculative


@pytest.mark.slow  # XLA compilation of three decoding loops: over 2 s on 2 cores
def test_quick_run_pairs_every_variant_with_greedy_and_reports_acceptance(capsys):
    results = bench_speculative.main(["--quick", "--no-record", "--repeats", "1", "--warmup", "0"])
    peers = {r.name: r.peer for r in results}
    sizes = bench_speculative.QUICK_SIZES
    names = [
        f"keras_seq speculative K={k} {label} draft b1 XLA"
        for label in ("agreeing", "disagreeing")
        for k in sizes[f"{label}_draft_tokens"]
    ]
    assert all(peers[name] == bench_speculative.GREEDY_NAME for name in names)
    # The draft made of the target's first layers agrees at every step; the random one hardly.
    for k in sizes["agreeing_draft_tokens"]:
        assert bench_speculative.ACCEPTANCE[names[0].replace("K=2", f"K={k}")][0] == 1.0
    assert bench_speculative.ACCEPTANCE[names[-1]][0] < 0.5
    output = capsys.readouterr().out
    assert "greedy's speed, acceptance 1.000" in output
