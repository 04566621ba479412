"""Text in, text out: generation from a saved language or sequence-to-sequence model.

What `keras-seq generate` runs. A causal language model (`RNNCausalLM`, `GPTCausalLM`)
continues the prompt; a sequence-to-sequence model (`RNNSeq2SeqLM`, `TransformerSeq2SeqLM`)
translates it. The deprecated 0.1 classes are subclasses of these, so their saved files work
too. With a vocabulary (`keras_seq.recipes.vocabulary_file`) prompts and outputs are text;
without one they are token ids written as space-separated integers.

The model is a `.keras` file, or a checkpoint that `GPTCausalLM.from_preset` or
`TransformerSeq2SeqLM.from_preset` reads: a directory (a Hugging Face transformers GPT-2 or
Marian checkpoint, a keras_seq preset written by `save_to_preset`, a keras-hub GPT-2 preset),
an `hf://owner/name[@revision]` handle, or a keras-hub preset name (`gpt2_base_en`) or
`kaggle://` handle. A model with a tokenizer (from the checkpoint's tokenizer files, or
saved with the `.keras` file) encodes the prompts and decodes the outputs with it, as
`generate` does with strings, and decodes with the checkpoint's generation defaults (e.g.
Marian's beam search) unless options are given.
"""

import os

import numpy as np

from keras_seq.decoding_options import STRATEGY_OPTIONS
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM
from keras_seq.models.rnn_seq2seq_lm import RNNSeq2SeqLM
from keras_seq.models.transformer_seq2seq_lm import TransformerSeq2SeqLM
from keras_seq.recipes import vocabulary_file
from keras_seq.recipes.model_sources import GenerateOptionError
from keras_seq.recipes.model_sources import checkpoint_task
from keras_seq.recipes.model_sources import directory_config
from keras_seq.recipes.model_sources import keras_file_has_tokenizer
from keras_seq.recipes.model_sources import model_source
from keras_seq.recipes.vocabulary_file import decode_output
from keras_seq.recipes.vocabulary_file import encode_prompt
from keras_seq.subpackages import import_subpackages

# Task classes, so that their deprecated 0.1 subclasses (RNNLanguageModel, GPT, Seq2Seq,
# TransformerSeq2Seq) and a user's subclasses are accepted as well.
LANGUAGE_MODELS = (RNNCausalLM, GPTCausalLM)
SEQ2SEQ_MODELS = (RNNSeq2SeqLM, TransformerSeq2SeqLM)
DEFAULT_MAX_NEW_TOKENS = 32
# The decoding options of the strategies (`--temperature`, `--num-beams`, ...).
OPTION_NAMES = {name for names in STRATEGY_OPTIONS.values() for name in names}


def model_kind(model):
    """`"language_model"`, `"seq2seq"`, or `None` for a model `generate_text` cannot use."""
    if isinstance(model, LANGUAGE_MODELS):
        return "language_model"
    if isinstance(model, SEQ2SEQ_MODELS):
        return "seq2seq"
    return None


