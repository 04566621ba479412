"""benchmarks/bench_backends.py: its workloads run, and its table's ratios are to the fastest
backend of each row."""

import numpy as np
import pytest

from benchmarks import bench_backends


def test_table_gives_each_backend_its_ratio_to_the_fastest():
    results = {
        "tensorflow": {"a": {"median": 0.004, "first": 1.0}, "b": {"median": 0.010, "first": 1.0}},
        "jax": {"a": {"median": 0.002, "first": 2.0}, "b": {"median": 0.025, "first": 2.0}},
    }
    lines = bench_backends.format_backend_table(results).splitlines()[2:]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert [cell[:2] for cell in cells] == [
        ["a", "tensorflow"],
        ["a", "jax"],
        ["b", "tensorflow"],
        ["b", "jax"],
    ]
    assert [cell[4] for cell in cells] == ["2.00x", "1.00x", "1.00x", "2.50x"]
    assert [cell[5] for cell in cells] == ["", "yes", "yes", ""]


@pytest.mark.slow  # about 4-8 s: builds and compiles the five workloads
def test_every_workload_runs_on_this_backend():
    rows = bench_backends.workloads(bench_backends.QUICK_SIZES)
    assert len(rows) == 5
    for name, function in rows.items():
        output = function()
        if name.endswith("train step"):
            assert np.isfinite(output), name
        else:
            assert np.asarray(output).shape == (1, 4 + 4), name


def test_unknown_backend_is_named(capsys):
    with pytest.raises(SystemExit):
        bench_backends.main(["--backends", "tensorflow,mxnet", "--quick"])
    assert "Received: ['mxnet']" in capsys.readouterr().err
