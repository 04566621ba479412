"""
Title: Getting started with keras_seq
Author: keras_seq contributors
Date created: 2026/11/23
Last modified: 2026/12/06
Description: A first tour for Keras users: what the package holds, its built-in data,
    keras_seq layers in a functional model, a ready language model with `generate()`, and
    `.keras` saving.
Accelerator: None
"""

"""
## Introduction

keras_seq is a library of Keras 3 layers and models for sequences and vision transformers.
Everything is an ordinary Keras object: layers go into `keras.Model`, models train with
`fit`, and everything saves to and reloads from a `.keras` file. The package is split by
concept:

- `keras_seq.layers`: recurrent cells (`ElmanCell`, `LSTMCell`, `GRUCell`) for
  `keras.layers.RNN`, attention (`MultiHeadAttention`, Bahdanau, Luong, window attention),
  transformer encoder and decoder blocks, position embeddings, patch embeddings;
- `keras_seq.models`: ready models with presets. Most families are a backbone (the
  features) and task models that put a head on it: `GPTBackbone` with `GPTCausalLM`,
  `CaptioningCNNBackbone` with `RNNImageCaptioner` and `TransformerImageCaptioner`,
  `ViTBackbone` with `ViTImageClassifier`, `SwinBackbone` with `SwinImageClassifier`,
  `DETRBackbone` with `DETRObjectDetector`, `RNNBackbone` with `RNNCausalLM`, `BERTBackbone`
  with `BERTMaskedLM` and `BERTTextClassifier`, `RNNSeq2SeqBackbone` with `RNNSeq2SeqLM`,
  `TransformerSeq2SeqBackbone` with `TransformerSeq2SeqLM`;
- `keras_seq.generation`: greedy decoding, beam search and sampling (temperature, top-k,
  top-p) for every generative model;
- `keras_seq.losses`, `keras_seq.metrics`, `keras_seq.callbacks`: sequence cross-entropy,
  perplexity, TensorBoard loggers (attention maps, gradient norms, generated samples),
  checkpoint averaging;
- `keras_seq.data`: synthetic tasks generated locally with fixed seeds, nothing downloaded;
- `keras_seq.ops`: pure `keras.ops` functions (attention kernels, masks, boxes, windows);
- `keras_seq.utils`: small helpers, such as checks of the data given to `fit`.

The `keras-seq` command line runs the same pieces without writing code:
`keras-seq info` prints the versions and devices, `keras-seq demo` trains an Elman RNN, an
LSTM, a GRU and a transformer on the adding problem at growing lengths,
`keras-seq train RECIPE` trains a built-in recipe (`keras-seq train --help` lists them) and
`keras-seq generate MODEL.keras --prompt TEXT` decodes from a saved language model.

This guide stays in Python. Set `KERAS_SEQ_GUIDE_FAST=1` to run it on smaller sizes.
"""

"""
## Setup
"""

import os  # noqa: E402  (keras.io guides open with text cells)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tempfile  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
keras.utils.set_random_seed(0)
directory = tempfile.mkdtemp()  # Logs and saved models go here, never into the checkout.
print("keras_seq", keras_seq.__version__, "on Keras", keras.__version__, keras.backend.backend())

"""
## Built-in data

`keras_seq.data` generates the tasks that guides, demos and tests train on: the adding
problem and the copy task (`adding_problem_data`, `copy_task_data`), sequence reversal
(`reversal_data`), date translation (`date_translation_data`), a character corpus
(`char_corpus_data`), scikit-learn's digits (`digits_data`) and synthetic shapes for
detection and captioning. Each is a function of a size and a seed that returns NumPy arrays
ready for `fit`.

Take the **adding problem**. Each of the `T` steps holds a random value in [0, 1) and a
marker; exactly two steps are marked, one in each half, and the target is the sum of the two
marked values. A model has to remember the first marked value until the second one.
"""

SEQUENCE_LENGTH = 10 if FAST else 20
x_train, y_train = keras_seq.data.adding_problem_data(
    1024 if FAST else 8192, SEQUENCE_LENGTH, seed=0
)
x_test, y_test = keras_seq.data.adding_problem_data(256 if FAST else 1000, SEQUENCE_LENGTH, seed=1)
print("inputs", x_train.shape, "targets", y_train.shape)
values, markers = x_train[..., 0], x_train[..., 1]
assert np.all(markers.sum(axis=1) == 2)
np.testing.assert_allclose(y_train[:, 0], (values * markers).sum(axis=1), rtol=1e-6)

"""
The module also gives the score of a model that learns nothing: always predicting 1 has a
mean squared error of `ADDING_PROBLEM_BASELINE_MSE` (1/6) and an accuracy
(`|prediction - target| < 0.04`, the metric `adding_problem_accuracy`) of
`ADDING_PROBLEM_BASELINE_ACCURACY`. Checked on the test set:
"""

