"""
Title: Attention and sequence-to-sequence models: Bahdanau, Luong and the bottleneck
Author: keras_seq contributors
Date created: 2026/11/22
Last modified: 2026/12/06
Description: Additive and multiplicative attention on their own, then recurrent
    encoder-decoders with and without attention on date translation and sequence reversal.
Accelerator: None
"""

"""
## Introduction

An RNN encoder-decoder (Sutskever et al., 2014) reads the source into its final state and
writes the target from that state alone: one fixed-size vector must hold the whole input.
Attention (Bahdanau et al., 2015) lifts that limit: at every output step the decoder
compares its state (the *query*) with every encoder output (the *keys*), turns the scores
into a probability distribution over source positions (the *alignment*), and reads the
weighted sum of the encoder outputs (the *context*).

Two families of score functions:

- **additive** (Bahdanau): `score(q, k) = v . tanh(W_q q + W_k k + b)`, a small network;
- **multiplicative** (Luong et al., 2015): `q . k` (`"dot"`), `q W k` (`"general"`) or
  the additive form without a bias (`"concat"`).

This guide uses `keras_seq.layers.BahdanauAttention` and `LuongAttention` on their own, then
`keras_seq.models.RNNSeq2SeqLM` on an `RNNSeq2SeqBackbone` with `attention=None` and
`attention="bahdanau"` on two synthetic tasks: translating human-readable dates to ISO 8601,
and reversing sequences of growing length. Set `KERAS_SEQ_GUIDE_FAST=1` for smaller sizes
(and little learning).
"""

"""
## Setup
"""

import os  # noqa: E402  (keras.io guides open with text cells)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import math  # noqa: E402
import tempfile  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
keras.utils.set_random_seed(0)

"""
## Attention layers on their own

Both layers take `[query, value]` (or `[query, value, key]`; the key defaults to the value)
and return the context, one vector per query, as wide as the value. With
`return_attention_scores=True` they also return the alignment `(batch, queries, keys)`.
Additive attention projects queries and keys to `units` first, so they may differ in size:
"""

rng = np.random.default_rng(0)
query = rng.normal(size=(2, 3, 8)).astype("float32")  # 2 examples, 3 queries of size 8
value = rng.normal(size=(2, 5, 12)).astype("float32")  # 5 keys / values of size 12

bahdanau = keras_seq.layers.BahdanauAttention(units=16)
context, weights = bahdanau([query, value], return_attention_scores=True)
print("context", tuple(context.shape), "alignment", tuple(weights.shape))
print("weights:", [f"{w.path} {tuple(w.shape)}" for w in bahdanau.weights])
np.testing.assert_allclose(np.sum(weights, axis=-1), 1.0, atol=1e-6)

"""
**Masks.** `mask=[query_mask, value_mask]` marks real positions with `True` (the Keras
masks of the inputs fill it in when they have one). Padded keys get exactly zero weight; a
query whose keys are all padded gets zero weights and a zero context, not NaN.
"""

value_mask = np.array([[True] * 5, [True, True, True, False, False]])
context, weights = bahdanau([query, value], mask=[None, value_mask], return_attention_scores=True)
print("alignment of example 1 (its last two keys are padding):")
print(np.round(np.asarray(weights)[1], 3))
assert np.all(np.asarray(weights)[1, :, 3:] == 0.0)

nothing = np.zeros((2, 5), bool)
empty_context, empty_weights = bahdanau(
    [query, value], mask=[None, nothing], return_attention_scores=True
)
assert np.all(np.asarray(empty_context) == 0.0) and np.all(np.asarray(empty_weights) == 0.0)

"""
**One decoder step.** A recurrent decoder asks with one query at a time: a 2-D query
`(batch, query_dim)` gives a 2-D context, equal to that row of the 3-D call.
"""

step_context, step_weights = bahdanau(
    [query[:, 0], value], mask=[None, value_mask], return_attention_scores=True
)
print("one step: context", tuple(step_context.shape), "alignment", tuple(step_weights.shape))
np.testing.assert_allclose(step_context, np.asarray(context)[:, 0], atol=1e-6)

"""
**Luong's score functions.** `"dot"` has no weights and needs queries as wide as the keys;
`"general"` learns one matrix; `"concat"` is the additive score without its bias.
"""

