"""`generate`: decode a model that implements the generation protocol, compiled once per shape."""

import functools

import keras
import keras_hub
import numpy as np
from keras import ops

from keras_seq.decoding_options import EARLY_STOPPING
from keras_seq.decoding_options import OPTION_DEFAULTS
from keras_seq.decoding_options import STRATEGIES
from keras_seq.decoding_options import STRATEGY_OPTIONS
from keras_seq.generation.beam_search import beam_search
from keras_seq.generation.logits_processing import make_logits_processor
from keras_seq.generation.protocol import check_generative
from keras_seq.generation.sampling import sample_search
from keras_seq.generation.sampling import sampling_loop
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


def _validate_option(name, value):
    """`value` of the decoding option `name` (a key of `OPTION_DEFAULTS` or `seed`), checked;
    `None` passes (an optional `top_k` with "top_p")."""
    if value is None:
        return None
    if name in ("num_beams", "top_k"):
        return validate_positive_int(name, value)
    if name == "temperature":
        return validate_positive_float(name, value)
    if name == "top_p":
        return validate_fraction(name, value, include_zero=False)
    if name == "length_penalty":
        return float(validate_float(name, value))
    if name == "early_stopping":
        # `is` tests: 0 and 1 equal False and True but are not Hugging Face's values.
        if not any(value is choice for choice in EARLY_STOPPING[1:]) and value != "exact":
            raise ValueError(
                f"`early_stopping` must be one of {list(EARLY_STOPPING)}. Received: "
                f"early_stopping={value!r}"
            )
        return value
    return validate_seed(name, value)


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
    return {name: _validate_option(name, value) for name, value in resolved.items()}


# The arguments of `generate` a model's `generation_defaults` may set.
_OPTION_NAMES = tuple(dict.fromkeys(n for names in STRATEGY_OPTIONS.values() for n in names))
GENERATION_DEFAULT_NAMES = (
    "strategy",
    "max_new_tokens",
    "stop_token_id",
    "stop_token_ids",
    "pad_token_id",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "min_new_tokens",
) + _OPTION_NAMES


def validate_generation_defaults(defaults):
    """`defaults` (a dict of `generate` arguments, or `None`) checked, as a new dict.

    Keys are among `GENERATION_DEFAULT_NAMES`; each value is checked as `generate` checks
    it. Options of strategies other than the default one are allowed (they apply when a
    call chooses that strategy)."""
    if defaults is None:
        return {}
    if not isinstance(defaults, dict):
        raise TypeError(
            "`generation_defaults` must be a dict of `generate()` arguments or None. "
            f"Received: generation_defaults={defaults!r}"
        )
    unknown = sorted(set(defaults) - set(GENERATION_DEFAULT_NAMES))
    if unknown:
        raise ValueError(
            f"`generation_defaults` may set {list(GENERATION_DEFAULT_NAMES)}. Received "
            f"unknown keys {unknown} in generation_defaults={defaults!r}"
        )
    checked = {}
    for name, value in defaults.items():
        if name == "strategy":
            checked[name] = validate_choice("strategy", value, STRATEGIES)
        elif name == "max_new_tokens":
            checked[name] = validate_positive_int("max_new_tokens", value)
        elif name in ("stop_token_id", "pad_token_id", "min_new_tokens"):
            checked[name] = validate_non_negative_int(name, value)
        elif name == "no_repeat_ngram_size":
            checked[name] = validate_positive_int(name, value)
        elif name == "repetition_penalty":
            checked[name] = float(validate_positive_float(name, value))
        elif name == "stop_token_ids":
            if not isinstance(value, (list, tuple)):
                raise TypeError(
                    f"`stop_token_ids` must be a list of ints. Received: stop_token_ids={value!r}"
                )
            checked[name] = [validate_non_negative_int(name, item) for item in value]
        else:
            checked[name] = _validate_option(name, value)
    return checked


