"""Recipe `char-lm`: a character language model on the synthetic grammar corpus.

`--model rnn` (the default) trains an `RNNCausalLM` on an LSTM `RNNBackbone`, `--model gpt` a small
`GPTCausalLM` on a `GPTBackbone`, on windows of `keras_seq.data.char_corpus_data` (sentences
of a tiny English grammar; nothing is downloaded). Validation uses text of another seed
during training; the held-out perplexity is measured on a third seed, next to an add-one
smoothed character bigram model's (the baseline a model must beat). Outputs beyond the
runner's: `vocabulary.json` (for `keras-seq generate`), `samples.txt` (greedy and top-p
continuations of held-out prompts) and TensorBoard text samples from `GenerationLogger` after
every epoch.

With `--data` (`run.data`: the user's UTF-8 text files) the model trains on them instead,
streamed with `tf.data` (`keras_seq.recipes.text_data.CharWindows`): the vocabulary is every
character of the files, every tenth window validates, and the held-out perplexity is the
validation windows' (no bigram baseline).

With `--from` (`run.from_model`) it fine-tunes a saved `RNNCausalLM` or `GPTCausalLM` with its
`vocabulary.json`, or a subword GPT-2 model: a checkpoint directory `GPTCausalLM.from_preset`
reads (Hugging Face transformers, keras_seq or keras-hub preset) or a `.keras` `GPTCausalLM`
saved with its tokenizer. The text is then cut into windows of that tokenizer's ids
(`keras_seq.recipes.text_data.TokenWindows`; at most the backbone's `sequence_length`),
the peak learning rate is a fine-tuning one (`FINE_TUNE_LEARNING_RATE`), and the model is
saved with its tokenizer and no `vocabulary.json`: `keras-seq generate`, `evaluate` and
`predict` read text through the tokenizer in `model.keras`.

Settings measured on 2 shared CPU cores (TensorFlow 2.21, Keras 3.15.1):
- rnn: embedding 32, LSTM 128, windows of 64, Adam 5e-3 with a cosine decay, clipnorm 1;
  6 epochs (integration_tests/test_char_lm_learning.py): held-out perplexity 1.68 (the
  bigram baseline 5.9) in 41-52 s.
- gpt: 2 blocks of width 64, 4 heads, windows of 64 (its `sequence_length`: prompt plus
  generated tokens are at most 64), twice the text, AdamW 3e-3 with warm-up and a cosine
  decay; 6 epochs: held-out perplexity 1.65 in 49 s (8 epochs: 1.61; 4: 1.69).
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from keras_seq.callbacks.generation_logger import GenerationLogger
from keras_seq.data.char_corpus import CHAR_CORPUS_VOCABULARY
from keras_seq.data.char_corpus import char_corpus_data
from keras_seq.metrics.perplexity import Perplexity
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM
from keras_seq.models.text_support import detokenize_without_special_tokens
from keras_seq.recipes import vocabulary_file
from keras_seq.recipes.data_files import FromModelError
from keras_seq.recipes.learning_rates import warmup_cosine_decay
from keras_seq.recipes.text_data import CharWindows
from keras_seq.recipes.text_data import TokenWindows

PROMPT_LENGTH = 16
SAMPLE_TOKENS = 48
# The peak learning rate (AdamW, warm-up and cosine decay) when fine-tuning a subword
# checkpoint: a tenth of the rate that trains the small character GPT from scratch.
FINE_TUNE_LEARNING_RATE = 3e-4


# Text sizes: sentences for training and for each of validation and held-out text, and the
# window length (the GPT backbone's `sequence_length`).
SIZES = {
    "quick": {"sentences": 200, "validation_sentences": 40, "sequence_length": 32},
    "rnn": {"sentences": 3000, "validation_sentences": 300, "sequence_length": 64},
    "gpt": {"sentences": 6000, "validation_sentences": 300, "sequence_length": 64},
}


def _build(model_name, quick, sequence_length, size):
    if model_name == "gpt":
        width = 16 if quick else 64
        backbone = GPTBackbone(
            vocabulary_size=size,
            num_layers=1 if quick else 2,
            hidden_dim=width,
            num_heads=2 if quick else 4,
            intermediate_dim=4 * width,
            sequence_length=sequence_length,
            dropout=0.0,
        )
        return GPTCausalLM(backbone)
    backbone = RNNBackbone(
        vocabulary_size=size,
        embedding_dim=8 if quick else 32,
        hidden_dim=16 if quick else 128,
    )
    return RNNCausalLM(backbone)


def _model_inputs(model_name, token_ids):
    if model_name == "gpt":
        return {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}
    return token_ids


def _dataset_inputs(model_name):
    """`_model_inputs` for a `tf.data` map (tensors, not arrays)."""
    if model_name == "gpt":
        return lambda token_ids: {"token_ids": token_ids, "padding_mask": tf.ones_like(token_ids)}
    return lambda token_ids: token_ids


def bigram_perplexity(inputs, targets, test_inputs, test_targets, size):
    """Perplexity of an add-one smoothed character bigram model fitted on `(inputs,
    targets)`, on `(test_inputs, test_targets)`: the baseline."""
    counts = np.ones((size, size))
    np.add.at(counts, (inputs.ravel(), targets.ravel()), 1.0)
    probabilities = counts / counts.sum(axis=1, keepdims=True)
    log_probabilities = np.log(probabilities[test_inputs.ravel(), test_targets.ravel()])
    return float(np.exp(-log_probabilities.mean()))


def _builtin_data(run, length, kind, vocabulary=None):
    """The grammar corpus: training, validation and held-out windows as NumPy arrays."""
    sizes = SIZES["quick" if run.quick else run.model_name]
    inputs, targets = char_corpus_data(sizes["sentences"], length, seed=0)
    validation = char_corpus_data(sizes["validation_sentences"], length, seed=1)
    test_inputs, test_targets = char_corpus_data(sizes["validation_sentences"], length, seed=2)
    steps = math.ceil(len(inputs) / run.batch_size)
    fit_data = (
        (_model_inputs(kind, inputs), targets),
        {"validation_data": (_model_inputs(kind, validation[0]), validation[1])},
    )

    def held_out(model):
        results = model.evaluate(
            _model_inputs(kind, test_inputs),
            test_targets,
            batch_size=run.batch_size,
            return_dict=True,
            verbose=0,
        )
        baseline = bigram_perplexity(
            inputs, targets, test_inputs, test_targets, len(CHAR_CORPUS_VOCABULARY)
        )
        return {"perplexity": results["perplexity"], "bigram_perplexity": baseline}

    return CHAR_CORPUS_VOCABULARY, steps, fit_data, test_inputs[:8], held_out


def _user_data(run, length, kind, vocabulary=None, tokenizer=None):
    """The `--data` text files, streamed (`keras_seq.recipes.text_data.CharWindows`; with
    the `vocabulary` of a model to fine-tune), or in the ids of a checkpoint's `tokenizer`
    (`TokenWindows`; the vocabulary returned is then `None`); the held-out perplexity is the
    validation windows'."""
    if tokenizer is not None:
        windows = TokenWindows(run.data, length, tokenizer)
    else:
        windows = CharWindows(run.data, length, vocabulary)
    to_inputs = _dataset_inputs(kind)
    validation = windows.validation(run.batch_size, to_inputs)
    fit_data = (
        (windows.train(run.batch_size, run.seed, to_inputs), None),
        {"validation_data": validation, "shuffle": False},  # the dataset reshuffles
    )
    run.details["data_windows"] = {
        "train": windows.num_train,
        "validation": windows.num_validation,
    }

    def held_out(model):
        results = model.evaluate(validation, return_dict=True, verbose=0)
        return {"perplexity": results["perplexity"]}

    probe = windows.validation_inputs(min(8, windows.num_validation))
    vocabulary = getattr(windows, "vocabulary", None)
    return vocabulary, windows.steps_per_epoch(run.batch_size), fit_data, probe, held_out


