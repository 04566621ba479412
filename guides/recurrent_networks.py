"""
Title: Recurrent networks with keras_seq
Author: keras_seq contributors
Date created: 2026/11/21
Last modified: 2026/11/21
Description: Elman, LSTM and GRU cells, stacked and bidirectional RNNs, truncated
    backpropagation through time, and gradient clipping.
Accelerator: None
"""

"""
## Introduction

A recurrent network reads a sequence one step at a time and carries a hidden state from
step to step. In Keras the two halves are separate objects:

- a **cell** computes one step: `(x_t, state_{t-1}) -> (y_t, state_t)`;
- the `keras.layers.RNN` **layer** runs a cell over the time axis, handles masks, dropout
  masks, statefulness, and `return_sequences` / `return_state`.

keras_seq provides cells (`ElmanCell`, `LSTMCell`, `GRUCell`) that plug into
`keras.layers.RNN`, `keras.layers.Bidirectional` and `keras.layers.StackedRNNCells`
unchanged, plus what Keras lacks for training on long sequences:

- `keras_seq.layers.TruncatedBPTT`, which stops the gradient every `chunk_length` steps
  inside one pass;
- `keras_seq.data.truncated_bptt_dataset` and
  `keras_seq.callbacks.ResetStatesAtSequenceBoundary`, which stream sequences too long for
  memory through a stateful RNN, chunk by chunk.

The last section shows gradient clipping, which comes from the Keras optimizers.

Set `KERAS_SEQ_GUIDE_FAST=1` to run everything on even smaller sizes.
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
import tensorflow as tf  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
EPOCHS = 2 if FAST else 8
NUM_SEQUENCES = 64 if FAST else 256
keras.utils.set_random_seed(42)

"""
## A toy task: remember a value

Each input step carries a random value and a 0/1 marker. The target at every step is the
value seen at the most recent marker: the network has to store a number in its state and
hold it for several steps. Markers fall every `GAP` steps, so a model that only sees the
last few steps cannot solve it.
"""

GAP = 6


def make_recall_data(num_sequences, sequence_length, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.uniform(-1, 1, (num_sequences, sequence_length)).astype("float32")
    markers = np.zeros((num_sequences, sequence_length), "float32")
    markers[:, ::GAP] = 1.0
    targets = np.zeros_like(values)
    for t in range(sequence_length):
        last_marker = t - t % GAP
        targets[:, t] = values[:, last_marker]
    inputs = np.stack([values, markers], axis=-1)  # (N, T, 2)
    return inputs, targets[..., None]  # (N, T, 1)


x_train, y_train = make_recall_data(NUM_SEQUENCES, 24)
print("inputs", x_train.shape, "targets", y_train.shape)

"""
## Cells inside `keras.layers.RNN`

A cell is a layer that maps one step. `ElmanCell` is the classic Elman recurrence
`h_t = tanh(x_t W + h_{t-1} U + b)`; `LSTMCell` and `GRUCell` add gates that decide what to
keep in the state. Wrap any of them in `keras.layers.RNN` to get a sequence layer.
"""

for cell in (
    keras_seq.layers.ElmanCell(16),
    keras_seq.layers.LSTMCell(16),
    keras_seq.layers.GRUCell(16),
):
    layer = keras.layers.RNN(cell, return_sequences=True)
    print(f"{type(cell).__name__:>10}: output {tuple(layer(x_train[:2]).shape)}")

"""
The weights use the Keras layout, so `ElmanCell(units)` and `keras.layers.SimpleRNNCell`
exchange weights and compute the same thing:
"""

ours = keras.layers.RNN(keras_seq.layers.ElmanCell(8), return_sequences=True)
theirs = keras.layers.SimpleRNN(8, return_sequences=True)
ours.build(x_train.shape)
theirs.build(x_train.shape)
theirs.set_weights(ours.get_weights())
difference = np.abs(ours(x_train[:4]) - theirs(x_train[:4])).max()
print("max |ElmanCell - SimpleRNN| =", float(difference))

"""
Let's train an LSTM on the recall task. A `Dense` layer reads out each step.
"""


def recall_model(sequence_layer):
    inputs = keras.Input((None, 2))
    hidden = sequence_layer(inputs)
    outputs = keras.layers.Dense(1)(hidden)
    return keras.Model(inputs, outputs)


model = recall_model(keras.layers.RNN(keras_seq.layers.LSTMCell(32), return_sequences=True))
model.compile(keras.optimizers.Adam(0.01), "mse")
history = model.fit(x_train, y_train, batch_size=32, epochs=EPOCHS, verbose=0)
print("LSTM loss per epoch:", np.round(history.history["loss"], 4))

"""
## Stacking and bidirectional layers

