"""Smoke test of benchmarks/bench_mixed_generation.py at `--quick` sizes, nothing recorded.

Its build step checks that keras_seq's tokens equal keras_hub's for every prompt of the mixed
batch and that streamed tokens equal a plain call's (it raises otherwise).
"""

import sys
from pathlib import Path

import pytest

try:
    from benchmarks import bench_mixed_generation
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_mixed_generation


@pytest.mark.slow  # about 35 s on 2 cores
def test_quick_run_names_the_default_mode_and_times_the_graph():
    results = bench_mixed_generation.main(
        ["--quick", "--no-record", "--repeats", "1", "--warmup", "0"]
    )
    peers = {r.name: r.peer for r in results}
    plain = "keras_seq GPTCausalLM greedy b1 XLA (one compiled loop)"
    assert plain in peers
    assert peers["keras_seq GPTCausalLM greedy b1 graph (jit_compile=False)"] == plain
    assert peers["keras_seq GPTCausalLM greedy b1 XLA streamer"] == plain
    assert all(r.items and r.item_unit == "tok" for r in results)
