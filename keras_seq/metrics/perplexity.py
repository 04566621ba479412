"""Perplexity over the real tokens of every batch seen, exact across batches."""

# Shapes: B batch, T time (sequence length), V vocabulary.

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.losses.sequence_loss import per_token_sample_weight
from keras_seq.losses.sequence_loss import token_cross_entropy
from keras_seq.utils.masks import get_keras_mask
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_int


@keras_seq_export
class Perplexity(keras.metrics.Metric):
    """Perplexity: `exp` of the mean token cross-entropy over all real tokens seen so far.

    The state is the weighted sum of token negative log-likelihoods and the weighted token
    count, both summed over batches (and over replicas under `tf.distribute`), so the
    result is `exp(total_nll / total_tokens)` over everything since the last
    `reset_state()`: exact when batches hold different numbers of padding tokens, unlike
    an average of per-batch perplexities. A token's weight is the product of the
    `ignore_index` mask, the Keras mask of `y_pred` and `sample_weight` (a `(batch_size,)`
    weight is broadcast over time). The NLL is computed in float32 from logits or
    probabilities of any float dtype (mixed precision), with `keras.ops` only, so it runs
    as a compiled metric with `jit_compile=True`. With no token counted yet the result
    is `0`.

    Why not `keras_hub.metrics.Perplexity`: it keeps the same two sums, but (keras-hub
    0.32) when `y_pred` carries a Keras mask (e.g. an `Embedding(mask_zero=True)` model
    in `fit`) it leaves masked tokens out of the sum yet counts them in the denominator for
    float32 outputs, and ignores the mask for float16 ones; a `(batch_size,)`
    `sample_weight` raises (or silently broadcasts against time when
    `batch_size == sequence_length`). This metric handles all three, shares its token
    cross-entropy with `keras_seq.losses.SequenceCrossEntropy`, and names the padding
    argument `ignore_index` like that loss. With `mask_token_id` / `ignore_index` or a
    per-token `sample_weight` and no Keras mask, both give the same result.

    Targets are checked as by that loss: an id outside `[0, vocabulary_size)` that is not
    `ignore_index` raises `ValueError` eagerly and `tf.errors.InvalidArgumentError` in a
    graph; XLA drops the check.

    Args:
        from_logits: bool. Whether `y_pred` holds logits (`True`) or probabilities.
            Defaults to `True`.
        ignore_index: `None` or int. Target id (e.g. the padding id `0`) whose tokens are
            not counted. Defaults to `None`.
        name: str. Name of the metric. Defaults to `"perplexity"`.
        dtype: float dtype of the state variables and the result. Defaults to `"float32"`.

    Call arguments (`update_state`):
        y_true: int tensor `(batch_size, sequence_length)` of target ids (or `(..., 1)`).
        y_pred: float tensor `(batch_size, sequence_length, vocabulary_size)`; its Keras
            mask, if any, is honoured.
        sample_weight: optional float tensor `(batch_size, sequence_length)` or
            `(batch_size,)`.

    Returns:
        `result()`: scalar tensor of `dtype`.

    Example:
    ```python
    perplexity = keras_seq.metrics.Perplexity(ignore_index=0)
    uniform_logits = np.zeros((2, 3, 10), "float32")  # p = 1/10 everywhere
    perplexity.update_state(np.array([[4, 2, 0], [1, 0, 0]]), uniform_logits)
    perplexity.update_state(np.array([[7, 7, 7], [3, 5, 0]]), uniform_logits)
    np.testing.assert_allclose(float(perplexity.result()), 10.0, rtol=1e-5)
    ```
    """

    def __init__(self, from_logits=True, ignore_index=None, name="perplexity", dtype="float32"):
        validate_bool("from_logits", from_logits)
        if ignore_index is not None:
            ignore_index = validate_int("ignore_index", ignore_index)
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(f"`dtype` must be a floating-point dtype. Received: dtype={dtype!r}")
        super().__init__(name=name, dtype=dtype)
        self.from_logits = from_logits
        self.ignore_index = ignore_index
        self.total_nll = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="total_nll"
        )
        self.total_tokens = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="total_tokens"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        keras_mask = get_keras_mask(y_pred)  # Read before any cast, which drops it.
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        losses, valid = token_cross_entropy(
            y_true, y_pred, from_logits=self.from_logits, ignore_index=self.ignore_index
        )  # (B, T)
        weights = ops.ones_like(losses)
        for mask in (valid, keras_mask):
            if mask is not None:
                weights = weights * ops.cast(ops.reshape(mask, ops.shape(losses)), "float32")
        sample_weight = per_token_sample_weight(sample_weight, y_pred)
        if sample_weight is not None:
            weights = weights * ops.reshape(sample_weight, ops.shape(losses))
        self.total_nll.assign_add(ops.cast(ops.sum(losses * weights), self.dtype))
        self.total_tokens.assign_add(ops.cast(ops.sum(weights), self.dtype))

    def result(self):
        count = ops.convert_to_tensor(self.total_tokens)
        mean_nll = ops.divide_no_nan(ops.convert_to_tensor(self.total_nll), count)
        return ops.where(ops.equal(count, 0), ops.zeros_like(count), ops.exp(mean_nll))

    def reset_state(self):
        # ops.zeros, not ops.zeros_like(variable): the JAX backend cannot take a variable there.
        for variable in (self.total_nll, self.total_tokens):
            variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits, "ignore_index": self.ignore_index})
        return config