wide_query = rng.normal(size=(2, 3, 12)).astype("float32")
for score_mode, kwargs, q in (
    ("dot", {}, wide_query),
    ("general", {}, query),
    ("concat", {"units": 16}, query),
):
    luong = keras_seq.layers.LuongAttention(score_mode=score_mode, **kwargs)
    luong_context = luong([q, value], mask=[None, value_mask])
    shapes = [tuple(w.shape) for w in luong.weights]
    print(f"{score_mode:>8}: context {tuple(luong_context.shape)}, weights {shapes}")

"""
With the same settings they are Keras' own layers: `LuongAttention("dot")` computes
`keras.layers.Attention`, and `BahdanauAttention` with identity projections, no bias and
`v` = Keras' `scale` computes `keras.layers.AdditiveAttention(use_scale=True)`. What the
keras_seq layers add are the learned projections, 2-D queries for decoders, zeros for
fully masked rows and a float32 softmax under mixed precision.
"""

dot = keras_seq.layers.LuongAttention(score_mode="dot")
keras_dot = keras.layers.Attention()
difference = np.abs(
    np.asarray(dot([wide_query, value], mask=[None, value_mask]))
    - np.asarray(keras_dot([wide_query, value], mask=[None, value_mask]))
).max()
print("LuongAttention('dot') vs keras.layers.Attention:", float(difference))
assert difference < 1e-5

additive = keras_seq.layers.BahdanauAttention(units=12)
keras_additive = keras.layers.AdditiveAttention(use_scale=True)
additive([wide_query, value])
keras_additive([wide_query, value])
scale = rng.normal(size=(12,)).astype("float32")
additive.query_dense.kernel.assign(np.eye(12))
additive.key_dense.kernel.assign(np.eye(12))
additive.key_dense.bias.assign(np.zeros(12))
additive.score_vector.assign(scale)
keras_additive.scale.assign(scale)
difference = np.abs(
    np.asarray(additive([wide_query, value])) - np.asarray(keras_additive([wide_query, value]))
).max()
print("BahdanauAttention (identity W) vs keras.layers.AdditiveAttention:", float(difference))
assert difference < 1e-5

"""
## Training helpers

The settings come from `integration_tests/test_seq2seq_learning.py`: Adam with a cosine
decay and gradient clipping, batches of 64, and a loss that ignores the padding id 0 of
the targets. Greedy decoding with `generate(..., stop_token_id=...)` stops each sequence
at its end token and pads the rest with 0, so a prediction compares with a right-padded
target position by position.
"""

BATCH_SIZE = 64