def load_base_model(path):
    """The model `--from` names and its character vocabulary: a `.keras` file of an
    `RNNCausalLM` or `GPTCausalLM` and the source vocabulary of the `vocabulary.json` beside
    it, or a GPT-2 model with a tokenizer (a checkpoint directory of `GPTCausalLM.
    from_preset`, a `.keras` `GPTCausalLM` saved with its tokenizer) and `None`."""
    if os.path.isdir(path):
        try:
            model = GPTCausalLM.from_preset(path)
        except Exception as error:
            raise FromModelError(
                path,
                f"cannot be read as a GPT-2 checkpoint ({type(error).__name__}: {error})",
            ) from None
        if model.tokenizer is None:
            raise FromModelError(
                path, "has no tokenizer files (vocab.json and merges.txt): its text is unknown"
            )
        return model, None
    model = keras.saving.load_model(path, compile=False)
    if not isinstance(model, (RNNCausalLM, GPTCausalLM)):
        raise FromModelError(
            path,
            f"holds a {type(model).__name__}; recipe char-lm fine-tunes an RNNCausalLM or "
            "a GPTCausalLM",
        )
    if getattr(model, "tokenizer", None) is not None:
        return model, None
    directory = os.path.dirname(os.path.abspath(path))
    vocabulary = vocabulary_file.read_vocabulary_file(
        os.path.join(directory, vocabulary_file.FILENAME)
    )["source"]
    return model, vocabulary


