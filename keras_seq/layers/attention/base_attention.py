"""The machinery shared by keras_seq's additive (Bahdanau) and multiplicative (Luong) attention.

Letter legend for shape comments: B batch, T query length, S key / value length, Q query
features, K key features, V value features, U units of the score network.
"""

import keras
from keras import ops

from keras_seq.layers.attention import attention_recorder
from keras_seq.ops.attention import attention_probabilities
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.shape_checks import check_padding_mask
from keras_seq.utils.validation import validate_rate
from keras_seq.utils.validation import validate_seed


def _unpack_inputs(inputs, what):
    """`[query, value]` or `[query, value, key]` -> `(query, value, key)`; key defaults to value.

    Works on tensors and on shapes; `what` names the argument in the error message.
    """
    # A single shape is a tuple of ints / None: not a list of inputs either.
    if (
        not isinstance(inputs, (list, tuple))
        or len(inputs) not in (2, 3)
        or any(x is None or isinstance(x, int) for x in inputs)
    ):
        raise ValueError(
            f"`{what}` must be a list `[query, value]` or `[query, value, key]`. "
            f"Received: {what}={inputs!r}"
        )
    query, value = inputs[0], inputs[1]
    key = inputs[2] if len(inputs) == 3 else value
    return query, value, key


def _unpack_mask(mask):
    """`None` or `[query_mask, value_mask(, key_mask)]` -> bool `(query_mask, key_mask)`.

    The key positions that may be attended are those valid in both the value and key masks.
    """
    if mask is None:
        return None, None
    if not isinstance(mask, (list, tuple)) or len(mask) not in (2, 3):
        raise ValueError(
            "`mask` must be `None` or a list `[query_mask, value_mask]` or "
            f"`[query_mask, value_mask, key_mask]`. Received: mask={mask!r}"
        )
    masks = [None if m is None else ops.cast(m, "bool") for m in mask]
    query_mask, key_mask = masks[0], masks[1]
    if len(masks) == 3 and masks[2] is not None:
        key_mask = masks[2] if key_mask is None else ops.logical_and(key_mask, masks[2])
    return query_mask, key_mask