def generate_text(
    model,
    prompts,
    vocabulary=None,
    max_new_tokens=None,
    stop_token_id=None,
    write=None,
    **generate_kwargs,
):
    """Generate from `model` for each prompt; return one string per prompt.

    Args:
        model: a causal language model (`RNNCausalLM`, `GPTCausalLM`) or a
            sequence-to-sequence model (`RNNSeq2SeqLM`, `TransformerSeq2SeqLM`), or a
            subclass of one.
        prompts: list of str. Text, or space-separated ids without a vocabulary.
        vocabulary: dict from `read_vocabulary_file`, or `None`. Without one, a language
            model with a `tokenizer` takes and returns text through it.
        max_new_tokens: int or `None`. `None` uses the vocabulary's default, else the
            model's `generation_defaults` (with a tokenizer), else 32.
        stop_token_id: int or `None`. `None` uses the vocabulary's stop token (if any).
        write: optional callable taking a string (e.g. `sys.stdout.write`): stream each
            prompt's line to it as the tokens come (greedy and sampling), one prompt after
            the other, each line ending with a newline; the text written is the returned
            string. Pieces that end inside a character (a byte-level token) wait for the
            rest.
        **generate_kwargs: `strategy`, `temperature`, `top_k`, `top_p`, `num_beams`,
            `seed`, ... as in `keras_seq.generation.generate`.

    Returns:
        A list of strings: for a language model the prompt and its continuation, for a
        seq2seq model the output alone; with `num_return_sequences=R`, `R` per prompt, side
        by side.

    Raises:
        TypeError: `model` is none of these.

    Example:
    ```python
    from keras_seq.data.char_corpus import CHAR_CORPUS_VOCABULARY
    from keras_seq.recipes.generate_text import generate_text

    model = keras_seq.models.RNNCausalLM(
        keras_seq.models.RNNBackbone(
            vocabulary_size=len(CHAR_CORPUS_VOCABULARY), embedding_dim=8, hidden_dim=16
        )
    )
    vocabulary = {"source": CHAR_CORPUS_VOCABULARY, "target": CHAR_CORPUS_VOCABULARY}
    texts = generate_text(model, ["the cat"], vocabulary=vocabulary, max_new_tokens=5)
    assert texts[0].startswith("the cat")  # then 5 characters (untrained: any)
    ids = generate_text(model, ["3 4 5"], max_new_tokens=2)  # no vocabulary: token ids
    assert len(ids[0].split()) == 5
    ```
    """
    kind = model_kind(model)
    if kind is None:
        raise TypeError(
            "`model` must be a causal language model (RNNCausalLM, GPTCausalLM) or a sequence-"
            "to-sequence model (RNNSeq2SeqLM, TransformerSeq2SeqLM). Received: model of type "
            f"{type(model).__name__}"
        )
    if uses_tokenizer(model, vocabulary):
        # Text through the model's own tokenizer; `generate` stops at its end token unless
        # told another stop token.
        if stop_token_id is not None:
            generate_kwargs["stop_token_id"] = stop_token_id
        max_new_tokens = max_new_tokens or default_max_new_tokens(model)
        if write is None:
            return model.generate(list(prompts), max_new_tokens, **generate_kwargs)
        from keras_seq.models.text_support import detokenize_without_special_tokens
        from keras_seq.models.text_support import tokenize_texts

        texts = []
        for prompt in prompts:
            shown = [] if kind == "seq2seq" else tokenize_texts(model.tokenizer, [prompt])[0]
            display = _StreamedLine(
                write,
                lambda ids, shown=shown: detokenize_without_special_tokens(
                    model.tokenizer, [shown + ids]
                )[0],
            )
            texts.append(
                display.finish(
                    model.generate(
                        [prompt], max_new_tokens, streamer=display.update, **generate_kwargs
                    )[0]
                )
            )
        return texts
    vocabulary = vocabulary or {}
    if max_new_tokens is None:
        max_new_tokens = vocabulary.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS
    if stop_token_id is None:
        stop_token_id = vocabulary.get("stop_token_id")
    texts = []
    for prompt in prompts:
        token_ids = encode_prompt(prompt, kind, vocabulary or None)
        display = None
        if write is not None:
            shown = [] if kind == "seq2seq" else np.asarray(token_ids)[0].tolist()
            display = _StreamedLine(
                write,
                lambda ids, shown=shown: decode_output(
                    np.asarray(shown + ids, "int32"), vocabulary or None, stop_token_id
                ),
            )
            generate_kwargs["streamer"] = display.update
        generated = model.generate(
            token_ids, max_new_tokens, stop_token_id=stop_token_id, **generate_kwargs
        )
        for row in np.asarray(generated):  # one row, or `num_return_sequences`
            text = decode_output(row, vocabulary or None, stop_token_id)
            texts.append(text if display is None else display.finish(text))
    return texts