def train(model, inputs, targets, epochs, learning_rate=5e-3):
    steps = epochs * math.ceil(len(targets) / BATCH_SIZE)
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(learning_rate, steps), clipnorm=1.0
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    history = model.fit(inputs, targets, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
    return [round(loss, 3) for loss in history.history["loss"]]


def greedy(model, source, targets, end_id):
    """Greedy translations, and for each example: exact match, share of correct tokens."""
    generated = np.asarray(
        model.generate(source, max_new_tokens=targets.shape[1], stop_token_id=end_id)
    )
    real = targets > 0
    exact = np.all(generated == targets, axis=1)
    tokens = np.sum((generated == targets) & real, axis=1) / np.sum(real, axis=1)
    return generated, exact, tokens


def check_stopped(generated, end_id):
    """After a sequence's end token, `generate` writes only padding."""
    for row in generated:
        ends = np.flatnonzero(row == end_id)
        if len(ends):
            assert np.all(row[ends[0] + 1 :] == 0), row


"""
## Date translation with attention

`keras_seq.data.date_translation_data` writes random dates in nine formats ("Tuesday,
March 3, 1998", "03/03/98", "3rd of march 1998", ...) as character ids, with the ISO date
as the target. The `"test"` split holds days that never occur in training, in any format.
"""

dates, date_targets = keras_seq.data.date_translation_data(
    768 if FAST else 8000, split="train", seed=0
)
test_dates, test_date_targets = keras_seq.data.date_translation_data(
    100 if FAST else 500, split="test", seed=1
)
source_vocabulary = keras_seq.data.DATE_SOURCE_VOCABULARY
target_vocabulary = keras_seq.data.DATE_TARGET_VOCABULARY
print("source", dates["source"].shape, "target_in", dates["target_in"].shape)
print("first example:", repr(source_vocabulary.decode(dates["source"][:1])[0]), "->")
print("   ", repr(keras_seq.data.decode_dates(date_targets[:1])[0]))

date_model = keras_seq.models.RNNSeq2SeqLM(
    keras_seq.models.RNNSeq2SeqBackbone(
        source_vocabulary_size=len(source_vocabulary),
        target_vocabulary_size=len(target_vocabulary),
        embedding_dim=32,
        hidden_dim=64,
        attention="bahdanau",
    ),
    start_token_id=target_vocabulary.start_id,
)
print("losses:", train(date_model, dates, date_targets, epochs=1 if FAST else 6))

generated, exact, _ = greedy(
    date_model, test_dates["source"], test_date_targets, target_vocabulary.end_id
)
check_stopped(generated, target_vocabulary.end_id)
print(f"held-out exact match: {exact.mean():.3f}")
for source, translation in zip(
    source_vocabulary.decode(test_dates["source"][:5]), keras_seq.data.decode_dates(generated)
):
    print(f"  {source:>30} -> {translation}")
if not FAST:
    assert exact.mean() >= 0.9, exact.mean()  # Measured: 0.988 (test_seq2seq_learning).

"""
Dates in your own words go through `keras_seq.data.encode_dates`:
"""

mine = keras_seq.data.encode_dates(["14 july 1989", "December 31, 2021", "01/02/03"])
mine_translated = date_model.generate(
    mine, max_new_tokens=keras_seq.data.DATE_TARGET_LENGTH, stop_token_id=target_vocabulary.end_id
)
print(keras_seq.data.decode_dates(np.asarray(mine_translated)))

"""
## Reading the alignment

`RNNSeq2SeqLM.attention_weights(source, target_in)` returns the attention weights of the
teacher-forced pass, `(batch, target_length, source_length)`. For the model's own output,
feed the generated tokens back behind the start token. Each output character should look at
the source characters that decide it: the year digits for the year, the month name for the
month.
"""


def text_heatmap(weights, row_labels, column_labels):
    """Draw an alignment with characters, darker = more weight."""
    shades = " .:-=+*#%@"
    print("      " + "".join(column_labels))
    for label, row in zip(row_labels, weights):
        cells = "".join(shades[min(int(w * len(shades)), len(shades) - 1)] for w in row)
        print(f"{label:>5} {cells}")


example = 0
source_text = source_vocabulary.decode(test_dates["source"][example : example + 1])[0]
output = generated[example : example + 1]
output_in = np.concatenate([[[target_vocabulary.start_id]], output[:, :-1]], axis=1)
alignment = np.asarray(date_model.attention_weights(test_dates["source"][:1], output_in))[0]
output_text = keras_seq.data.decode_dates(output)[0]
rows = list(output_text) + ["<end>"]
alignment = alignment[: len(rows), : len(source_text)]  # (T, S), real characters only
np.testing.assert_allclose(alignment.sum(axis=-1), 1.0, atol=1e-5)
text_heatmap(alignment, rows, list(source_text))

"""
The same as a figure, saved to a temporary directory:
"""

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # No display needed.
import matplotlib.pyplot as plt  # noqa: E402

figure, axis = plt.subplots(figsize=(7, 3.5))
axis.imshow(alignment, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
axis.set_xticks(range(len(source_text)), list(source_text))
axis.set_yticks(range(len(rows)), rows)
axis.set_xlabel("source character")
axis.set_ylabel("output character")
figure_path = os.path.join(tempfile.mkdtemp(), "date_alignment.png")
figure.savefig(figure_path, bbox_inches="tight")
plt.close(figure)
print("saved", figure_path)
assert os.path.getsize(figure_path) > 0

"""
## The bottleneck: reversal, with and without attention

Reversing a sequence needs the whole input before the first output symbol, and the first
output symbol is the last input symbol: the hardest case for a fixed-size summary. Train two
otherwise identical models, `attention=None` and `attention="bahdanau"`, on sequences of
8 to 20 symbols, and score them on held-out sequences by length.
"""

NUM_SYMBOLS = 10
END_ID = 2  # reversal_data's ids: 0 padding, 1 start, 2 end, then the symbols
MIN_LENGTH, MAX_LENGTH = (4, 12) if FAST else (8, 20)
reversals, reversal_targets = keras_seq.data.reversal_data(
    576 if FAST else 6000,
    min_length=MIN_LENGTH,
    max_length=MAX_LENGTH,
    num_symbols=NUM_SYMBOLS,
)
test_reversals, test_reversal_targets = keras_seq.data.reversal_data(
    120 if FAST else 600,
    min_length=MIN_LENGTH,
    max_length=MAX_LENGTH,
    num_symbols=NUM_SYMBOLS,
    seed=1,
)
lengths = (test_reversals["source"] > 0).sum(axis=1)
buckets = np.array_split(np.arange(MIN_LENGTH, MAX_LENGTH + 1), 3)

scores = {}
reversal_models = {}
for attention in (None, "bahdanau"):
    model = keras_seq.models.RNNSeq2SeqLM(
        keras_seq.models.RNNSeq2SeqBackbone(
            source_vocabulary_size=NUM_SYMBOLS + 3,
            target_vocabulary_size=NUM_SYMBOLS + 3,
            embedding_dim=32,
            hidden_dim=64,
            attention=attention,
        )
    )
    losses = train(model, reversals, reversal_targets, epochs=1 if FAST else 5)
    reversed_ids, exact, tokens = greedy(
        model, test_reversals["source"], test_reversal_targets, END_ID
    )
    check_stopped(reversed_ids, END_ID)
    scores[attention] = (exact, tokens)
    reversal_models[attention] = model
    print(f"attention={attention!r}: losses {losses}")

print(f"{'source length':>14} {'no attention':>24} {'bahdanau':>24}")
for bucket in buckets:
    chosen = (lengths >= bucket[0]) & (lengths <= bucket[-1])
    cells = [
        f"{exact[chosen].mean():.2f} exact {tokens[chosen].mean():.2f} tokens"
        for exact, tokens in (scores[None], scores["bahdanau"])
    ]
    print(f"{bucket[0]:>8}-{bucket[-1]:<5} {cells[0]:>24} {cells[1]:>24}")

"""
Without attention the model does well on short sequences and falls apart as they grow;
with attention, each output step reads the one source position it needs, and the length
hardly matters. (In fast mode both models are barely trained.) The alignment makes that
visible: output step `t` of a source of length `L` attends to position `L - 1 - t`, the
anti-diagonal.
"""

long_end = lengths >= buckets[-1][0]
bottleneck_long = scores[None][1][long_end].mean()
attention_long = scores["bahdanau"][1][long_end].mean()
if not FAST:
    # Measured in test_seq2seq_learning (lengths 15-20): 0.997 of the tokens with attention,
    # 0.32 without.
    assert attention_long >= 0.9 and attention_long - bottleneck_long >= 0.3, scores

alignments = np.asarray(
    reversal_models["bahdanau"].attention_weights(
        test_reversals["source"], test_reversals["target_in"]
    )
)  # (B, T, S)
on_diagonal = np.mean(
    [
        alignments[row, step].argmax() == length - 1 - step
        for row, length in enumerate(lengths)
        for step in range(length)
    ]
)
print(f"output steps attending most to position L - 1 - t: {on_diagonal:.3f}")
if not FAST:
    assert on_diagonal >= 0.9, on_diagonal

example = int(np.argmax(lengths))
length = lengths[example]
symbols = "".join(chr(ord("a") + i - 3) for i in test_reversals["source"][example, :length])
text_heatmap(alignments[example, :length, :length], list(symbols[::-1]), list(symbols))

"""
## Recap

- `BahdanauAttention(units)` and `LuongAttention(score_mode)` take `[query, value]`, masks
  with `True` = real, 2-D queries for one decoder step, and return the alignment with
  `return_attention_scores=True`; fully masked rows give zeros.
- `RNNSeq2SeqLM(RNNSeq2SeqBackbone(..., attention=None | "bahdanau" | "luong"))` is an RNN
  encoder-decoder; train it on `{"source", "target_in"}` with a loss that ignores padding,
  decode with `generate(source, max_new_tokens, stop_token_id=...)`.
- `attention_weights(source, target_in)` gives the alignment for plots.
- Without attention, the final encoder state is a bottleneck that fails as inputs grow;
  attention removes it.
"""
