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
from keras_seq.generation.compiling import compile_decoding
from keras_seq.generation.compiling import compile_step
from keras_seq.generation.compiling import compiles
from keras_seq.generation.compiling import seeded_while_loop
from keras_seq.generation.logits_processing import checked_stop_ids
from keras_seq.generation.logits_processing import make_logits_processor
from keras_seq.generation.protocol import check_generative
from keras_seq.generation.sampling import sample_search
from keras_seq.generation.sampling import sampling_loop
from keras_seq.generation.stop_strings import check_stop_strings
from keras_seq.generation.stop_strings import stop_matcher_for
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


def _decoder(
    model,
    strategy,
    options,
    max_new_tokens,
    stop_token_ids,
    pad_token_id,
    processing,
    num_return_sequences,
    top_k_given=True,
    stop_matcher=None,
    compiled=False,
):
    """A function `inputs -> (token_ids, scores, token_scores)` and the sampler it uses (or
    `None`)."""
    sampler = None if strategy == "beam" else _make_sampler(strategy, options)
    call_with_cache = compile_step(model, "call_with_cache", compiled)
    logits_processor = make_logits_processor(**processing, stop_token_ids=stop_token_ids)

    def decode(inputs):
        prefix, logits, cache = model.prefill(inputs, max_new_tokens)
        prefix_length = prefix.shape[1]
        _check_stops_fit(stop_token_ids, logits)
        _fit_top_k(sampler, logits, top_k_given)
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
            tokens, scores, token_scores = beam_search(
                call_with_cache,
                logits,
                cache,
                num_beams=options["num_beams"],
                length_penalty=options["length_penalty"],
                early_stopping=options["early_stopping"],
                num_return_sequences=num_return_sequences,
                **common,
            )
            # Each prompt's hypotheses follow it: rows b * R ... b * R + R - 1.
            prefix = ops.repeat(prefix, num_return_sequences, axis=0)
        else:
            tokens, scores, token_scores = sample_search(
                call_with_cache, logits, cache, sampler, stop_matcher=stop_matcher, **common
            )
        tokens = ops.concatenate([ops.cast(prefix, "int32"), tokens], axis=1)
        return tokens, scores, token_scores

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
    num_return_sequences=None,
    stop_strings=None,
    tokenizer=None,
    stream_interval=None,
):
    """Generate token ids from `model` with one of five decoding strategies.

    `model` implements the protocol of `keras_seq.generation.protocol` (`prefill` and
    `call_with_cache`): every keras_seq generative model does, and their `generate()` method
    calls this function. Each step feeds one token through the model's caches (key/value
    caches, recurrent states), so the prompt is never recomputed. The decoding loop is
    compiled once per model and decoding configuration and input shape, then reused across
    calls (keras-hub#779 recompiled per call): a `tf.function` on TensorFlow, a `jax.jit` on
    JAX (the weights are arguments, so a model trained further is decoded with its new
    weights); PyTorch runs it eagerly, or with `jit_compile=True` with the model's step
    compiled by `torch.compile` (`keras_seq.generation.compiling`).

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
        stop_strings: optional string or list of strings (greedy and sampling; needs
            `tokenizer`). A sequence ends once one of them ends within its newest token's
            text (it may start earlier, in the prompt too; the token may run past it):
            Hugging Face's `stop_strings` rule, matched on the bytes of each token inside
            the compiled loop (`keras_seq.generation.stop_strings`). The tokens that made
            the stop string stay in the output.
        tokenizer: the keras-hub tokenizer (byte-level BPE or SentencePiece) whose tokens
            `stop_strings` are matched on. A model's `generate()` passes its own.
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
        stream_interval: optional int >= 1 (with `streamer`). The compiled step function
            runs this many decoding steps per call, and `streamer` then gets their tokens,
            one call per step, in order. `1` (the default) hands over each token as soon as
            it is chosen; each call of the compiled function costs a dispatch and a host
            transfer, about 1.6x the time per token of the compiled loop for a small GPT on
            CPU, and 1.1x with 8 steps per call (`benchmarks/bench_mixed_generation.py`):
            a few steps per call trade latency for speed.
        pad_token_id: int. Filler after the stop token. Defaults to `0`.
        seed: optional non-negative int (sampling strategies only). The same seed gives the
            same tokens on every call; `None` draws new randomness each call.
        return_scores: `False`, `True` or `"token"`. Also return the scores: `True`, one
            per sequence; `"token"`, one per new token. Defaults to `False`.
        num_return_sequences: optional int >= 1 (sampling and beam search). Sequences
            returned per input, each input's next to each other (rows `b * R` to `b * R + R -
            1` for input `b`): sampling draws `R` independent continuations (the inputs are
            repeated, as Hugging Face's `generate` does), beam search returns its `R` best
            hypotheses, best first (`R <= num_beams`). Greedy decoding has one answer, so
            `R > 1` is an error. Defaults to `1`.
        jit_compile: bool or `None`. Compile the loop with XLA. On TensorFlow `False` runs
            it as a plain graph; on JAX `False` runs it uncompiled (op by op, ~0.5 s for 32
            tokens of a tiny GPT against ~3 ms compiled). On PyTorch `True` compiles the
            model's step with `torch.compile` (the loop stays Python): 4.5x to 5.7x faster
            on CPU, but 13 to 25 s of compiling per input shape, so `None` and `False` run
            eagerly there (`keras_seq.generation.compiling` has the measurements). `None`
            means `True` on TensorFlow and JAX unless the model runs eagerly: XLA decoded
            faster than a plain TensorFlow graph at every size measured on CPU, 0.33x the
            graph's time per token at 3 million weights and 0.55x to 0.71x from GPT-2
            small's to GPT-2 medium's size at batch 1 (`keras_seq.ops.dense_matmul` has the
            one-row products that made the difference). The first call of a shape pays the
            compilation.

    Returns:
        int32 token ids `(batch_size * num_return_sequences, prefix_length +
        max_new_tokens)`: the model's prefix (the prompt for language models; nothing for
        seq2seq models and captioners), then the new tokens. With `return_scores=True`,
        `(token_ids, scores)`, scores float32 `(batch_size * num_return_sequences,)`: the sum
        of the log-probabilities of the new tokens (the stop token included) under the
        model, for beam search divided by the length penalty. With `return_scores="token"`,
        `(token_ids, token_scores)`, float32 `(batch_size * num_return_sequences,
        max_new_tokens)`: each new token's log-probability, `0.0` after the stop token (what
        Hugging Face's `compute_transition_scores` gives; the row sums are the scores of
        `return_scores=True`, before beam search's length penalty). They are the model's
        log-probabilities for greedy decoding and sampling (temperature 1, before any
        processor), and the processed ones beam search ranks with (after
        `repetition_penalty` and the other processors, as Hugging Face's beam scores).
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
    stop_token_ids = checked_stop_ids(stop_token_id, stop_token_ids)
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
    if return_scores not in (False, True, "token"):
        raise ValueError(
            "`return_scores` must be False, True (one score per sequence) or 'token' (one "
            f"per new token). Received: return_scores={return_scores!r}"
        )
    num_return_sequences = (
        1
        if num_return_sequences is None
        else validate_positive_int("num_return_sequences", num_return_sequences)
    )
    if num_return_sequences > 1 and strategy == "greedy":
        raise ValueError(
            "Greedy decoding has one answer per input: use a sampling strategy or beam search "
            f"for several. Received: num_return_sequences={num_return_sequences}, "
            "strategy='greedy'"
        )
    if strategy == "beam" and num_return_sequences > options["num_beams"]:
        raise ValueError(
            "`num_return_sequences` cannot exceed `num_beams`: beam search keeps `num_beams` "
            f"hypotheses. Received: num_return_sequences={num_return_sequences}, "
            f"num_beams={options['num_beams']}"
        )
    stop_matcher = None
    if stop_strings is not None:
        stop_strings = check_stop_strings(stop_strings)
        if strategy == "beam":
            raise ValueError(
                "`stop_strings` ends sequences in greedy decoding and sampling; beam search "
                "takes `stop_token_ids`. Received: strategy='beam' with "
                f"stop_strings={list(stop_strings)!r}"
            )
        if tokenizer is None:
            raise ValueError(
                "`stop_strings` are matched on the text of each token: pass the `tokenizer`. "
                f"Received: stop_strings={list(stop_strings)!r}, tokenizer=None"
            )
        stop_matcher, _ = stop_matcher_for(tokenizer, stop_strings)
    if jit_compile is not None:
        validate_bool("jit_compile", jit_compile)
    compiled = compiles([model], jit_compile)
    inputs = keras.tree.map_structure(ops.convert_to_tensor, inputs)
    if jit_compile is None:
        jit_compile = compiled

    key = (
        strategy,
        tuple(sorted((k, v) for k, v in options.items() if k != "seed")),
        max_new_tokens,
        stop_token_ids,
        pad_token_id,
        tuple(sorted(processing.items())),
        jit_compile,
        compiled,
        num_return_sequences if strategy == "beam" else 1,
        top_k is not None,
        id(stop_matcher) if stop_matcher is not None else None,
    )
    functions = model.__dict__.get("_keras_seq_generate_functions")
    if functions is None:
        functions = {}
        # Set past Keras' attribute tracking: the cache holds functions and samplers, not
        # layers or weights of the model.
        object.__setattr__(model, "_keras_seq_generate_functions", functions)
    if key not in functions:
        decode, sampler = _decoder(
            model,
            strategy,
            options,
            max_new_tokens,
            stop_token_ids,
            pad_token_id,
            processing,
            num_return_sequences if strategy == "beam" else 1,
            top_k_given=top_k is not None,
            stop_matcher=stop_matcher,
            compiled=compiled,
        )
        if compiled:
            decode = compile_decoding(decode, [model], [sampler], jit_compile)
        functions[key] = (decode, sampler)
    decode, sampler = functions[key]
    if stream_interval is not None:
        stream_interval = validate_positive_int("stream_interval", stream_interval)
        if streamer is None:
            raise ValueError(
                "`stream_interval` sets how often `streamer` is called: pass a `streamer`. "
                f"Received: stream_interval={stream_interval}, streamer=None"
            )
    if streamer is not None:
        if not callable(streamer):
            raise TypeError(f"`streamer` must be a callable. Received: streamer={streamer!r}")
        if strategy == "beam":
            raise ValueError(
                "`streamer` hands over each step's tokens, which beam search only settles at "
                "its end: stream greedy or sampling strategies. Received: strategy='beam'"
            )
        stream_interval = stream_interval or 1
        stream_key = key + ("stream", stream_interval)
        if stream_key not in functions:
            functions[stream_key] = _stream_functions(
                model,
                sampler,
                max_new_tokens,
                stop_token_ids,
                pad_token_id,
                processing,
                jit_compile,
                compiled,
                top_k_given=top_k is not None,
                stop_matcher=stop_matcher,
                interval=stream_interval,
            )
        decode = _streaming_decode(functions[stream_key], max_new_tokens, streamer)
    if seed is not None:
        fresh = keras.random.SeedGenerator(seed)
        sampler.seed_generator.state.assign(fresh.state.value)
    if num_return_sequences > 1 and strategy != "beam":
        # Independent draws: each input repeated, its copies next to each other.
        inputs = keras.tree.map_structure(
            lambda x: ops.repeat(x, num_return_sequences, axis=0), inputs
        )
    tokens, scores, token_scores = decode(inputs)
    if return_scores == "token":
        return tokens, token_scores
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


def _fit_top_k(sampler, logits, given):
    """A `top_k` above the vocabulary size is a `ValueError` when the caller chose it; the
    default (50) is lowered to the vocabulary size of a smaller model (a character-level
    model has fewer than 50 tokens), as Hugging Face's `TopKLogitsWarper` does."""
    vocabulary_size = logits.shape[-1]
    k = getattr(sampler, "k", None)
    if k is None or vocabulary_size is None or k <= vocabulary_size:
        return
    if given:
        raise ValueError(
            f"`top_k` must be at most the vocabulary size {vocabulary_size}. Received: top_k={k}"
        )
    sampler.k = vocabulary_size


