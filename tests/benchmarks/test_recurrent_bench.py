"""Tests of benchmarks/bench_recurrent.py's yardsticks: the FLOP count and the matmul-only loops."""

import sys
from pathlib import Path

import numpy as np

try:
    from benchmarks import bench_recurrent
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_recurrent

SIZES = {"batch": 3, "sequence": 5, "input": 4, "units": 6}


def _products(sizes, gates, task):
    """FLOPs of the products one call runs, listed one by one as (m, k, n) shapes."""
    b, f, u = sizes["batch"], sizes["input"], sizes["units"]
    per_step = [(b, f, gates * u), (b, u, gates * u)]  # x @ W, h @ U
    if task == "train":
        # dW = x^T dz, dU = h^T dz, dh = dz U^T
        per_step += [(f, b, gates * u), (u, b, gates * u), (b, gates * u, u)]
    return sizes["sequence"] * sum(2 * m * k * n for m, k, n in per_step)


def test_matmul_gflop_counts_every_product():
    for gates in (1, 3, 4):
        for task in ("train", "predict"):
            expected = _products(SIZES, gates, task) / 1e9
            assert np.isclose(bench_recurrent.matmul_gflop(SIZES, gates, task), expected)


def _numpy_loops(x, dz, kernel, recurrent_kernel, units):
    """The same products in NumPy: forward h_t = (x_t W + h_{t-1} U)[:, :units], then backward."""
    h = np.zeros((x.shape[1], units), "float32")
    for step in range(x.shape[0]):
        h = (x[step] @ kernel + h @ recurrent_kernel)[:, :units]
    dh, d_kernel, d_recurrent = h, 0.0, 0.0
    for step in reversed(range(x.shape[0])):
        d_kernel = d_kernel + x[step].T @ dz[step]
        d_recurrent = d_recurrent + dh.T @ dz[step]
        dh = dz[step] @ recurrent_kernel.T
    return dh, d_kernel, d_recurrent


def test_matmul_loops_equal_a_numpy_reference():
    step_loop, after_loop, (x, dz), weights = bench_recurrent.loop_matmul_functions(SIZES, 4)
    expected = _numpy_loops(*(np.asarray(v) for v in (x, dz) + weights), units=SIZES["units"])
    for fn in (step_loop, after_loop):
        for actual, wanted in zip(fn(x, dz), expected):
            np.testing.assert_allclose(np.asarray(actual), wanted, rtol=1e-4, atol=1e-6)


def test_candidates_equal_keras_lstm_in_outputs_and_gradients():
    import keras
    import pytest

    from benchmarks import recurrent_candidates

    rng = np.random.default_rng(0)
    x = rng.standard_normal((SIZES["batch"], SIZES["sequence"], SIZES["input"]), "float32")
    y = rng.standard_normal((SIZES["batch"], SIZES["units"]), "float32")
    peer = bench_recurrent._model(keras.layers.LSTM(SIZES["units"]), SIZES)
    # A non-zero bias, so that a candidate that dropped it would be caught.
    peer.set_weights(peer.get_weights()[:2] + [rng.standard_normal(4 * SIZES["units"])])
    for label, layer_class in recurrent_candidates.CANDIDATES.items():
        ours = bench_recurrent._model(layer_class(SIZES["units"]), SIZES)
        assert bench_recurrent._check_same(ours, peer, x, label) < 1e-5
        assert bench_recurrent.check_gradients(ours, peer, x, y, label) < 1e-5
    # The check can fail: an LSTM with other gate activations has the same weight shapes.
    other = keras.layers.LSTM(SIZES["units"], recurrent_activation="hard_sigmoid")
    other = bench_recurrent._model(other, SIZES)
    with pytest.raises(RuntimeError, match="gradients differ"):
        bench_recurrent.check_gradients(ours, other, x, y, "hard_sigmoid")
