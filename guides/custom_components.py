"""
Title: Writing your own recurrent cell or attention layer for keras_seq
Author: keras_seq contributors
Date created: 2026/11/22
Last modified: 2026/12/06
Description: A custom cell and a custom attention layer that plug into keras_seq's models
    and blocks, pass the layer-contract harness, and save and reload from `.keras` files.
Accelerator: None
"""

"""
## Introduction

keras_seq's blocks and models take their parts by registered name, config or instance:
`cell="lstm"` or `cell=MyCell(64)`, `attention="multi_head"` or
`attention="my_package>MyAttention"`. A part you write yourself plugs in the same way and
still saves and reloads, provided that it

1. is registered with `keras.saving.register_keras_serializable`;
2. stores its constructor arguments and returns them from `get_config()`;
3. follows the call protocol of the part it replaces (the Keras cell protocol for cells,
   `keras_seq.layers.MultiHeadAttention`'s call for attention).

`keras_seq.testing` checks all of that for you: `run_cell_test` and `run_layer_test` run the
same contract on your layer as keras_seq runs on its own (config round trip, building,
symbolic calls, `.keras` saving, masks, gradients, XLA, mixed precision).

Set `KERAS_SEQ_GUIDE_FAST=1` to run everything on smaller sizes.
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
from keras import ops  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
EPOCHS = 1 if FAST else 3
keras.utils.set_random_seed(0)

"""
## A custom cell: IndRNN

An independently recurrent cell (Li et al., 2018) keeps one recurrent weight per unit instead
of a full matrix: `h_t = relu(x_t W + u * h_{t-1} + b)`. A cell is a layer with `state_size`,
`output_size` and `call(inputs, states, training=None) -> (output, new_states)`; Keras'
`keras.layers.RNN` runs it over time.
"""


@keras.saving.register_keras_serializable(package="my_package")
class IndRNNCell(keras.layers.Layer):
    def __init__(self, units, recurrent_max=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.recurrent_max = recurrent_max
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent_weight = self.add_weight(
            shape=(self.units,),
            initializer=keras.initializers.RandomUniform(0.0, self.recurrent_max),
            name="recurrent_weight",
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs, states, training=None):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        h = ops.relu(ops.matmul(inputs, self.kernel) + self.recurrent_weight * previous + self.bias)
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "recurrent_max": self.recurrent_max}


"""
The contract harness runs it inside `keras.layers.RNN` and checks everything a Keras user
relies on. It raises an `AssertionError` naming what broke, so it fits in your test suite:
"""

keras_seq.testing.run_cell_test(
    IndRNNCell,
    {"units": 8},
    np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32"),
    expected_output_shape=(2, 5, 8),
    expected_num_trainable_weights=3,
)
print("IndRNNCell passes the contract")

"""
Now plug it into a keras_seq model. `RNNBackbone(cell=...)` takes a name, a config or an
instance; with an instance, every layer of the stack gets its own copy from its config.
`RNNCausalLM` puts the next-token readout on the backbone.
"""

vocabulary = keras_seq.data.CHAR_CORPUS_VOCABULARY
x, y = keras_seq.data.char_corpus_data(200 if FAST else 800, sequence_length=32, seed=0)
print("windows", x.shape, "vocabulary", len(vocabulary))

model = keras_seq.models.RNNCausalLM(
    keras_seq.models.RNNBackbone(
        vocabulary_size=len(vocabulary),
        embedding_dim=16,
        hidden_dim=32,
        num_layers=2,
        cell=IndRNNCell(32, recurrent_max=0.9),
    )
)
model.compile(
    optimizer=keras.optimizers.Adam(3e-3, global_clipnorm=1.0),
    loss=keras_seq.losses.SequenceCrossEntropy(),
)
history = model.fit(x, y, batch_size=16, epochs=EPOCHS, verbose=0)
print("losses:", [round(value, 3) for value in history.history["loss"]])

"""
Save and reload: the `.keras` file records the cell by its registered name, so the reloaded
model computes exactly the same thing.
"""

path = os.path.join(tempfile.mkdtemp(), "indrnn_lm.keras")
model.save(path)
reloaded = keras.saving.load_model(path)
difference = np.abs(model.predict(x[:4], verbose=0) - reloaded.predict(x[:4], verbose=0)).max()
print("max |original - reloaded| =", float(difference))
generated = np.asarray(reloaded.generate(x[:1, :8], max_new_tokens=24))
print("generated:", repr(vocabulary.decode(generated)[0]))

"""
## A custom attention layer: gated attention