ones = np.ones_like(y_test)
baseline_mse = float(np.mean((ones - y_test) ** 2))
baseline_accuracy = float(np.mean(keras_seq.data.adding_problem_accuracy(y_test, ones)))
print(f"predict 1: mse {baseline_mse:.3f}, accuracy {baseline_accuracy:.3f}")
assert abs(baseline_mse - keras_seq.data.ADDING_PROBLEM_BASELINE_MSE) < 0.03
assert abs(baseline_accuracy - keras_seq.data.ADDING_PROBLEM_BASELINE_ACCURACY) < 0.05

"""
## keras_seq layers in a functional model

keras_seq layers are Keras layers: compose them with the functional API like any other. A
recurrent cell computes one step and `keras.layers.RNN` runs it over time; `get_cell` makes
one from a name (`"elman"`, `"lstm"`, `"gru"`), a config or an instance, which is how
keras_seq's own models take theirs. Here a GRU reads the sequence and a `Dense` layer reads
out the sum from its last state.
"""

inputs = keras.Input((SEQUENCE_LENGTH, 2), name="inputs")
cell = keras_seq.layers.get_cell("gru", units=32)  # the same as keras_seq.layers.GRUCell(32)
features = keras.layers.RNN(cell, name="rnn")(inputs)  # (batch, 32): the last output
outputs = keras.layers.Dense(1, name="head")(features)
adder = keras.Model(inputs, outputs, name="adder")
adder.summary()

"""
Compile and fit as usual. `adding_problem_accuracy` is a Keras metric function, and
`keras.callbacks.TensorBoard` writes the curves to a log directory
(`tensorboard --logdir ...` shows them). keras_seq adds TensorBoard callbacks of its own in
`keras_seq.callbacks`, shown in the distributed-training guide.
"""

EPOCHS = 2 if FAST else 5
BATCH_SIZE = 64
adder.compile(
    optimizer=keras.optimizers.Adam(0.01, global_clipnorm=1.0),
    loss="mse",
    metrics=[keras_seq.data.adding_problem_accuracy],
)
log_dir = os.path.join(directory, "logs")
history = adder.fit(
    x_train,
    y_train,
    batch_size=BATCH_SIZE,
    epochs=EPOCHS,
    validation_data=(x_test, y_test),
    callbacks=[keras.callbacks.TensorBoard(log_dir)],
    verbose=0,
)
print("training mse per epoch:", np.round(history.history["loss"], 4))
test_mse, test_accuracy = adder.evaluate(x_test, y_test, verbose=0)
print(f"test: mse {test_mse:.4f}, accuracy {test_accuracy:.3f}")
print("TensorBoard logs:", sorted(os.listdir(log_dir)))
for split in ("train", "validation"):
    assert os.listdir(os.path.join(log_dir, split)), split  # TensorBoard event files
assert history.history["loss"][-1] < history.history["loss"][0]
if not FAST:
    assert test_mse < keras_seq.data.ADDING_PROBLEM_BASELINE_MSE / 10, test_mse
    assert test_accuracy > 3 * keras_seq.data.ADDING_PROBLEM_BASELINE_ACCURACY, test_accuracy

"""
## A ready model: a character language model

`keras_seq.models` holds assembled models. Each is a functional `keras.Model` whose config
is its constructor arguments, with architecture presets (random weights, nothing
downloaded). The presets belong to the backbones, listed in `Backbone.presets`;
`Backbone.from_preset(name, **overrides)` builds the backbone alone and
`Task.from_preset(name, **overrides)` the backbone with the task's head on it.

`RNNBackbone` embeds token ids and runs stacked recurrent layers; `RNNCausalLM` puts a
readout on it that predicts the next token at every step. The model learns the text of
`char_corpus_data`, sentences of a toy grammar ("the old cat sees a red bird."), encoded
with `CHAR_CORPUS_VOCABULARY`: windows of characters as inputs, the same windows shifted by
one as targets.
"""

vocabulary = keras_seq.data.CHAR_CORPUS_VOCABULARY
print("presets:", sorted(keras_seq.models.RNNBackbone.presets))
x_text, y_text = keras_seq.data.char_corpus_data(300 if FAST else 3000, sequence_length=64)
print("windows", x_text.shape, "first:", repr(vocabulary.decode(x_text[:1])[0][:40]))
assert np.all(x_text[:, 1:] == y_text[:, :-1])

language_model = keras_seq.models.RNNCausalLM.from_preset(
    "char_gru_small", vocabulary_size=len(vocabulary)
)
language_model.compile(
    optimizer=keras.optimizers.Adam(5e-3, clipnorm=1.0),
    loss=keras_seq.losses.SequenceCrossEntropy(),
    metrics=[keras_seq.metrics.Perplexity()],
)
history = language_model.fit(x_text, y_text, batch_size=32, epochs=2 if FAST else 6, verbose=0)
perplexities = history.history["perplexity"]
print("perplexity per epoch:", np.round(perplexities, 2))

"""
Perplexity is the number of characters the model hesitates between, on average. Guessing
uniformly gives the vocabulary size; a model that knows the words only hesitates at word and
sentence boundaries.
"""