class _StreamedLine:
    """One output line written as it grows: `update(tokens)` (a streamer) adds a step's
    token and writes what the text gained; `finish(text)` writes the rest of the final text
    and the newline, and returns `text`."""

    def __init__(self, write, render):
        self.write, self.render = write, render
        self.ids, self.written = [], ""

    def update(self, tokens):
        self.ids.append(int(np.asarray(tokens).reshape(-1)[0]))
        # A byte-level token may end inside a character (rendered U+FFFD): wait for the rest.
        text = self.render(self.ids).rstrip("\ufffd")
        if text.startswith(self.written) and len(text) > len(self.written):
            self.write(text[len(self.written) :])
            self.written = text

    def finish(self, text):
        if text.startswith(self.written):
            self.write(text[len(self.written) :] + "\n")
        else:  # The text changed under what was shown: show the final line whole.
            self.write("\n" + text + "\n")
        return text


def check_generate_options(model_path, strategy, options, vocabulary_path, prompts):
    """Check the options of `keras-seq generate` before any model is loaded.

    Args:
        model_path: str. A `.keras` file, a checkpoint or preset directory, or an `hf://`
            handle (see `model_source`).
        strategy: str, a key of `STRATEGY_OPTIONS`, or `None` (the model's default,
            checked once the model is loaded).
        options: dict. The decoding options given (`temperature`, `top_k`, ...).
        vocabulary_path: str or `None`. `None` looks for `vocabulary.json` beside the model.
        prompts: list of str.

    Returns:
        The vocabulary (a dict from `read_vocabulary_file`), or `None` when there is none.

    Raises:
        GenerateOptionError: naming the command-line option and the value received.
    """
    source = model_source(model_path)
    if strategy is not None:  # Else checked once the model (and its default) is loaded.
        check_options_apply(strategy, options)
    if source != "keras_file" or keras_file_has_tokenizer(model_path):
        # The model brings its tokenizer (a checkpoint without tokenizer files takes ids:
        # checked once it is loaded).
        if vocabulary_path is not None:
            raise GenerateOptionError(
                "argument --vocabulary: the model brings its own tokenizer (or, a checkpoint "
                f"without tokenizer files, takes token ids). Received: {vocabulary_path!r}"
            )
        for prompt in prompts:
            if not prompt:
                raise GenerateOptionError(
                    "argument --prompt: a prompt must not be empty (GPT models have no start "
                    "token to begin from). Received: ''"
                )
        return None
    if vocabulary_path is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(model_path)), "vocabulary.json")
        vocabulary_path = beside if os.path.isfile(beside) else None
    elif not os.path.isfile(vocabulary_path):
        raise GenerateOptionError(
            f"argument --vocabulary: the file does not exist. Received: {vocabulary_path!r}"
        )
    vocabulary = None
    if vocabulary_path is not None:
        try:
            vocabulary = vocabulary_file.read_vocabulary_file(vocabulary_path)
        except (OSError, ValueError) as error:
            raise GenerateOptionError(
                f"argument --vocabulary: {error} Received: {vocabulary_path!r}"
            ) from None
    for prompt in prompts:
        try:
            encode_prompt(prompt, "language_model", vocabulary)
        except ValueError as error:
            raise GenerateOptionError(f"argument --prompt: {error}") from None
    return vocabulary


def check_options_apply(strategy, options, default=False):
    """`GenerateOptionError` naming the first of `options` that `strategy` does not read
    (`default`: the strategy is the model's default, not a --strategy given)."""
    for name, value in options.items():
        if name not in STRATEGY_OPTIONS[strategy]:
            flag = "--" + name.replace("_", "-")
            reads = ", ".join(STRATEGY_OPTIONS[strategy]) or "no option"
            which = (
                f"the model's default strategy {strategy}"
                if default
                else (f"--strategy {strategy}")
            )
            raise GenerateOptionError(
                f"argument {flag}: does not apply to {which} (it reads {reads}; pass "
                f"--strategy). Received: {flag} {value}"
            )


def uses_tokenizer(model, vocabulary):
    """Whether `generate_text` encodes and decodes with the model's own tokenizer: a model
    with a `tokenizer` (a GPT or Marian checkpoint's, or one saved with the model) and no
    vocabulary file."""
    return (
        vocabulary is None
        and model_kind(model) is not None
        and getattr(model, "tokenizer", None) is not None
    )