def apply_generation_defaults(defaults, max_new_tokens, strategy, options):
    """`(max_new_tokens, strategy, options)` of one `generate` call with `defaults` (from
    `validate_generation_defaults`) filling what the call left out (`None` or absent;
    `stop_token_id` and `pad_token_id` only when absent, so that `stop_token_id=None`
    turns a default stop token off). A default option applies only when the chosen
    strategy reads it; a missing `max_new_tokens` with no default is an error."""
    options = dict(options)
    if strategy is None:
        strategy = defaults.get("strategy", "greedy")
    if max_new_tokens is None:
        max_new_tokens = defaults.get("max_new_tokens")
        if max_new_tokens is None:
            raise ValueError(
                "`max_new_tokens` is required: this model has no default for it (a "
                "`generation_defaults` entry, which checkpoints with a generation config "
                "set). Received: max_new_tokens=None"
            )
    for name in ("stop_token_id", "stop_token_ids", "pad_token_id"):
        # Given as None, `stop_token_id` stays off: only an absent one takes the default.
        if name not in options and name in defaults:
            options[name] = defaults[name]
    for name in ("repetition_penalty", "no_repeat_ngram_size", "min_new_tokens"):
        if options.get(name) is None and name in defaults:
            options[name] = defaults[name]
    for name in STRATEGY_OPTIONS.get(strategy, ()):
        if options.get(name) is None and name in defaults:
            options[name] = defaults[name]
    return max_new_tokens, strategy, options


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


