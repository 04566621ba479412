"""
Title: Fine-tuning GPT-2 on a text file
Author: keras_seq contributors
Date created: 2026/12/07
Last modified: 2026/12/07
Description: Load a Hugging Face GPT-2 checkpoint with its byte-level BPE tokenizer,
    fine-tune it on a text file read through tf.data, compare its generations before and
    after, and save and reload it.
Accelerator: GPU
"""

"""
## Introduction

A pretrained language model already knows a language; fine-tuning it on a few megabytes
(here: a few kilobytes) of text of one kind, one author's style, a domain's jargon, a
format, makes it write like that text. The training objective stays the one of
pretraining: predict every next token.

`GPTCausalLM.from_preset` reads Hugging Face GPT-2 checkpoints (`GPT2LMHeadModel`,
`GPT2Model`) with their tokenizer (`vocab.json` and `merges.txt`, or `tokenizer.json`),
attached as `model.tokenizer`, so `model.generate` takes and returns strings. This guide:

1. loads a checkpoint and lets it continue a few prompts;
2. writes a text file, then reads it back through a `tf.data` pipeline that tokenizes it
   and cuts the token stream into fixed-length training windows;
3. fine-tunes the model on them with the next-token cross-entropy;
4. lets it continue the same prompts again;
5. saves it as a preset directory and a `.keras` file and checks that both reloads
   generate the same text.

The checkpoint defaults to `hf://openai-community/gpt2` (GPT-2 small, 124 million
parameters), downloaded from the Hugging Face Hub the first time; fine-tuning it wants a
GPU. Any other GPT-2 checkpoint works (a local directory, an `hf://owner/name` handle or a
keras_seq preset): pass it as the first command-line argument or in the
`KERAS_SEQ_GUIDE_CHECKPOINT` environment variable. Set `KERAS_SEQ_GUIDE_FAST=1` for a
short run. The tests run this guide in fast mode on a tiny GPT-2 written by transformers
(two layers, width 32, 64 positions, a 400-token BPE vocabulary, briefly trained on a toy
English corpus) stored in the repository, so they need no network.
"""

"""
## Setup
"""

import os  # noqa: E402  (keras.io guides open with text cells)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
keras.utils.set_random_seed(0)
directory = tempfile.mkdtemp()  # The text file and saved models go here.
start_time = time.perf_counter()

"""
## The checkpoint

`from_preset` takes a local directory (a transformers checkpoint: `config.json` with
`"model_type": "gpt2"`, `model.safetensors`, the tokenizer files; or a keras_seq preset
written by `save_to_preset`) or an `hf://owner/name` handle, downloaded into
huggingface_hub's cache (with `HF_HUB_OFFLINE=1`, the cached copy is used without asking
the network).
"""

DEFAULT_CHECKPOINT = "hf://openai-community/gpt2"
# `python fine_tuning_gpt2_on_text.py CHECKPOINT`; in a notebook, sys.argv holds the
# kernel's own arguments instead.
arguments = sys.argv[1:] if "ipykernel" not in sys.modules else []
CHECKPOINT = (
    arguments[0] if arguments else os.environ.get("KERAS_SEQ_GUIDE_CHECKPOINT", DEFAULT_CHECKPOINT)
)
print("checkpoint:", CHECKPOINT)

try:
    model = keras_seq.models.GPTCausalLM.from_preset(CHECKPOINT)
except OSError as error:  # huggingface_hub's download errors are all OSErrors
    raise SystemExit(
        f"Could not load the checkpoint {CHECKPOINT!r}: {type(error).__name__}: {error}\n"
        "Downloading from the Hugging Face Hub needs network access (or a copy already in "
        "its cache, with HF_HUB_OFFLINE=1). To use a checkpoint on disk instead, pass its "
        "directory as the first argument of this script or set KERAS_SEQ_GUIDE_CHECKPOINT."
    ) from error
tokenizer = model.tokenizer
if tokenizer is None:
    raise SystemExit(f"{CHECKPOINT} has no tokenizer files, which this guide needs.")
