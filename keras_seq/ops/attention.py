"""Scaled dot-product attention kernels in keras.ops: a plain one and a memory-efficient one.

Legend for shape comments: B batch, T query length, S key length, N heads, H key size,
V value size, C a chunk of queries, K a chunk of keys.

`keras.ops.dot_product_attention` computes the plain kernel but returns neither the attention
probabilities nor applies dropout to them, and gives uniform weights (not zeros) to a query
whose keys are all masked; on the TensorFlow backend it has no flash (memory-efficient) kernel.
The two functions here add exactly that: `attention_probabilities` (float32 softmax, fully
masked rows give zeros) for the plain path, and `chunked_attention`, whose peak memory grows
linearly with the sequence length: FlashAttention-2's algorithm written in `keras.ops` (query
chunks with an online softmax over key chunks; a custom gradient that keeps only the output
and each query's log-sum-exp and recomputes each (query chunk, key chunk) block once).

Speed, from benchmarks/bench_attention.py (CPU, TensorFlow graph mode, a MultiHeadAttention
train step, width 256, 4 heads, batch 4, chunks 256 x 1024; a busy shared 2-core machine, so
medians of interleaved runs, which vary from run to run): 1.3x to 1.4x the plain path's time
at N=1024, 0.84x to 1.07x at N=2048 (four runs; the previous version, which rematerialized
each query chunk with `keras.remat`: 2.3x to 2.7x), 0.80x and 1.14x at N=4096 (two runs);
at batch 1, 1.39x at N=4096 and 1.30x to 1.35x at N=8192 (two runs; other chunk sizes were
no faster there). The backward pass recomputes the query-key product (7 block matmuls where
the plain path does 6), which the plain path's memory traffic on its `(B, N, T, S)` tensors
did not pay back at any length measured on this CPU (up to 8192; the plain path's memory at
16384, ~13 GiB at batch 1, was not tried): the memory-efficient path buys linear memory,
not speed, on CPU.
With `is_causal` the blocks above the diagonal are skipped: 0.50x at N=2048 (one run).
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


def _merge_chunks(chunks, axis, length):
    """Inverse of `_split_chunks(x, axis, ...)`: `(num_chunks, ..., C, ...)` -> `x`."""
    x = ops.moveaxis(chunks, 0, axis)  # (..., num_chunks, C, ...)
    shape = list(ops.shape(x))
    x = ops.reshape(x, shape[:axis] + [shape[axis] * shape[axis + 1]] + shape[axis + 2 :])
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(0, length)
    return x[tuple(index)]


def _put(chunks, index, chunk):
    """`chunks` `(num_chunks, ...)` with chunk `index` replaced by `chunk`.

    scatter_update, not slice_update: the latter lowers to XlaDynamicUpdateSlice on
    TensorFlow, which needs XLA.
    """
    return ops.scatter_update(chunks, ops.reshape(index, (1, 1)), chunk[None])


class _Blocks:
    """A rank-4 mask or bias `(B|1, N|1, T|1, S|1)` cut into (query chunk, key chunk) blocks.

    Axes of size 1 (broadcast) are not cut nor materialized: blocks keep size 1 there.
    """

    def __init__(self, x, query_chunk_size, key_chunk_size):
        self.shape = tuple(x.shape)
        self.query_axis = x.shape[2] != 1
        self.key_axis = x.shape[3] != 1
        if self.key_axis:
            x = _split_chunks(x, 3, key_chunk_size)  # (P, b, n, t, K)
        else:
            x = x[None]
        self.num_key_blocks = ops.shape(x)[0]
        if self.query_axis:
            x = _split_chunks(x, 3, query_chunk_size)  # (Q, P, b, n, C, K)
        else:
            x = x[None]
        shape = list(ops.shape(x))
        self.num_query_blocks = shape[0]
        self.blocks = ops.reshape(x, [shape[0] * shape[1]] + shape[2:])  # (Q * P, b, n, C, K)

    def index(self, query_index, key_index):
        query_index = query_index if self.query_axis else 0
        key_index = key_index if self.key_axis else 0
        return query_index * self.num_key_blocks + key_index

    def at(self, query_index, key_index):
        return ops.take(self.blocks, self.index(query_index, key_index), axis=0)

    def reduce(self, block):
        """`block` `(B, N, C, K)` summed over the axes that this tensor broadcasts."""
        axes = tuple(a for a in range(4) if self.shape[a] == 1 and block.shape[a] != 1)
        return ops.sum(block, axis=axes, keepdims=True) if axes else block

    def merge(self, blocks, query_length, key_length):
        """`blocks` laid out as `self.blocks` -> a tensor shaped like the cut one."""
        shape = list(ops.shape(blocks))
        # (Q * P, b, n, C, K) -> (Q, P, b, n, C, K)
        x = ops.reshape(blocks, [self.num_query_blocks, self.num_key_blocks] + shape[1:])
        x = _merge_chunks(x, 3, query_length) if self.query_axis else x[0]  # (P, b, n, t, K)
        return _merge_chunks(x, 3, key_length) if self.key_axis else x[0]  # (b, n, t, s)


def chunked_attention(
    query,
    key,
    value,
    mask=None,
    bias=None,
    scale=None,
    is_causal=False,
    causal_offset=0,
    query_chunk_size=256,
    key_chunk_size=1024,
):
    """Memory-efficient scaled dot-product attention (FlashAttention-2's algorithm).

    Equals `softmax(query key^T * scale + bias, masked) value` without materializing the
    `(B, N, T, S)` logits: queries are processed `query_chunk_size` at a time and, for each,
    keys `key_chunk_size` at a time with an online softmax (the softmax of each block,
    combined by their log-sum-exps). The forward pass keeps only the output and each query's
    float32 log-sum-exp; the gradient (a custom gradient) recomputes each (query chunk, key
    chunk) block once, looping over key chunks and, inside, query chunks (Dao, 2023), so
    training memory also grows linearly with the sequence length. With `is_causal`, blocks
    above the diagonal are skipped. Compiles with XLA; sequence lengths may be dynamic;
    differentiable on TensorFlow, JAX and PyTorch. No dropout on the probabilities, and no
    probabilities returned: use the plain path for those.

    Args:
        query: `(B, T, N, H)`.
        key: `(B, S, N, H)`.
        value: `(B, S, N, V)`.
        mask: optional bool broadcastable to `(B, N, T, S)`, rank 4; `True` = attend. Keep
            broadcast axes at size 1 (e.g. a padding mask `(B, 1, 1, S)`): they are not
            materialized.
        bias: optional float, rank 4, broadcastable to `(B, N, T, S)`, added to the logits;
            its gradient is summed over its broadcast axes.
        scale: float. Defaults to `1 / sqrt(H)`.
        is_causal: bool. Mask keys after each query's position (computed per chunk).
        causal_offset: int or scalar tensor. Absolute position of the first query.
        query_chunk_size, key_chunk_size: ints. Chunk sizes (at most the static lengths);
            peak memory is about `B * N * query_chunk_size * key_chunk_size` floats per
            live block, a few blocks at a time. Default to `256` and `1024`, the fastest
            in benchmarks/bench_attention.py's sweep at N=2048.

    Returns:
        `(B, T, N, V)` in the dtype of `value`; a query whose keys are all masked gives zeros
        (and passes no gradient).

    References:
        - [Rabe and Staats, 2021](https://arxiv.org/abs/2112.05682)
        - [Dao, 2023](https://arxiv.org/abs/2307.08691)
    """
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    query_length = ops.shape(query)[1]
    key_length = ops.shape(key)[1]
    # A chunk longer than a (static) length would only add padding to compute.
    if isinstance(query_length, int) and query_length > 0:
        query_chunk_size = min(query_chunk_size, query_length)
    if isinstance(key_length, int) and key_length > 0:
        key_chunk_size = min(key_chunk_size, key_length)
    # Key positions past `key_length` (zero padding of the last key chunk) must be masked,
    # unless the (static) key length is a multiple of the chunk size.
    pads_keys = not (isinstance(key_length, int) and key_length % key_chunk_size == 0)
    mask_blocks = None if mask is None else _Blocks(mask, query_chunk_size, key_chunk_size)

    def keep_block(query_index, key_index):
        """Bool `(B|1, N|1, C|1, K|1)`: which logits of block (query_index, key_index) to
        keep, or `None` for all of them."""
        keep = None
        key_positions = key_index * key_chunk_size + ops.arange(key_chunk_size, dtype="int32")
        if pads_keys:
            keep = ops.less(key_positions, key_length)[None, None, None, :]
        if is_causal:
            query_positions = (
                query_index * query_chunk_size
                + ops.arange(query_chunk_size, dtype="int32")
                + ops.cast(causal_offset, "int32")
            )
            causal = ops.greater_equal(query_positions[:, None], key_positions[None, :])
            keep = causal if keep is None else ops.logical_and(keep, causal)
        if mask_blocks is not None:
            block = mask_blocks.at(query_index, key_index)
            keep = block if keep is None else ops.logical_and(keep, block)
        return keep

    def causal_key_chunks(query_index, num_key_chunks):
        """Key chunks that query chunk `query_index` attends to: all, or with `is_causal`
        those up to its last query's position (the others are fully masked: skipped)."""
        if not is_causal:
            return num_key_chunks
        last_query = (query_index + 1) * query_chunk_size - 1 + ops.cast(causal_offset, "int32")
        needed = ops.maximum(last_query, -1) // key_chunk_size + 1
        return ops.minimum(needed, num_key_chunks)

    def causal_first_query_chunk(key_index):
        """The first query chunk that attends to key chunk `key_index` (0 unless causal)."""
        if not is_causal:
            return 0
        first_query = key_index * key_chunk_size - ops.cast(causal_offset, "int32")
        return ops.maximum(first_query, 0) // query_chunk_size

    # Float tensors only: masks and integers are closed over (no gradient).
    inputs = [ops.convert_to_tensor(x) for x in (query, key, value)]
    if bias is not None:
        inputs.append(ops.convert_to_tensor(bias))

    @ops.custom_gradient
    def attend(*inputs):
        query, key, value = inputs[:3]
        bias_blocks = None
        if len(inputs) == 4:
            bias_blocks = _Blocks(inputs[3], query_chunk_size, key_chunk_size)
        # (B, T, N, H) -> (B, N, T, H), scaled, cut into chunks (Q, B, N, C, H).
        query_chunks = _split_chunks(
            ops.transpose(in_logit_precision(query) * scale, (0, 2, 1, 3)), 2, query_chunk_size
        )
        key_chunks = _split_chunks(
            ops.transpose(in_logit_precision(key), (0, 2, 1, 3)), 2, key_chunk_size
        )  # (P, B, N, K, H)
        value_chunks = _split_chunks(ops.transpose(value, (0, 2, 1, 3)), 2, key_chunk_size)
        num_query_chunks = ops.shape(query_chunks)[0]
        num_key_chunks = ops.shape(key_chunks)[0]

        def logits_block(query_chunk, query_index, key_index):
            """Float32 `(B, N, C, K)` logits and the keep mask of a block."""
            logits = ops.cast(
                ops.einsum("bnch,bnkh->bnck", query_chunk, ops.take(key_chunks, key_index, 0)),
                "float32",
            )
            if bias_blocks is not None:
                logits = logits + ops.cast(bias_blocks.at(query_index, key_index), "float32")
            return logits, keep_block(query_index, key_index)

        def forward_chunk(query_index, carry):
            outputs, log_sum_exps = carry
            query_chunk = ops.take(query_chunks, query_index, axis=0)  # (B, N, C, H)

            def step(key_index, state):
                # The softmax of each block, its log-sum-exp, and the output so far
                # normalized (Dao, 2023; Rabe and Staats, 2021), combined by their
                # log-sum-exps. `ops.softmax` is one fused kernel on TensorFlow, with fewer
                # passes over the block than separate `exp(logits - max)` and `sum` ops.
                running_log_sum_exp, accumulator = state
                logits, keep = logits_block(query_chunk, query_index, key_index)
                if keep is not None:
                    logits = ops.where(keep, logits, _MASKED_LOGIT)
                block_max = ops.max(logits, axis=-1)  # (B, N, C)
                probabilities = _softmax(logits)
                # The largest probability is exp(0) / sum: 1 / sum.
                block_log_sum_exp = block_max - ops.log(ops.max(probabilities, axis=-1))
                new_log_sum_exp = ops.logaddexp(running_log_sum_exp, block_log_sum_exp)
                block_weight = ops.exp(block_log_sum_exp - new_log_sum_exp)
                if keep is not None:
                    # A row with no key in this block has uniform probabilities over
                    # masked keys (all at -1e9): it does not count.
                    block_has_keys = block_max > _MASKED_LOGIT / 2
                    new_log_sum_exp = ops.where(
                        block_has_keys, new_log_sum_exp, running_log_sum_exp
                    )
                    block_weight = ops.where(block_has_keys, block_weight, 0.0)
                update = ops.einsum(
                    "bnck,bnkv->bncv",
                    ops.cast(probabilities, value.dtype),
                    ops.take(value_chunks, key_index, axis=0),
                )  # (B, N, C, V)
                correction = ops.exp(running_log_sum_exp - new_log_sum_exp)
                accumulator = (
                    accumulator * correction[..., None]
                    + ops.cast(update, "float32") * block_weight[..., None]
                )
                return new_log_sum_exp, accumulator

            batch, num_heads = ops.shape(query_chunk)[0], query_chunk.shape[1]
            init = (
                ops.full((batch, num_heads, query_chunk_size), _MASKED_LOGIT, "float32"),
                ops.zeros((batch, num_heads, query_chunk_size, value.shape[-1]), "float32"),
            )
            log_sum_exp, accumulator = counted_loop(
                causal_key_chunks(query_index, num_key_chunks), step, init
            )
            # A row with no key at all keeps accumulator 0 (output 0); its log-sum-exp may
            # be any finite value (its probabilities are set to 0 in the backward pass).
            has_keys = log_sum_exp > _MASKED_LOGIT / 2
            log_sum_exp = ops.where(has_keys, log_sum_exp, 0.0)
            output = ops.cast(accumulator, value.dtype)
            return _put(outputs, query_index, output), _put(log_sum_exps, query_index, log_sum_exp)

        batch, num_heads = ops.shape(query)[0], query.shape[2]
        init = (
            ops.zeros(
                (num_query_chunks, batch, num_heads, query_chunk_size, value.shape[-1]),
                value.dtype,
            ),
            ops.zeros((num_query_chunks, batch, num_heads, query_chunk_size), "float32"),
        )
        output_chunks, log_sum_exps = counted_loop(num_query_chunks, forward_chunk, init)
        outputs = ops.transpose(_merge_chunks(output_chunks, 2, query_length), (0, 2, 1, 3))

        def backward(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            # (B, T, N, V) -> (Q, B, N, C, V), float32.
            output_grads = ops.transpose(ops.cast(upstream, "float32"), (0, 2, 1, 3))
            # D = rowsum(dO * O) (B, N, T) -> (Q, B, N, C).
            row_dots = ops.sum(
                output_grads * ops.cast(ops.transpose(outputs, (0, 2, 1, 3)), "float32"), -1
            )
            row_dots = _split_chunks(row_dots, 2, query_chunk_size)
            output_grads = _split_chunks(output_grads, 2, query_chunk_size)
            value_chunks32 = ops.cast(value_chunks, "float32")

            def key_chunk_grads(key_index, carry):
                key_grads, value_grads, query_grads, bias_grads = carry
                key_chunk = ops.take(key_chunks, key_index, axis=0)  # (B, N, K, H)
                value_chunk = ops.take(value_chunks32, key_index, axis=0)  # (B, N, K, V)

                def query_chunk_grads(query_index, state):
                    key_grad, value_grad, query_grads, bias_grads = state
                    query_chunk = ops.take(query_chunks, query_index, axis=0)
                    logits, keep = logits_block(query_chunk, query_index, key_index)
                    log_sum_exp = ops.take(log_sum_exps, query_index, axis=0)
                    probabilities = ops.exp(logits - log_sum_exp[..., None])  # (B, N, C, K)
                    if keep is not None:
                        probabilities = ops.where(keep, probabilities, 0.0)
                    output_grad = ops.take(output_grads, query_index, axis=0)  # (B, N, C, V)
                    value_grad = value_grad + ops.einsum(
                        "bnck,bncv->bnkv", probabilities, output_grad
                    )
                    probability_grads = ops.einsum("bncv,bnkv->bnck", output_grad, value_chunk)
                    row_dot = ops.take(row_dots, query_index, axis=0)[..., None]
                    logit_grads = probabilities * (probability_grads - row_dot)  # dS
                    key_grad = key_grad + ops.einsum(
                        "bnck,bnch->bnkh", logit_grads, ops.cast(query_chunk, "float32")
                    )
                    query_grad = ops.take(query_grads, query_index, axis=0) + ops.einsum(
                        "bnck,bnkh->bnch", logit_grads, ops.cast(key_chunk, "float32")
                    )
                    query_grads = _put(query_grads, query_index, query_grad)
                    if bias_blocks is not None:
                        index = bias_blocks.index(query_index, key_index)
                        bias_grad = ops.take(bias_grads, index, axis=0)
                        bias_grad = bias_grad + bias_blocks.reduce(logit_grads)
                        bias_grads = _put(bias_grads, index, bias_grad)
                    return key_grad, value_grad, query_grads, bias_grads

                init = (
                    ops.zeros(ops.shape(key_chunk), "float32"),
                    ops.zeros(ops.shape(value_chunk), "float32"),
                    query_grads,
                    bias_grads,
                )
                first = causal_first_query_chunk(key_index)
                num_chunks = num_query_chunks
                if is_causal:
                    num_chunks = ops.maximum(num_query_chunks - first, 0)
                key_grad, value_grad, query_grads, bias_grads = counted_loop(
                    num_chunks,
                    lambda index, state: query_chunk_grads(first + index, state),
                    init,
                )
                key_grads = _put(key_grads, key_index, key_grad)
                value_grads = _put(value_grads, key_index, value_grad)
                return key_grads, value_grads, query_grads, bias_grads

            bias_grads = ops.zeros((), "float32")
            if bias_blocks is not None:
                bias_grads = ops.zeros(ops.shape(bias_blocks.blocks), "float32")
            init = (
                ops.zeros(ops.shape(key_chunks), "float32"),
                ops.zeros(ops.shape(value_chunks), "float32"),
                ops.zeros(ops.shape(query_chunks), "float32"),
                bias_grads,
            )
            key_grads, value_grads, query_grads, bias_grads = counted_loop(
                num_key_chunks, key_chunk_grads, init
            )

            def unchunk(chunks, length, like):
                # (L, B, N, C, X) -> (B, T, N, X) in the dtype of `like`.
                merged = ops.transpose(_merge_chunks(chunks, 2, length), (0, 2, 1, 3))
                return ops.cast(merged, like.dtype)

            grads = [
                unchunk(query_grads * scale, query_length, query),
                unchunk(key_grads, key_length, key),
                unchunk(value_grads, key_length, value),
            ]
            if bias_blocks is not None:
                bias_grad = bias_blocks.merge(bias_grads, query_length, key_length)
                grads.append(ops.cast(bias_grad, inputs[3].dtype))
            return tuple(grads)  # PyTorch wants a tuple, one gradient per input.

        return outputs, backward

    return attend(*inputs)
