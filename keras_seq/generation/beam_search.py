"""Beam search with finished hypotheses, length penalty and per-beam caches."""

import keras
from keras import ops

from keras_seq.generation.logits_processing import is_one_of
from keras_seq.generation.logits_processing import process_with_history
from keras_seq.generation.logits_processing import stop_ids
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
    early_stopping="exact",
    stop_token_ids=(),
    logits_processor=None,
    prefix=None,
    prefix_mask=None,
    num_return_sequences=1,
):
    """Beam search over `call_with_cache`, keeping finished hypotheses apart from live beams.

    keras_hub's `BeamSampler` is not used: it keeps extending beams that produced the stop
    token (their scores keep changing), has no length penalty, and re-runs a full-length
    token buffer. Here each step expands every live beam over the vocabulary, keeps the
    `2 * num_beams` best continuations, moves those ending in `stop_token_id` to a pool of
    finished hypotheses scored `sum log p / length ** length_penalty` (length counts the new
    tokens, the stop token included), and continues the `num_beams` best others, reordering the
    cache to follow them. The search ends early once no live beam can beat the worst of the
    `num_beams` finished ones; at the end, live beams compete with the finished pool.

    `early_stopping` chooses when a sequence's search ends (a sequence that ended takes no
    new hypothesis; the loop ends when every sequence has):
    - `"exact"`: once no live beam can beat the worst of `num_beams` finished hypotheses at
      any length it can still reach (the bound divides its score by the most favourable
      length factor). Every stopped candidate among the `2 * num_beams` may finish. With one
      beam and no stop token it equals greedy decoding; with a stop token, one beam also
      keeps the best hypothesis that stopped (the second-best token of a step may be the
      stop token), so its score is never below greedy's and may be above it. With at least
      `vocabulary_size ** (max_new_tokens - 1)` beams it equals exhaustive search. With a
      positive `length_penalty` the bound is loose, so the search usually runs to
      `max_new_tokens`.
    - `False`: Hugging Face's default heuristic (`early_stopping=False`): `num_beams`
      hypotheses have finished and the best live beam, scored at its current length, does
      not beat the worst of them. As in Hugging Face, only candidates ranked among the
      first `num_beams` may finish. Equals `transformers`' beam search.
    - `True`: Hugging Face's `early_stopping=True`: as `False`, and a sequence also ends as
      soon as `num_beams` hypotheses have finished.

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
        early_stopping: `"exact"`, `False` or `True` (see above). Defaults to `"exact"`.
        stop_token_ids: ints. More stop tokens (any of them ends a hypothesis).
        logits_processor: optional `(log_probabilities, history, history_mask, step) ->
            scores` (see `keras_seq.generation.logits_processing`), applied to each step's
            log-probabilities before the beams are ranked (as Hugging Face's beam search
            does); the beam scores are sums of the processed values.
        prefix: optional int `(B, P)`: the prompt, the start of each beam's history.
        prefix_mask: optional bool `(B, P)`: the prompt's real positions (default: all).
        num_return_sequences: int in `[1, num_beams]`. How many hypotheses to return per
            sequence, best first. Defaults to `1`.

    Returns:
        `(token_ids, scores, token_scores)` for the `R = num_return_sequences` best
        hypotheses of each sequence, best first (rows `b * R` to `b * R + R - 1` belong to
        sequence `b`): int32 `(B * R, max_new_tokens)`; their float32 `(B * R,)` scores
        (length-penalised sums); and float32 `(B * R, max_new_tokens)`, the (processed)
        log-probability of each new token, `0.0` after the stop token, whose row sums are
        the scores before the length penalty.
    """
    # Checked here too, not only in `generate`: a NaN or infinite penalty would rank every
    # hypothesis by NaN (or 0) scores and return an arbitrary one.
    length_penalty = float(validate_float("length_penalty", length_penalty))
    num_beams = validate_positive_int("num_beams", num_beams)
    max_new_tokens = validate_positive_int("max_new_tokens", max_new_tokens)
    num_return_sequences = validate_positive_int("num_return_sequences", num_return_sequences)
    if num_return_sequences > num_beams:
        raise ValueError(
            "`num_return_sequences` cannot exceed `num_beams`: beam search keeps `num_beams` "
            f"hypotheses. Received: num_return_sequences={num_return_sequences}, "
            f"num_beams={num_beams}"
        )
    k = num_beams
    batch_size, vocabulary_size = ops.shape(logits)[0], logits.shape[-1]
    stops = stop_ids(stop_token_id, stop_token_ids)
    if prefix is None:
        prefix = ops.zeros((batch_size, 0), "int32")
    if prefix_mask is None:
        prefix_mask = ops.ones(ops.shape(prefix), "bool")
    beam_prefix = ops.repeat(ops.cast(prefix, "int32"), k, axis=0)  # (B*K, P)
    beam_prefix_mask = ops.repeat(ops.cast(prefix_mask, "bool"), k, axis=0)
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
    # The log-probability of each token of each hypothesis, kept beside its tokens.
    alive_token_scores = ops.zeros((batch_size, k, max_new_tokens), "float32")
    finished_token_scores = ops.zeros((batch_size, k, max_new_tokens), "float32")
    # Hugging Face lets only the candidates ranked among the first K finish.
    may_finish = ops.arange(2 * k) < (2 * k if early_stopping == "exact" else k)  # (2K,)

    def expand(step, logits, alive, finished, done):
        """One beam-search step from the live beams' next-token `logits` (B*K, V). `alive`
        and `finished` are `(scores (B, K), tokens (B, K, N), token_scores (B, K, N))`."""
        alive_scores, alive_tokens, alive_token_scores = alive
        finished_scores, finished_tokens, finished_token_scores = finished
        log_probabilities = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        log_probabilities = process_with_history(
            logits_processor,
            log_probabilities,
            beam_prefix,
            beam_prefix_mask,
            ops.reshape(alive_tokens, (-1, max_new_tokens)),  # (B*K, N)
            step,
        )
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
        token_score = ops.take_along_axis(
            ops.reshape(log_probabilities, (batch_size, k * vocabulary_size)), flat, axis=1
        )  # (B, 2K)
        candidate_token_scores = ops.take_along_axis(alive_token_scores, beam[:, :, None], 1)
        candidate_token_scores = ops.slice_update(
            candidate_token_scores, (0, 0, step), token_score[:, :, None]
        )  # (B, 2K, N)
        if not stops:
            stopped = ops.zeros_like(token, dtype="bool")
        else:
            # Continuations of dead beams (score ~NEG_INF) never enter the finished pool.
            stopped = ops.logical_and(is_one_of(token, stops), candidate_scores > NEG_INF / 2)
        # Finished pool: the old one plus candidates that just stopped (none once the
        # sequence's search has ended).
        penalised = candidate_scores / length_penalty_factor(step + 1, length_penalty)
        enters = ops.logical_and(
            ops.logical_and(stopped, may_finish[None, :]), ops.logical_not(done)[:, None]
        )
        finished_scores, (finished_tokens, finished_token_scores) = _top_k_with(
            ops.concatenate([finished_scores, ops.where(enters, penalised, NEG_INF)], 1),
            k,
            ops.concatenate([finished_tokens, candidate_tokens], 1),
            ops.concatenate([finished_token_scores, candidate_token_scores], 1),
        )
        # Live beams: the best K candidates that did not stop.
        alive_scores, (alive_tokens, alive_token_scores, beam, token) = _top_k_with(
            ops.where(stopped, NEG_INF, candidate_scores),
            k,
            candidate_tokens,
            candidate_token_scores,
            beam,
            token,
        )
        alive = (alive_scores, alive_tokens, alive_token_scores)
        finished = (finished_scores, finished_tokens, finished_token_scores)
        return alive, finished, beam, token

    def still_open(step, alive_scores, finished_scores, done):
        """(B,) bool: whether each sequence's search goes on once its live beams hold `step`
        new tokens (`done` marks the sequences whose search already ended)."""
        if early_stopping == "exact":
            # Log-probabilities only fall, so the best reachable score is the best live sum
            # divided by the largest length factor among the lengths still reachable.
            longest = length_penalty_factor(max_new_tokens, length_penalty)
            shortest = length_penalty_factor(step + 1, length_penalty)
            bound = alive_scores[:, 0] / ops.maximum(longest, shortest)
        else:
            # Hugging Face's heuristic: the best live beam scored at its current length.
            bound = alive_scores[:, 0] / length_penalty_factor(step, length_penalty)
        # The worst of K finished is NEG_INF until K have finished.
        open_ = bound > finished_scores[:, -1]
        if early_stopping is True:
            open_ = ops.logical_and(open_, finished_scores[:, -1] <= NEG_INF / 2)
        return ops.logical_and(open_, ops.logical_not(done))

    step = ops.convert_to_tensor(0, "int32")
    done = ops.zeros((batch_size,), "bool")
    alive = (alive_scores, alive_tokens, alive_token_scores)
    finished = (finished_scores, finished_tokens, finished_token_scores)
    alive, finished, beam, token = expand(step, logits, alive, finished, done)
    cache = _gather_beams(cache, ops.reshape(batch_offsets + beam, (-1,)))
    step = step + 1
    done = ops.logical_not(still_open(step, alive[0], finished[0], done))

    def cond(*state):
        return ops.logical_not(ops.all(state[-1]))  # state[-1]: done

    def body(step, token, cache, alive, finished, done):
        logits, cache = call_with_cache(ops.reshape(token, (-1,)), cache, prefix_length + step - 1)
        alive, finished, beam, token = expand(step, logits, alive, finished, done)
        cache = _gather_beams(cache, ops.reshape(batch_offsets + beam, (-1,)))
        done = ops.logical_not(still_open(step + 1, alive[0], finished[0], done))
        return step + 1, token, cache, alive, finished, done

    if max_new_tokens > 1:
        step, _, _, alive, finished, done = ops.while_loop(
            cond,
            body,
            (step, token, cache, alive, finished, done),
            maximum_iterations=max_new_tokens - 1,
        )
    alive_scores, alive_tokens, alive_token_scores = alive
    finished_scores, finished_tokens, finished_token_scores = finished
    # Live beams of the sequences whose search did not end compete with the finished ones
    # at the length they reached.
    alive_final = ops.where(
        done[:, None], NEG_INF, alive_scores / length_penalty_factor(step, length_penalty)
    )
    r = num_return_sequences
    best_scores, (best_tokens, best_token_scores) = _top_k_with(
        ops.concatenate([finished_scores, alive_final], 1),
        r,
        ops.concatenate([finished_tokens, alive_tokens], 1),
        ops.concatenate([finished_token_scores, alive_token_scores], 1),
    )  # (B, R), (B, R, N), (B, R, N)
    return (
        ops.reshape(best_tokens, (-1, max_new_tokens)),
        ops.reshape(best_scores, (-1,)),
        ops.reshape(best_token_scores, (-1, max_new_tokens)),
    )