END_TOKEN_ID = tokenizer.end_token_id  # GPT-2's "<|endoftext|>"
POSITIONS = model.backbone.sequence_length  # 1024 for GPT-2
print("parameters:", f"{model.count_params():,}", "- positions:", POSITIONS)
print("end token:", END_TOKEN_ID, repr(tokenizer.id_to_token(END_TOKEN_ID)))

"""
## Before fine-tuning

Greedy decoding (the most likely token at each step) is deterministic, which makes
"before" and "after" comparable. Each output is the prompt followed by its continuation;
generation stops early at the end token.
"""

PROMPTS = ["the small dog chases", "some teacher is"]
MAX_NEW_TOKENS = 16


def continue_prompts(lm):
    return lm.generate(PROMPTS, max_new_tokens=MAX_NEW_TOKENS)


before = continue_prompts(model)
for text in before:
    print("before:", repr(text))

"""
## A text file

Any plain text file would do. To keep the guide self-contained (and its tests offline),
it writes one from keras_seq's built-in text: `keras_seq.data.grammar_text` produces
sentences of a tiny English grammar from a fixed seed ("the lazy fox chases a bird. some
robot sleeps quietly."). Lower-case, with a small vocabulary and a rigid structure, it is
a style unlike the checkpoint's training text, so the effect of fine-tuning shows. Each
line of the file is a short "document" of a few sentences.
"""

NUM_DOCUMENTS = 60 if FAST else 2000
SENTENCES_PER_DOCUMENT = 4
text_path = os.path.join(directory, "grammar.txt")
with open(text_path, "w", encoding="utf-8") as file:
    for index in range(NUM_DOCUMENTS):
        file.write(keras_seq.data.grammar_text(SENTENCES_PER_DOCUMENT, seed=index) + "\n")
print(f"{text_path}: {os.path.getsize(text_path):,} bytes")
with open(text_path, encoding="utf-8") as file:
    print("first line:", file.readline().strip())

"""
## From the file to training windows, in tf.data

The usual way to train a language model on a corpus is to tokenize the documents, join
them into one stream of tokens with the end token between documents (so that the model
learns where a document ends), and cut the stream into windows of `WINDOW + 1` tokens. The
first `WINDOW` tokens of a window are the inputs, the last `WINDOW` the labels: the label
at position `t` is the token at `t + 1`. No window is padded, so the padding mask is all
ones.

Everything runs in `tf.data`: `TextLineDataset` reads the lines, the tokenizer (a Keras
layer of TensorFlow ops) maps each line to its ids, `unbatch` flattens them into a stream of
single tokens, and `batch(WINDOW + 1)` cuts the windows. `cache()` keeps the windows in
memory after the first epoch, so the file is tokenized once.

The windows must fit the model's learned positions; GPT-2 has 1024, but shorter windows
train faster and are long enough for sentences like these.
"""

WINDOW = min(32 if FAST else 128, POSITIONS)
BATCH_SIZE = 16 if FAST else 8


def with_end_token(ids):
    return tf.concat([ids, tf.constant([END_TOKEN_ID], dtype=ids.dtype)], axis=0)


def split_window(window):
    inputs = {
        "token_ids": window[:-1],
        "padding_mask": tf.ones_like(window[:-1], dtype="bool"),
    }
    return inputs, window[1:]


windows = (
    tf.data.TextLineDataset(text_path)
    .map(tokenizer, num_parallel_calls=tf.data.AUTOTUNE)  # a line -> its ids
    .map(with_end_token)
    .unbatch()  # one token at a time
    .batch(WINDOW + 1, drop_remainder=True)
    .map(split_window)
    .cache()
)
num_windows = sum(1 for _ in windows)  # (the first pass fills the cache)
# The count, told to tf.data, lets Keras know the number of steps per epoch.
windows = windows.apply(tf.data.experimental.assert_cardinality(num_windows))
print(f"{num_windows} windows of {WINDOW} tokens")
train_data = windows.shuffle(num_windows, seed=0).batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)
inputs, labels = next(iter(train_data))
print({name: tuple(value.shape) for name, value in inputs.items()}, "labels", labels.shape)
first = inputs["token_ids"][0].numpy()
print("a window:", repr(tokenizer.detokenize(first)))  # a Python string
np.testing.assert_array_equal(first[1:], labels[0].numpy()[:-1])  # labels: shifted by one

