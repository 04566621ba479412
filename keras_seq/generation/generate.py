"""`generate`: decode a model that implements the generation protocol, compiled once per shape."""

import keras
import keras_hub
from keras import ops

from keras_seq.decoding_options import OPTION_DEFAULTS
from keras_seq.decoding_options import STRATEGIES
from keras_seq.decoding_options import STRATEGY_OPTIONS
from keras_seq.generation.beam_search import beam_search
from keras_seq.generation.protocol import check_generative
from keras_seq.generation.sampling import sample_search
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_float
from keras_seq.utils.validation import validate_fraction
from keras_seq.utils.validation import validate_non_negative_int
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_seed

# With "top_p", `top_k` is an optional extra bound: no default.
_NO_DEFAULT = {("top_p", "top_k")}


def _validate_options(strategy, options):
    for name, value in options.items():
        if value is not None and name not in STRATEGY_OPTIONS[strategy]:
            raise ValueError(
                f"`{name}` does not apply to strategy={strategy!r} (it reads "
                f"{list(STRATEGY_OPTIONS[strategy]) or 'no option'}). Received: {name}={value!r}"
            )
    resolved = {
        name: options[name]
        if options[name] is not None or (strategy, name) in _NO_DEFAULT
        else OPTION_DEFAULTS.get(name)
        for name in STRATEGY_OPTIONS[strategy]
    }
    if "num_beams" in resolved:
        resolved["num_beams"] = validate_positive_int("num_beams", resolved["num_beams"])
    if "temperature" in resolved:
        resolved["temperature"] = validate_positive_float("temperature", resolved["temperature"])
    if "top_k" in resolved and resolved["top_k"] is not None:
        resolved["top_k"] = validate_positive_int("top_k", resolved["top_k"])
    if "top_p" in resolved:
        resolved["top_p"] = validate_fraction("top_p", resolved["top_p"], include_zero=False)
    if "length_penalty" in resolved:
        penalty = validate_float("length_penalty", resolved["length_penalty"])
        resolved["length_penalty"] = float(penalty)
    if "seed" in resolved:
        resolved["seed"] = validate_seed("seed", resolved["seed"])
    return resolved


def _make_sampler(strategy, options):
    seed = options.get("seed")
    if strategy == "greedy":
        return keras_hub.samplers.GreedySampler()
    if strategy == "sample":
        return keras_hub.samplers.RandomSampler(seed=seed, temperature=options["temperature"])
    if strategy == "top_k":
        return keras_hub.samplers.TopKSampler(
            k=options["top_k"], seed=seed, temperature=options["temperature"]
        )
    return keras_hub.samplers.TopPSampler(
        p=options["top_p"], k=options["top_k"], seed=seed, temperature=options["temperature"]
    )


def _decoder(model, strategy, options, max_new_tokens, stop_token_id, pad_token_id):
    """A function `inputs -> (token_ids, scores)` and the sampler it uses (or `None`)."""
    sampler = None if strategy == "beam" else _make_sampler(strategy, options)

    def decode(inputs):
        prefix, logits, cache = model.prefill(inputs, max_new_tokens)
        prefix_length = prefix.shape[1]
        if logits.shape[-1] is not None and stop_token_id is not None:
            if stop_token_id >= logits.shape[-1]:
                raise ValueError(
                    f"`stop_token_id` must be below the vocabulary size {logits.shape[-1]}. "
                    f"Received: stop_token_id={stop_token_id}"
                )
        common = dict(
            max_new_tokens=max_new_tokens,
            prefix_length=prefix_length,
            stop_token_id=stop_token_id,
            pad_token_id=pad_token_id,
        )
        if strategy == "beam":
            tokens, scores = beam_search(
                model.call_with_cache,
                logits,
                cache,
                num_beams=options["num_beams"],
                length_penalty=options["length_penalty"],
                **common,
            )
        else:
            tokens, scores = sample_search(model.call_with_cache, logits, cache, sampler, **common)
        return ops.concatenate([ops.cast(prefix, "int32"), tokens], axis=1), scores

    return decode, sampler


