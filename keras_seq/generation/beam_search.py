"""Beam search with finished hypotheses, length penalty and per-beam caches."""

import keras
from keras import ops

from keras_seq.utils.validation import validate_float
from keras_seq.utils.validation import validate_positive_int

# Letter legend: B batch, K beams, V vocabulary, N new tokens.

NEG_INF = -1e9  # Stands for log(0); finite, so -inf - -inf never makes a NaN.


def length_penalty_factor(length, length_penalty):
    """The divisor of a hypothesis' summed log-probability: `length ** length_penalty`."""
    return ops.power(ops.cast(length, "float32"), length_penalty)


def tile_beams(cache, num_beams):
    """Repeat each batch entry of every cache tensor `num_beams` times: (B, ...) -> (B*K, ...)."""
    return keras.tree.map_structure(lambda x: ops.repeat(x, num_beams, axis=0), cache)


def _gather_beams(cache, flat_indices):
    return keras.tree.map_structure(lambda x: ops.take(x, flat_indices, axis=0), cache)


def _top_k_with(scores, k, *tensors):
    """The `k` best `scores` (B, M) and the matching entries of each (B, M, ...) tensor."""
    top_scores, indices = ops.top_k(scores, k)  # (B, k)
    picked = []
    for t in tensors:
        index = indices
        for _ in range(len(t.shape) - 2):
            index = index[..., None]
        picked.append(ops.take_along_axis(t, index, 1))
    return top_scores, picked