def _stream_functions(
    model,
    sampler,
    max_new_tokens,
    stop_token_ids,
    pad_token_id,
    processing,
    jit_compile,
    compiled,
    top_k_given=True,
    stop_matcher=None,
    interval=1,
):
    """`(first, step)`: `first(inputs) -> (state, prefix, prefix_mask)` runs the prompt and
    chooses the first token; `step(state, prefix, prefix_mask) -> state` up to `interval`
    more tokens (`keras_seq.generation.sampling.sampling_loop`'s step, in a loop that ends
    early at `max_new_tokens` or once every row finished), each compiled as `generate`'s
    loop."""
    logits_processor = make_logits_processor(**processing, stop_token_ids=stop_token_ids)
    call_with_cache = compile_step(model, "call_with_cache", compiled)

    def loop(prefix, prefix_mask):
        return sampling_loop(
            call_with_cache,
            sampler,
            max_new_tokens,
            prefix_length=prefix.shape[1],
            stop_token_ids=stop_token_ids,
            pad_token_id=pad_token_id,
            logits_processor=logits_processor,
            prefix=prefix,
            prefix_mask=prefix_mask,
            stop_matcher=stop_matcher,
        )

    def first(inputs):
        prefix, logits, cache = model.prefill(inputs, max_new_tokens)
        _check_stops_fit(stop_token_ids, logits)
        _fit_top_k(sampler, logits, top_k_given)
        prefix = ops.cast(prefix, "int32")
        prefix_mask = _prompt_mask(inputs, prefix)
        if prefix_mask is None:
            prefix_mask = ops.ones(ops.shape(prefix), "bool")
        start, _ = loop(prefix, prefix_mask)
        return start(logits, cache), prefix, prefix_mask

    def step(state, prefix, prefix_mask):
        _, step_function = loop(prefix, prefix_mask)
        if interval == 1:
            return step_function(*state)
        last = ops.minimum(state[0] + interval, max_new_tokens)

        def more(count, tokens, token, token_scores, finished, cache):
            return ops.logical_and(count < last, ops.logical_not(ops.all(finished)))

        return seeded_while_loop(
            more, step_function, tuple(state), [sampler], maximum_iterations=interval
        )

    if compiled:
        first = compile_decoding(first, [model], [sampler], jit_compile)
        step = compile_decoding(step, [model], [sampler], jit_compile)
    return first, step


def _streaming_decode(functions, max_new_tokens, streamer):
    """A `decode(inputs) -> (token_ids, scores, token_scores)` that calls `streamer` after
    each step."""
    first, step = functions

    def decode(inputs):
        state, prefix, prefix_mask = first(inputs)
        # Copies (`np.array`): the streamer may keep them.
        streamer(np.array(state[2]))
        step_function = step
        if hasattr(step, "get_concrete_function"):
            # The traced function for these shapes, called directly: a `tf.function` call
            # looks its trace up by the arguments' types first (measured ~0.9 ms per token
            # against a ~1.4 ms step on a tiny 4-layer GPT on CPU).
            step_function = step.get_concrete_function(state, prefix, prefix_mask)
        done = 1
        while done < max_new_tokens and not bool(np.all(np.asarray(state[4]))):
            state = step_function(state, prefix, prefix_mask)
            count = int(state[0])
            if count == done + 1:
                streamer(np.array(state[2]))  # one step: the last token alone
            else:
                tokens = np.asarray(state[1])
                for index in range(done, count):
                    streamer(np.array(tokens[:, index]))
            done = count
        token_scores = state[3]
        return ops.concatenate([prefix, state[1]], axis=1), ops.sum(token_scores, 1), token_scores

    return decode
