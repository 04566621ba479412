"""`keras_seq.ops.dense_matmul` (`inputs @ kernel`, a batched product of two blocks of the
contracted axis for one row under XLA on CPU) and `reverse_dense_matmul` (`inputs @
transpose(table)`, `table @ column` there)."""

import keras
import numpy as np
import pytest

from keras_seq.ops import dense_matmul
from keras_seq.ops import linear
from keras_seq.ops import reverse_dense_matmul

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


def _reverse_case(shape, entries):
    inputs, kernel, expected = _case(shape, entries)
    return inputs, np.ascontiguousarray(kernel.T), expected  # table (N, K)


# Each product with the inputs it takes: `(inputs, kernel or table, float64 expected)`.
PRODUCTS = [(dense_matmul, _case), (reverse_dense_matmul, _reverse_case)]
PRODUCT_IDS = ["dense", "reverse"]


@pytest.mark.backends
@pytest.mark.parametrize("product, case", PRODUCTS, ids=PRODUCT_IDS)
@pytest.mark.parametrize("shape, units", SHAPES)
def test_equals_the_product(product, case, shape, units):
    inputs, weights, expected = case(shape, units)
    outputs = keras.ops.convert_to_numpy(product(inputs, weights))
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("product, case", PRODUCTS, ids=PRODUCT_IDS)
@pytest.mark.parametrize("shape, units", SHAPES)
@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_equals_the_product_in_tensorflow_functions(product, case, shape, units, jit_compile):
    import tensorflow as tf

    inputs, weights, expected = case(shape, units)
    function = tf.function(product, jit_compile=jit_compile)
    np.testing.assert_allclose(function(inputs, weights), expected, rtol=1e-5, atol=1e-5)


def _op_types(shape, units, jit_compile, product=dense_matmul, case=_case):
    """The types of the operations `product` traced to (they show which form was taken)."""
    import tensorflow as tf

    inputs, weights, _ = case(shape, units)
    function = tf.function(product, jit_compile=jit_compile)
    graph = function.get_concrete_function(inputs, weights).graph
    return {operation.type for operation in graph.get_operations()}


@pytest.mark.skipif(linear._has_gpu(), reason="a GPU keeps the plain product")
def test_one_row_under_xla_on_cpu_is_the_batched_product_of_two_blocks():
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


@pytest.mark.skipif(linear._has_gpu(), reason="a GPU keeps the plain product")
def test_one_row_under_xla_on_cpu_multiplies_the_table_untransposed():
    def op_types(shape, jit_compile):
        return _op_types(shape, 5, jit_compile, reverse_dense_matmul, _reverse_case)

    assert "Transpose" not in op_types((1, 1, 8), jit_compile=True)
    assert "Transpose" in op_types((1, 1, 8), jit_compile=False)
    assert "Transpose" in op_types((2, 1, 8), jit_compile=True)


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_a_tied_token_embedding_projects_one_row_as_keras_does(jit_compile):
    import tensorflow as tf

    from keras_seq.layers import TokenAndPositionEmbedding

    layer = TokenAndPositionEmbedding(vocabulary_size=11, sequence_length=4, embedding_dim=8)
    layer(np.zeros((1, 4), "int32"))
    hidden = np.random.default_rng(1).standard_normal((1, 1, 8)).astype("float32")
    project = tf.function(lambda x: layer.token_embedding(x, reverse=True), jit_compile=jit_compile)
    reference = keras.layers.ReversibleEmbedding(11, 8)
    reference.build((1, 4))
    reference.set_weights(layer.token_embedding.get_weights())
    np.testing.assert_allclose(
        project(hidden), reference(hidden, reverse=True), rtol=1e-5, atol=1e-6
    )
