"""`speculative_generate`: greedy decoding of a target model, sped up by a draft model.

Letter legend for shape comments: B batch, P prompt length, N new tokens, K draft tokens per
round, V vocabulary.
"""

from keras import ops

from keras_seq.generation.compiling import compile_decoding
from keras_seq.generation.compiling import compile_step
from keras_seq.generation.compiling import compiles
from keras_seq.generation.logits_processing import checked_stop_ids
from keras_seq.generation.logits_processing import is_one_of
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_non_negative_int
from keras_seq.utils.validation import validate_positive_int


def _check_speculative(name, model):
    missing = [
        method
        for method in ("prefill", "call_with_cache_tokens")
        if not callable(getattr(model, method, None))
    ]
    if missing:
        raise TypeError(
            f"`{name}` cannot be decoded speculatively: it lacks the method(s) {missing} "
            "(`prefill` of keras_seq.generation.protocol, and `call_with_cache_tokens(token_ids "
            "(batch_size, num_tokens), cache, index) -> (logits, cache)`, which "
            f"`GPTCausalLM` has). Received: {name} of type {type(model).__name__}"
        )


def _sequence_length(model):
    """The model's number of learned positions, or `None` where it does not say."""
    for owner in (model, getattr(model, "backbone", None)):
        length = getattr(owner, "sequence_length", None)
        if isinstance(length, int):
            return length
    return None


def _greedy(logits):
    """The greedy choice of `generate` (keras_hub's `GreedySampler`): the argmax of the
    float32 softmax, so that ties fall as they fall there."""
    probabilities = ops.softmax(ops.cast(logits, "float32"), axis=-1)
    return ops.cast(ops.argmax(probabilities, axis=-1), "int32")


