"""Hugging Face's logit processors for `generate`: repetition penalty, no-repeat n-grams,
minimum new tokens.

Written in `keras.ops` inside the compiled decoding loop (keras-hub's samplers have no
processors, and Hugging Face's are PyTorch). Each step sees the history of the row: its
prompt (the model's prefix, padding excluded) and the tokens generated so far, as an int
`(batch, length)` buffer with a bool mask of the positions that hold real tokens.
"""

from keras import ops

from keras_seq.utils.validation import validate_non_negative_int

NEG_INF = -1e9  # As the beam search's: finite, so that no NaN arises from -inf - -inf.


def make_logits_processor(
    repetition_penalty=None, no_repeat_ngram_size=None, min_new_tokens=None, stop_token_ids=()
):
    """A function `(logits (B, V), history (B, T), history_mask (B, T), step) -> logits`
    applying the given rules in Hugging Face's order, or `None` when none is set.

    - `repetition_penalty` (float > 0, the CTRL rule of Keskar et al. 2019 as Hugging Face
      applies it): the score of every token already in the history is divided by the
      penalty when positive and multiplied by it when negative.
    - `no_repeat_ngram_size` (int n > 0): a token that would complete an n-gram already in
      the history gets -inf (`NEG_INF`).
    - `min_new_tokens` (int): before `step` (the number of new tokens so far) reaches it,
      the stop tokens get -inf.
    """
    if not repetition_penalty and not no_repeat_ngram_size and not min_new_tokens:
        return None
    if repetition_penalty == 1.0 and not no_repeat_ngram_size and not min_new_tokens:
        return None

    def process(logits, history, history_mask, step):
        logits = ops.cast(logits, "float32")
        batch_size, vocabulary_size = ops.shape(logits)[0], logits.shape[-1]
        if repetition_penalty is not None and repetition_penalty != 1.0:
            seen = _token_set(history, history_mask, batch_size, vocabulary_size)
            penalised = ops.where(
                logits < 0, logits * repetition_penalty, logits / repetition_penalty
            )
            logits = ops.where(seen, penalised, logits)
        if no_repeat_ngram_size:
            banned = _banned_ngram_tokens(
                history, history_mask, no_repeat_ngram_size, batch_size, vocabulary_size
            )
            logits = ops.where(banned, NEG_INF, logits)
        if min_new_tokens and stop_token_ids:
            is_stop = is_one_of(ops.arange(vocabulary_size, dtype="int32"), stop_token_ids)
            early = ops.less(ops.cast(step, "int32"), min_new_tokens)
            logits = ops.where(ops.logical_and(early, is_stop)[None, :], NEG_INF, logits)
        return logits

    return process


def stop_ids(stop_token_id=None, stop_token_ids=()):
    """The stop tokens of a decoding call as a tuple: `stop_token_ids`, then `stop_token_id`
    when it is set."""
    return tuple(stop_token_ids or ()) + (() if stop_token_id is None else (stop_token_id,))


def checked_stop_ids(stop_token_id=None, stop_token_ids=None):
    """The stop tokens of `stop_token_id` (an int) and `stop_token_ids` (a list of ints), each
    checked (a non-negative int), without repeats, as a tuple."""
    stops = []
    if stop_token_id is not None:
        stops.append(validate_non_negative_int("stop_token_id", stop_token_id))
    if stop_token_ids is not None:
        if not isinstance(stop_token_ids, (list, tuple)):
            raise TypeError(
                "`stop_token_ids` must be a list of ints. Received: "
                f"stop_token_ids={stop_token_ids!r}"
            )
        for value in stop_token_ids:
            stops.append(validate_non_negative_int("stop_token_ids", value))
    return tuple(dict.fromkeys(stops))


def is_one_of(token_ids, ids):
    """bool, the shape of `token_ids`: whether each id is one of `ids` (a non-empty tuple)."""
    return ops.any(
        ops.equal(token_ids[..., None], ops.convert_to_tensor(list(ids), "int32")), axis=-1
    )


def process_with_history(logits_processor, scores, prefix, prefix_mask, tokens, step):
    """`logits_processor(scores, history, history_mask, step)` where the history is the
    prompt `prefix` (its real positions in `prefix_mask`) followed by the first `step` of the
    new `tokens` buffer `(B, max_new_tokens)`; `scores` unchanged without a processor."""
    if logits_processor is None:
        return scores
    chosen = ops.arange(ops.shape(tokens)[1], dtype="int32") < step  # (N,)
    history = ops.concatenate([ops.cast(prefix, "int32"), tokens], axis=1)
    history_mask = ops.concatenate(
        [ops.cast(prefix_mask, "bool"), ops.broadcast_to(chosen, ops.shape(tokens))], axis=1
    )
    return logits_processor(scores, history, history_mask, step)


def _token_set(tokens, mask, batch_size, vocabulary_size):
    """bool `(B, V)`: which ids occur in each row of `tokens` where `mask` is set."""
    length = ops.shape(tokens)[1]
    rows = ops.broadcast_to(ops.arange(batch_size, dtype="int32")[:, None], (batch_size, length))
    columns = ops.clip(ops.cast(tokens, "int32"), 0, vocabulary_size - 1)
    indices = ops.reshape(ops.stack([rows, columns], axis=-1), (-1, 2))
    counts = ops.scatter(
        indices, ops.reshape(ops.cast(mask, "float32"), (-1,)), (batch_size, vocabulary_size)
    )
    return counts > 0


def _banned_ngram_tokens(history, mask, n, batch_size, vocabulary_size):
    """bool `(B, V)`: the tokens that would repeat an n-gram of the history. The history's
    real tokens are one contiguous run ending at its last real position."""
    length = history.shape[1]
    if length is None or length < n:
        return ops.zeros((batch_size, vocabulary_size), "bool")
    mask = ops.cast(mask, "bool")
    positions = ops.arange(length, dtype="int32")
    # The last real position of each row, and the n - 1 tokens ending there.
    last = ops.max(ops.where(mask, positions[None, :], -1), axis=1)  # (B,)
    tail_index = ops.maximum(
        last[:, None] - (n - 2) + ops.arange(n - 1, dtype="int32")[None], 0
    )  # (B, n - 1)
    tail = ops.take_along_axis(history, tail_index, axis=1)  # (B, n - 1)
    tail_real = ops.all(ops.take_along_axis(mask, tail_index, axis=1), axis=1)  # (B,)
    # Every window of n positions: its first n - 1 tokens against the tail.
    starts = ops.arange(length - n + 1, dtype="int32")  # (J,)
    window_index = starts[:, None] + ops.arange(n, dtype="int32")[None, :]  # (J, n)
    windows = ops.take(history, ops.reshape(window_index, (-1,)), axis=1)
    windows = ops.reshape(windows, (batch_size, length - n + 1, n))  # (B, J, n)
    window_mask = ops.reshape(
        ops.take(mask, ops.reshape(window_index, (-1,)), axis=1), (batch_size, -1, n)
    )
    match = ops.logical_and(
        ops.all(ops.equal(windows[:, :, : n - 1], tail[:, None, :]), axis=-1),
        ops.all(window_mask, axis=-1),
    )  # (B, J)
    # The window must end before the next token's position.
    match = ops.logical_and(match, (starts[None, :] + n - 1) <= last[:, None])
    match = ops.logical_and(match, tail_real[:, None])
    return _token_set(windows[:, :, n - 1], match, batch_size, vocabulary_size)
