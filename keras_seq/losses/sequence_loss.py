"""Token-level cross-entropy for sequence models, averaged over the real (unpadded) tokens."""

# Shapes: B batch, T time (sequence length), V vocabulary.

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.utils.distribute import cross_replica_sum
from keras_seq.utils.distribute import num_replicas_in_sync
from keras_seq.utils.masks import get_keras_mask
from keras_seq.utils.masks import set_keras_mask
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_int
from keras_seq.utils.validation import validate_rate
from keras_seq.utils.value_checks import check_values

REDUCTIONS = ("mean_with_sample_weight", "sum_over_batch_size", "mean", "sum", "none", None)
MEAN_REDUCTIONS = ("mean_with_sample_weight", "sum_over_batch_size", "mean")


def check_class_ids(y_true, y_pred, ignore_index=None):
    """`y_true`, checked: every target is a class id of `y_pred` (in `[0, V)`, a whole
    number if `y_true` is a float tensor) or `ignore_index`. See
    `keras_seq.utils.value_checks.check_values` for when (eagerly, in a graph) and how it
    raises; use the returned tensor, which in a graph runs after the check.

    Without it an id `>= V` is clamped to `V - 1` under XLA (on GPUs TensorFlow's gather
    gives `0` even without XLA) and a negative id wraps around to `V + id`: both give a
    finite, wrong loss that trains.
    """
    vocabulary_size = y_pred.shape[-1]
    if vocabulary_size is None:
        vocabulary_size = ops.shape(y_pred)[-1]
    invalid = ops.logical_or(ops.less(y_true, 0), ops.greater_equal(y_true, vocabulary_size))
    if "float" in keras.backend.standardize_dtype(y_true.dtype):
        # Also catches NaN, which compares false with everything.
        invalid = ops.logical_or(invalid, ops.logical_not(ops.equal(y_true, ops.floor(y_true))))
    requirement = "hold class ids in [0, vocabulary_size)"
    details = f"vocabulary_size={y_pred.shape[-1]}"
    if ignore_index is not None:
        invalid = ops.logical_and(invalid, ops.not_equal(y_true, ignore_index))
        requirement += " or `ignore_index`"
        details += f", ignore_index={ignore_index}"
    return check_values("y_true", y_true, invalid, requirement, details)


def token_cross_entropy(y_true, y_pred, from_logits=True, label_smoothing=0.0, ignore_index=None):
    """Per-token cross-entropy in float32 and the mask of the tokens to count.

    Args:
        y_true: int tensor `(batch_size, sequence_length)` of class ids (or `(..., 1)`).
        y_pred: float tensor `(batch_size, sequence_length, vocabulary_size)` of logits or
            probabilities, any float dtype; computed in float32.
        from_logits: bool. Whether `y_pred` holds logits.
        label_smoothing: float in [0, 1). Target `(1 - eps) * one_hot + eps / V`.
        ignore_index: `None` or int. Target id whose tokens are excluded.

    Raises:
        ValueError: (`tf.errors.InvalidArgumentError` in a graph) for a target that is
            neither a class id nor `ignore_index`; see `check_class_ids`.

    Returns:
        `(losses, valid)`: float32 `(batch_size, sequence_length)` losses, `0` at ignored
        tokens, and the bool mask of the other tokens (`None` without `ignore_index`).
    """
    y_pred = ops.cast(y_pred, "float32")
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    if len(y_true.shape) != len(y_pred.shape) - 1:
        raise ValueError(
            "`y_true` must hold class ids with one dimension less than `y_pred`, e.g. "
            "(batch_size, sequence_length) for y_pred (batch_size, sequence_length, "
            f"vocabulary_size). Received: y_true.shape={y_true.shape}, "
            f"y_pred.shape={y_pred.shape}"
        )
    y_true = check_class_ids(y_true, y_pred, ignore_index)
    y_true = ops.cast(y_true, "int32")
    if from_logits:
        log_probs = ops.log_softmax(y_pred, axis=-1)  # (B, T, V)
    else:
        # As Keras' sparse categorical cross-entropy: clip, then renormalise.
        epsilon = keras.backend.epsilon()
        log_probs = ops.log_softmax(ops.log(ops.clip(y_pred, epsilon, 1.0 - epsilon)), axis=-1)
    valid = None
    if ignore_index is not None:
        valid = ops.not_equal(y_true, ignore_index)  # (B, T)
        # An ignored id may be out of range (e.g. -100): gather a real class instead.
        y_true = ops.where(valid, y_true, 0)
    true_log_probs = ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)
    losses = -ops.squeeze(true_log_probs, axis=-1)  # (B, T)
    if label_smoothing:
        # -sum_k q_k log p_k with q = (1 - eps) one_hot + eps / V.
        uniform_losses = -ops.mean(log_probs, axis=-1)  # (B, T)
        losses = (1.0 - label_smoothing) * losses + label_smoothing * uniform_losses
    if valid is not None:
        losses = ops.where(valid, losses, 0.0)
    return losses, valid