def _decoder(
    model, draft_model, max_new_tokens, num_draft_tokens, stops, pad_token_id, compiled=False
):
    """A function `prompt (B, P) -> (token_ids (B, P + N), accepted, proposed, rounds)`."""
    new, draft = max_new_tokens, num_draft_tokens
    target_step = compile_step(model, "call_with_cache_tokens", compiled)
    draft_step = compile_step(draft_model, "call_with_cache_tokens", compiled)

    def is_stop(tokens):
        if not stops:
            return ops.zeros(ops.shape(tokens), "bool")
        return is_one_of(tokens, stops)

    def decode(prompt):
        prompt = ops.cast(prompt, "int32")  # (B, P)
        batch_size, prompt_length = ops.shape(prompt)[0], prompt.shape[1]
        # The caches hold P + N + K - 1 positions: the last round scores up to K tokens past
        # the last output token.
        _, logits, cache = model.prefill(prompt, new + draft - 1)  # (B, V)
        _, draft_logits, draft_cache = draft_model.prefill(prompt, new + draft - 1)
        vocabulary_size, draft_vocabulary_size = logits.shape[-1], draft_logits.shape[-1]
        if vocabulary_size != draft_vocabulary_size:
            raise ValueError(
                "`draft_model` must share the target model's vocabulary, but its logits have "
                f"{draft_vocabulary_size} entries and the target's {vocabulary_size}. "
                f"Received: draft_model of type {type(draft_model).__name__}"
            )
        for stop in stops:
            if stop >= vocabulary_size:
                raise ValueError(
                    f"`stop_token_id` must be below the vocabulary size {vocabulary_size}. "
                    f"Received: stop_token_id={stop}"
                )
        # Committed tokens (prompt, then output) in a buffer with room for a whole round's
        # K + 1 tokens past the end: (B, P + N + K).
        first = _greedy(logits)  # (B,)
        tokens = ops.concatenate(
            [
                prompt,
                first[:, None],
                ops.full((batch_size, new + draft - 1), pad_token_id, dtype="int32"),
            ],
            axis=1,
        )
        finished = is_stop(first)  # (B,)
        zero = ops.convert_to_tensor(0, "int32")
        # `length`: committed tokens. Invariant at the top of a round: the target's cache
        # holds the first `length - 1` of them (the last one is fed in the round), the
        # draft's at least the first `length - 2`.
        length = ops.convert_to_tensor(prompt_length + 1, "int32")

        def propose(length, tokens, draft_cache):
            # The last two committed tokens (the one before the last may be in the draft's
            # cache already: writing it again is harmless), then K - 1 single tokens.
            last_two = ops.slice(tokens, (0, length - 2), (batch_size, 2))  # (B, 2)
            draft_logits, draft_cache = draft_step(last_two, draft_cache, length - 2)
            proposal = _greedy(draft_logits[:, -1, :])  # (B,)
            proposals = ops.concatenate(
                [proposal[:, None], ops.zeros((batch_size, draft - 1), "int32")], axis=1
            )  # (B, K)

            def step(j, carry):
                proposals, draft_cache = carry
                previous = ops.slice(proposals, (0, j - 1), (batch_size, 1))  # (B, 1)
                draft_logits, draft_cache = draft_step(previous, draft_cache, length + j - 1)
                proposal = _greedy(draft_logits[:, 0, :])  # (B,)
                proposals = ops.slice_update(proposals, (0, j), proposal[:, None])
                return proposals, draft_cache

            if draft > 1:
                proposals, draft_cache = ops.fori_loop(1, draft, step, (proposals, draft_cache))
            return proposals, draft_cache

        def cond(length, tokens, finished, cache, draft_cache, accepted, rounds):
            return ops.logical_and(length < prompt_length + new, ops.logical_not(ops.all(finished)))

        def body(length, tokens, finished, cache, draft_cache, accepted, rounds):
            proposals, draft_cache = propose(length, tokens, draft_cache)  # (B, K)
            last = ops.slice(tokens, (0, length - 1), (batch_size, 1))  # (B, 1)
            logits, cache = target_step(
                ops.concatenate([last, proposals], axis=1), cache, length - 1
            )  # (B, K + 1, V)
            chosen = _greedy(logits)  # (B, K + 1): the target's token after each one
            # Proposals accepted: the longest prefix equal to the target's own choices. A
            # finished row accepts anything (its tokens become padding); the batch moves on
            # by the fewest a live row accepts, so every row stays exact.
            agree = ops.cast(ops.equal(chosen[:, :draft], proposals), "int32")  # (B, K)
            row_accepted = ops.sum(ops.cumprod(agree, axis=1), axis=1)  # (B,)
            row_accepted = ops.where(finished, draft, row_accepted)
            round_accepted = ops.cast(ops.min(row_accepted), "int32")
            # Commit the target's tokens 0 .. accepted (the accepted proposals, then the
            # target's own next token); the rest is overwritten by later rounds.
            tokens = ops.slice_update(tokens, (0, length), chosen)
            kept = ops.arange(draft + 1, dtype="int32") <= round_accepted  # (K + 1,)
            stopped = ops.logical_and(is_stop(chosen), kept[None, :])
            finished = ops.logical_or(finished, ops.any(stopped, axis=1))
            return (
                length + round_accepted + 1,
                tokens,
                finished,
                cache,
                draft_cache,
                accepted + round_accepted,
                rounds + 1,
            )

        length, tokens, _, _, _, accepted, rounds = ops.while_loop(
            cond,
            body,
            (length, tokens, finished, cache, draft_cache, zero, zero),
            maximum_iterations=new - 1,
        )
        output = tokens[:, prompt_length : prompt_length + new]  # (B, N)
        # Greedy decoding's padding: after each row's first stop token, and past the last
        # round (reached only once every row has stopped).
        stopped = ops.cast(is_stop(output), "int32")
        after_stop = (ops.cumsum(stopped, axis=1) - stopped) > 0
        computed = ops.arange(new, dtype="int32")[None, :] < length - prompt_length
        output = ops.where(
            ops.logical_and(ops.logical_not(after_stop), computed), output, pad_token_id
        )
        return ops.concatenate([prompt, output], axis=1), accepted, rounds

    return decode


