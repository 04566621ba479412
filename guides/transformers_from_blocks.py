"""
Title: Building a transformer from keras_seq blocks
Author: keras_seq contributors
Date created: 2026/11/22
Last modified: 2026/12/06
Description: Embeddings, multi-head attention options, encoder and decoder blocks with
    caches, a tiny encoder-decoder in the functional API, and the same as
    `TransformerSeq2SeqLM`.
Accelerator: None
"""

"""
## Introduction

A transformer is a stack of a few blocks. keras_seq has each of them as a layer:

- `TokenAndPositionEmbedding` and `SinePositionEncoding`: token vectors plus positions;
- `MultiHeadAttention`: Keras' weight layout, plus an additive `attention_bias`, key/value
  caches, zeros for fully masked rows and a memory-efficient path for long sequences;
- `TransformerEncoder`: self-attention, then a feed-forward network;
- `TransformerDecoder`: causal self-attention, cross-attention to an encoder, then a
  feed-forward network, with caches for generation.

This guide puts them together in the Keras functional API, trains a tiny encoder-decoder
to reverse sequences, then does the same with the ready-made
`keras_seq.models.TransformerSeq2SeqLM`. Set `KERAS_SEQ_GUIDE_FAST=1` for smaller sizes.
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
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

"""
## Positions

Attention by itself ignores order: permute the tokens and the outputs permute with them.
A position signal is added to the token vectors. `SinePositionEncoding` adds the fixed
sinusoids of the Transformer paper; it has no weights and no maximum length, and
`start_index` gives the encoding of later positions, as needed when decoding one token at a
time:
"""

sine = keras_seq.layers.SinePositionEncoding()
zeros = np.zeros((1, 10, 16), "float32")
encoding = np.asarray(sine(zeros))  # (1, 10, 16): the encoding itself
step = np.asarray(sine(zeros[:, :1], start_index=7))  # position 7 alone
np.testing.assert_allclose(step[0, 0], encoding[0, 7], atol=1e-6)
print("PE[0, :4] =", np.round(encoding[0, 0, :4], 3), " PE[7, :4] =", np.round(step[0, 0, :4], 3))

"""
`TokenAndPositionEmbedding` embeds token ids and adds a learned (`position="learned"`) or
sine (`position="sine"`) position. With `mask_zero=True` id 0 is padding: the layer outputs
a Keras mask that the blocks downstream pick up.
"""

embedding = keras_seq.layers.TokenAndPositionEmbedding(
    vocabulary_size=20, sequence_length=None, embedding_dim=16, mask_zero=True, position="sine"
)
token_ids = np.array([[5, 8, 2, 0, 0], [7, 1, 3, 9, 4]])
print("embedded", tuple(embedding(token_ids).shape))
print("mask", np.asarray(embedding.compute_mask(token_ids)).astype(int).tolist())

"""
## Multi-head attention and its options

