"""Scaled dot-product attention kernels in keras.ops: a plain one and a memory-efficient one.

Legend for shape comments: B batch, T query length, S key length, N heads, H key size,
V value size, C a chunk of queries, K a chunk of keys.

`keras.ops.dot_product_attention` computes the plain kernel but returns neither the attention
probabilities nor applies dropout to them, and gives uniform weights (not zeros) to a query
whose keys are all masked; on the TensorFlow backend it has no flash (memory-efficient) kernel.
The two functions here add exactly that: `attention_probabilities` (float32 softmax, fully
masked rows give zeros) for the plain path, and `chunked_attention`, whose peak memory grows
linearly with the sequence length (query chunks with an online softmax over key chunks, each
query chunk rematerialized in the backward pass).
"""

import math

import keras
from keras import ops

from keras_seq.ops.loops import counted_loop

# Added to masked logits. Finite, so that a fully masked row gives no NaN; in float32, where
# every softmax here runs.
_MASKED_LOGIT = -1e9


def causal_mask(query_length, key_length, offset=0):
    """Boolean `(1, 1, query_length, key_length)` mask, `True` where key position <= query.

    `offset` is the absolute position of the first query (the cache index when decoding
    with a key/value cache whose first `key_length` positions are keys 0, 1, ...).
    """
    query_positions = ops.arange(query_length, dtype="int32") + ops.cast(offset, "int32")
    key_positions = ops.arange(key_length, dtype="int32")
    mask = ops.greater_equal(query_positions[:, None], key_positions[None, :])
    return mask[None, None, :, :]


def in_logit_precision(x):
    """`x` cast to float32 if it is float16 or bfloat16, else unchanged.

    Query-key products are computed from these: under mixed precision a float16 product
    overflows float16's range (65504) once the dot products pass it, e.g. for inputs in the
    hundreds or thousands, and the float32 softmax then sees `inf - inf = NaN` (all-NaN
    outputs). Scaling the query by `1 / sqrt(key_dim)` first does not prevent that. The cast
    is exact (every float16 and bfloat16 value is a float32), and the logits were cast to
    float32 for the softmax anyway, so only the product's inputs change precision.
    """
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        return ops.cast(x, "float32")
    return x


def attention_logits(query, key, scale, bias=None):
    """Float32 logits `(B, N, T, S)` = query . key * scale (+ bias).

    Computed in float32 from float16 / bfloat16 inputs (see `in_logit_precision`).
    """
    query, key = in_logit_precision(query), in_logit_precision(key)
    query = query * ops.cast(scale, query.dtype)
    logits = ops.cast(ops.einsum("btnh,bsnh->bnts", query, key), "float32")
    if bias is not None:
        logits = logits + ops.cast(bias, "float32")
    return logits


def _softmax(logits):
    """Softmax over the last axis; over a single key it is 1 (Keras would warn each call)."""
    if logits.shape[-1] == 1:
        return ops.ones_like(logits)
    return ops.softmax(logits, axis=-1)


def attention_probabilities(logits, mask=None):
    """Float32 softmax over the last axis; masked keys get 0, a fully masked row gives zeros.

    Args:
        logits: float `(B, N, T, S)`.
        mask: optional bool broadcastable to `logits`; `True` = attend.
    """
    logits = ops.cast(logits, "float32")
    if mask is None:
        return _softmax(logits)
    logits = ops.where(mask, logits, _MASKED_LOGIT)
    probabilities = _softmax(logits)
    row_has_keys = ops.any(mask, axis=-1, keepdims=True)
    return ops.where(row_has_keys, probabilities, 0.0)


def _pad_to_multiple(x, axis, chunk_size):
    """Pad `x` with zeros along `axis` to a multiple of `chunk_size`; return it and the count."""
    length = ops.shape(x)[axis]
    num_chunks = (length + chunk_size - 1) // chunk_size
    padding = [[0, 0]] * len(x.shape)
    padding[axis] = [0, num_chunks * chunk_size - length]
    return ops.pad(x, padding), num_chunks