def beam_search(
    call_with_cache,
    logits,
    cache,
    max_new_tokens,
    num_beams,
    prefix_length=0,
    length_penalty=0.0,
    stop_token_id=None,
    pad_token_id=0,
):
    """Beam search over `call_with_cache`, keeping finished hypotheses apart from live beams.

    keras_hub's `BeamSampler` is not used: it keeps extending beams that produced the stop
    token (their scores keep changing), has no length penalty, and re-runs a full-length
    token buffer. Here each step expands every live beam over the vocabulary, keeps the
    `2 * num_beams` best continuations, moves those ending in `stop_token_id` to a pool of
    finished hypotheses scored `sum log p / length ** length_penalty` (length counts the new
    tokens, the stop token included), and continues the `num_beams` best others, reordering the
    cache to follow them. The search ends early once no live beam can beat the worst of the
    `num_beams` finished ones; at the end, live beams compete with the finished pool. With
    one beam and no stop token it equals greedy decoding; with a stop token, one beam also
    keeps the best hypothesis that stopped (the second-best token of a step may be the stop
    token), so its score is never below greedy's and may be above it. With at least
    `vocabulary_size ** (max_new_tokens - 1)` beams it equals exhaustive search.

    Args:
        call_with_cache: callable `(token_ids (B*K,), cache, index) -> (logits, cache)`; see
            `keras_seq.generation.protocol`.
        logits: float `(B, V)`: scores of the first new token.
        cache: the model's cache after the prompt, batch first (tiled to the beams here).
        max_new_tokens: int. Maximum number of new tokens.
        num_beams: int. Beam width K.
        prefix_length: int. Output position of the first new token.
        length_penalty: finite float. Exponent of the length normalisation; `0.0` ranks by
            the sum of log-probabilities, `> 0` favours longer outputs.
        stop_token_id: optional int. Ends a hypothesis.
        pad_token_id: int. Filler after the stop token.

    Returns:
        `(token_ids, scores)`: the best hypothesis per sequence, int32 `(B, max_new_tokens)`,
        and its float32 `(B,)` score (length-penalised sum of log-probabilities).
    """
    # Checked here too, not only in `generate`: a NaN or infinite penalty would rank every
    # hypothesis by NaN (or 0) scores and return an arbitrary one.
    length_penalty = float(validate_float("length_penalty", length_penalty))
    num_beams = validate_positive_int("num_beams", num_beams)
    max_new_tokens = validate_positive_int("max_new_tokens", max_new_tokens)
    k = num_beams
    batch_size, vocabulary_size = ops.shape(logits)[0], logits.shape[-1]
    cache = tile_beams(cache, k)
    logits = ops.repeat(logits, k, axis=0)  # (B*K, V)
    batch_offsets = ops.arange(batch_size, dtype="int32")[:, None] * k  # (B, 1)

    # Only beam 0 is live at the start: the K copies are identical.
    alive_scores = ops.tile(
        ops.convert_to_tensor([[0.0] + [NEG_INF] * (k - 1)], "float32"), (batch_size, 1)
    )  # (B, K)
    alive_tokens = ops.full((batch_size, k, max_new_tokens), pad_token_id, dtype="int32")
    finished_scores = ops.full((batch_size, k), NEG_INF, dtype="float32")
    finished_tokens = ops.full((batch_size, k, max_new_tokens), pad_token_id, dtype="int32")

    def expand(step, logits, alive_scores, alive_tokens, finished_scores, finished_tokens):
        """One beam-search step from the live beams' next-token `logits` (B*K, V)."""
        log_probabilities = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        candidates = alive_scores[:, :, None] + ops.reshape(
            log_probabilities, (batch_size, k, vocabulary_size)
        )  # (B, K, V)
        candidate_scores, flat = ops.top_k(
            ops.reshape(candidates, (batch_size, k * vocabulary_size)), 2 * k
        )  # (B, 2K)
        beam = flat // vocabulary_size  # (B, 2K)
        token = ops.cast(flat % vocabulary_size, "int32")
        candidate_tokens = ops.take_along_axis(alive_tokens, beam[:, :, None], axis=1)
        candidate_tokens = ops.slice_update(
            candidate_tokens, (0, 0, step), token[:, :, None]
        )  # (B, 2K, N)
        if stop_token_id is None:
            stopped = ops.zeros_like(token, dtype="bool")
        else:
            # Continuations of dead beams (score ~NEG_INF) never enter the finished pool.
            stopped = ops.logical_and(
                ops.equal(token, stop_token_id), candidate_scores > NEG_INF / 2
            )
        # Finished pool: the old one plus candidates that just stopped.
        penalised = candidate_scores / length_penalty_factor(step + 1, length_penalty)
        finished_scores, (finished_tokens,) = _top_k_with(
            ops.concatenate([finished_scores, ops.where(stopped, penalised, NEG_INF)], 1),
            k,
            ops.concatenate([finished_tokens, candidate_tokens], 1),
        )
        # Live beams: the best K candidates that did not stop.
        alive_scores, (alive_tokens, beam, token) = _top_k_with(
            ops.where(stopped, NEG_INF, candidate_scores), k, candidate_tokens, beam, token
        )
        return alive_scores, alive_tokens, finished_scores, finished_tokens, beam, token

    def can_improve(step, alive_scores, finished_scores):
        """Whether some sequence's best live beam could still beat its worst finished one."""
        # Log-probabilities only fall, so the best reachable score is the best live sum
        # divided by the largest length factor among the lengths still reachable.
        longest = length_penalty_factor(max_new_tokens, length_penalty)
        shortest = length_penalty_factor(step + 1, length_penalty)
        bound = alive_scores[:, 0] / ops.maximum(longest, shortest)
        return ops.any(bound > finished_scores[:, -1])

    step = ops.convert_to_tensor(0, "int32")
    alive_scores, alive_tokens, finished_scores, finished_tokens, beam, token = expand(
        step, logits, alive_scores, alive_tokens, finished_scores, finished_tokens
    )
    cache = _gather_beams(cache, ops.reshape(batch_offsets + beam, (-1,)))

    def cond(step, token, cache, alive_scores, alive_tokens, finished_scores, finished_tokens):
        return can_improve(step, alive_scores, finished_scores)

    def body(step, token, cache, alive_scores, alive_tokens, finished_scores, finished_tokens):
        logits, cache = call_with_cache(ops.reshape(token, (-1,)), cache, prefix_length + step - 1)
        alive_scores, alive_tokens, finished_scores, finished_tokens, beam, token = expand(
            step, logits, alive_scores, alive_tokens, finished_scores, finished_tokens
        )
        cache = _gather_beams(cache, ops.reshape(batch_offsets + beam, (-1,)))
        return (
            step + 1,
            token,
            cache,
            alive_scores,
            alive_tokens,
            finished_scores,
            finished_tokens,
        )

    if max_new_tokens > 1:
        step, _, _, alive_scores, alive_tokens, finished_scores, finished_tokens = ops.while_loop(
            cond,
            body,
            (
                step + 1,
                token,
                cache,
                alive_scores,
                alive_tokens,
                finished_scores,
                finished_tokens,
            ),
            maximum_iterations=max_new_tokens - 1,
        )
    else:
        step = step + 1
    # Live beams compete with the finished ones at the length they reached.
    alive_final = alive_scores / length_penalty_factor(step, length_penalty)
    best_scores, (best_tokens,) = _top_k_with(
        ops.concatenate([finished_scores, alive_final], 1),
        1,
        ops.concatenate([finished_tokens, alive_tokens], 1),
    )
    return best_tokens[:, 0], best_scores[:, 0]