`keras_seq.layers.MultiHeadAttention(num_heads, key_dim)` is self-attention when called with
one sequence and cross-attention with two. `return_attention_scores=True` returns the
probabilities `(batch, heads, queries, keys)`; `use_causal_mask=True` stops each position from
seeing later ones.
"""

x = rng.normal(size=(2, 6, 16)).astype("float32")
attention = keras_seq.layers.MultiHeadAttention(num_heads=4, key_dim=4)
outputs, scores = attention(x, use_causal_mask=True, return_attention_scores=True)
print("outputs", tuple(outputs.shape), "scores", tuple(scores.shape))
assert np.all(np.triu(np.asarray(scores), k=1) == 0.0)  # nothing above the diagonal

"""
**`attention_bias`** is added to the logits before the softmax, broadcast to
`(batch, heads, queries, keys)`. That is how relative position schemes plug in. ALiBi
(Press et al., 2022) subtracts `slope * distance`, with a different slope per head, so that
some heads look near and others far. The mean distance each head attends over shrinks with
its slope:
"""

length = 32
positions = np.arange(length)
distance = np.abs(positions[:, None] - positions[None, :]).astype("float32")  # (T, T)
slopes = np.array([0.0, 0.25, 1.0, 4.0], "float32")
alibi = -slopes[:, None, None] * distance  # (heads, T, T)
long_x = rng.normal(size=(2, length, 16)).astype("float32")
_, alibi_scores = attention(long_x, attention_bias=alibi[None], return_attention_scores=True)
mean_distance = np.sum(np.asarray(alibi_scores) * distance, axis=-1).mean(axis=(0, 2))  # (heads,)
for slope, head_distance in zip(slopes, mean_distance):
    print(f"slope {slope:4}: mean attention distance {head_distance:5.2f}")
assert np.all(np.diff(mean_distance) < 0)

"""
**Masks.** `query_mask` / `value_mask` (or the Keras masks of the inputs) mark real tokens
with `True`. A query with no key to attend to gets zero attention, never NaN:
"""

value_mask = np.array([[True] * 6, [False] * 6])  # the second example has no real key
_, masked_scores = attention(x, value_mask=value_mask, return_attention_scores=True)
assert np.all(np.asarray(masked_scores)[1] == 0.0) and np.all(np.isfinite(masked_scores))

"""
**The memory-efficient path.** Plain attention materializes a `(queries, keys)` matrix per
head, so its memory grows with the square of the length. With `query_chunk_size=...` the
layer processes chunks of queries with an online softmax over chunks of keys, and
recomputes them in the backward pass: the training memory grows linearly. The weights are
the same, and so are the results, to float round-off (it takes the plain path when you ask
for the scores, which it never forms):
"""

length = 256 if FAST else 1024
sequence = rng.normal(size=(2, length, 32)).astype("float32")
padding = np.arange(length)[None, :] < np.array([[length], [length // 2]])  # (2, length)
plain = keras_seq.layers.MultiHeadAttention(num_heads=4, key_dim=8)
chunked = keras_seq.layers.MultiHeadAttention(num_heads=4, key_dim=8, query_chunk_size=64)
plain(sequence)
chunked(sequence)
chunked.set_weights(plain.get_weights())
difference = np.abs(
    np.asarray(plain(sequence, query_mask=padding, value_mask=padding))
    - np.asarray(chunked(sequence, query_mask=padding, value_mask=padding))
).max()
print(f"length {length}: max |plain - chunked| = {difference:.2e}")
assert difference < 1e-4

"""
Its backward pass is FlashAttention-2's: only the output and one number per query are kept,
and each block of logits is recomputed once, so training costs 0.8x to 1.4x the plain
path's time on CPU from N=2048 on (the plain path stays the faster one wherever its memory
fits, measured up to N=8192). From `memory_efficient_length` (4,096 by default) on, the layer
takes this path by itself. Here a model trains on one sequence of 16,384 tokens (1,024 in
fast mode), where the plain path's attention tensors would take 4 GiB each:
"""

long_length = 1024 if FAST else 16384
inputs = keras.Input((long_length, 32))
attended = keras_seq.layers.MultiHeadAttention(
    num_heads=4, key_dim=8, memory_efficient_length=512 if FAST else 4096
)(inputs, use_causal_mask=True)
long_model = keras.Model(inputs, keras.layers.Dense(32)(attended))
long_model.compile(optimizer="adam", loss="mse", jit_compile=False)
long_x = rng.normal(size=(1, long_length, 32)).astype("float32")
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf  # noqa: E402

    tf.config.experimental.reset_memory_stats("CPU:0")
history = long_model.fit(long_x, long_x, batch_size=1, epochs=1, verbose=0)
print(f"length {long_length}: one training step, loss {history.history['loss'][0]:.3f}")
assert np.isfinite(history.history["loss"][0])
if keras.backend.backend() == "tensorflow":
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    print(f"peak memory of the process's tensors: {peak / 2**20:,.0f} MiB")

"""
## Encoder and decoder blocks