def _split_chunks(x, axis, chunk_size):
    """`(..., L, ...)` -> `(num_chunks, ..., chunk_size, ...)` along `axis` (zero padded)."""
    x, num_chunks = _pad_to_multiple(x, axis, chunk_size)
    shape = list(ops.shape(x))
    # (..., L, ...) -> (..., num_chunks, chunk_size, ...) -> (num_chunks, ..., chunk_size, ...)
    x = ops.reshape(x, shape[:axis] + [num_chunks, chunk_size] + shape[axis + 1 :])
    return ops.moveaxis(x, axis, 0)


def _chunk_at(chunks, index):
    """Chunk `index` of `chunks` `(num_chunks, ...)`, read inside a loop.

    `ops.take`, not `chunks[index]`: the gradient of a gather is sparse, while that of a
    strided slice is a full-size tensor added up at every step of the backward loop (23%
    slower training in benchmarks/bench_attention.py).
    """
    return ops.take(chunks, index, axis=0)


def _chunk_along(x, axis, chunk_size):
    """Chunks of `x` along `axis`, or `None` when that axis is broadcast (size 1)."""
    if x is None or x.shape[axis] == 1:
        return None
    return _split_chunks(x, axis, chunk_size)


def chunked_attention(
    query,
    key,
    value,
    mask=None,
    bias=None,
    scale=None,
    is_causal=False,
    causal_offset=0,
    query_chunk_size=128,
    key_chunk_size=2048,
):
    """Memory-efficient scaled dot-product attention (Rabe and Staats, 2021).

    Equals `softmax(query key^T * scale + bias, masked) value` without materializing the
    `(B, N, T, S)` logits: queries are processed `query_chunk_size` at a time and, for each,
    keys `key_chunk_size` at a time with an online (running max, running sum) softmax. Each
    query chunk is rematerialized (`keras.remat`) in the backward pass, so training memory
    also grows linearly with the sequence length. Compiles with XLA; sequence lengths may be
    dynamic. No dropout on the probabilities, and no probabilities returned: use the plain
    path for those.

    Args:
        query: `(B, T, N, H)`.
        key: `(B, S, N, H)`.
        value: `(B, S, N, V)`.
        mask: optional bool broadcastable to `(B, N, T, S)`, rank 4; `True` = attend. Keep
            broadcast axes at size 1 (e.g. a padding mask `(B, 1, 1, S)`): they are not
            materialized.
        bias: optional float, rank 4, broadcastable to `(B, N, T, S)`, added to the logits.
        scale: float. Defaults to `1 / sqrt(H)`.
        is_causal: bool. Mask keys after each query's position (computed per chunk).
        causal_offset: int or scalar tensor. Absolute position of the first query.
        query_chunk_size, key_chunk_size: ints. Chunk sizes; peak memory is about
            `B * N * query_chunk_size * key_chunk_size` floats per live chunk.

    Returns:
        `(B, T, N, V)` in the dtype of `value`; a query whose keys are all masked gives zeros.
    """
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    query_length = ops.shape(query)[1]
    key_length = ops.shape(key)[1]

    # Query-axis chunks (index 2 of rank-4 masks/biases), key-axis chunks (index 3).
    query_chunks = _split_chunks(query, 1, query_chunk_size)  # (Q, B, C, N, H)
    key_chunks = _split_chunks(key, 1, key_chunk_size)  # (P, B, K, N, H)
    value_chunks = _split_chunks(value, 1, key_chunk_size)  # (P, B, K, N, V)
    num_key_chunks = ops.shape(key_chunks)[0]
    num_query_chunks = ops.shape(query_chunks)[0]

    def key_split(x):
        return _chunk_along(x, 3, key_chunk_size)

    def attend_query_chunk(
        query_chunk, query_index, key_chunks, value_chunks, mask_rows, bias_rows
    ):
        # query_chunk (B, C, N, H); mask_rows / bias_rows: this chunk's rows, or whole.
        mask_blocks = key_split(mask_rows)
        bias_blocks = key_split(bias_rows)
        batch = ops.shape(query_chunk)[0]
        num_heads = query_chunk.shape[2]
        query_positions = (
            query_index * query_chunk_size
            + ops.arange(query_chunk_size, dtype="int32")
            + ops.cast(causal_offset, "int32")
        )

        def step(key_index, carry):
            running_max, running_sum, accumulator = carry
            block_bias = bias_rows if bias_blocks is None else _chunk_at(bias_blocks, key_index)
            logits = attention_logits(
                query_chunk, _chunk_at(key_chunks, key_index), scale, block_bias
            )  # (B, N, C, K)
            key_positions = key_index * key_chunk_size + ops.arange(key_chunk_size, dtype="int32")
            keep = ops.less(key_positions, key_length)[None, None, None, :]
            if is_causal:
                keep = ops.logical_and(
                    keep, ops.greater_equal(query_positions[:, None], key_positions[None, :])
                )
            block_mask = mask_rows if mask_blocks is None else _chunk_at(mask_blocks, key_index)
            if block_mask is not None:
                keep = ops.logical_and(keep, block_mask)
            logits = ops.where(keep, logits, _MASKED_LOGIT)
            new_max = ops.maximum(running_max, ops.max(logits, axis=-1))  # (B, N, C)
            correction = ops.exp(running_max - new_max)
            # A masked logit sits at -1e9: its weight is exp(0) = 1 while the whole row is
            # masked so far, so zero it explicitly; a fully masked row ends with sum 0.
            weights = ops.where(keep, ops.exp(logits - new_max[..., None]), 0.0)
            running_sum = running_sum * correction + ops.sum(weights, axis=-1)
            update = ops.einsum(
                "bnck,bknv->bcnv",
                ops.cast(weights, value.dtype),
                _chunk_at(value_chunks, key_index),
            )  # (B, C, N, V)
            accumulator = accumulator * ops.transpose(correction, (0, 2, 1))[..., None]
            return new_max, running_sum, accumulator + ops.cast(update, "float32")

        init = (
            ops.full((batch, num_heads, query_chunk_size), _MASKED_LOGIT, "float32"),
            ops.zeros((batch, num_heads, query_chunk_size), "float32"),
            ops.zeros((batch, query_chunk_size, num_heads, value.shape[-1]), "float32"),
        )
        _, running_sum, accumulator = counted_loop(num_key_chunks, step, init)
        running_sum = ops.transpose(running_sum, (0, 2, 1))[..., None]  # (B, C, N, 1)
        safe_sum = ops.where(running_sum > 0.0, running_sum, 1.0)
        return ops.cast(accumulator / safe_sum, value.dtype)

    mask_row_chunks = _chunk_along(mask, 2, query_chunk_size)
    bias_row_chunks = _chunk_along(bias, 2, query_chunk_size)

    def outer_step(query_index, outputs):
        mask_rows = mask if mask_row_chunks is None else _chunk_at(mask_row_chunks, query_index)
        bias_rows = bias if bias_row_chunks is None else _chunk_at(bias_row_chunks, query_index)
        bias_rows = [] if bias_rows is None else [bias_rows]

        # `keras.remat` differentiates only with respect to its arguments, so every float
        # tensor that may need a gradient is passed in; integer and boolean ones are closed
        # over (TensorFlow warns when asked to watch them).
        @keras.remat
        def rematerialized(query_chunk, key_chunks, value_chunks, *bias_rows):
            return attend_query_chunk(
                query_chunk,
                query_index,
                key_chunks,
                value_chunks,
                mask_rows,
                bias_rows[0] if bias_rows else None,
            )

        chunk = rematerialized(
            _chunk_at(query_chunks, query_index), key_chunks, value_chunks, *bias_rows
        )
        # scatter_update, not slice_update: the latter lowers to XlaDynamicUpdateSlice on
        # TensorFlow, which has no registered gradient outside XLA.
        return ops.scatter_update(outputs, ops.reshape(query_index, (1, 1)), chunk[None])

    batch = ops.shape(query)[0]
    outputs = ops.zeros(
        (num_query_chunks, batch, query_chunk_size, query.shape[2], value.shape[-1]),
        value.dtype,
    )
    outputs = counted_loop(num_query_chunks, outer_step, outputs)  # (Q, B, C, N, V)
    outputs = ops.moveaxis(outputs, 0, 1)  # (B, Q, C, N, V)
    shape = ops.shape(outputs)
    outputs = ops.reshape(outputs, (shape[0], shape[1] * shape[2], shape[3], shape[4]))
    return outputs[:, :query_length]
