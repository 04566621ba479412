"""Smoke test of benchmarks/bench_generation.py at `--quick` sizes, nothing recorded.

The build step checks that our greedy tokens equal keras_hub's GPT2CausalLM with the same
weights (it raises otherwise), so this also runs that equality at tiny sizes in both modes.
"""

import sys
from pathlib import Path

import pytest

try:
    from benchmarks import bench_generation
    from benchmarks import harness
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_generation
    from benchmarks import harness


@pytest.mark.slow  # over 15 s on 2 cores; the default run stays within its budget
def test_quick_run_pairs_every_variant_with_its_peer(capsys):
    results = harness.main(
        bench_generation.TITLE,
        bench_generation.build,
        argv=["--quick", "--no-record", "--repeats", "1", "--warmup", "0"],
    )
    peers = {r.name: r.peer for r in results}
    for batch in bench_generation.QUICK_SIZES["batches"]:
        for mode in bench_generation.MODES:
            assert peers[f"keras_seq GPT greedy b{batch} {mode}"] == (
                f"keras_hub GPT2CausalLM greedy b{batch} {mode}"
            )
    for beams in bench_generation.QUICK_SIZES["beams"]:
        name = f"keras_seq GPT beam{beams} b1 XLA (peer: our greedy)"
        assert peers[name] == "keras_seq GPT greedy b1 XLA"
    assert peers["keras_seq GPT beam2 b1 XLA"] == "keras_hub GPT2CausalLM beam2 b1 XLA"
    assert all(r.items and r.item_unit == "tok" for r in results)
    assert "tok/s" in capsys.readouterr().out