assert perplexities[-1] < perplexities[0] < len(vocabulary)
if not FAST:
    assert perplexities[-1] < 2.5, perplexities

"""
## Generating text

Every generative model has `generate(inputs, max_new_tokens, strategy=...)`, which calls
`keras_seq.generation.generate(model, inputs, ...)`: the prompt runs once, then each new
token goes through the recurrent states (or, for transformers, key/value caches). The
strategies are `keras_seq.generation.STRATEGIES`. Greedy decoding takes the most likely token
at every step; top-p (nucleus) sampling draws from the smallest set of tokens whose
probability reaches `top_p`, and a `seed` makes the draw reproducible.
"""

prompt_text = "the old "
prompt = vocabulary.encode([prompt_text])  # (1, 8) token ids
NEW_TOKENS = 40
print("strategies:", keras_seq.generation.STRATEGIES)
greedy = language_model.generate(prompt, NEW_TOKENS)  # strategy="greedy"
nucleus = keras_seq.generation.generate(
    language_model, prompt, NEW_TOKENS, strategy="top_p", top_p=0.9, seed=1
)
greedy_text = vocabulary.decode(np.asarray(greedy))[0]
print("greedy   :", repr(greedy_text))
print("top_p 0.9:", repr(vocabulary.decode(np.asarray(nucleus))[0]))

"""
The output holds the prompt followed by the new tokens. Greedy decoding is deterministic, and
so is sampling with a fixed seed:
"""

assert greedy.shape == (1, prompt.shape[1] + NEW_TOKENS)
assert np.all(np.asarray(greedy)[:, : prompt.shape[1]] == prompt)
np.testing.assert_array_equal(greedy, language_model.generate(prompt, NEW_TOKENS))
np.testing.assert_array_equal(
    nucleus, language_model.generate(prompt, NEW_TOKENS, strategy="top_p", top_p=0.9, seed=1)
)

"""
A trained model spells the grammar's words: every complete word of the greedy continuation
is one of them.
"""

grammar_words = set(keras_seq.data.grammar_text(1000).replace(".", " ").split())
continuation = vocabulary.decode(np.asarray(greedy)[:, prompt.shape[1] :])[0]
generated_words = continuation.replace(".", " ").split()[:-1]  # The last may be cut off.
print("generated words:", generated_words)
if not FAST:
    assert generated_words and set(generated_words) <= grammar_words, generated_words

"""
## Saving and reloading

`model.save("name.keras")` writes the architecture, the weights and the compile state to one
file. Every keras_seq layer, model, loss and metric is registered with Keras, so
`keras.saving.load_model` needs no `custom_objects`, only `import keras_seq`. Both models of
this guide come back with identical outputs, and the language model generates the same
text:
"""

for model, sample in ((adder, x_test[:32]), (language_model, x_text[:8])):
    path = os.path.join(directory, f"{model.name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is type(model)
    difference = np.abs(model.predict(sample, verbose=0) - reloaded.predict(sample, verbose=0))
    print(f"{os.path.basename(path)}: max difference after reloading {difference.max():.1e}")
    assert difference.max() < 1e-6

"""
`reloaded`, the last model of the loop, is the language model. It came back compiled, with
its loss and perplexity metric, and it decodes exactly as before:
"""

scores = language_model.evaluate(x_text[:64], y_text[:64], return_dict=True, verbose=0)
reloaded_scores = reloaded.evaluate(x_text[:64], y_text[:64], return_dict=True, verbose=0)
print("evaluate, original:", scores, " reloaded:", reloaded_scores)
assert scores.keys() == reloaded_scores.keys() == {"loss", "perplexity"}
np.testing.assert_allclose(list(reloaded_scores.values()), list(scores.values()), rtol=1e-6)
np.testing.assert_array_equal(reloaded.generate(prompt, NEW_TOKENS), greedy)

"""
## Where to go next

- The [README](../README.md): the full list of features, installation and development.
- [recurrent_networks.py](recurrent_networks.py): cells, stacking, bidirectional layers,
  truncated backpropagation through time, gradient clipping.
- [attention_and_seq2seq.py](attention_and_seq2seq.py): Bahdanau and Luong attention in a
  recurrent encoder-decoder.
- [transformers_from_blocks.py](transformers_from_blocks.py): embeddings, attention options,
  encoder and decoder blocks with caches, `TransformerSeq2SeqLM`.
- [decoding_strategies.py](decoding_strategies.py): greedy, beam search, temperature, top-k
  and top-p decoding compared.
- [vision_transformers.py](vision_transformers.py): ViT and Swin.
- [detr.py](detr.py): object detection with DETR.
- [distributed_training.py](distributed_training.py): `tf.distribute`, XLA, mixed precision,
  keras_seq's TensorBoard callbacks, resuming.
- [custom_components.py](custom_components.py): your own cell or attention layer, plugged
  into keras_seq's blocks and tested with `keras_seq.testing`.
"""
