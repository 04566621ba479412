"""`keras_seq.ops.dense_matmul`: `inputs @ kernel`, computed as a batched product of two blocks
of the contracted axis for one row under XLA on CPU (`keras_seq.ops.linear`)."""

import keras
import numpy as np
import pytest

from keras_seq.ops import dense_matmul
from keras_seq.ops import linear

SHAPES = [
    ((1, 8), 5),  # one row
    ((1, 1, 8), 5),  # one row of a (batch, time, features) input: decoding one sequence
    ((2, 1, 8), 5),  # two rows
    ((1, 3, 8), 5),
    ((1, 7), 4),  # an odd contracted axis cannot be halved
]


def _case(shape, units):
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal(shape).astype("float32")
    kernel = rng.standard_normal((shape[-1], units)).astype("float32")
    return inputs, kernel, inputs.astype("float64") @ kernel.astype("float64")


@pytest.mark.backends
@pytest.mark.parametrize("shape, units", SHAPES)
def test_equals_the_product(shape, units):
    inputs, kernel, expected = _case(shape, units)
    outputs = keras.ops.convert_to_numpy(dense_matmul(inputs, kernel))
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, units", SHAPES)
@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_equals_the_product_in_tensorflow_functions(shape, units, jit_compile):
    import tensorflow as tf

    inputs, kernel, expected = _case(shape, units)
    function = tf.function(dense_matmul, jit_compile=jit_compile)
    np.testing.assert_allclose(function(inputs, kernel), expected, rtol=1e-5, atol=1e-5)


def _op_types(shape, units, jit_compile):
    import tensorflow as tf

    inputs, kernel, _ = _case(shape, units)
    function = tf.function(dense_matmul, jit_compile=jit_compile)
    graph = function.get_concrete_function(inputs, kernel).graph
    return {operation.type for operation in graph.get_operations()}


@pytest.mark.skipif(linear._has_gpu(), reason="a GPU keeps the plain product")
def test_one_row_under_xla_on_cpu_is_the_batched_product_of_two_blocks():
    # TensorFlow's traced graphs show which product was taken.
    types = _op_types((1, 1, 8), 5, jit_compile=True)
    assert {"BatchMatMulV2", "Sum"} <= types
    assert "MatMul" not in types
    # A plain graph, several rows, or an odd contracted axis: the plain product.
    for shape, units, jit_compile in [
        ((1, 1, 8), 5, False),
        ((2, 1, 8), 5, True),
        ((1, 7), 4, True),
    ]:
        types = _op_types(shape, units, jit_compile)
        assert "MatMul" in types and "BatchMatMulV2" not in types, (shape, jit_compile)


def test_a_gpu_keeps_the_plain_product(monkeypatch):
    monkeypatch.setattr(linear, "_has_gpu", lambda: True)
    types = _op_types((1, 1, 8), 5, jit_compile=True)
    assert "MatMul" in types and "BatchMatMulV2" not in types