"""
## Fine-tuning

`GPTCausalLM` returns logits `(batch, length, vocabulary)` at every position;
`keras_seq.losses.SequenceCrossEntropy` is the mean next-token cross-entropy over the
positions (it would also skip padded positions, had the windows any). Its exponential is
the perplexity. AdamW at a small learning rate with a short warm-up is the usual choice
for fine-tuning a transformer; the tiny checkpoint of the tests takes larger steps.
"""

EPOCHS = 4 if FAST else 3
small_model = model.count_params() < 1_000_000
steps = EPOCHS * -(-num_windows // BATCH_SIZE)
learning_rate = keras.optimizers.schedules.CosineDecay(
    0.0,
    decay_steps=steps,
    warmup_target=1e-2 if small_model else 5e-5,
    warmup_steps=max(1, steps // 10),
)
model.compile(
    optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01),
    loss=keras_seq.losses.SequenceCrossEntropy(),
    run_eagerly=FAST,  # a few steps: tracing the train step would cost more than them
)
initial_loss = model.evaluate(windows.batch(BATCH_SIZE), verbose=0)
print(f"before: loss {initial_loss:.3f}, perplexity {np.exp(initial_loss):.1f}")
history = model.fit(train_data, epochs=EPOCHS, verbose=0, shuffle=False)
print("training losses:", [round(loss, 3) for loss in history.history["loss"]])
final_loss = model.evaluate(windows.batch(BATCH_SIZE), verbose=0)
print(f"after: loss {final_loss:.3f}, perplexity {np.exp(final_loss):.1f}")
assert final_loss < initial_loss, (final_loss, initial_loss)

"""
(The loss here is measured on the training text itself: that shows training works, not
that the model generalizes. For a real corpus, hold out some documents and evaluate on
them.)

## After fine-tuning

The same prompts, the same greedy decoding: the continuations take the style of the file.
"""

after = continue_prompts(model)
for old, new in zip(before, after):
    print("before:", repr(old))
    print(" after:", repr(new))
assert all(text.startswith(prompt) for text, prompt in zip(after, PROMPTS))

"""
## Saving and reloading

`save_to_preset(directory)` writes keras-hub's preset layout (`config.json`,
`model.weights.h5`, `task.json`, and the tokenizer's `tokenizer.json` with its
vocabulary under `assets/`); `GPTCausalLM.from_preset(directory)` reads it back, as it
reads a transformers checkpoint. A `.keras` file holds the model and the tokenizer in one
archive. Greedy decoding is deterministic, so the reloaded models must write exactly the
same text.
"""

preset_dir = os.path.join(directory, "gpt2_grammar")
model.save_to_preset(preset_dir)
print("preset files:", sorted(os.listdir(preset_dir)))
keras_path = os.path.join(directory, "gpt2_grammar.keras")
model.save(keras_path)

for reloaded in (
    keras_seq.models.GPTCausalLM.from_preset(preset_dir),
    keras.saving.load_model(keras_path),
):
    assert type(reloaded) is keras_seq.models.GPTCausalLM
    assert continue_prompts(reloaded) == after
print("reloaded from the preset and from the .keras file: same generations")

"""
Other decoding strategies take the same strings, for instance nucleus sampling with a
seed (see the decoding strategies guide for all of them):
"""

print(model.generate(PROMPTS[0], max_new_tokens=MAX_NEW_TOKENS, strategy="top_p", seed=1))

"""
## Recap

- `GPTCausalLM.from_preset(handle)` loads a GPT-2 checkpoint with its tokenizer;
  `model.generate(strings, max_new_tokens=...)` returns strings.
- A text file becomes training data in `tf.data`: `TextLineDataset`, `map(tokenizer)`, the
  end token between documents, `unbatch`, `batch(WINDOW + 1)`, then inputs
  `{"token_ids", "padding_mask"}` and the labels shifted by one.
- Train with `keras_seq.losses.SequenceCrossEntropy` (mean next-token cross-entropy) at a
  small learning rate.
- `save_to_preset` and `.keras` files keep the tokenizer: the reloaded model takes text.
"""

print(f"done in {time.perf_counter() - start_time:.0f} s")