def default_max_new_tokens(model):
    """The number of new tokens when none is asked for: `None` when the model has its own
    default (a checkpoint's generation config, in `generation_defaults`), else 32."""
    if "max_new_tokens" in (getattr(model, "generation_defaults", None) or {}):
        return None
    return DEFAULT_MAX_NEW_TOKENS


def load_model(model_path):
    """The model `model_path` names (see `model_source`): `keras.saving.load_model` for a
    `.keras` file, `GPTCausalLM.from_preset` for a directory or an `hf://` handle (downloaded
    into huggingface_hub's cache, or read from it offline).

    Raises:
        GenerateOptionError: the model cannot be loaded or downloaded.
    """
    import keras

    import_subpackages()  # registers every class a saved model may name

    source = model_source(model_path)
    task_cls = GPTCausalLM
    try:
        if source == "keras_file":
            return keras.saving.load_model(model_path)
        directory = model_path
        if source == "hf":
            from keras_seq.models.checkpoints.handles import download_hf

            directory = download_hf(model_path)
        if source != "keras_hub":
            if checkpoint_task(model_path, directory_config(directory)) == "seq2seq":
                task_cls = TransformerSeq2SeqLM
        return task_cls.from_preset(directory)
    except GenerateOptionError:
        raise
    except OSError as error:  # huggingface_hub's download errors are OSErrors
        raise GenerateOptionError(
            f"argument MODEL: cannot load the checkpoint ({type(error).__name__}: {error}). "
            "An hf:// handle needs network access, or a copy in huggingface_hub's cache "
            f"(used offline with HF_HUB_OFFLINE=1). Received: {model_path!r}"
        ) from None
    except Exception as error:
        what = "model" if source == "keras_file" else f"checkpoint as a {task_cls.__name__}"
        raise GenerateOptionError(
            f"argument MODEL: cannot load the {what} ({type(error).__name__}: {error}). "
            f"Received: {model_path!r}"
        ) from None


