"""Additive (Bahdanau) attention with learned query and key projections.

Letter legend for shape comments: B batch, T query length, S key length, U units.
"""

from keras_seq.api import keras_seq_export
from keras_seq.layers.attention.base_attention import BaseAttention
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class BahdanauAttention(BaseAttention):
    """Additive attention: a one-hidden-layer network scores each query against each key.

    score(q_t, k_s) = v^T tanh(W_q q_t + W_k k_s + b), weights α_t = softmax_s(score) over
    the valid keys, context_t = Σ_s α_t,s value_s. W_q `(query_dim, units)` has no bias and
    W_k `(key_dim, units)` carries the single bias b (which W_q's bias would duplicate), so
    the weights are `query_dense/kernel`, `key_dense/kernel`, `key_dense/bias` and
    `score_vector` v `(units,)`. Because queries and keys are projected to `units` first,
    they may have different sizes. Use it as the attention of a seq2seq decoder (see
    `AttentionCell`) or on its own over any pair of sequences.

    `keras.layers.AdditiveAttention` computes `Σ scale ⊙ tanh(q + k)` with no learned
    projections, so its query and key must already live in the same space; this layer adds
    the learned W_q, W_k and b of Bahdanau et al. (with W_q = W_k = identity, b = 0 and
    v = scale it is exactly `AdditiveAttention(use_scale=True)`). It also takes 2-D queries
    (one decoder step), gives zeros rather than a uniform average for a query whose keys
    are all masked, and computes the softmax in float32 under mixed precision.

    Args:
        units: int. Width of the score network (the size of W_q q and W_k k).
        use_bias: bool. Whether the score network has its bias b. Defaults to `True`.
        dropout: float in [0, 1). Dropout rate on the attention weights, in training only.
            Defaults to `0.0`.
        seed: non-negative int or `None`. Seed of the dropout. Defaults to `None`.
        kernel_initializer: initializer of W_q, W_k and v. Defaults to `"glorot_uniform"`.
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
    layer = keras_seq.layers.BahdanauAttention(units=16)
    query, value = np.ones((2, 3, 8)), np.ones((2, 5, 12))
    context, weights = layer([query, value], return_attention_scores=True)
    ```

    References:
        - [Bahdanau et al., 2015](https://arxiv.org/abs/1409.0473)
    """

    def __init__(
        self,
        units,
        use_bias=True,
        dropout=0.0,
        seed=None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        units = validate_positive_int("units", units)
        validate_bool("use_bias", use_bias)
        super().__init__(
            dropout=dropout, seed=seed, kernel_initializer=kernel_initializer, **kwargs
        )
        self.units = units
        self.use_bias = use_bias

    def _build_scores(self, query_dim, key_dim):
        self._build_additive(query_dim, key_dim, self.units, self.use_bias)

    def _scores(self, query, key):
        return self._additive_scores(query, key)  # (B, T, S)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "use_bias": self.use_bias})
        return config