`TransformerEncoder(num_heads, intermediate_dim)` keeps the width of its input. It is
numerically keras_hub's `TransformerEncoder` given the same weights (both are post-norm by
default; `normalize_first=True` gives pre-norm). At padded positions the two differ on
purpose: keras_seq's attend to nothing, keras_hub's to the real tokens, so only real
positions are compared:
"""

padding = np.array([[True] * 6, [True] * 4 + [False] * 2])
for normalize_first in (False, True):
    ours = keras_seq.layers.TransformerEncoder(
        num_heads=4, intermediate_dim=32, normalize_first=normalize_first
    )
    theirs = keras_hub.layers.TransformerEncoder(32, 4, normalize_first=normalize_first)
    ours(x)
    theirs(x)
    ours.set_weights(theirs.get_weights())
    difference = np.abs(
        np.asarray(ours(x, padding_mask=padding))[padding]
        - np.asarray(theirs(x, padding_mask=padding))[padding]
    ).max()
    print(f"encoder, normalize_first={normalize_first}: max difference {difference:.1e}")
    assert difference < 1e-5

"""
`TransformerDecoder` with an encoder sequence has causal self-attention and
cross-attention; without one it is a GPT-style block. Also equal to keras_hub's:
"""

source = rng.normal(size=(2, 5, 16)).astype("float32")
source_padding = np.array([[True] * 3 + [False] * 2, [True] * 5])
decoder = keras_seq.layers.TransformerDecoder(num_heads=4, intermediate_dim=32)
reference = keras_hub.layers.TransformerDecoder(32, 4)
decoder(x, source)
reference(x, source)
decoder.set_weights(reference.get_weights())
masks = {"decoder_padding_mask": padding, "encoder_padding_mask": source_padding}
difference = np.abs(
    np.asarray(decoder(x, source, **masks))[padding]
    - np.asarray(reference(x, source, **masks))[padding]
).max()
print(f"decoder with cross-attention: max difference {difference:.1e}")
assert difference < 1e-5

"""
keras_hub's decoder cannot return its attention; keras_seq's returns both, in a dict.
Self-attention is causal, and padded source positions get no cross-attention:
"""

decoded, block_scores = decoder(
    x, source, encoder_padding_mask=source_padding, return_attention_scores=True
)
self_scores = np.asarray(block_scores["self_attention"])  # (2, 4, 6, 6)
cross_scores = np.asarray(block_scores["cross_attention"])  # (2, 4, 6, 5)
print("self", self_scores.shape, "cross", cross_scores.shape)
assert np.all(np.triu(self_scores, k=1) == 0.0) and np.all(cross_scores[0, ..., 3:] == 0.0)

"""
**Caches.** Generating one token at a time, a decoder would recompute every earlier
position at every step. Instead each block keeps the projected keys and values of the
positions seen so far in a self-attention cache `(batch, 2, max_length, heads, key_dim)`,
and the encoder's keys and values, computed once, in a cross-attention cache. Fed one
position at a time, the cached block gives exactly the full pass:
"""

self_cache = np.zeros((2, 2, 6, 4, 4), "float32")
cross_cache = np.zeros((2, 2, 5, 4, 4), "float32")
steps = []
for t in range(6):
    if t == 0:  # Computes and stores the encoder's keys and values.
        step, self_cache, cross_cache = decoder(
            x[:, :1],
            source,
            encoder_padding_mask=source_padding,
            self_attention_cache=self_cache,
            self_attention_cache_update_index=0,
            cross_attention_cache=cross_cache,
            cross_attention_cache_update_index=0,
        )
    else:  # Reuses them: no encoder sequence needed.
        step, self_cache, cross_cache = decoder(
            x[:, t : t + 1],
            encoder_padding_mask=source_padding,
            self_attention_cache=self_cache,
            self_attention_cache_update_index=t,
            cross_attention_cache=cross_cache,
            cross_attention_cache_update_index=None,
        )
    steps.append(np.asarray(step))
full = np.asarray(decoder(x, source, encoder_padding_mask=source_padding))
difference = np.abs(np.concatenate(steps, axis=1) - full).max()
print(f"cached, one position at a time vs full pass: {difference:.1e}")
assert difference < 1e-5

"""
## A tiny encoder-decoder in the functional API

