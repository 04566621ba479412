"""Token masking for masked-language-model pretraining (BERT's 15% / 80-10-10 recipe).

Letter legend for shape comments: B batch, T sequence length, P `max_predictions`.

Runs TensorFlow ops (it also serves `tf.data` pipelines), whatever the Keras backend;
TensorFlow is imported on first use, so that `import keras_seq` works without it.
"""

import math

from keras_seq.utils.validation import is_integer
from keras_seq.utils.validation import validate_fraction
from keras_seq.utils.validation import validate_int
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_seed

# One fixed random algorithm: the same draws eagerly, in tf.data, under XLA and on any device.
ALGORITHM = "philox"


def _validate_arguments(
    vocabulary_size,
    mask_token_id,
    mask_rate,
    mask_token_rate,
    random_token_rate,
    max_predictions,
    unselectable_token_ids,
    seed,
):
    import tensorflow as tf

    validate_positive_int("vocabulary_size", vocabulary_size)
    validate_int("mask_token_id", mask_token_id)
    if not 0 <= mask_token_id < vocabulary_size:
        raise ValueError(
            "`mask_token_id` must be an int in [0, vocabulary_size). Received: "
            f"mask_token_id={mask_token_id!r}, vocabulary_size={vocabulary_size}"
        )
    validate_fraction("mask_rate", mask_rate, include_zero=False)
    validate_fraction("mask_token_rate", mask_token_rate)
    validate_fraction("random_token_rate", random_token_rate)
    if mask_token_rate + random_token_rate > 1.0 + 1e-9:
        raise ValueError(
            "`mask_token_rate + random_token_rate` must be at most 1 (the rest keeps the "
            f"original token). Received: mask_token_rate={mask_token_rate}, "
            f"random_token_rate={random_token_rate}"
        )
    if max_predictions is not None:
        validate_positive_int("max_predictions", max_predictions)
    if isinstance(unselectable_token_ids, (str, bytes)) or not all(
        is_integer(i) for i in unselectable_token_ids
    ):
        raise TypeError(
            "`unselectable_token_ids` must be a sequence of ints, e.g. (0,) for padding. "
            f"Received: unselectable_token_ids={unselectable_token_ids!r}"
        )
    if seed is None or is_integer(seed):
        validate_seed("seed", seed)
        return
    expected = (
        "None, a non-negative integer or a pair of integers (a stateless seed, e.g. "
        "(seed, step) or a shape-(2,) int tensor)"
    )
    pair = None
    if tf.is_tensor(seed) or isinstance(seed, (tuple, list)):
        try:
            pair = tf.convert_to_tensor(seed)
        except (TypeError, ValueError):  # ragged or mixed entries
            pass
    if pair is None or not pair.dtype.is_integer:
        raise TypeError(
            f"`seed` must be {expected}. Received: seed={seed!r} of type {type(seed).__name__}"
        )
    if tuple(pair.shape) != (2,):
        raise ValueError(f"`seed` must be {expected}. Received: seed={seed!r}")


def _stateless_seed(seed):
    """A shape-(2,) int64 stateless seed: drawn at random when `seed` is None."""
    import tensorflow as tf

    if seed is None:
        return tf.random.uniform((2,), maxval=2**31 - 1, dtype="int64")
    if is_integer(seed):
        return tf.constant([seed, 0], "int64")
    return tf.cast(seed, "int64")


