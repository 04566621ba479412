"""Token-by-token decoding that picks each token with a keras_hub sampler."""

from keras import ops

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

    Returns:
        `(token_ids, scores)`: int32 `(B, max_new_tokens)` and float32 `(B,)`, the sum of the
        model's log-probabilities (temperature 1) of the generated tokens, the stop token
        included.
    """
    batch_size = ops.shape(logits)[0]
    stops = tuple(stop_token_ids) + (() if stop_token_id is None else (stop_token_id,))
    if prefix is None:
        prefix = ops.zeros((batch_size, 0), "int32")
    if prefix_mask is None:
        prefix_mask = ops.ones(ops.shape(prefix), "bool")
    new_positions = ops.arange(max_new_tokens, dtype="int32")

    def process(logits, tokens, step):
        if logits_processor is None:
            return logits
        history = ops.concatenate([ops.cast(prefix, "int32"), tokens], axis=1)
        history_mask = ops.concatenate(
            [
                ops.cast(prefix_mask, "bool"),
                ops.broadcast_to(new_positions < step, ops.shape(tokens)),
            ],
            axis=1,
        )
        return logits_processor(logits, history, history_mask, step)

    def choose(logits, finished, tokens, step):
        processed = process(logits, tokens, step)
        token = ops.cast(sampler.get_next_token(sampler.compute_probabilities(processed)), "int32")
        log_probability = ops.take_along_axis(_log_probabilities(logits), token[:, None], axis=-1)[
            :, 0
        ]
        token = ops.where(finished, pad_token_id, token)
        log_probability = ops.where(finished, 0.0, log_probability)
        if stops:
            is_stop = ops.any(
                ops.equal(token[:, None], ops.convert_to_tensor(list(stops), "int32")[None, :]),
                axis=-1,
            )
            finished = ops.logical_or(finished, is_stop)
        return token, log_probability, finished

    finished = ops.zeros((batch_size,), "bool")
    tokens = ops.full((batch_size, max_new_tokens), pad_token_id, dtype="int32")
    token, scores, finished = choose(logits, finished, tokens, 0)
    tokens = ops.slice_update(tokens, (0, 0), token[:, None])

    def cond(step, tokens, token, scores, finished, cache):
        return ops.logical_not(ops.all(finished))

    def body(step, tokens, token, scores, finished, cache):
        logits, cache = call_with_cache(token, cache, prefix_length + step - 1)
        token, log_probability, finished = choose(logits, finished, tokens, step)
        tokens = ops.slice_update(tokens, (0, step), token[:, None])
        return step + 1, tokens, token, scores + log_probability, finished, cache

    if max_new_tokens > 1:
        _, tokens, _, scores, _, _ = ops.while_loop(
            cond,
            body,
            (ops.convert_to_tensor(1, "int32"), tokens, token, scores, finished, cache),
            maximum_iterations=max_new_tokens - 1,
        )
    return tokens, scores