Pass a list of cells to `keras.layers.RNN` to stack them: Keras builds a
`keras.layers.StackedRNNCells`, and each step runs through every cell before the next step
begins. `keras.layers.Bidirectional` runs a second copy of the layer backwards and
concatenates the two outputs. Both take keras_seq cells as they are.
"""

stacked = keras.layers.RNN(
    [keras_seq.layers.ElmanCell(16), keras_seq.layers.GRUCell(16)],
    return_sequences=True,
)
print("stacked cells:", type(stacked.cell).__name__, tuple(stacked(x_train[:2]).shape))

bidirectional = keras.layers.Bidirectional(
    keras.layers.RNN(keras_seq.layers.LSTMCell(16), return_sequences=True)
)
print("bidirectional:", tuple(bidirectional(x_train[:2]).shape))  # 2 x 16 features

"""
A bidirectional layer sees the future, so it is for tagging whole sequences, not for
predicting the next step.

## Truncated backpropagation through time, within one pass

Backpropagation through time sends the gradient of a late step all the way back to the
first step. On long sequences that is slow, memory-hungry and prone to exploding
gradients. *Truncated* BPTT keeps the forward pass as it is (the state still flows through
the whole sequence) but stops the gradient every `chunk_length` steps.

Keras has no switch for this. `keras_seq.layers.TruncatedBPTT` wraps any `keras.layers.RNN`
(including `LSTM`, `GRU`, `SimpleRNN`) and does exactly that: its outputs equal the
wrapped layer's, and its gradients are those of the chunks computed one after another.
"""

CHUNK = 4
inner = keras.layers.RNN(keras_seq.layers.GRUCell(8), return_sequences=True)
truncated = keras_seq.layers.TruncatedBPTT(inner, chunk_length=CHUNK)

x = tf.constant(x_train[:2, :12])
print("same forward pass:", np.allclose(truncated(x), inner(x), atol=1e-6))

"""
Now the gradient of the last chunk's outputs with respect to every input step. Without
truncation every earlier step contributes; with it, only the last chunk does.
"""


def gradient_per_step(layer):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x)[:, -CHUNK:])
    return np.abs(tape.gradient(loss, x).numpy()).sum(axis=(0, 2))  # (T,)


np.set_printoptions(precision=3, suppress=True)
print("full BPTT     :", gradient_per_step(inner))
print("truncated BPTT:", gradient_per_step(truncated))

"""
The wrapper trains like any layer. Since the task needs memory across `GAP = 6` steps, a
`chunk_length` shorter than that hides the dependency from the gradient; a longer one
keeps it, at a fraction of the backward cost on long sequences.
"""

model = recall_model(
    keras_seq.layers.TruncatedBPTT(
        keras.layers.RNN(keras_seq.layers.LSTMCell(32), return_sequences=True),
        chunk_length=12,
    )
)
model.compile(keras.optimizers.Adam(0.01), "mse")
history = model.fit(x_train, y_train, batch_size=32, epochs=EPOCHS, verbose=0)
print("truncated LSTM loss per epoch:", np.round(history.history["loss"], 4))

"""
The wrapper saves and reloads like any other layer:
"""

path = os.path.join(tempfile.mkdtemp(), "recall.keras")
model.save(path)
restored = keras.models.load_model(path)
print(
    "reloaded model gives the same outputs:",
    np.allclose(restored.predict(x_train[:8], verbose=0), model.predict(x_train[:8], verbose=0)),
)

"""
## Streaming truncated BPTT for sequences too long for memory

When a sequence is too long even for the forward pass, cut it into chunks and feed them as
consecutive batches to a **stateful** RNN: the state at the end of batch k is the initial
state of batch k + 1, and each batch is its own backward pass, so gradients stop at chunk
boundaries by construction.