The task: reverse a sequence of symbols (`keras_seq.data.reversal_data`: ids 0 padding, 1
start, 2 end, then 10 symbols). The decoder reads the target shifted right behind the start
token (`target_in`) and predicts the target. The embeddings' Keras masks carry the padding
into the blocks; the loss ignores the padding id 0.
"""

VOCABULARY_SIZE, START_ID, END_ID = 13, 1, 2
MAX_LENGTH = 8 if FAST else 12
NUM_EXAMPLES = 384 if FAST else 2048  # Whole batches: a smaller last one would trace again.
EPOCHS = 2 if FAST else 10
BATCH_SIZE = 64
inputs, targets = keras_seq.data.reversal_data(
    NUM_EXAMPLES, min_length=4, max_length=MAX_LENGTH, num_symbols=10
)
test_inputs, test_targets = keras_seq.data.reversal_data(
    100 if FAST else 200, min_length=4, max_length=MAX_LENGTH, num_symbols=10, seed=1
)
print("source", inputs["source"][0], "-> target", targets[0])

HIDDEN_DIM, NUM_HEADS, INTERMEDIATE_DIM = 64, 4, 128
source_ids = keras.Input((None,), dtype="int32", name="source")
target_in_ids = keras.Input((None,), dtype="int32", name="target_in")
encoded = keras_seq.layers.TokenAndPositionEmbedding(
    VOCABULARY_SIZE, None, HIDDEN_DIM, mask_zero=True, position="sine", name="source_embedding"
)(source_ids)
for index in range(2):
    encoded = keras_seq.layers.TransformerEncoder(
        num_heads=NUM_HEADS, intermediate_dim=INTERMEDIATE_DIM, name=f"encoder_{index}"
    )(encoded)
decoded = keras_seq.layers.TokenAndPositionEmbedding(
    VOCABULARY_SIZE, None, HIDDEN_DIM, mask_zero=True, position="sine", name="target_embedding"
)(target_in_ids)
for index in range(2):
    decoded = keras_seq.layers.TransformerDecoder(
        num_heads=NUM_HEADS, intermediate_dim=INTERMEDIATE_DIM, name=f"decoder_{index}"
    )(decoded, encoded)
logits = keras.layers.Dense(VOCABULARY_SIZE, name="logits")(decoded)
model = keras.Model({"source": source_ids, "target_in": target_in_ids}, logits)
print("parameters:", model.count_params())

"""
Transformers train better with a learning-rate warm-up: here a linear warm-up to 3e-3 over
a tenth of the steps, then a cosine decay to 0, and gradient clipping.
"""


def compile_for(model):
    steps = EPOCHS * math.ceil(NUM_EXAMPLES / BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps, warmup_target=3e-3, warmup_steps=steps // 10
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        run_eagerly=FAST,  # fast mode: a few eager steps cost less than tracing them
    )


compile_for(model)
history = model.fit(inputs, targets, batch_size=BATCH_SIZE, epochs=EPOCHS, verbose=0)
print("losses:", [round(loss, 3) for loss in history.history["loss"]])

"""
A functional model has no cache, so greedy decoding here runs the whole decoder again for
every new token: feed the tokens so far, take the most likely next one. The decoder is
causal, so the positions not generated yet can hold padding: every pass then has the same
shape, and Keras traces its predict function once.
"""


def greedy_full_passes(model, source, max_new_tokens):
    """Greedy decoding by full teacher-forced passes; stops rows at END_ID, pads with 0."""
    target_in = np.zeros((len(source), max_new_tokens), "int32")  # (B, T)
    target_in[:, 0] = START_ID
    generated = np.zeros((len(source), max_new_tokens), "int32")
    done = np.zeros(len(source), bool)
    for t in range(max_new_tokens):
        step_logits = model.predict_on_batch({"source": source, "target_in": target_in})
        token = np.where(done, 0, np.argmax(step_logits[:, t], axis=-1))
        generated[:, t] = token
        done |= token == END_ID
        if t + 1 < max_new_tokens:
            target_in[:, t + 1] = token
    return generated


def report(name, generated):
    exact = np.mean(np.all(generated == test_targets, axis=1))
    tokens = np.mean((generated == test_targets)[test_targets > 0])
    print(f"{name}: exact match {exact:.3f}, correct tokens {tokens:.3f}")
    print("   ", test_inputs["source"][0], "->", generated[0])
    return exact


functional_generated = greedy_full_passes(model, test_inputs["source"], test_targets.shape[1])
functional_exact = report("functional model", functional_generated)
if not FAST:
    assert functional_exact >= 0.8, functional_exact

"""
Saving writes the architecture and weights to one `.keras` file; every keras_seq block is
registered, so loading needs no `custom_objects`:
"""

directory = tempfile.mkdtemp()
model.save(os.path.join(directory, "reverser.keras"))
reloaded = keras.saving.load_model(os.path.join(directory, "reverser.keras"))
difference = np.abs(
    model.predict_on_batch(test_inputs) - reloaded.predict_on_batch(test_inputs)
).max()
print("reloaded functional model, max difference:", float(difference))
assert difference < 1e-6

"""
## The same with `TransformerSeq2SeqLM`