class BaseAttention(keras.layers.Layer):
    """Base of `BahdanauAttention` and `LuongAttention`: everything but the score function.

    Handles the `[query, value(, key)]` call protocol, 2-D (single step) queries, query and
    key masks (Keras or explicit), the float32 masked softmax (fully masked rows and padded
    queries give zeros), dropout on the weights, `return_attention_scores`, the symbolic
    output spec and the output mask. Subclasses implement `_build_scores(query_dim,
    key_dim)` (create the score weights) and `_scores(query, key)` (`(B, T, Q)`, `(B, S, K)`
    -> logits `(B, T, S)`); the additive score network used by both subclasses lives here.

    Not registered itself: it is never instantiated directly.
    """

    def __init__(self, dropout=0.0, seed=None, kernel_initializer="glorot_uniform", **kwargs):
        dropout = validate_rate("dropout", dropout)
        seed = validate_seed("seed", seed)
        super().__init__(**kwargs)
        self.dropout = dropout
        self.seed = seed
        self.kernel_initializer = kernel_initializer
        self._kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed_generator = keras.random.SeedGenerator(seed=seed) if dropout > 0 else None

    def build(self, input_shape):
        query_shape, value_shape, key_shape = _unpack_inputs(input_shape, "inputs")
        if len(query_shape) not in (2, 3) or len(value_shape) != 3 or len(key_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects `query` `(batch_size, query_length, "
                "query_dim)` or `(batch_size, query_dim)`, and `value` / `key` "
                "`(batch_size, value_length, dim)`. Received shapes: "
                f"query={tuple(query_shape)}, value={tuple(value_shape)}, "
                f"key={tuple(key_shape)}"
            )
        if query_shape[-1] is None or key_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} needs known last dimensions of `query` and `key`. "
                f"Received shapes: query={tuple(query_shape)}, key={tuple(key_shape)}"
            )
        if None not in (value_shape[1], key_shape[1]) and value_shape[1] != key_shape[1]:
            raise ValueError(
                "`value` and `key` must have the same length (axis 1). Received shapes: "
                f"value={tuple(value_shape)}, key={tuple(key_shape)}"
            )
        self._build_scores(query_shape[-1], key_shape[-1])

    def _build_scores(self, query_dim, key_dim):
        raise NotImplementedError

    def _scores(self, query, key):
        raise NotImplementedError

    # The additive score network v^T tanh(W_q q + W_k k (+ b)), shared by Bahdanau and
    # Luong's "concat" score.

    def _dense(self, units, use_bias, name, input_dim):
        layer = keras.layers.Dense(
            units,
            use_bias=use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )
        layer.build((None, input_dim))
        return layer

    def _build_additive(self, query_dim, key_dim, units, use_bias):
        self.query_dense = self._dense(units, False, "query_dense", query_dim)
        self.key_dense = self._dense(units, use_bias, "key_dense", key_dim)
        self.score_vector = self.add_weight(
            shape=(units,),
            name="score_vector",
            initializer=clone_initializer(self._kernel_initializer),
        )

    def _project(self, dense, x):
        """`dense(x)` on the last axis of a 3-D `x`, through a 2-D matmul.

        Keras' Dense on a 3-D input becomes a `tensordot` whose transpose permutation is
        computed at run time; inside a while loop (`AttentionRNN`) XLA cannot differentiate
        that, so the leading axes are flattened instead.
        """
        shape = ops.shape(x)
        flat = dense(ops.reshape(x, (-1, x.shape[-1])))  # (B * T, units)
        return ops.reshape(flat, (shape[0], shape[1], dense.units))

    def _additive_scores(self, query, key):
        projected_query = ops.expand_dims(self._project(self.query_dense, query), 2)  # (B,T,1,U)
        projected_key = ops.expand_dims(self._project(self.key_dense, key), 1)  # (B, 1, S, U)
        hidden = ops.tanh(projected_query + projected_key)  # (B, T, S, U)
        return ops.sum(hidden * self.score_vector, axis=-1)  # (B, T, S)

    def call(self, inputs, mask=None, training=None, return_attention_scores=False):
        query, value, key = _unpack_inputs(inputs, "inputs")
        query_mask, key_mask = _unpack_mask(mask)
        single_step = len(query.shape) == 2
        # `mask` is `[query_mask, value_mask]`, Keras' convention.
        if not single_step:
            check_padding_mask("mask[0]", query_mask, "query", query)
        check_padding_mask("mask[1]", key_mask, "value", key)
        if single_step:
            query = ops.expand_dims(query, 1)  # (B, 1, Q)
            if query_mask is not None:
                query_mask = ops.reshape(query_mask, (-1, 1))  # (B, 1)
        scores = self._scores(query, key)  # (B, T, S)

        # One mask over (query, key) pairs: padded keys and padded queries are both dropped,
        # so a padded query (or one whose keys are all padded) gets an all-zero row.
        keep = None if key_mask is None else ops.expand_dims(key_mask, 1)  # (B, 1, S)
        if query_mask is not None:
            rows = ops.expand_dims(query_mask, -1)  # (B, T, 1)
            keep = rows if keep is None else ops.logical_and(keep, rows)
        weights = attention_probabilities(scores, keep)  # float32 (B, T, S)
        weights = ops.cast(weights, self.compute_dtype)
        if attention_recorder.is_recording(self):
            attention_recorder.record(self, weights)  # (B, T, S), T = 1 for a single step
        dropped = weights
        if training and self.dropout > 0:
            dropped = keras.random.dropout(weights, self.dropout, seed=self.seed_generator)
        context = ops.matmul(dropped, ops.cast(value, self.compute_dtype))  # (B, T, V)
        if single_step:
            context, weights = context[:, 0], weights[:, 0]  # (B, V), (B, S)
        if return_attention_scores:
            return context, weights
        return context

    def compute_output_spec(self, inputs, mask=None, training=None, return_attention_scores=False):
        query, value, key = _unpack_inputs(inputs, "inputs")
        leading = tuple(query.shape[:-1])  # (B, T) or (B,)
        context = keras.KerasTensor(leading + (value.shape[-1],), dtype=self.compute_dtype)
        if return_attention_scores:
            weights = keras.KerasTensor(leading + (key.shape[1],), dtype=self.compute_dtype)
            return context, weights
        return context

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        _unpack_mask(mask)  # validates the structure
        return mask[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dropout": self.dropout,
                "seed": self.seed,
                "kernel_initializer": keras.initializers.serialize(self._kernel_initializer),
            }
        )
        return config