def mask_tokens(
    token_ids,
    *,
    vocabulary_size,
    mask_token_id,
    mask_rate=0.15,
    mask_token_rate=0.8,
    random_token_rate=0.1,
    max_predictions=None,
    padding_mask=None,
    unselectable_token_ids=(0,),
    seed=None,
):
    """Choose tokens to predict and corrupt them, BERT style, with static output shapes.

    In each sequence, `round(mask_rate * n)` of its `n` selectable tokens (at least one
    when `n > 0`, at most `max_predictions`) are chosen uniformly at random, as in BERT's
    `create_pretraining_data.py`. A chosen token becomes `mask_token_id` with probability
    `mask_token_rate`, a uniformly random id in `[0, vocabulary_size)` with probability
    `random_token_rate`, and stays unchanged otherwise (80 / 10 / 10 by default). Padding
    (`padding_mask` False) and the ids in `unselectable_token_ids` are never chosen.

    The predictions are padded to exactly `max_predictions`, with weight 0, so every output
    has a static shape and a training step on them compiles with XLA. That is why this is
    not a wrapper of `keras_hub.layers.MaskedLMMaskGenerator`: that one returns ragged
    tensors by default (dense only with `mask_selection_length`), needs tensorflow-text,
    and takes no seed (its draws cannot be reproduced); this function is plain TensorFlow,
    works eagerly, inside `tf.function` and inside `tf.data.Dataset.map`, and is
    deterministic given a seed.

    Args:
        token_ids: int tensor or array, `(batch_size, sequence_length)` or one sequence
            `(sequence_length,)`.
        vocabulary_size: int. Random replacements are drawn from `[0, vocabulary_size)`.
        mask_token_id: int. Id of the `[MASK]` token.
        mask_rate: float in (0, 1]. Fraction of the selectable tokens to predict.
            Defaults to `0.15`.
        mask_token_rate: float in [0, 1]. Probability that a chosen token becomes
            `mask_token_id`. Defaults to `0.8`.
        random_token_rate: float in [0, 1]. Probability that a chosen token becomes a
            random id; `mask_token_rate + random_token_rate <= 1`. Defaults to `0.1`.
        max_predictions: int or `None`. Number P of prediction slots per sequence (BERT
            uses 20 for 128 tokens, 80 for 512). `None` uses
            `ceil(mask_rate * sequence_length)`, which needs a static sequence length and
            never drops a choice. Defaults to `None`.
        padding_mask: optional bool or int, shaped like `token_ids`; `True` / `1` marks real
            tokens. Defaults to `None` (every position is real).
        unselectable_token_ids: sequence of ints. Ids never chosen (padding, `[CLS]`,
            `[SEP]`, ...). Defaults to `(0,)`.
        seed: `None`, an int >= 0, or a pair of ints (or a shape-`(2,)` int tensor). With a
            seed the result depends only on the seed and the inputs; the same int seed
            gives every call the same draws, so in a `Dataset.map` either leave it `None`
            (fresh draws per element, reproducible under `tf.random.set_seed`) or vary a
            pair per element, e.g. `dataset.enumerate().map(lambda i, x: mask_tokens(x,
            ..., seed=tf.stack([tf.cast(7, "int64"), i])))`. Defaults to `None`.

    Returns:
        Dict of tensors (without the batch axis for a single sequence):
        `"token_ids"`, the corrupted ids, shaped and typed like `token_ids`;
        `"mask_positions"`, int32 `(batch_size, max_predictions)`, the chosen positions
        in increasing order, then zeros; `"mask_ids"`, `(batch_size, max_predictions)`,
        the original ids there (0 for padding entries); `"mask_weights"`, float32
        `(batch_size, max_predictions)`, 1 for a prediction and 0 for a padding entry.

    Example:
    ```python
    token_ids = np.array([[2, 17, 23, 5, 41, 3, 0, 0], [2, 8, 9, 10, 11, 12, 13, 3]])
    batch = keras_seq.data.mask_tokens(
        token_ids, vocabulary_size=50, mask_token_id=4, mask_rate=0.3,
        max_predictions=3, unselectable_token_ids=(0, 2, 3), seed=7,
    )
    assert batch["mask_positions"].shape == (2, 3)
    assert batch["mask_weights"].numpy().sum() == 1 + 2  # round(0.3 * 4), round(0.3 * 6)
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """
    import tensorflow as tf

    _validate_arguments(
        vocabulary_size,
        mask_token_id,
        mask_rate,
        mask_token_rate,
        random_token_rate,
        max_predictions,
        unselectable_token_ids,
        seed,
    )
    token_ids = tf.convert_to_tensor(token_ids)
    if not token_ids.dtype.is_integer:
        raise TypeError(
            f"`token_ids` must be an integer tensor. Received: token_ids.dtype={token_ids.dtype}"
        )
    rank = token_ids.shape.rank
    if rank not in (1, 2):
        raise ValueError(
            "`token_ids` must have shape (batch_size, sequence_length) or (sequence_length,). "
            f"Received: token_ids.shape={token_ids.shape}"
        )
    if padding_mask is not None:
        padding_mask = tf.convert_to_tensor(padding_mask)
        if not padding_mask.shape.is_compatible_with(token_ids.shape):
            raise ValueError(
                "`padding_mask` must have the shape of `token_ids`. Received: "
                f"padding_mask.shape={padding_mask.shape}, token_ids.shape={token_ids.shape}"
            )
    unbatched = rank == 1
    if unbatched:
        token_ids = token_ids[None]  # (1, T)
        padding_mask = None if padding_mask is None else padding_mask[None]
    length = token_ids.shape[1]
    if max_predictions is None:
        if length is None:
            raise ValueError(
                "`max_predictions` is required when the sequence length is not static "
                "(e.g. in a Dataset.map over variable-length batches). Received: "
                f"max_predictions=None, token_ids.shape={token_ids.shape}"
            )
        max_predictions = max(1, math.ceil(round(mask_rate * length, 6)))
    num_slots = max_predictions

    selectable = tf.ones_like(token_ids, "bool")  # (B, T)
    for token_id in unselectable_token_ids:
        selectable &= tf.not_equal(token_ids, tf.cast(token_id, token_ids.dtype))
    if padding_mask is not None:
        selectable &= tf.cast(padding_mask, "bool")

    seeds = tf.random.experimental.stateless_split(_stateless_seed(seed), num=3, alg=ALGORITHM)
    shape = tf.shape(token_ids)
    batch_size, dynamic_length = shape[0], shape[1]
    # A random score per position, -1 where not selectable; `num_slots` columns of -2 keep
    # top_k valid for sequences shorter than `num_slots`.
    scores = tf.random.stateless_uniform(shape, seeds[0], alg=ALGORITHM)
    scores = tf.where(selectable, scores, -1.0)
    scores = tf.concat([scores, tf.fill([batch_size, num_slots], -2.0)], axis=1)  # (B, T + P)
    _, chosen = tf.math.top_k(scores, k=num_slots)  # (B, P), highest scores first

    num_selectable = tf.reduce_sum(tf.cast(selectable, "float32"), axis=1)  # (B,)
    count = tf.round(mask_rate * num_selectable)
    count = tf.maximum(count, tf.minimum(num_selectable, 1.0))
    count = tf.minimum(tf.cast(count, "int32"), num_slots)  # (B,)
    valid = tf.range(num_slots)[None, :] < count[:, None]  # (B, P)
    # The `count` chosen positions, increasing, first; the padding entries after them.
    positions = tf.sort(tf.where(valid, chosen, tf.int32.max), axis=1)
    positions = tf.where(valid, positions, 0)  # (B, P)
    mask_ids = tf.where(valid, tf.gather(token_ids, positions, batch_dims=1), 0)  # (B, P)

    draw = tf.random.stateless_uniform([batch_size, num_slots], seeds[1], alg=ALGORITHM)  # (B, P)
    random_ids = tf.random.stateless_uniform(
        [batch_size, num_slots],
        seeds[2],
        minval=0,
        maxval=vocabulary_size,
        dtype="int32",
        alg=ALGORITHM,
    )
    replacements = tf.where(
        draw < mask_token_rate,
        tf.cast(mask_token_id, token_ids.dtype),
        tf.where(
            draw < mask_token_rate + random_token_rate,
            tf.cast(random_ids, token_ids.dtype),
            mask_ids,
        ),
    )  # (B, P)
    # Scatter into a copy with one extra column, the target of the padding entries.
    extended = tf.concat([token_ids, tf.zeros([batch_size, 1], token_ids.dtype)], axis=1)
    rows = tf.broadcast_to(tf.range(batch_size)[:, None], [batch_size, num_slots])
    columns = tf.where(valid, positions, dynamic_length)
    masked = tf.tensor_scatter_nd_update(
        extended, tf.stack([rows, columns], axis=-1), replacements
    )[:, :-1]  # (B, T)
    masked = tf.ensure_shape(masked, token_ids.shape)

    static_shape = (token_ids.shape[0], num_slots)
    outputs = {
        "token_ids": masked,
        "mask_positions": tf.ensure_shape(positions, static_shape),
        "mask_ids": tf.ensure_shape(mask_ids, static_shape),
        "mask_weights": tf.ensure_shape(tf.cast(valid, "float32"), static_shape),
    }
    if unbatched:
        outputs = {key: value[0] for key, value in outputs.items()}
    return outputs