`keras_seq.models.TransformerSeq2SeqBackbone` is this architecture ready-made: shared source
and target embeddings (scaled by `sqrt(hidden_dim)`), sine positions, encoder and decoder
stacks. `keras_seq.models.TransformerSeq2SeqLM` puts the output projection, tied to the
embedding, on it. Presets give the paper's sizes (`transformer_base`, `transformer_big`);
`transformer_tiny` has the sizes used above, and any argument can be overridden:
`TransformerSeq2SeqLM.from_preset` builds the backbone and the task together. Its
`generate()` uses the decoder caches, so each new token costs one position.
"""

seq2seq = keras_seq.models.TransformerSeq2SeqLM.from_preset(
    "transformer_tiny", vocabulary_size=VOCABULARY_SIZE, dropout=0.0
)
print("parameters:", seq2seq.count_params())
compile_for(seq2seq)
history = seq2seq.fit(inputs, targets, batch_size=BATCH_SIZE, epochs=EPOCHS, verbose=0)
print("losses:", [round(loss, 3) for loss in history.history["loss"]])
generated = np.asarray(
    seq2seq.generate(
        test_inputs["source"], max_new_tokens=test_targets.shape[1], stop_token_id=END_ID
    )
)
seq2seq_exact = report("TransformerSeq2SeqLM", generated)
if not FAST:
    assert seq2seq_exact >= 0.8, seq2seq_exact

"""
Cached generation gives the tokens of the slow loop of full passes:
"""

slow = greedy_full_passes(seq2seq, test_inputs["source"], test_targets.shape[1])
agreement = np.mean(slow == generated)
print(f"cached generate() vs full passes: {agreement:.4f} of the tokens agree")
assert agreement > 0.99

"""
And it saves and reloads like any Keras model:
"""

seq2seq.save(os.path.join(directory, "transformer_seq2seq.keras"))
reloaded = keras.saving.load_model(os.path.join(directory, "transformer_seq2seq.keras"))
assert type(reloaded) is keras_seq.models.TransformerSeq2SeqLM
difference = np.abs(
    seq2seq.predict_on_batch(test_inputs) - reloaded.predict_on_batch(test_inputs)
).max()
print("reloaded TransformerSeq2SeqLM, max difference:", float(difference))
assert difference < 1e-6

"""
## Recap

- `TokenAndPositionEmbedding(mask_zero=True)` embeds ids and hands a padding mask to the
  blocks; `SinePositionEncoding` works at any length and any `start_index`.
- `MultiHeadAttention` adds `attention_bias` (ALiBi, relative positions), scores of the
  right shape, zeros for fully masked rows and `query_chunk_size` for long sequences.
- `TransformerEncoder` / `TransformerDecoder` equal keras_hub's blocks given the same
  weights, return their attention, and decode with caches.
- `TransformerSeq2SeqLM.from_preset(...)` is the assembled model (a
  `TransformerSeq2SeqBackbone` with its output projection), with cached `generate()` and
  `.keras` saving.
"""