def per_token_sample_weight(sample_weight, y_pred):
    """`sample_weight` of a lower rank (per sequence `(batch_size,)`, or a scalar) broadcast
    to the token shape `(batch_size, sequence_length)` of `y_pred`."""
    if sample_weight is None:
        return None
    sample_weight = ops.convert_to_tensor(sample_weight, "float32")
    token_shape = ops.shape(y_pred)[:-1]
    if len(sample_weight.shape) < len(token_shape):
        # (B,) -> (B, 1) -> (B, T): Keras would align (B,) with T instead, and divide
        # "mean_with_sample_weight" by the sum of the un-broadcast weights.
        while len(sample_weight.shape) < len(token_shape):
            sample_weight = ops.expand_dims(sample_weight, -1)
        # A product, not ops.broadcast_to: on PyTorch that is a view whose elements share
        # memory, which Keras' in-place `sample_weight *= mask` then refuses.
        sample_weight = sample_weight * ops.ones(token_shape, "float32")
    return sample_weight


@keras_seq_export
class SequenceCrossEntropy(keras.losses.Loss):
    """Cross-entropy of sparse token targets, averaged over the real tokens of a batch.

    The loss of language models, translation and captioning: integer targets against
    per-token logits (or probabilities), with label smoothing and three ways to leave
    padding out: `ignore_index`, the Keras mask of `y_pred` (e.g. from
    `Embedding(mask_zero=True)` propagated through the model), and `sample_weight`. They
    combine by product; each excluded token contributes neither to the sum nor to the
    count. Computed in float32 whatever the dtype of `y_pred` (float16 and bfloat16 logits
    under mixed precision are cast first), hence no `dtype` argument.

    Label smoothing follows Szegedy et al. (2016) and Vaswani et al. (2017), as Keras'
    `CategoricalCrossentropy(label_smoothing=...)`: the target distribution is
    `(1 - eps) * one_hot + eps / V` with `eps = label_smoothing`, spread over all `V`
    classes, the true one included, so the loss is `(1 - eps) * nll + eps * mean_k(-log p_k)`;
    its minimum is not 0.

    What it divides by: with the default `reduction="mean_with_sample_weight"` the batch
    loss is `sum(w * loss) / sum(w)` over all tokens, where `w` is the product of the
    `ignore_index` mask, the Keras mask and `sample_weight` (a `(batch_size,)` weight is
    broadcast over time); with 0/1 weights that is the sum over real tokens divided by the
    number of real tokens, whichever way the padding was given, and `0` when there is none.
    With `"sum_over_batch_size"` (Keras' default) it is `sum(w * loss)` divided by the number
    of unmasked tokens: masks are excluded from the count, but zero `sample_weight` entries
    are still counted, so padding given only as a `sample_weight` dilutes the mean.
    `"sum"` returns the weighted sum and `"none"` / `None` the weighted
    `(batch_size, sequence_length)` losses.

    Under `tf.distribute` (with two or more replicas in sync) the mean reductions are exact
    over the global batch: each replica returns the sum of its weighted losses divided by
    the count summed over all replicas (an all-reduce), and Keras sums the replicas'
    gradients, so training minimises the per-token mean of the whole global batch however
    the real tokens are spread over the replicas. Keras' own masked losses instead average
    each replica's own mean, which weighs the tokens of a replica with little real text
    more. A value computed inside a replica is therefore that replica's share; the loss
    that `fit` reports is the global mean. `"sum"` and `"none"` are per replica as usual.

    Targets are checked: each must be a class id in `[0, vocabulary_size)` (a whole number,
    `vocabulary_size = y_pred.shape[-1]`) or `ignore_index`, padded positions included;
    otherwise TensorFlow's gather would clamp an id `>= vocabulary_size` (under XLA, and on
    GPUs) and wrap a negative one, a finite, wrong loss that trains. Called eagerly (or with
    `run_eagerly=True`) a bad target raises `ValueError`; in a `tf.function` graph (`fit`
    without XLA, the default on CPU) the step fails with `tf.errors.InvalidArgumentError`
    and the same message. Under XLA (`jit_compile=True`, `fit`'s default on GPU) the
    compiler drops the check, as keras-hub and Hugging Face do not check either: run a step
    without XLA to check a data set. The message names the first bad target, its position,
    `vocabulary_size` and `ignore_index`.

    Args:
        from_logits: bool. Whether `y_pred` holds logits (`True`) or probabilities, which
            are clipped to `[epsilon, 1 - epsilon]` and renormalised as in Keras. Defaults
            to `True`.
        label_smoothing: float in [0, 1). Mass spread uniformly over the vocabulary.
            Defaults to `0.0`.
        ignore_index: `None` or int. Target id (e.g. the padding id `0`, or `-100`) whose
            tokens are excluded; any int, in the vocabulary or not. Defaults to `None`.
        reduction: one of `"mean_with_sample_weight"`, `"sum_over_batch_size"`, `"mean"`
            (same as `"sum_over_batch_size"`), `"sum"`, `"none"` or `None`, as described
            above. Defaults to `"mean_with_sample_weight"`.
        name: str. Name of the loss. Defaults to `"sequence_cross_entropy"`.

    Call arguments:
        y_true: int tensor `(batch_size, sequence_length)` of target ids (or `(..., 1)`);
            any number of leading axes works the same way. `keras.losses.Loss` converts
            it to float32 before `call`, so ids are exact up to `2**24`.
        y_pred: float tensor `(batch_size, sequence_length, vocabulary_size)`; its Keras
            mask, if any, is honoured.
        sample_weight: optional float tensor `(batch_size, sequence_length)` or
            `(batch_size,)`.

    Returns:
        float32 scalar, or `(batch_size, sequence_length)` for `reduction="none"`.

    Example:
    ```python
    loss = keras_seq.losses.SequenceCrossEntropy(label_smoothing=0.1, ignore_index=0)
    y_true = np.array([[5, 2, 0, 0], [1, 3, 4, 0]])  # 0 pads
    logits = np.random.randn(2, 4, 8).astype("float32")
    value = loss(y_true, logits)  # mean over the 5 real tokens

    model = keras.Sequential(
        [keras.layers.Embedding(8, 16, mask_zero=True), keras.layers.Dense(8)]
    )
    model.compile("adam", keras_seq.losses.SequenceCrossEntropy())  # Keras mask honoured
    model.fit(y_true, y_true, epochs=1, verbose=0)
    ```

    References:
        - [Szegedy et al., 2016](https://arxiv.org/abs/1512.00567), section 7.
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762), section 5.4.
    """

    def __init__(
        self,
        from_logits=True,
        label_smoothing=0.0,
        ignore_index=None,
        reduction="mean_with_sample_weight",
        name="sequence_cross_entropy",
    ):
        validate_bool("from_logits", from_logits)
        label_smoothing = validate_rate("label_smoothing", label_smoothing)
        if ignore_index is not None:
            ignore_index = validate_int("ignore_index", ignore_index)
        reduction = validate_choice("reduction", reduction, REDUCTIONS)
        # Always float32: the loss is computed in float32 even under mixed precision.
        super().__init__(name=name, reduction=reduction, dtype="float32")
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index

    def __call__(self, y_true, y_pred, sample_weight=None):
        sample_weight = per_token_sample_weight(sample_weight, y_pred)
        if self.reduction in MEAN_REDUCTIONS and num_replicas_in_sync() > 1:
            return self._global_mean(y_true, y_pred, sample_weight)
        # The base class merges the Keras masks of `y_pred` and of the losses (the
        # `ignore_index` mask) with `sample_weight` and reduces.
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def _global_mean(self, y_true, y_pred, sample_weight):
        """This replica's share of the global mean: `sum(w * loss)` here divided by the
        count summed over all replicas, not scaled by `1 / num_replicas` (the replicas'
        shares, and their gradients, add up to the mean over the global batch)."""
        keras_mask = get_keras_mask(y_pred)
        with keras.name_scope(self.name):
            y_true = ops.convert_to_tensor(y_true, self.dtype)  # as the base class
            losses = self.call(y_true, ops.convert_to_tensor(y_pred, self.dtype))  # (B, T)
            mask = get_keras_mask(losses)
            if keras_mask is not None:
                keras_mask = ops.cast(keras_mask, "bool")
                mask = keras_mask if mask is None else ops.logical_and(mask, keras_mask)
            mask = ops.ones_like(losses) if mask is None else ops.cast(mask, "float32")
            weights = mask if sample_weight is None else mask * sample_weight
            total = ops.sum(losses * weights)
            # As the base class: "mean_with_sample_weight" divides by the sum of the
            # weights, the other mean reductions by the number of unmasked tokens.
            count = ops.sum(weights if self.reduction == "mean_with_sample_weight" else mask)
            return ops.divide_no_nan(total, cross_replica_sum(count))

    def call(self, y_true, y_pred):
        losses, valid = token_cross_entropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            ignore_index=self.ignore_index,
        )
        if valid is not None:
            # Read back by `keras.losses.Loss.__call__`, as for Keras' `ignore_class`.
            set_keras_mask(losses, valid)
        return losses

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing,
                "ignore_index": self.ignore_index,
            }
        )
        return config