def _decoder(model, strategy, options, max_new_tokens, stop_token_ids, pad_token_id, processing):
    """A function `inputs -> (token_ids, scores)` and the sampler it uses (or `None`)."""
    sampler = None if strategy == "beam" else _make_sampler(strategy, options)
    logits_processor = make_logits_processor(**processing, stop_token_ids=stop_token_ids)

    def decode(inputs):
        prefix, logits, cache = model.prefill(inputs, max_new_tokens)
        prefix_length = prefix.shape[1]
        _check_stops_fit(stop_token_ids, logits)
        _check_top_k_fits(sampler, logits)
        prefix_mask = _prompt_mask(inputs, prefix)
        common = dict(
            max_new_tokens=max_new_tokens,
            prefix_length=prefix_length,
            stop_token_ids=stop_token_ids,
            pad_token_id=pad_token_id,
            logits_processor=logits_processor,
            prefix=prefix,
            prefix_mask=prefix_mask,
        )
        if strategy == "beam":
            tokens, scores = beam_search(
                model.call_with_cache,
                logits,
                cache,
                num_beams=options["num_beams"],
                length_penalty=options["length_penalty"],
                early_stopping=options["early_stopping"],
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
    early_stopping=None,
    stop_token_id=None,
    pad_token_id=0,
    seed=None,
    return_scores=False,
    jit_compile=None,
    stop_token_ids=None,
    repetition_penalty=None,
    no_repeat_ngram_size=None,
    min_new_tokens=None,
    streamer=None,
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
        early_stopping: `"exact"`, `False` or `True` (`"beam"` only). When a sequence's
            beam search ends: `"exact"` once no live beam can beat the finished ones at any
            reachable length (exhaustive search given enough beams; with a positive
            `length_penalty` it usually runs to `max_new_tokens`); `False` and `True` are
            Hugging Face's rules of the same name (`False`: its default heuristic, which
            scores the best live beam at its current length; `True`: also stop once
            `num_beams` hypotheses finished), for results equal to `transformers`'.
            Defaults to `"exact"`.
        stop_token_id: optional int. A sequence ends when it produces this token; later
            positions hold `pad_token_id`.
        stop_token_ids: optional list of ints: several stop tokens (with `stop_token_id`,
            all of them stop).
        repetition_penalty: optional float > 0 (all strategies). Hugging Face's CTRL rule:
            the score of every token already in the prompt or the output is divided by it
            when positive, multiplied by it when negative (logits for greedy and sampling,
            log-probabilities for beam search, as Hugging Face applies it). `1.0` is off.
        no_repeat_ngram_size: optional int > 0. No n-gram of this size occurs twice in the
            prompt and output: a token that would repeat one is never chosen.
        min_new_tokens: optional int >= 0. The stop tokens cannot be chosen before this many
            new tokens (needs a stop token).
        streamer: optional callable, given each step's new tokens (an int32 NumPy array
            `(batch_size,)`; finished rows give `pad_token_id`) as soon as they are chosen.
            Greedy and sampling only. The loop then runs in Python around two compiled
            functions, the prompt with the first token and one decoding step (the same step
            as the compiled loop's), and ends on the same tokens; `stream_generate` is the
            iterator form.
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
            "early_stopping": early_stopping,
            "seed": seed,
        },
    )
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
    stop_token_ids = tuple(dict.fromkeys(stops))
    pad_token_id = validate_non_negative_int("pad_token_id", pad_token_id)
    processing = {
        "repetition_penalty": None
        if repetition_penalty is None
        else float(validate_positive_float("repetition_penalty", repetition_penalty)),
        "no_repeat_ngram_size": None
        if no_repeat_ngram_size is None
        else validate_positive_int("no_repeat_ngram_size", no_repeat_ngram_size),
        "min_new_tokens": None
        if min_new_tokens is None
        else validate_non_negative_int("min_new_tokens", min_new_tokens),
    }
    if processing["min_new_tokens"] and not stop_token_ids:
        raise ValueError(
            "`min_new_tokens` keeps the stop tokens out of the first new tokens, but no stop "
            "token is set (`stop_token_id` / `stop_token_ids`). Received: min_new_tokens="
            f"{min_new_tokens}"
        )
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
        stop_token_ids,
        pad_token_id,
        tuple(sorted(processing.items())),
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
            model, strategy, options, max_new_tokens, stop_token_ids, pad_token_id, processing
        )
        if not eager:
            import tensorflow as tf

            # No AutoGraph: the loop is keras.ops (while_loop), and an error raised while
            # tracing (a bad prompt shape) then reaches the caller as raised, not wrapped in
            # AutoGraph's "in user code" trace.
            decode = tf.function(decode, jit_compile=jit_compile, autograph=False)
        functions[key] = (decode, sampler)
    decode, sampler = functions[key]
    if streamer is not None:
        if not callable(streamer):
            raise TypeError(f"`streamer` must be a callable. Received: streamer={streamer!r}")
        if strategy == "beam":
            raise ValueError(
                "`streamer` hands over each step's tokens, which beam search only settles at "
                "its end: stream greedy or sampling strategies. Received: strategy='beam'"
            )
        stream_key = key + ("stream",)
        if stream_key not in functions:
            functions[stream_key] = _stream_functions(
                model,
                sampler,
                max_new_tokens,
                stop_token_ids,
                pad_token_id,
                processing,
                jit_compile,
                eager,
            )
        decode = _streaming_decode(functions[stream_key], max_new_tokens, streamer)
    if seed is not None:
        fresh = keras.random.SeedGenerator(seed)
        sampler.seed_generator.state.assign(fresh.state.value)
    inputs = keras.tree.map_structure(ops.convert_to_tensor, inputs)
    tokens, scores = decode(inputs)
    return (tokens, scores) if return_scores else tokens


def stream_generate(model, inputs, max_new_tokens=None, **kwargs):
    """An iterator over the new tokens of `model.generate(inputs, max_new_tokens, **kwargs)`
    (a keras_seq generative model: its `generation_defaults` and input forms apply; any
    other model of the generation protocol goes through `generate`), one int32 NumPy array
    `(batch_size,)` per step, as each is chosen (greedy and sampling strategies; see
    `generate`'s `streamer`). The tokens end as `generate`'s do: the loop stops once every
    row has produced a stop token, or after `max_new_tokens`.

    A thread runs the decoding and hands each step over through a queue, so the consumer
    sees a token as soon as the step that chose it is done; an error in the decoding is
    raised by the iterator."""
    import queue
    import threading

    steps = queue.Queue()
    done = object()

    if hasattr(model, "resolve_generate_arguments"):  # A GenerativeTask.
        run_generate = model.generate
    else:
        run_generate = functools.partial(generate, model)

    def run():
        try:
            run_generate(inputs, max_new_tokens, streamer=steps.put, **kwargs)
        except BaseException as error:  # Handed to the consumer, raised there.
            steps.put(error)
        steps.put(done)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while True:
        item = steps.get()
        if item is done:
            break
        if isinstance(item, BaseException):
            thread.join()
            raise item
        yield item
    thread.join()