def speculative_generate(
    model,
    draft_model,
    inputs,
    max_new_tokens,
    num_draft_tokens=4,
    stop_token_id=None,
    pad_token_id=0,
    return_acceptance=False,
    jit_compile=None,
    stop_token_ids=None,
):
    """Greedy decoding of `model`, with a cheaper `draft_model` proposing the tokens.

    Speculative decoding: each round the draft model proposes `num_draft_tokens` tokens
    greedily (through its own cache), and the target model scores the last committed token
    and all proposals in one call (`call_with_cache_tokens`). The longest run of proposals
    equal to the target's own greedy choices is kept, followed by the target's next token, so
    a round yields 1 to `num_draft_tokens + 1` tokens for one target call. The output is the
    target's greedy decoding, token for token: `keras_seq.generation.generate(model, inputs,
    max_new_tokens, strategy="greedy", stop_token_id=..., pad_token_id=...)` (up to float
    rounding between a call on several tokens and several calls on one, which can only
    matter where two tokens' scores tie to the last bit). With a batch, every row advances by
    the fewest tokens a live row accepted, which keeps each row exact. Rejected proposals
    cost nothing to undo: the cache slots they wrote lie after the current position, where
    the causal mask hides them, and later tokens overwrite them.

    The speed-up is about `accepted tokens per round / (1 + num_draft_tokens * draft cost /
    target cost)`; a draft that agrees with the target, much cheaper than it, gives the most
    (benchmarks/bench_speculative.py), one that rarely agrees costs time. keras-hub has no
    speculative decoding; here the whole loop (draft proposals, verification, acceptance,
    stop tokens) is one compiled function (`tf.function` on TensorFlow, `jax.jit` on JAX, as
    in `generate`), with XLA by default, created once per pair of models and configuration
    and reused.

    Args:
        model: the target model: `prefill` (keras_seq.generation.protocol) and
            `call_with_cache_tokens(token_ids (batch_size, num_tokens), cache, index) ->
            (logits (batch_size, num_tokens, vocabulary_size), cache)`, as `GPTCausalLM`.
        draft_model: a model with the same methods and the same vocabulary (a smaller
            language model trained on the same tokens).
        inputs: int token ids `(batch_size, prompt_length)`: prompts of one length.
        max_new_tokens: int. Number of tokens to generate.
        num_draft_tokens: int. Tokens the draft proposes per round. Defaults to `4`.
        stop_token_id: optional int. A sequence ends when it produces this token; later
            positions hold `pad_token_id`.
        pad_token_id: int. Filler after the stop token. Defaults to `0`.
        return_acceptance: bool. Also return the acceptance statistics. Defaults to `False`.
        jit_compile: bool or `None`. Compile the loop with XLA, as in `generate` (TensorFlow
            and JAX; `None` means `True` unless a model runs eagerly). On PyTorch `True`
            compiles each model's `call_with_cache_tokens` with `torch.compile`, as
            `generate` compiles the step; `None` runs eagerly there.
        stop_token_ids: optional list of ints: several stop tokens (with `stop_token_id`,
            all of them stop).

    Both models need `prompt_length + max_new_tokens + num_draft_tokens - 1` positions
    (`sequence_length`): the last round scores up to `num_draft_tokens` tokens past the
    output's end.

    Returns:
        int32 token ids `(batch_size, prompt_length + max_new_tokens)`, the prompts and the
        target's greedy continuations. With `return_acceptance=True`, `(token_ids,
        acceptance)`, acceptance a dict of scalars: `"acceptance_rate"` (float, the
        fraction of proposed draft tokens that were kept; `0.0` when no round ran),
        `"accepted_tokens"` and `"proposed_tokens"` (int, over all rounds; with a batch,
        those of the batch's rounds), `"target_calls"` (int, verification rounds; the
        prompt's pass excluded).

    Example:
    ```python
    target = keras_seq.models.GPTCausalLM.from_preset("gpt_tiny", vocabulary_size=100)
    prompt = np.random.randint(1, 100, size=(2, 8))
    # The target as its own draft shows the interface (a real draft is a smaller model).
    # XLA is the default; off here to keep the example quick.
    tokens, acceptance = keras_seq.generation.speculative_generate(
        target, target, prompt, 6, return_acceptance=True, jit_compile=False
    )
    greedy = keras_seq.generation.generate(target, prompt, 6, jit_compile=False)
    assert np.array_equal(tokens, greedy)
    assert float(acceptance["acceptance_rate"]) == 1.0
    ```

    References:
        - [Leviathan et al., 2023](https://arxiv.org/abs/2211.17192): Fast inference from
          transformers via speculative decoding.
        - [Chen et al., 2023](https://arxiv.org/abs/2302.01318): Accelerating large language
          model decoding with speculative sampling.
    """
    _check_speculative("model", model)
    _check_speculative("draft_model", draft_model)
    max_new_tokens = validate_positive_int("max_new_tokens", max_new_tokens)
    num_draft_tokens = validate_positive_int("num_draft_tokens", num_draft_tokens)
    stops = checked_stop_ids(stop_token_id, stop_token_ids)
    pad_token_id = validate_non_negative_int("pad_token_id", pad_token_id)
    validate_bool("return_acceptance", return_acceptance)
    if jit_compile is not None:
        validate_bool("jit_compile", jit_compile)
    if isinstance(inputs, dict):
        raise ValueError(
            "`inputs` must be the prompt token ids (batch_size, prompt_length): prompts of one "
            f"length, no padding mask. Received: inputs, a dict with keys {sorted(inputs)}"
        )
    inputs = ops.convert_to_tensor(inputs)
    if len(inputs.shape) != 2 or not inputs.shape[1] or not inputs.shape[0]:
        raise ValueError(
            "`inputs` must be int token ids of shape (batch_size, prompt_length), both at "
            f"least 1. Received: inputs of shape {tuple(inputs.shape)}"
        )
    needed = inputs.shape[1] + max_new_tokens + num_draft_tokens - 1
    for name, candidate in (("model", model), ("draft_model", draft_model)):
        positions = _sequence_length(candidate)
        if positions is not None and needed > positions:
            raise ValueError(
                f"`{name}` has {positions} positions (`sequence_length`), but speculative "
                "decoding needs prompt_length + max_new_tokens + num_draft_tokens - 1 = "
                f"{needed}. Received: prompt_length={inputs.shape[1]}, "
                f"max_new_tokens={max_new_tokens}, num_draft_tokens={num_draft_tokens}"
            )
    compiled = compiles([model, draft_model], jit_compile)
    if jit_compile is None:
        jit_compile = compiled

    # The draft's id is part of the key: the function holds the draft, so the id stays its.
    key = (id(draft_model), max_new_tokens, num_draft_tokens, stops, pad_token_id)
    key += (jit_compile, compiled)
    functions = model.__dict__.get("_keras_seq_speculative_functions")
    if functions is None:
        functions = {}
        # Past Keras' attribute tracking, as `generate` keeps its functions.
        object.__setattr__(model, "_keras_seq_speculative_functions", functions)
    if key not in functions:
        decode = _decoder(
            model, draft_model, max_new_tokens, num_draft_tokens, stops, pad_token_id, compiled
        )
        if compiled:
            decode = compile_decoding(decode, [model, draft_model], [], jit_compile)
        functions[key] = decode
    tokens, accepted, rounds = functions[key](inputs)
    if not return_acceptance:
        return tokens
    proposed = rounds * num_draft_tokens
    rate = ops.where(
        proposed > 0,
        ops.cast(accepted, "float32") / ops.cast(ops.maximum(proposed, 1), "float32"),
        0.0,
    )
    return tokens, {
        "acceptance_rate": rate,
        "accepted_tokens": accepted,
        "proposed_tokens": proposed,
        "target_calls": rounds,
    }