def generate(
    model,
    inputs,
    max_new_tokens,
    strategy="greedy",
    num_beams=None,
    temperature=None,
    top_k=None,
    top_p=None,
    length_penalty=None,
    stop_token_id=None,
    pad_token_id=0,
    seed=None,
    return_scores=False,
    jit_compile=None,
):
    """Generate token ids from `model` with one of five decoding strategies.

    `model` implements the protocol of `keras_seq.generation.protocol` (`prefill` and
    `call_with_cache`): every keras_seq generative model does, and their `generate()` method
    calls this function. Each step feeds one token through the model's caches (key/value
    caches, recurrent states), so the prompt is never recomputed. On TensorFlow the decoding
    loop is one `tf.function`, created once per model and decoding configuration and traced
    once per input shape, then reused across calls (keras-hub#779 recompiled per call).

    Args:
        model: a model implementing `prefill` and `call_with_cache`.
        inputs: what the model's `prefill` takes: the prompt token ids `(batch_size,
            prompt_length)` of a language model, the source of a seq2seq model, images of a
            captioner. Prompts of one call share their length.
        max_new_tokens: int. Number of tokens to generate.
        strategy: `"greedy"`, `"beam"`, `"sample"` (temperature sampling from the whole
            distribution), `"top_k"` or `"top_p"`. Defaults to `"greedy"`.
        num_beams: int. Beam width (`"beam"` only). Defaults to `4`.
        temperature: float > 0. Logits are divided by it before sampling (sampling
            strategies only). Defaults to `1.0`.
        top_k: int. Sample among the `top_k` most likely tokens (`"top_k"`; with `"top_p"`,
            an optional extra bound). Defaults to `50` for `"top_k"`.
        top_p: float in (0, 1]. Sample from the smallest set of tokens whose probability
            reaches `top_p` (`"top_p"` only). Defaults to `0.9`.
        length_penalty: finite float. Beam scores are `sum log p / length ** length_penalty`
            (`"beam"` only). Defaults to `0.0` (plain sum of log-probabilities).
        stop_token_id: optional int. A sequence ends when it produces this token; later
            positions hold `pad_token_id`.
        pad_token_id: int. Filler after the stop token. Defaults to `0`.
        seed: optional non-negative int (sampling strategies only). The same seed gives the
            same tokens on every call; `None` draws new randomness each call.
        return_scores: bool. Also return the scores. Defaults to `False`.
        jit_compile: bool or `None`. Compile the loop with XLA (TensorFlow backend). `None`
            means `True` unless the model runs eagerly: XLA made generation about 2x faster on
            CPU (benchmarks/bench_generation.py), the first call of a shape pays the
            compilation.

    Returns:
        int32 token ids `(batch_size, prefix_length + max_new_tokens)`: the model's prefix
        (the prompt for language models; nothing for seq2seq models and captioners), then the
        new tokens. With `return_scores=True`, `(token_ids, scores)`, scores float32
        `(batch_size,)`: the sum of the log-probabilities of the new tokens (the stop token
        included) under the model, for beam search divided by the length penalty.
    """
    check_generative(model)
    max_new_tokens = validate_positive_int("max_new_tokens", max_new_tokens)
    strategy = validate_choice("strategy", strategy, STRATEGIES)
    options = _validate_options(
        strategy,
        {
            "num_beams": num_beams,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "length_penalty": length_penalty,
            "seed": seed,
        },
    )
    if stop_token_id is not None:
        stop_token_id = validate_non_negative_int("stop_token_id", stop_token_id)
    pad_token_id = validate_non_negative_int("pad_token_id", pad_token_id)
    if jit_compile is not None:
        validate_bool("jit_compile", jit_compile)
    eager = bool(getattr(model, "run_eagerly", False)) or keras.backend.backend() != "tensorflow"
    if jit_compile and eager:
        raise ValueError(
            "`jit_compile=True` needs a compiled decoding loop, but this model runs eagerly "
            "(`model.run_eagerly=True`, or a backend other than TensorFlow). Pass "
            f"jit_compile=None or False. Received: jit_compile={jit_compile}"
        )
    if jit_compile is None:
        jit_compile = not eager

    key = (
        strategy,
        tuple(sorted((k, v) for k, v in options.items() if k != "seed")),
        max_new_tokens,
        stop_token_id,
        pad_token_id,
        jit_compile,
        eager,
    )
    functions = model.__dict__.get("_keras_seq_generate_functions")
    if functions is None:
        functions = {}
        # Set past Keras' attribute tracking: the cache holds functions and samplers, not
        # layers or weights of the model.
        object.__setattr__(model, "_keras_seq_generate_functions", functions)
    if key not in functions:
        decode, sampler = _decoder(
            model, strategy, options, max_new_tokens, stop_token_id, pad_token_id
        )
        if not eager:
            import tensorflow as tf

            # No AutoGraph: the loop is keras.ops (while_loop), and an error raised while
            # tracing (a bad prompt shape) then reaches the caller as raised, not wrapped in
            # AutoGraph's "in user code" trace.
            decode = tf.function(decode, jit_compile=jit_compile, autograph=False)
        functions[key] = (decode, sampler)
    decode, sampler = functions[key]
    if seed is not None:
        fresh = keras.random.SeedGenerator(seed)
        sampler.seed_generator.state.assign(fresh.state.value)
    inputs = keras.tree.map_structure(ops.convert_to_tensor, inputs)
    tokens, scores = decode(inputs)
    return (tokens, scores) if return_scores else tokens
