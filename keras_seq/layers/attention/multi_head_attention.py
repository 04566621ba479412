"""Multi-head scaled dot-product attention with bias, caches and a memory-efficient path.

Legend: B batch, T query length, S key length, N heads, H key size, V value size.
"""

import math

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.attention import attention_recorder
from keras_seq.ops import attention as attention_ops
from keras_seq.ops.linear import dense_matmul
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.masks import padding_mask_of
from keras_seq.utils.masks import strip_keras_mask
from keras_seq.utils.quantization import QuantizesLikeParent
from keras_seq.utils.shape_checks import check_attention_mask
from keras_seq.utils.shape_checks import check_padding_mask
from keras_seq.utils.shape_checks import check_rank
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate
from keras_seq.utils.validation import validate_seed

# Query chunk of the memory-efficient path when `memory_efficient_length` selects it.
AUTOMATIC_QUERY_CHUNK_SIZE = 256


class _HeadProjection(QuantizesLikeParent, keras.layers.EinsumDense):
    """`EinsumDense` for the head projections, computed as one 2-D matmul.

    Keras' TensorFlow `einsum` runs `"abc,cde->abde"` as a batch matmul broadcasting the
    kernel over the batch, and `"abcd,cde->abe"` likewise: the kernel's gradient is then one
    product per example plus a sum over the batch (profiled: about 8% of a Swin-T training
    step on CPU). Flattening to `(B * T, C) @ (C, N * H)` gives one MatMul forward and
    backward; the product is `keras_seq.ops.dense_matmul`'s (faster for one row under XLA on
    CPU, as when decoding one sequence). The weights, their shapes and paths are
    `EinsumDense`'s; quantized layers keep Keras' own `quantized_call`, and `self.kernel`
    includes a LoRA update when enabled.
    `quantize` is `EinsumDense`'s: Keras' type check would otherwise skip this subclass in
    `model.quantize(mode)`.
    """

    def call(self, inputs, training=None):
        kernel = self.kernel
        if self.equation == "abc,cde->abde":  # (B, T, C) -> (B, T, N, H)
            channels, heads, head_dim = kernel.shape
            x = dense_matmul(inputs, ops.reshape(kernel, (channels, heads * head_dim)))
            x = ops.reshape(x, (ops.shape(x)[0], ops.shape(x)[1], heads, head_dim))
        elif self.equation == "abcd,cde->abe":  # (B, T, N, H) -> (B, T, C)
            heads, head_dim, channels = kernel.shape
            x = ops.reshape(inputs, (ops.shape(inputs)[0], ops.shape(inputs)[1], heads * head_dim))
            x = dense_matmul(x, ops.reshape(kernel, (heads * head_dim, channels)))
        else:
            return super().call(inputs, training=training)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x


def _to_rank_4(x, name):
    """Left-pad `x` with unit axes to rank 4 `(B, N, T, S)`; reject higher ranks."""
    if len(x.shape) > 4 or len(x.shape) < 2:
        raise ValueError(
            f"`{name}` must have rank 2 to 4 and broadcast to (batch_size, num_heads, "
            f"query_length, key_length). Received: {name}.shape={tuple(x.shape)}"
        )
    while len(x.shape) < 4:
        x = x[None]
    return x


