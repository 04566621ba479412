"""The products of a dense layer (`inputs @ kernel`) and of a tied output embedding
(`inputs @ transpose(table)`), with forms of their own for one row under XLA on CPU."""

import functools

import keras
from keras import ops

# How many blocks the contracted axis is cut into for a one-row product under XLA:CPU.
ONE_ROW_BLOCKS = 2


def dense_matmul(inputs, kernel):
    """`inputs @ kernel` for `inputs` of shape `(..., K)` and a 2-D `kernel` `(K, N)`.

    Equal to `ops.matmul(inputs, kernel)` up to float rounding. What it adds: when the
    product has a single row (the leading axes of `inputs` are statically all 1, as in
    decoding one sequence a token at a time), the computation is compiled by XLA (JAX, or
    TensorFlow under `jit_compile=True`) and no GPU is present, it is computed as
    `ONE_ROW_BLOCKS` products of blocks of `K`, batched, and summed:
    `(2, 1, K/2) @ (2, K/2, N)`, then a sum over the two.

    Why: XLA:CPU compiles a one-row product (a vector-matrix product) as a loop of its own,
    on one core, and fuses into it the producers of its operands (the reshape of a 3-D
    attention kernel, and with it the layer norm before the projection), which are then
    recomputed for every output column. The batched form has a 2-D result, which XLA leaves
    unfused and hands to its matrix library, and the two blocks used both cores of the test
    machine. Measured (GPT-2 small's shape, greedy decoding at batch 1, 2 CPU cores,
    TensorFlow 2.21): 32.6 to 14.6 ms per token under XLA, against 26.5 ms in a plain graph;
    on JAX 0.10, 21 to 17-19 ms. Not taken in a plain TensorFlow graph (33.7 against 27.9 ms
    there: TensorFlow's own one-row MatMul is faster than the batched one) nor on PyTorch,
    whose eager one-row product already uses every core. GPUs were not measured, so a
    machine with one keeps the plain product. The two partial sums are added, so results
    differ from the plain product's by float rounding only (about 1e-7 relative).

    Args:
        inputs: float tensor `(..., K)`.
        kernel: float tensor `(K, N)`.

    Returns:
        Tensor `(..., N)`.
    """
    rows = inputs.shape[:-1]
    depth = kernel.shape[0]
    one_row = all(size == 1 for size in rows)
    if not (
        one_row
        and len(kernel.shape) == 2
        and isinstance(depth, int)
        and depth % ONE_ROW_BLOCKS == 0
        and _compiled_by_xla_on_cpu()
    ):
        return ops.matmul(inputs, kernel)
    block = depth // ONE_ROW_BLOCKS
    # (1, K) -> (blocks, 1, K / blocks): block b holds inputs[..., b * block:(b + 1) * block].
    row = ops.transpose(ops.reshape(inputs, (1, ONE_ROW_BLOCKS, block)), (1, 0, 2))
    blocks = ops.reshape(kernel, (ONE_ROW_BLOCKS, block, kernel.shape[1]))  # rows of kernel
    outputs = ops.sum(ops.matmul(row, blocks), axis=0)  # (1, N)
    return ops.reshape(outputs, (*rows, kernel.shape[1]))


def reverse_dense_matmul(inputs, table):
    """`inputs @ transpose(table)` for `inputs` `(..., K)` and a 2-D `table` `(N, K)`: the
    output projection of a tied embedding (vocabulary logits from hidden states).

    Equal to `ops.matmul(inputs, ops.transpose(table))` (`keras.layers.ReversibleEmbedding`'s
    product) up to float rounding. What it adds: for one row (the leading axes of `inputs`
    statically all 1) compiled by XLA without a GPU, it is computed as `table @ column`, a
    product over the table's rows that needs no transposed table. XLA:CPU otherwise fused a
    transposed copy of the whole table, and the layer norm before it, into a single-core loop
    (see `dense_matmul`). Measured (GPT-2 small with its 50,257-token vocabulary, greedy at
    batch 1, 2 CPU cores): about 24 to 22-23 ms per token; the projection alone, in a loop
    of its own, takes 4.6 ms this way against 3.4 ms in PyTorch.

    Args:
        inputs: float tensor `(..., K)`.
        table: float tensor `(N, K)`.

    Returns:
        Tensor `(..., N)`.
    """
    rows = inputs.shape[:-1]
    if not (all(size == 1 for size in rows) and _compiled_by_xla_on_cpu()):
        return ops.matmul(inputs, ops.transpose(table))
    column = ops.reshape(inputs, (table.shape[1], 1))
    return ops.reshape(ops.matmul(table, column), (*rows, table.shape[0]))


def _compiled_by_xla_on_cpu():
    backend = keras.backend.backend()
    if backend == "jax":
        return not _has_gpu()
    if backend != "tensorflow":
        return False
    import tensorflow as tf

    # No public API says whether a trace is for XLA; `tf.__internal__` (TensorFlow's
    # namespace for Keras) has the enclosing XLA context, set while
    # `tf.function(jit_compile=True)` traces. Checked in tests/test_private_keras_api.py.
    return tf.__internal__.get_enclosing_xla_context() is not None and not _has_gpu()


@functools.cache
def _has_gpu():
    """Whether the backend sees a GPU (fixed once the backend has started)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))