def train_char_lm(run):
    """Train the `char-lm` recipe (see the module docstring) for a `RecipeRun`."""
    sizes = SIZES["quick" if run.quick else run.model_name]
    length = sizes["sequence_length"]
    kind, base, vocabulary, tokenizer = run.model_name, None, None, None
    if run.from_model is not None:
        with run.scope():
            base, vocabulary = load_base_model(run.from_model)
        kind = "gpt" if isinstance(base, GPTCausalLM) else "rnn"
        if kind == "gpt":
            length = min(length, base.backbone.sequence_length)
        tokenizer = getattr(base, "tokenizer", None)
        run.details["from_model_class"] = type(base).__name__
        run.details["tokens"] = "characters" if tokenizer is None else type(tokenizer).__name__
    if run.data is None:
        loaded = _builtin_data(run, length, kind, vocabulary)
    else:
        loaded = _user_data(run, length, kind, vocabulary, tokenizer)
    vocabulary, steps_per_epoch, (train_data, fit_kwargs), test_inputs, held_out = loaded

    steps = run.epochs * steps_per_epoch
    with run.scope():
        model = base or _build(kind, run.quick, length, len(vocabulary))
        if kind == "gpt":
            schedule = keras.optimizers.schedules.CosineDecay(
                0.0, steps, warmup_target=3e-3, warmup_steps=max(1, steps // 10)
            )
            if tokenizer is not None:  # a checkpoint: its first step learns too
                schedule = warmup_cosine_decay(FINE_TUNE_LEARNING_RATE, steps)
            optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0)
        else:
            schedule = keras.optimizers.schedules.CosineDecay(5e-3, steps)
            optimizer = keras.optimizers.Adam(schedule, clipnorm=1.0)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[Perplexity()],
            jit_compile=run.compile_jit(),
        )

    max_new_tokens = length - PROMPT_LENGTH if kind == "gpt" else 100
    if tokenizer is None:
        vocabulary_file.write_vocabulary_file(
            run.path(vocabulary_file.FILENAME), vocabulary, max_new_tokens=max_new_tokens
        )
        run.add_file(vocabulary_file.FILENAME)

    def detokenize(ids):
        if tokenizer is not None:
            return detokenize_without_special_tokens(tokenizer, [np.asarray(ids)])[0]
        return vocabulary.decode(np.asarray(ids)[None, :])[0]

    prompts = test_inputs[:2, :PROMPT_LENGTH]
    samples = GenerationLogger(
        run.log_dir,
        prompts,
        max_new_tokens=min(SAMPLE_TOKENS, max_new_tokens),
        detokenize=detokenize,
        generate_kwargs={"jit_compile": False},
    )
    run.fit(model, *train_data, callbacks=[samples], **fit_kwargs)
    run.save_model(model, probe_inputs=_model_inputs(kind, test_inputs))
    run.report(**held_out(model))

    lines = []
    for strategy, options in (("greedy", {}), ("top_p", {"top_p": 0.9, "seed": run.seed})):
        generated = model.generate(
            prompts,
            min(SAMPLE_TOKENS, max_new_tokens),
            strategy=strategy,
            jit_compile=False,
            **options,
        )
        for row in np.asarray(generated):
            text = detokenize(row).replace("\n", "\\n")  # one line per sample
            lines.append(f"[{strategy}] {text}")
    run.write_text("samples.txt", "\n".join(lines) + "\n")