Gated attention multiplies each head's output by a sigmoid gate computed from the query,
which lets a head switch itself off. Build it around keras_seq's `MultiHeadAttention`, and
keep its call protocol: `call(query, value=None, key=None, ..., return_attention_scores=False,
training=None)` returning outputs shaped like `query`, and `(outputs, scores)` when asked.
Blocks pass masks, caches and position keys as keyword arguments only when they are set, so
forwarding `**kwargs` is enough. A block builds an attention given by *name* with
`num_heads`, `key_dim`, `dropout`, the initializers, `dtype` and `name`: accept them.
"""


@keras.saving.register_keras_serializable(package="my_package")
class GatedAttention(keras.layers.Layer):
    def __init__(
        self,
        num_heads,
        key_dim,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Blocks pass padding masks explicitly (`query_mask`, `value_mask`), and the Keras
        # masks of the inputs pass through unchanged.
        self.supports_masking = True
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.serialize(
            keras.initializers.get(kernel_initializer)
        )
        self.bias_initializer = keras.initializers.serialize(
            keras.initializers.get(bias_initializer)
        )
        self.attention = keras_seq.layers.MultiHeadAttention(
            num_heads,
            key_dim,
            dropout=dropout,
            kernel_initializer=keras.initializers.get(kernel_initializer),
            bias_initializer=keras.initializers.get(bias_initializer),
            dtype=self.dtype_policy,
            name="attention",
        )
        self.gate = keras.layers.Dense(
            1, activation="sigmoid", dtype=self.dtype_policy, name="gate"
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        self.attention.build(query_shape, value_shape or query_shape, key_shape)
        self.gate.build(query_shape)

    def call(self, query, value=None, key=None, return_attention_scores=False, **kwargs):
        result = self.attention(
            query, value, key, return_attention_scores=return_attention_scores, **kwargs
        )
        outputs, scores = result if return_attention_scores else (result, None)
        outputs = outputs * self.gate(query)  # (B, T, D) * (B, T, 1)
        return (outputs, scores) if return_attention_scores else outputs

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        return query_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "dropout": self.dropout,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        }


"""
The harness again, on the layer itself (padding masks included):
"""

sequence = np.random.default_rng(1).normal(size=(2, 6, 16)).astype("float32")
keras_seq.testing.run_layer_test(
    GatedAttention,
    {"num_heads": 2, "key_dim": 8},
    sequence,
    expected_output_shape=(2, 6, 16),
    expected_num_trainable_weights=10,
)
print("GatedAttention passes the contract")

"""
Plug it into the transformer blocks by registered name (the block passes the sizes), and
train a small classifier that must count the tokens equal to 1 in a padded sequence.
"""

NUM_EXAMPLES, SEQUENCE = (256, 12) if FAST else (1024, 16)
rng = np.random.default_rng(2)
tokens = rng.integers(1, 4, size=(NUM_EXAMPLES, SEQUENCE)).astype("int32")
lengths = rng.integers(4, SEQUENCE + 1, size=NUM_EXAMPLES)
tokens[np.arange(SEQUENCE)[None, :] >= lengths[:, None]] = 0
labels = np.minimum((tokens == 1).sum(axis=1), 5).astype("int32")

inputs = keras.Input((None,), dtype="int32")
hidden = keras_seq.layers.TokenAndPositionEmbedding(4, SEQUENCE, 16, mask_zero=True)(inputs)
for index in range(2):
    hidden = keras_seq.layers.TransformerEncoder(
        intermediate_dim=32,
        num_heads=2,
        attention="my_package>GatedAttention",
        name=f"encoder_{index}",
    )(hidden)
pooled = keras.layers.GlobalAveragePooling1D()(hidden)
outputs = keras.layers.Dense(6)(pooled)
classifier = keras.Model(inputs, outputs)
classifier.compile(
    optimizer=keras.optimizers.Adam(3e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
history = classifier.fit(tokens, labels, batch_size=32, epochs=EPOCHS * 3, verbose=0)
print("accuracy:", [round(value, 3) for value in history.history["accuracy"]])
print(type(classifier.get_layer("encoder_0").self_attention).__name__)

path = os.path.join(tempfile.mkdtemp(), "gated_classifier.keras")
classifier.save(path)
reloaded = keras.saving.load_model(path)
difference = np.abs(
    classifier.predict(tokens[:8], verbose=0) - reloaded.predict(tokens[:8], verbose=0)
)
print("max |original - reloaded| =", float(difference.max()))

"""
## Recap

- Register, store your arguments, return them from `get_config()`.
- Follow the call protocol of the part you replace; forward the keyword arguments you do not
  use.
- Test with `keras_seq.testing.run_cell_test` / `run_layer_test`.
- Pass it by registered name (`attention="my_package>GatedAttention"`), config or instance.
"""