def _prompt_mask(inputs, prefix):
    """The real positions of a left-padded prompt: the `padding_mask` of dict `inputs` when
    it lines up with the model's `prefix`, else `None` (every position is real)."""
    if isinstance(inputs, dict) and "padding_mask" in inputs:
        if tuple(inputs["padding_mask"].shape) == tuple(prefix.shape):
            return ops.cast(inputs["padding_mask"], "bool")
    return None


def _check_stops_fit(stop_token_ids, logits):
    """`ValueError` for a stop token outside the model's vocabulary (it would never stop)."""
    vocabulary_size = logits.shape[-1]
    for stop in stop_token_ids:
        if vocabulary_size is not None and stop >= vocabulary_size:
            raise ValueError(
                f"`stop_token_id` must be below the vocabulary size {vocabulary_size}. "
                f"Received: stop_token_id={stop}"
            )


def _check_top_k_fits(sampler, logits):
    """`ValueError` for a `top_k` above the vocabulary size (keras_hub's top-k and top-p
    samplers, whose `k` it is, fail deep inside `top_k` then)."""
    top_k, vocabulary_size = getattr(sampler, "k", None), logits.shape[-1]
    if top_k is None or vocabulary_size is None:
        return
    if top_k > vocabulary_size:
        raise ValueError(
            f"`top_k` must be at most the vocabulary size {vocabulary_size} (the width of the "
            f"model's logits); the default is {OPTION_DEFAULTS['top_k']}. Received: top_k={top_k}"
        )


def _stream_functions(
    model, sampler, max_new_tokens, stop_token_ids, pad_token_id, processing, jit_compile, eager
):
    """`(first, step)`: `first(inputs) -> (state, prefix, prefix_mask)` runs the prompt and
    chooses the first token; `step(state, prefix, prefix_mask) -> state` one more token
    (`keras_seq.generation.sampling.sampling_loop`), each compiled as `generate`'s loop."""
    logits_processor = make_logits_processor(**processing, stop_token_ids=stop_token_ids)

    def loop(prefix, prefix_mask):
        return sampling_loop(
            model.call_with_cache,
            sampler,
            max_new_tokens,
            prefix_length=prefix.shape[1],
            stop_token_ids=stop_token_ids,
            pad_token_id=pad_token_id,
            logits_processor=logits_processor,
            prefix=prefix,
            prefix_mask=prefix_mask,
        )

    def first(inputs):
        prefix, logits, cache = model.prefill(inputs, max_new_tokens)
        _check_stops_fit(stop_token_ids, logits)
        _check_top_k_fits(sampler, logits)
        prefix = ops.cast(prefix, "int32")
        prefix_mask = _prompt_mask(inputs, prefix)
        if prefix_mask is None:
            prefix_mask = ops.ones(ops.shape(prefix), "bool")
        start, _ = loop(prefix, prefix_mask)
        return start(logits, cache), prefix, prefix_mask

    def step(state, prefix, prefix_mask):
        _, step_function = loop(prefix, prefix_mask)
        return step_function(*state)

    if not eager:
        import tensorflow as tf

        first = tf.function(first, jit_compile=jit_compile, autograph=False)
        step = tf.function(step, jit_compile=jit_compile, autograph=False)
    return first, step


def _streaming_decode(functions, max_new_tokens, streamer):
    """A `decode(inputs) -> (token_ids, scores)` that calls `streamer` after each step."""
    first, step = functions

    def decode(inputs):
        state, prefix, prefix_mask = first(inputs)
        streamer(np.asarray(state[2]))
        while int(state[0]) < max_new_tokens and not bool(np.all(np.asarray(state[4]))):
            state = step(state, prefix, prefix_mask)
            streamer(np.asarray(state[2]))
        return ops.concatenate([prefix, state[1]], axis=1), state[3]

    return decode