`keras_seq.data.truncated_bptt_dataset` orders the chunks so that row i of batch k + 1
continues row i of batch k. It refuses (with a `ValueError`) sequence lengths that are not
a multiple of `chunk_length` and sequence counts that are not a multiple of `batch_size`,
instead of dropping data silently. `ResetStatesAtSequenceBoundary` zeroes the states when a
new group of sequences starts, and at every epoch.
"""

LONG = 48 if FAST else 96
STREAM_BATCH, STREAM_CHUNK = 16, 12
x_long, y_long = make_recall_data(NUM_SEQUENCES // 2, LONG, seed=1)
dataset = keras_seq.data.truncated_bptt_dataset(
    x_long, y_long, chunk_length=STREAM_CHUNK, batch_size=STREAM_BATCH
)
chunks_per_sequence = LONG // STREAM_CHUNK
print("batches:", int(dataset.cardinality()), "shape:", dataset.element_spec[0].shape)


def streaming_model(stateful, batch_size=None):
    inputs = keras.Input(batch_shape=(batch_size, None, 2))
    hidden = keras.layers.RNN(
        keras_seq.layers.LSTMCell(32), return_sequences=True, stateful=stateful
    )(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


stream = streaming_model(stateful=True, batch_size=STREAM_BATCH)
stream.compile(keras.optimizers.Adam(0.01), "mse")
reset = keras_seq.callbacks.ResetStatesAtSequenceBoundary(chunks_per_sequence)
history = stream.fit(dataset, epochs=EPOCHS, shuffle=False, callbacks=[reset], verbose=0)
print("streaming loss per epoch:", np.round(history.history["loss"], 4))

"""
The forward pass is still the full-sequence one: predictions streamed chunk by chunk,
put back in order, equal a non-stateful twin run on the whole sequences.
"""

chunked = stream.predict(dataset.map(lambda x, y: x), callbacks=[reset], verbose=0)
num_groups = len(x_long) // STREAM_BATCH
# (groups * chunks * batch, chunk, 1) -> (groups, chunks, batch, chunk, 1) -> (N, T, 1)
chunked = chunked.reshape(num_groups, chunks_per_sequence, STREAM_BATCH, STREAM_CHUNK, 1)
chunked = chunked.swapaxes(1, 2).reshape(len(x_long), LONG, 1)
twin = streaming_model(stateful=False)
twin.set_weights(stream.get_weights())
print(
    "streamed == full pass:",
    np.allclose(chunked, twin.predict(x_long, verbose=0), atol=1e-5),
)

"""
## Gradient clipping

An Elman network whose recurrent matrix has a large gain amplifies the gradient at every
step back in time: the gradient explodes. Clipping bounds the size of each update. It is
built into every Keras optimizer:

- `global_clipnorm=c` rescales all gradients together by `c / max(global_norm, c)`;
- `clipnorm=c` does the same per variable;
- `clipvalue=v` clips each entry to `[-v, v]`.
"""

exploding = keras.Sequential(
    [
        keras.Input((30, 2)),
        keras.layers.RNN(
            keras_seq.layers.ElmanCell(
                16, recurrent_initializer=keras.initializers.Orthogonal(gain=4.0)
            )
        ),
        keras.layers.Dense(1),
    ]
)
x_clip, y_clip = make_recall_data(32, 30, seed=2)
y_clip = y_clip[:, -1]
with tf.GradientTape() as tape:
    loss = keras.losses.mean_squared_error(y_clip, exploding(x_clip))
    loss = tf.reduce_mean(loss)
gradient_norm = float(tf.linalg.global_norm(tape.gradient(loss, exploding.trainable_weights)))
print("global gradient norm:", round(gradient_norm, 1))

initial_weights = exploding.get_weights()
for clip in (None, 1.0):
    exploding.set_weights(initial_weights)
    optimizer = keras.optimizers.SGD(0.01, global_clipnorm=clip)
    exploding.compile(optimizer, "mse")
    exploding.train_on_batch(x_clip, y_clip)
    step = np.sqrt(
        sum(np.sum((a - b) ** 2) for a, b in zip(exploding.get_weights(), initial_weights))
    )
    print(f"global_clipnorm={clip}: update size {step:.4f}")

"""
With `global_clipnorm=1.0` the update has size `learning_rate * 1.0 = 0.01`, whatever the
gradient norm; without it the step is the raw gradient step. `TruncatedBPTT` helps from the
other side: shorter backward paths have fewer factors to multiply.

## Summary

- keras_seq cells run in `keras.layers.RNN`, `StackedRNNCells` (a list of cells) and
  `Bidirectional`, and share weights with the Keras cells.
- `TruncatedBPTT(layer, chunk_length)` cuts gradients every `chunk_length` steps of a
  single pass; the forward pass is untouched.
- `truncated_bptt_dataset` plus a stateful RNN plus `ResetStatesAtSequenceBoundary`
  streams sequences of any length, one chunk per batch, with `shuffle=False`.
- Clip gradients with the optimizer: `global_clipnorm`, `clipnorm` or `clipvalue`.
"""