def generate_from_saved_model(
    model_path, prompts, vocabulary=None, max_new_tokens=None, model=None, **generate_kwargs
):
    """Load the model at `model_path` (`load_model`; or take `model`, already loaded from
    it) and `generate_text` from it.

    What `keras-seq generate` runs once `check_generate_options` passed. A model with a
    fixed number of positions (its GPT backbone's `sequence_length`) must fit the longest
    prompt and the new tokens; when `max_new_tokens` is `None` the default is shortened to fit.

    Returns:
        One string per prompt, as `generate_text`.

    Raises:
        GenerateOptionError: a model that does not load or cannot generate text, prompts
            too long for it, or options `generate` rejects.
    """
    model = load_model(model_path) if model is None else model
    kind = model_kind(model)
    if kind is None:
        raise GenerateOptionError(
            "argument MODEL: not a language or sequence-to-sequence model (RNNCausalLM, "
            f"GPTCausalLM, RNNSeq2SeqLM, TransformerSeq2SeqLM) but a {type(model).__name__}. "
            f"Received: {model_path!r}"
        )
    strategy = generate_kwargs.get("strategy")
    if strategy is None:
        strategy = (getattr(model, "generation_defaults", None) or {}).get("strategy", "greedy")
        options = {k: v for k, v in generate_kwargs.items() if k in OPTION_NAMES}
        check_options_apply(strategy, options, default=True)
    if generate_kwargs.get("write") is not None and strategy == "beam":
        raise GenerateOptionError(
            "argument --stream: beam search settles its tokens only at its end; stream with "
            "--strategy greedy or a sampling strategy. Received: --stream with the strategy "
            "beam" + ("" if generate_kwargs.get("strategy") else " (the model's default)")
        )
    given_max_new_tokens = max_new_tokens
    if max_new_tokens is None:
        max_new_tokens = (vocabulary or {}).get("max_new_tokens")
    if max_new_tokens is None and not uses_tokenizer(model, vocabulary):
        max_new_tokens = DEFAULT_MAX_NEW_TOKENS
    if max_new_tokens is None:
        max_new_tokens = default_max_new_tokens(model)
    if uses_tokenizer(model, vocabulary):
        from keras_seq.models.text_support import tokenize_texts

        lengths = [len(ids) for ids in tokenize_texts(model.tokenizer, prompts)]
    else:
        lengths = []
        for prompt in prompts:
            try:  # a checkpoint without tokenizer files takes ids
                lengths.append(encode_prompt(prompt, kind, vocabulary).shape[1])
            except ValueError as error:
                raise GenerateOptionError(f"argument --prompt: {error}") from None
    longest = max(lengths)
    # A GPT backbone has `sequence_length` learned positions for the prompt and the new tokens.
    backbone = getattr(model, "backbone", model)
    limit = getattr(backbone, "sequence_length", None) if kind == "language_model" else None
    if limit is not None and longest >= limit:
        raise GenerateOptionError(
            f"argument --prompt: a prompt of {longest} tokens leaves no room in the model's "
            f"{limit} positions. Received: {prompts[lengths.index(longest)]!r}"
        )
    if limit is not None and given_max_new_tokens is None:
        # The default, shortened to fit.
        max_new_tokens = min(max_new_tokens or DEFAULT_MAX_NEW_TOKENS, limit - longest)
    if limit is not None and longest + max_new_tokens > limit:
        raise GenerateOptionError(
            f"argument --max-new-tokens: the prompt ({longest} tokens) plus the new tokens "
            f"must fit the model's {limit} positions. Received: {max_new_tokens}"
        )
    _check_vocabulary_options(model, kind, prompts, vocabulary, generate_kwargs)
    if generate_kwargs.get("stop_strings") and not uses_tokenizer(model, vocabulary):
        raise GenerateOptionError(
            "argument --stop-string: stop strings are matched on a tokenizer's tokens, and "
            "this model has none (its text goes through vocabulary.json or token ids). "
            f"Received: {generate_kwargs['stop_strings'][0]!r}"
        )
    if (generate_kwargs.get("num_return_sequences") or 1) > 1 and generate_kwargs.get("write"):
        raise GenerateOptionError(
            "argument --stream: one line at a time, so one output per prompt. Received: "
            f"--stream with --num-return-sequences {generate_kwargs['num_return_sequences']}"
        )
    try:
        return generate_text(
            model,
            prompts,
            vocabulary=vocabulary,
            max_new_tokens=max_new_tokens,
            **generate_kwargs,
        )
    except ValueError as error:
        raise GenerateOptionError(str(error)) from None


def _vocabulary_sizes(model, kind):
    """`(input_size, output_size)`: the token ids a prompt and the output may hold, or
    `None` where the backbone does not say."""
    backbone = getattr(model, "backbone", model)
    size = getattr(backbone, "vocabulary_size", None)
    if kind == "seq2seq":
        return (
            getattr(backbone, "source_vocabulary_size", None) or size,
            getattr(backbone, "target_vocabulary_size", None) or size,
        )
    return size, size


def _check_vocabulary_options(model, kind, prompts, vocabulary, generate_kwargs):
    """`--top-k`, `--stop-token-id` and prompts of token ids within the model's vocabulary:
    a `GenerateOptionError` naming the option and the value otherwise."""
    input_size, output_size = _vocabulary_sizes(model, kind)
    if isinstance(output_size, int):
        top_k = generate_kwargs.get("top_k")
        if top_k is not None and top_k > output_size:
            raise GenerateOptionError(
                f"argument --top-k: the model's vocabulary has {output_size} tokens, so top_k "
                f"must be at most {output_size}. Received: {top_k}"
            )
        stop = generate_kwargs.get("stop_token_id")
        if stop is not None and stop >= output_size:
            raise GenerateOptionError(
                f"argument --stop-token-id: the model's token ids are 0 to {output_size - 1}. "
                f"Received: {stop}"
            )
    if not isinstance(input_size, int) or vocabulary or uses_tokenizer(model, vocabulary):
        return
    for prompt in prompts:  # token ids
        outside = [int(i) for i in encode_prompt(prompt, kind, None)[0] if i >= input_size]
        if outside:
            raise GenerateOptionError(
                f"argument --prompt: token id {outside[0]} is outside the model's vocabulary "
                f"(ids 0 to {input_size - 1}). Received: {prompt!r}"
            )
