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


def _reverse_case(shape, entries):
    inputs, kernel, expected = _case(shape, entries)
    return inputs, np.ascontiguousarray(kernel.T), expected  # table (N, K)


@pytest.mark.backends
@pytest.mark.parametrize("shape, entries", SHAPES)
def test_reverse_equals_the_product_with_the_transposed_table(shape, entries):
    inputs, table, expected = _reverse_case(shape, entries)
    outputs = keras.ops.convert_to_numpy(reverse_dense_matmul(inputs, table))
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, entries", SHAPES)
@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_reverse_equals_the_product_in_tensorflow_functions(shape, entries, jit_compile):
    import tensorflow as tf

    inputs, table, expected = _reverse_case(shape, entries)
    function = tf.function(reverse_dense_matmul, jit_compile=jit_compile)
    np.testing.assert_allclose(function(inputs, table), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(linear._has_gpu(), reason="a GPU keeps the plain product")
def test_one_row_under_xla_on_cpu_multiplies_the_table_untransposed():
    import tensorflow as tf

    def op_types(shape, jit_compile):
        inputs, table, _ = _reverse_case(shape, 5)
        function = tf.function(reverse_dense_matmul, jit_compile=jit_compile)
        graph = function.get_concrete_function(inputs, table).graph
        return {operation.type for operation in graph.get_operations()}

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
