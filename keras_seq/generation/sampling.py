"""Token-by-token decoding that picks each token with a keras_hub sampler."""

from keras import ops

from keras_seq.generation.compiling import seeded_while_loop
from keras_seq.generation.logits_processing import is_one_of
from keras_seq.generation.logits_processing import process_with_history
from keras_seq.generation.logits_processing import stop_ids

# Letter legend: B batch, N new tokens, V vocabulary.


def _log_probabilities(logits):
    return ops.log_softmax(ops.cast(logits, "float32"), axis=-1)  # (B, V)


def sample_search(
    call_with_cache,
    logits,
    cache,
    sampler,
    max_new_tokens,
    prefix_length=0,
    stop_token_id=None,
    pad_token_id=0,
    stop_token_ids=(),
    logits_processor=None,
    prefix=None,
    prefix_mask=None,
    stop_matcher=None,
):
    """Decode `max_new_tokens` tokens, one per step, choosing each with `sampler`.

    Greedy decoding and temperature / top-k / top-p sampling. The token choice is keras_hub's
    (`sampler.compute_probabilities` then `sampler.get_next_token`, for any
    `keras_hub.samplers.Sampler`); the loop is ours, because keras_hub's `Sampler.__call__`
    re-reads a token buffer padded to the full length and cannot carry a recurrent state that
    is not a key/value cache, stop per sequence while keeping scores, or start from logits
    the model already computed for the prompt.

    Args:
        call_with_cache: callable `(token_ids (B,), cache, index) -> (logits (B, V), cache)`;
            see `keras_seq.generation.protocol`.
        logits: float `(B, V)`: the scores of the first new token.
        cache: the model's cache after the prompt (nested tensors, batch first).
        sampler: a `keras_hub.samplers.Sampler` (created outside any `tf.function`: its seed
            generator is a variable).
        max_new_tokens: int. Number of tokens to generate.
        prefix_length: int. Output position of the first new token.
        stop_token_id: optional int. A sequence that produced it is finished: its later
            positions hold `pad_token_id`, and the loop ends once every sequence is finished.
        pad_token_id: int. Filler after the stop token. Defaults to `0`.
        stop_token_ids: ints. More stop tokens (any of them ends a sequence).
        logits_processor: optional `(logits, history, history_mask, step) -> logits` (see
            `keras_seq.generation.logits_processing`), applied to each step's logits
            before the sampler; the scores stay the model's log-probabilities.
        prefix: optional int `(B, P)`: the prompt, the start of each row's history.
        prefix_mask: optional bool `(B, P)`: the prompt's real positions (default: all).
        stop_matcher: optional `keras_seq.generation.stop_strings.StopStringMatcher`: a
            sequence also ends once a stop string ends within its newest token.

    Returns:
        `(token_ids, scores, token_scores)`: int32 `(B, max_new_tokens)`; float32 `(B,)`,
        the sum of the model's log-probabilities (temperature 1) of the generated tokens,
        the stop token included; and float32 `(B, max_new_tokens)`, each new token's
        log-probability (`0.0` after the stop token), whose row sums are `scores`.
    """
    start, step = sampling_loop(
        call_with_cache,
        sampler,
        max_new_tokens,
        prefix_length=prefix_length,
        stop_token_id=stop_token_id,
        pad_token_id=pad_token_id,
        stop_token_ids=stop_token_ids,
        logits_processor=logits_processor,
        prefix=prefix,
        prefix_mask=prefix_mask,
        stop_matcher=stop_matcher,
    )
    state = start(logits, cache)
    if max_new_tokens > 1:
        state = seeded_while_loop(
            lambda *state: ops.logical_not(ops.all(state[4])),  # state[4]: finished
            step,
            state,
            [sampler],
            maximum_iterations=max_new_tokens - 1,
        )
    _, tokens, _, token_scores, _, _ = state
    return tokens, ops.sum(token_scores, axis=1), token_scores


def sampling_loop(
    call_with_cache,
    sampler,
    max_new_tokens,
    prefix_length=0,
    stop_token_id=None,
    pad_token_id=0,
    stop_token_ids=(),
    logits_processor=None,
    prefix=None,
    prefix_mask=None,
    stop_matcher=None,
):
    """The two halves of `sample_search` (same arguments): `start(logits, cache) -> state`
    chooses the first new token from the prompt's logits, `step(*state) -> state` feeds the
    last token through the model and chooses the next. `state` is `(step, tokens, token,
    token_scores, finished, cache)`: the number of tokens chosen, the `(B, max_new_tokens)`
    buffer, the last token `(B,)`, the `(B, max_new_tokens)` log-probabilities of the chosen
    tokens, the finished rows and the model's cache. `sample_search` runs `step` in a
    `while_loop`; `stream_generate` calls the same `step`, compiled alone, once per token."""
    stops = stop_ids(stop_token_id, stop_token_ids)

    def choose(logits, finished, tokens, step, prefix, prefix_mask):
        processed = process_with_history(
            logits_processor, logits, prefix, prefix_mask, tokens, step
        )
        token = ops.cast(sampler.get_next_token(sampler.compute_probabilities(processed)), "int32")
        log_probability = ops.take_along_axis(_log_probabilities(logits), token[:, None], axis=-1)[
            :, 0
        ]
        token = ops.where(finished, pad_token_id, token)
        log_probability = ops.where(finished, 0.0, log_probability)
        if stops:
            finished = ops.logical_or(finished, is_one_of(token, stops))
        return token, log_probability, finished

    def history_prefix(batch_size):
        start_prefix = prefix if prefix is not None else ops.zeros((batch_size, 0), "int32")
        start_mask = prefix_mask
        if start_mask is None:
            start_mask = ops.ones(ops.shape(start_prefix), "bool")
        return start_prefix, start_mask

    def stop_at_strings(finished, tokens, step, start_prefix, start_mask):
        if stop_matcher is None:
            return finished
        recent = stop_matcher.recent_tokens(start_prefix, start_mask, tokens, step)
        return ops.logical_or(finished, stop_matcher(recent))

    def start(logits, cache):
        batch_size = ops.shape(logits)[0]
        start_prefix, start_mask = history_prefix(batch_size)
        finished = ops.zeros((batch_size,), "bool")
        tokens = ops.full((batch_size, max_new_tokens), pad_token_id, dtype="int32")
        token, log_probability, finished = choose(
            logits, finished, tokens, 0, start_prefix, start_mask
        )
        tokens = ops.slice_update(tokens, (0, 0), token[:, None])
        finished = stop_at_strings(finished, tokens, 0, start_prefix, start_mask)
        token_scores = ops.zeros((batch_size, max_new_tokens), "float32")
        token_scores = ops.slice_update(token_scores, (0, 0), log_probability[:, None])
        return (ops.convert_to_tensor(1, "int32"), tokens, token, token_scores, finished, cache)

    def step(step, tokens, token, token_scores, finished, cache):
        start_prefix, start_mask = history_prefix(ops.shape(tokens)[0])
        logits, cache = call_with_cache(token, cache, prefix_length + step - 1)
        token, log_probability, finished = choose(
            logits, finished, tokens, step, start_prefix, start_mask
        )
        tokens = ops.slice_update(tokens, (0, step), token[:, None])
        finished = stop_at_strings(finished, tokens, step, start_prefix, start_mask)
        token_scores = ops.slice_update(token_scores, (0, step), log_probability[:, None])
        return step + 1, tokens, token, token_scores, finished, cache

    return start, step
