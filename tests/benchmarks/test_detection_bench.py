"""Smoke test of benchmarks/bench_detection.py at `--quick` sizes, nothing recorded.

The build step checks that our assignments (eager and XLA) cost what SciPy's do on every
example, and that DETR's loss is the same with either matcher (it raises otherwise), so the
quick run also runs those checks at tiny sizes.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

try:
    from benchmarks import bench_detection
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_detection


def test_matcher_problem_pads_some_targets():
    cost, mask = bench_detection.matcher_problem(bench_detection.FULL_SIZES["matcher"])
    assert cost.shape == (16, 100, 20) and cost.dtype == np.float32
    assert mask.shape == (16, 20) and not mask.all()
    counts = mask.sum(axis=1)
    assert counts.min() >= 10
    # Padding is at the end: each example keeps its first targets.
    np.testing.assert_array_equal(mask, np.arange(20) < counts[:, None])


def test_check_totals_rejects_a_suboptimal_or_invalid_assignment():
    cost = np.array([[[4.0, 1.0], [2.0, 0.0], [3.5, 5.0]]])
    mask = np.array([[True, True]])
    best = np.array([[[0, 1], [1, 0], [0, 0]]])
    assert bench_detection.check_totals("best", cost, mask, best) == 0.0
    greedy = np.array([[[0, 0], [0, 1], [1, 0]]])  # total 3.5
    with pytest.raises(RuntimeError, match="greedy: example 0"):
        bench_detection.check_totals("greedy", cost, mask, greedy)
    twice = np.array([[[0, 0], [1, 1], [0, 0]]])  # one query for both targets, total 2
    with pytest.raises(RuntimeError, match="twice: example 0"):
        bench_detection.check_totals("twice", cost, mask, twice)


@pytest.mark.slow  # over 15 s on 2 cores; the default run stays within its budget
def test_quick_run_pairs_every_variant_with_the_scipy_loop(capsys):
    results = bench_detection.main(["--quick", "--no-record", "--repeats", "1", "--warmup", "0"])
    peers = {r.name: r.peer for r in results}
    assert peers == {
        "scipy linear_sum_assignment loop": None,
        "keras_seq linear_sum_assignment eager": "scipy linear_sum_assignment loop",
        "keras_seq linear_sum_assignment XLA": "scipy linear_sum_assignment loop",
        "DETR train step, SciPy matcher on the host (graph)": None,
        "keras_seq DETR train step graph": "DETR train step, SciPy matcher on the host (graph)",
        "keras_seq DETR train step XLA": "DETR train step, SciPy matcher on the host (graph)",
    }
    batch = bench_detection.QUICK_SIZES["matcher"]["batch"]
    assert all(r.items == batch and r.item_unit == "img" for r in results)
    out = capsys.readouterr().out
    assert "| keras_seq linear_sum_assignment XLA |" in out
    assert "img/s" in out
