"""Multiplicative (Luong) attention with the dot, general and concat score functions.

Letter legend for shape comments: B batch, T query length, S key length, Q query features,
K key features.
"""

from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.attention.base_attention import BaseAttention
from keras_seq.ops.attention import in_logit_precision
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_int

SCORE_MODES = ("dot", "general", "concat")


@keras_seq_export
class LuongAttention(BaseAttention):
    """Global attention of Luong et al. (2015) with its three score functions.

    - `"dot"`: score(q_t, k_s) = q_t · k_s; query and key must have the same size.
    - `"general"`: score = q_t^T W_a k_s with a learned W_a `(query_dim, key_dim)`
      (`query_dense/kernel`, no bias), so query and key may differ in size.
    - `"concat"`: score = v^T tanh(W_a [q_t; k_s]) (Luong et al., eq. 8) with W_a
      `(query_dim + key_dim, units)` kept as its two blocks `query_dense/kernel` and
      `key_dense/kernel` (no bias; W_a [q; k] = W_q q + W_k k) and v = `score_vector`
      `(units,)`. It is `BahdanauAttention(units, use_bias=False)`.

    Then weights α_t = softmax_s(score) over the valid keys and context_t = Σ_s α_t,s
    value_s. With `score_mode="dot"` and the same `use_scale` this is exactly
    `keras.layers.Attention`, whose score modes lack the learned W_a of `"general"` and
    `"concat"`; unlike Keras it also takes 2-D queries (one decoder step), gives zeros rather
    than a uniform average for a query whose keys are all masked, and computes the softmax
    in float32 under mixed precision.

    Args:
        score_mode: str. One of `"dot"`, `"general"`, `"concat"`. Defaults to `"dot"`.
        units: int or `None`. Width of the `"concat"` score network; required for
            `"concat"` and must be `None` otherwise. Defaults to `None`.
        use_scale: bool. Multiply the scores by a learned scalar `scale` (initialized to 1),
            as `keras.layers.Attention(use_scale=True)`. Defaults to `False`.
        dropout: float in [0, 1). Dropout rate on the attention weights, in training only.
            Defaults to `0.0`.
        seed: non-negative int or `None`. Seed of the dropout. Defaults to `None`.
        kernel_initializer: initializer of W_a and v. Defaults to `"glorot_uniform"`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: list `[query, value]` or `[query, value, key]`; `key` defaults to `value`.
            `query` is `(batch_size, query_length, query_dim)`, or `(batch_size, query_dim)`
            for a single step; `value` is `(batch_size, value_length, value_dim)` and `key`
            `(batch_size, value_length, key_dim)`.
        mask: optional list `[query_mask, value_mask]` (or with a third `key_mask`) of bool
            tensors `(batch_size, query_length)` (`(batch_size,)` for a 2-D query) and
            `(batch_size, value_length)`, or `None` entries; `True` marks real positions.
            Filled in from the Keras masks of `inputs`; an explicit `mask` wins.
        training: bool or `None`; enables dropout.
        return_attention_scores: bool. Also return the attention weights. Defaults to
            `False`.

    Returns:
        The context `(batch_size, query_length, value_dim)` (`(batch_size, value_dim)` for a
        2-D query); with `return_attention_scores=True`, `(context, weights)` where weights
        `(batch_size, query_length, value_length)` (`(batch_size, value_length)`) are the
        softmax probabilities before dropout.

    Masking:
        Padded keys get zero weight; a padded query, or one whose keys are all padded, gets
        zero weights and a zero context (never NaN). Returns the query mask as output mask.

    Example:
    ```python
    layer = keras_seq.layers.LuongAttention(score_mode="general")
    query, value = np.ones((2, 3, 8)), np.ones((2, 5, 12))
    mask = [None, np.array([[True] * 5, [True, True, False, False, False]])]
    context = layer([query, value], mask=mask)
    ```

    References:
        - [Luong et al., 2015](https://arxiv.org/abs/1508.04025)
    """

    def __init__(
        self,
        score_mode="dot",
        units=None,
        use_scale=False,
        dropout=0.0,
        seed=None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        score_mode = validate_choice("score_mode", score_mode, SCORE_MODES)
        if score_mode == "concat":
            if units is None:
                raise ValueError(
                    "`units` is required when score_mode='concat' (the width of the score "
                    "network). Received: units=None"
                )
            units = validate_positive_int("units", units)
        elif units is not None:
            raise ValueError(
                "`units` only applies to score_mode='concat'; leave it `None` for "
                f"score_mode={score_mode!r}. Received: units={units!r}"
            )
        validate_bool("use_scale", use_scale)
        super().__init__(
            dropout=dropout, seed=seed, kernel_initializer=kernel_initializer, **kwargs
        )
        self.score_mode = score_mode
        self.units = units
        self.use_scale = use_scale

    def _build_scores(self, query_dim, key_dim):
        if self.score_mode == "dot" and query_dim != key_dim:
            raise ValueError(
                "score_mode='dot' needs `query` and `key` of the same last dimension; use "
                "score_mode='general' or 'concat' to compare vectors of different sizes. "
                f"Received: query_dim={query_dim}, key_dim={key_dim}"
            )
        if self.score_mode == "general":
            self.query_dense = self._dense(key_dim, False, "query_dense", query_dim)
        elif self.score_mode == "concat":
            self._build_additive(query_dim, key_dim, self.units, use_bias=False)
        if self.use_scale:
            self.scale = self.add_weight(shape=(), name="scale", initializer="ones")

    def _scores(self, query, key):
        if self.score_mode == "concat":
            scores = self._additive_scores(query, key)  # (B, T, S)
        else:
            if self.score_mode == "general":
                query = self._project(self.query_dense, query)  # (B, T, K)
            # In float32 under mixed precision: a float16 product overflows (NaN weights).
            query, key = in_logit_precision(query), in_logit_precision(key)
            scores = ops.matmul(query, ops.swapaxes(key, -2, -1))  # (B, T, S)
        if self.use_scale:
            scores = scores * ops.cast(self.scale, scores.dtype)
        return scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {"score_mode": self.score_mode, "units": self.units, "use_scale": self.use_scale}
        )
        return config