@keras_seq_export
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention, `softmax(Q K^T / sqrt(key_dim)) V` per head.

    Same projections and weight layout as `keras.layers.MultiHeadAttention` (weights copy
    across with `set_weights`), for rank-3 inputs. What it adds:

    - `value` defaults to `query` (self-attention), and explicit `query_mask` / `value_mask`
      arguments that win over the Keras masks of `query` / `value`;
    - an additive `attention_bias` (relative position bias, ALiBi), which Keras' layer only
      exposes on the low-level op;
    - attention scores with the right `(B, N, T, S)` shape symbolically, also for
      cross-attention (Keras' layer reports `(B, N, T, T)`);
    - a key/value cache for incremental decoding, laid out as keras_hub's
      `CachedMultiHeadAttention` (`(B, 2, S_max, N, key_dim)`);
    - a fully masked query row (padded query, or no key to attend to) gives zeros, never NaN
      or a uniform average; the softmax always runs in float32;
    - a memory-efficient path for long sequences, taken by itself from
      `memory_efficient_length` on (or from `query_chunk_size` on): the TensorFlow backend
      has no flash attention, so this runs FlashAttention-2's algorithm in `keras.ops`
      (query chunks with an online softmax over key chunks; a custom gradient that
      recomputes each block once): training memory grows linearly with the sequence length
      instead of quadratically, at 0.84x to 1.4x the plain path's train-step time on CPU
      (N=2048 to 8192; see `keras_seq.ops.attention`).

    Args:
        num_heads: int. Number of attention heads.
        key_dim: int. Size of each head for query and key.
        value_dim: int or `None`. Size of each head for value. Defaults to `key_dim`.
        dropout: float in [0, 1). Dropout on the attention probabilities. Defaults to `0.0`.
        use_bias: bool. Whether the projections have biases. Defaults to `True`.
        output_dim: int or `None`. Output size. Defaults to the query's last dimension.
        query_chunk_size: int or `None`. When set, calls whose query is longer than it (or
            whose key is longer than `key_chunk_size`) take the memory-efficient path, unless
            attention scores are requested. Incompatible with `dropout > 0`. Defaults to
            `None`: `memory_efficient_length` decides.
        key_chunk_size: int. Key chunk of the memory-efficient path. Defaults to `1024`
            (with query chunks of 256: 0.84x to 1.07x the plain path's train step time at
            N=2048, batch 4, in benchmarks/bench_attention.py; 0.80x to 1.14x at N=4096;
            at batch 1, 1.3x to 1.4x at N=4096 and 8192, where 512x2048, 1024x1024 and
            128x4096 chunks measured no faster).
        memory_efficient_length: int or `None`. With `query_chunk_size=None`, a call whose
            `(query_length, key_length)` attention matrix has at least
            `memory_efficient_length ** 2` entries takes the memory-efficient path, with
            query chunks of 256, when both lengths are static, no attention scores are
            asked for, and no dropout applies (`dropout=0` or not training). `None` never
            switches. Defaults to `4096`. The switch buys memory, not speed: on CPU the
            plain path was not slower at any length measured (up to 8192 at batch 1), so
            raise it (or pass `None`) where the quadratic memory fits.
        kernel_initializer: initializer for the projection kernels. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer for the projection biases. Defaults to `"zeros"`.
        kernel_regularizer, bias_regularizer: optional regularizers. Default to `None`.
        seed: non-negative int or `None`. Seed of the attention dropout. Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        query: float `(batch_size, query_length, query_dim)`.
        value: float `(batch_size, key_length, value_dim)`, or `None` for self-attention.
        key: float `(batch_size, key_length, key_dim)`. Defaults to `value`.
        query_mask: optional bool `(batch_size, query_length)`, `True` = real token; masked
            query rows output the output projection's bias only (zero attention). Defaults to
            the Keras mask of `query`.
        value_mask: optional bool `(batch_size, key_length)`; masked keys get zero weight.
            Defaults to the Keras mask of `value` (of `query` in self-attention).
        attention_mask: optional bool broadcastable to `(batch_size, query_length,
            key_length)` (rank 3) or `(batch_size, num_heads, query_length, key_length)` (rank
            4); `True` = attend. Combined (logical and) with the padding and causal masks.
        attention_bias: optional float broadcastable to `(batch_size, num_heads,
            query_length, key_length)`, added to the scaled logits.
        use_causal_mask: bool. Each query attends only to keys at or before its position
            (offset by `cache_update_index` when decoding with a cache).
        return_attention_scores: bool. Also return the attention probabilities.
        cache: optional float `(batch_size, 2, max_length, num_heads, key_dim)` of projected
            keys (`[:, 0]`) and values (`[:, 1]`). Requires `value_dim == key_dim`.
        cache_update_index: int or scalar tensor. Position at which the keys and values of
            this call's `value` are written into `cache`; `None` uses `cache` as is (e.g.
            precomputed cross-attention keys and values).
        training: bool or `None`.

    Returns:
        `outputs` `(batch_size, query_length, output_dim)`; with `return_attention_scores`,
        `(outputs, scores)` where scores is `(batch_size, num_heads, query_length,
        key_length)`; with `cache`, the updated cache is appended: `(outputs, cache)` or
        `(outputs, scores, cache)`.

    Masking:
        Consumes the masks of `query` and `value`; the output carries the query's mask.

    Example:
    ```python
    layer = keras_seq.layers.MultiHeadAttention(num_heads=2, key_dim=8)
    x = np.random.rand(2, 6, 16).astype("float32")
    outputs, scores = layer(x, use_causal_mask=True, return_attention_scores=True)
    assert outputs.shape == (2, 6, 16) and scores.shape == (2, 2, 6, 6)
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Rabe and Staats, 2021](https://arxiv.org/abs/2112.05682)
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        query_chunk_size=None,
        key_chunk_size=1024,
        memory_efficient_length=4096,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        seed=None,
        **kwargs,
    ):
        num_heads = validate_positive_int("num_heads", num_heads)
        key_dim = validate_positive_int("key_dim", key_dim)
        if value_dim is not None:
            value_dim = validate_positive_int("value_dim", value_dim)
        dropout = validate_rate("dropout", dropout)
        validate_bool("use_bias", use_bias)
        if output_dim is not None:
            output_dim = validate_positive_int("output_dim", output_dim)
        if query_chunk_size is not None:
            query_chunk_size = validate_positive_int("query_chunk_size", query_chunk_size)
            if dropout > 0:
                raise ValueError(
                    "The memory-efficient path (`query_chunk_size`) does not apply dropout to "
                    "attention probabilities; set `dropout=0.0` or `query_chunk_size=None`. "
                    f"Received: dropout={dropout}, query_chunk_size={query_chunk_size}"
                )
        key_chunk_size = validate_positive_int("key_chunk_size", key_chunk_size)
        if memory_efficient_length is not None:
            memory_efficient_length = validate_positive_int(
                "memory_efficient_length", memory_efficient_length
            )
        seed = validate_seed("seed", seed)
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_dim = output_dim
        self.query_chunk_size = query_chunk_size
        self.key_chunk_size = key_chunk_size
        self.memory_efficient_length = memory_efficient_length
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.seed = seed
        self.supports_masking = True
        self._value_size = value_dim or key_dim
        self._scale = 1.0 / math.sqrt(key_dim)

    def _projection(self, equation, output_shape, bias_axes, name):
        return _HeadProjection(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) != 3:
                raise ValueError(
                    f"`{name}` must have rank 3 (batch_size, length, dim). "
                    f"Received: {name}.shape={tuple(shape)}"
                )
        heads = (None, self.num_heads)
        # (B, T, d) -> (B, T, N, H)
        self.query_dense = self._projection(
            "abc,cde->abde", heads + (self.key_dim,), "de", "query_dense"
        )
        self.query_dense.build(query_shape)
        self.key_dense = self._projection(
            "abc,cde->abde", heads + (self.key_dim,), "de", "key_dense"
        )
        self.key_dense.build(key_shape)
        self.value_dense = self._projection(
            "abc,cde->abde", heads + (self._value_size,), "de", "value_dense"
        )
        self.value_dense.build(value_shape)
        # (B, T, N, V) -> (B, T, output_dim)
        self.output_dense = self._projection(
            "abcd,cde->abe", (None, self.output_dim or query_shape[-1]), "e", "output_dense"
        )
        self.output_dense.build((None, None, self.num_heads, self._value_size))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy, name="dropout_layer"
        )

    def _key_value(self, value, key, cache, cache_update_index):
        """Projected `(B, S, N, H)` keys and values, read from and written to `cache`."""
        if cache is not None and cache_update_index is None:
            return cache[:, 0], cache[:, 1], cache
        projected_key = self.key_dense(key)
        projected_value = self.value_dense(value)
        if cache is None:
            return projected_key, projected_value, None
        # Write positions [index, index + T) of the cache with one scatter of (N, H) slices
        # indexed by (batch, key-or-value, position): no copy of the cache is transposed
        # (`ops.slice_update` would be cheaper still, but has no gradient on TensorFlow
        # outside XLA).
        batch_size, length = ops.shape(projected_key)[0], ops.shape(projected_key)[1]
        positions = ops.cast(cache_update_index, "int32") + ops.arange(length, dtype="int32")
        grid = (batch_size, 2, length)
        indices = ops.stack(
            (
                ops.broadcast_to(ops.arange(batch_size, dtype="int32")[:, None, None], grid),
                ops.broadcast_to(ops.arange(2, dtype="int32")[None, :, None], grid),
                ops.broadcast_to(positions[None, None, :], grid),
            ),
            axis=-1,
        )  # (B, 2, T, 3)
        updates = ops.stack((projected_key, projected_value), axis=1)  # (B, 2, T, N, H)
        cache = ops.scatter_update(
            cache,
            ops.reshape(indices, (-1, 3)),
            ops.cast(ops.reshape(updates, (-1, *updates.shape[3:])), cache.dtype),
        )
        return cache[:, 0], cache[:, 1], cache

    def _check_masks(self, query, value, query_mask, value_mask, attention_mask, cache):
        """`ValueError` for a mask whose static shape does not fit the inputs."""
        check_rank("query", query, 3, "(batch_size, query_length, dim)")
        check_padding_mask("query_mask", query_mask, "query", query)
        if value is not None and cache is None:
            check_padding_mask("value_mask", value_mask, "value", value)
        if cache is not None:
            key_length = cache.shape[2]
        else:
            key_length = (query if value is None else value).shape[1]
        query_shape = tuple(query.shape)
        check_attention_mask(
            "attention_mask", attention_mask, query_shape[0], query_shape[1], key_length
        )

    def _attention_mask(self, value_mask, attention_mask):
        """Rank-4 bool mask `(B|1, N|1, T|1, S)` from the padding and explicit masks."""
        mask = None
        if value_mask is not None:
            mask = ops.cast(value_mask, "bool")[:, None, None, :]
        if attention_mask is not None:
            attention_mask = ops.cast(attention_mask, "bool")
            if len(attention_mask.shape) == 3:
                attention_mask = attention_mask[:, None]
            attention_mask = _to_rank_4(attention_mask, "attention_mask")
            mask = attention_mask if mask is None else ops.logical_and(mask, attention_mask)
        return mask

    def _query_chunk_size(self, query, key, return_attention_scores, training):
        """The memory-efficient path's query chunk for this call, or `None` (plain path)."""
        if return_attention_scores:
            return None
        query_length, key_length = query.shape[1], key.shape[1]
        if self.query_chunk_size is None:
            # Automatic: a (query x key) matrix of at least memory_efficient_length ** 2
            # entries, static lengths, and no dropout to apply in this call.
            if (
                self.memory_efficient_length is None
                or query_length is None
                or key_length is None
                or (self.dropout > 0 and training)
                or query_length <= 1
                or query_length * key_length < self.memory_efficient_length**2
            ):
                return None
            return min(AUTOMATIC_QUERY_CHUNK_SIZE, query_length)
        short = (
            query_length is not None
            and key_length is not None
            and query_length <= self.query_chunk_size
            and key_length <= self.key_chunk_size
        )
        return None if short else self.query_chunk_size

    def call(
        self,
        query,
        value=None,
        key=None,
        query_mask=None,
        value_mask=None,
        attention_mask=None,
        attention_bias=None,
        use_causal_mask=False,
        return_attention_scores=False,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        self._check_masks(query, value, query_mask, value_mask, attention_mask, cache)
        # Keras fills `query_mask` / `value_mask` from the inputs' masks only when several
        # tensors are passed, so read them here; an explicit mask wins.
        query_mask = padding_mask_of(query, query_mask)
        if value is not None:
            value_mask = padding_mask_of(value, value_mask)
        for x in (query, value, key):
            if x is not None:
                strip_keras_mask(x)
        if value is None:
            value = query
            if cache is None or cache_update_index is not None:
                # Self-attention: keys are the queries; a read-only cache has its own keys.
                value_mask = query_mask if value_mask is None else value_mask
        key = value if key is None else key
        query_heads = self.query_dense(query)  # (B, T, N, H)
        key_heads, value_heads, cache = self._key_value(value, key, cache, cache_update_index)
        mask = self._attention_mask(value_mask, attention_mask)
        bias = None if attention_bias is None else _to_rank_4(attention_bias, "attention_bias")
        causal_offset = 0 if cache_update_index is None else cache_update_index
        scores = None
        # `record_attention_scores` needs the probabilities: it forces the explicit path.
        recording = attention_recorder.is_recording(self)
        query_chunk_size = self._query_chunk_size(
            query_heads, key_heads, return_attention_scores or recording, training
        )
        if query_chunk_size is not None:
            context = attention_ops.chunked_attention(
                query_heads,
                key_heads,
                value_heads,
                mask=mask,
                bias=bias,
                scale=self._scale,
                is_causal=use_causal_mask,
                causal_offset=causal_offset,
                query_chunk_size=query_chunk_size,
                key_chunk_size=self.key_chunk_size,
            )
        else:
            if use_causal_mask:
                causal = attention_ops.causal_mask(
                    ops.shape(query_heads)[1], ops.shape(key_heads)[1], causal_offset
                )
                mask = causal if mask is None else ops.logical_and(mask, causal)
            logits = attention_ops.attention_logits(query_heads, key_heads, self._scale, bias)
            scores = attention_ops.attention_probabilities(logits, mask)  # (B, N, T, S)
            scores = ops.cast(scores, self.compute_dtype)
            weights = self.dropout_layer(scores, training=training)
            context = ops.einsum("bnts,bsnv->btnv", weights, value_heads)
        if query_mask is not None:
            context = context * ops.cast(query_mask, context.dtype)[:, :, None, None]
            if scores is not None:
                scores = scores * ops.cast(query_mask, scores.dtype)[:, None, :, None]
        if recording:
            attention_recorder.record(self, scores)
        outputs = self.output_dense(context)
        results = (outputs,)
        if return_attention_scores:
            results += (scores,)
        if cache is not None:
            results += (cache,)
        return results[0] if len(results) == 1 else results

    def compute_output_spec(
        self,
        query,
        value=None,
        key=None,
        query_mask=None,
        value_mask=None,
        attention_mask=None,
        attention_bias=None,
        use_causal_mask=False,
        return_attention_scores=False,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        value = query if value is None else value
        batch_size, query_length = query.shape[0], query.shape[1]
        outputs = keras.KerasTensor(
            (batch_size, query_length, self.output_dim or query.shape[-1]),
            dtype=self.compute_dtype,
        )
        results = (outputs,)
        if return_attention_scores:
            key_length = value.shape[1] if cache is None else cache.shape[2]
            results += (
                keras.KerasTensor(
                    (batch_size, self.num_heads, query_length, key_length),
                    dtype=self.compute_dtype,
                ),
            )
        if cache is not None:
            results += (keras.KerasTensor(cache.shape, dtype=cache.dtype),)
        return results[0] if len(results) == 1 else results

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "query_chunk_size": self.query_chunk_size,
                "key_chunk_size": self.key_chunk_size,
                "memory_efficient_length": self.memory_efficient_length,
                "kernel_initializer": keras.saving.serialize_keras_object(self.kernel_initializer),
                "bias_initializer": keras.saving.serialize_keras_object(self.bias_initializer),
                "kernel_regularizer": keras.saving.serialize_keras_object(self.kernel_regularizer),
                "bias_regularizer": keras.saving.serialize_keras_object(self.bias_regularizer),
                "seed": self.seed,
            }
        )
        return config
