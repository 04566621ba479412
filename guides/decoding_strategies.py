"""
Title: Decoding strategies: greedy, beam search, temperature, top-k and top-p
Author: keras_seq contributors
Date created: 2026/11/22
Last modified: 2026/12/07
Description: Generate text from a trained language model with every decoding strategy of
    keras_seq, and see what each one trades.
Accelerator: None
"""

"""
## Introduction

A language model gives a distribution over the next token; a decoding strategy turns those
distributions into a sequence. Every generative model of keras_seq (`RNNCausalLM`,
`GPTCausalLM`, `RNNSeq2SeqLM`, `TransformerSeq2SeqLM`, `RNNImageCaptioner`,
`TransformerImageCaptioner`) has the same `generate(inputs, max_new_tokens, strategy=...)`:

- `"greedy"`: the most likely token at each step;
- `"beam"`: keeps the `num_beams` most likely partial sequences, with a length penalty;
- `"sample"`: samples from the whole distribution, sharpened or flattened by `temperature`;
- `"top_k"` / `"top_p"`: sample from the `top_k` most likely tokens, or from the smallest set
  whose probability reaches `top_p` (nucleus sampling).

Each step feeds one token through key/value caches (transformers) or recurrent states (RNNs);
the loop is one compiled `tf.function`. Set `KERAS_SEQ_GUIDE_FAST=1` for smaller sizes.
"""

"""
## Setup
"""

import os  # noqa: E402  (keras.io guides open with text cells)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import itertools  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
EPOCHS = 2 if FAST else 12
keras.utils.set_random_seed(0)

"""
## A character language model to decode from

A small GPT learns the text of a toy grammar ("the old cat sees a red bird ..."): a
`GPTBackbone` (embeddings and causal transformer blocks) under a `GPTCausalLM`, the task
model that adds the language-model head and `generate()`.
"""

vocabulary = keras_seq.data.CHAR_CORPUS_VOCABULARY
x, y = keras_seq.data.char_corpus_data(300 if FAST else 2000, sequence_length=48, seed=0)
backbone = keras_seq.models.GPTBackbone(
    vocabulary_size=len(vocabulary),
    num_layers=2,
    hidden_dim=64,
    num_heads=4,
    intermediate_dim=128,
    sequence_length=128,
    dropout=0.0,
)
model = keras_seq.models.GPTCausalLM(backbone)
model.compile(
    optimizer=keras.optimizers.AdamW(3e-3),
    loss=keras_seq.losses.SequenceCrossEntropy(),
)
inputs = {"token_ids": x, "padding_mask": np.ones_like(x)}
history = model.fit(inputs, y, batch_size=32, epochs=EPOCHS, verbose=0)
print("training loss per epoch:", [round(value, 3) for value in history.history["loss"]])

prompt_text = "the old "
prompt = vocabulary.encode([prompt_text])  # (1, 8) token ids: generate() takes them alone


def show(name, token_ids):
    """Print the first sequence of `generate()`'s output: the prompt, then the new text."""
    new_text = vocabulary.decode(np.asarray(token_ids)[:, prompt.shape[1] :])[0]
    print(f"{name:>22}: {prompt_text!r} + {new_text!r}")


"""
## Greedy and beam search

Greedy decoding is deterministic and often repetitive; beam search looks further ahead for
a sequence with a higher total log-probability. `return_scores=True` returns each
sequence's score (the sum of its tokens' log-probabilities for greedy; for beam search, that
sum divided by `length ** length_penalty`).
"""

NEW_TOKENS = 24
greedy, greedy_score = model.generate(prompt, NEW_TOKENS, return_scores=True)
show("greedy", greedy)
beam, beam_score = model.generate(
    prompt, NEW_TOKENS, strategy="beam", num_beams=4, length_penalty=0.0, return_scores=True
)
show("beam (4 beams)", beam)
print("log-probability: greedy", float(greedy_score[0]), " beam", float(beam_score[0]))

"""
With `length_penalty=0.0` the beam score is the plain log-probability, and beam search never
does worse than greedy. Given enough beams it finds the most likely sequence: over two new
tokens, `num_beams` equal to the vocabulary size keeps every first token, so the best pair
is among its candidates. An exhaustive search over every pair confirms it:
"""

HORIZON = 2


def sequence_log_probabilities(continuations, batch_size=2048):
    """log p(continuation | prompt) of each row of `continuations` `(N, HORIZON)`, from
    teacher-forced passes of the model over the prompt followed by the continuation."""
    prompt_length = prompt.shape[1]
    totals = []
    for first in range(0, len(continuations), batch_size):
        rows = continuations[first : first + batch_size]
        ids = np.concatenate([np.repeat(prompt, len(rows), axis=0), rows], axis=1)
        logits = model.predict_on_batch({"token_ids": ids, "padding_mask": np.ones_like(ids)})
        log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits, axis=-1))
        # The token at position prompt_length + i is predicted at position prompt_length + i - 1.
        steps = log_probs[:, prompt_length - 1 : -1]  # (n, HORIZON, V)
        totals.append(np.take_along_axis(steps, rows[..., None], axis=-1).sum(axis=(1, 2)))
    return np.concatenate(totals)


candidates = range(len(vocabulary))
continuations = np.array(list(itertools.product(candidates, repeat=HORIZON)), "int32")
best = continuations[np.argmax(sequence_log_probabilities(continuations))]
exhaustive = best[None, :]
wide_beam = model.generate(
    prompt, HORIZON, strategy="beam", num_beams=len(vocabulary), length_penalty=0.0
)
show("exhaustive (2 tokens)", np.concatenate([prompt, exhaustive], axis=1))
show("beam, all tokens wide", wide_beam)
beam_pair = np.asarray(wide_beam)[:, prompt.shape[1] :].astype("int32")  # (1, 2)
best_log_probability = sequence_log_probabilities(best[None, :])[0]
beam_log_probability = sequence_log_probabilities(beam_pair)[0]
print(f"log-probability: exhaustive {best_log_probability:.4f}, beam {beam_log_probability:.4f}")
assert abs(beam_log_probability - best_log_probability) < 1e-3

"""
## Sampling: temperature, top-k, top-p

Sampling gives varied text. `temperature` below 1 sharpens the distribution (towards greedy),
above 1 flattens it (more surprising, more mistakes). `top_k` and `top_p` cut off the
unlikely tail before sampling. A `seed` makes a draw reproducible.
"""

for temperature in (0.5, 1.0, 1.5):
    sample = model.generate(prompt, NEW_TOKENS, strategy="sample", temperature=temperature, seed=1)
    show(f"sample, T={temperature}", sample)
show("top_k=5", model.generate(prompt, NEW_TOKENS, strategy="top_k", top_k=5, seed=1))
show("top_p=0.9", model.generate(prompt, NEW_TOKENS, strategy="top_p", top_p=0.9, seed=1))

"""
The average log-probability of the sampled text under the model measures how far each
setting wanders from what the model finds likely:
"""

prompts = np.repeat(prompt, 16, axis=0)
for name, kwargs in {
    "greedy": {},
    "sample T=0.5": {"strategy": "sample", "temperature": 0.5},
    "sample T=1.0": {"strategy": "sample", "temperature": 1.0},
    "sample T=1.5": {"strategy": "sample", "temperature": 1.5},
    "top_p=0.9": {"strategy": "top_p", "top_p": 0.9},
}.items():
    if name != "greedy":
        kwargs["seed"] = 2
    tokens, scores = model.generate(prompts, NEW_TOKENS, return_scores=True, **kwargs)
    print(f"{name:>13}: mean log-probability per token {float(np.mean(scores)) / NEW_TOKENS:.3f}")

"""
## Stopping

`stop_token_id` ends a sequence when it produces that token; the rest is filled with
`pad_token_id`. Here a sentence ends with a full stop:
"""

stop = vocabulary.encode(["."])[0, 0]
stopped = model.generate(prompt, 40, stop_token_id=int(stop))
show("greedy, stop at '.'", stopped)

"""
## Prompts of different lengths, and logit processors

A list of token-id lists (or a dict with a `padding_mask`, or strings with a tokenizer)
generates prompts of different lengths in one batch: they are padded on the left to a bucket
length, each row with its own positions and its padding masked, so each row equals
generating its prompt alone. Hugging Face's logit processors work with every strategy:
`repetition_penalty` (the CTRL rule), `no_repeat_ngram_size` and `min_new_tokens`, and
`stop_token_ids` takes several stop tokens.
"""

rows = [vocabulary.encode([text])[0].tolist() for text in ("the old ", "a red bird ")]
for row in model.generate(rows, 24):
    print(repr(vocabulary.decode(np.asarray([row]))[0]))
for row in model.generate(rows, 24, repetition_penalty=1.5, no_repeat_ngram_size=3):
    print("no repeats:", repr(vocabulary.decode(np.asarray([row]))[0]))

"""
## Several answers, per-token scores, streaming and stop strings

`num_return_sequences=R` returns `R` rows per prompt, side by side: `R` independent draws
when sampling, the `R` best hypotheses (best first) with beam search. `return_scores="token"`
gives each new token's log-probability (Hugging Face's transition scores), which shows
where a continuation became unlikely.
"""

answers, token_scores = model.generate(
    prompt, 12, strategy="beam", num_beams=4, num_return_sequences=3, return_scores="token"
)
for row, scores in zip(np.asarray(answers), np.asarray(token_scores)):
    text = vocabulary.decode(row[None, prompt.shape[1] :])[0]
    print(f"{text!r}: least likely token {scores.min():.2f}, total {scores.sum():.2f}")

"""
`keras_seq.generation.stream_generate` hands over each step's tokens as they are chosen
(greedy and sampling), ending on the same tokens as a plain call:
"""

pieces = [
    vocabulary.decode(np.asarray(step)[None, :])[0]
    for step in keras_seq.generation.stream_generate(model, prompt, 12)
]
print("streamed:", repr("".join(pieces)))

"""
With a tokenizer (GPT-2's byte-level BPE or a SentencePiece model), `stop_strings=["\n\n"]`
ends a row once its text contains one of the strings, even when a string spans several
tokens: the match runs inside the compiled loop, on the bytes of each token.

## Speed

The whole decoding loop is compiled once per input shape (XLA by default; `jit_compile=False`
gives a plain TensorFlow graph, which measured 1.7x to 3x slower on CPU) and reused by later
calls; prompts of different lengths are padded to a power-of-two bucket so that they share
it. A streamed call compiles its one-step function once and calls it per token, which costs
a little per token (1.2x the plain call for GPT-2 small on 2 CPU cores, still as fast as
transformers' streamer); `generate(..., streamer=f, stream_interval=8)` hands the tokens over
eight at a time for nearly the plain call's speed. Decoding one sequence on a CPU, the dense
products of each step take a form of their own under XLA (`keras_seq.ops.dense_matmul`,
`keras_seq.ops.reverse_dense_matmul`).

## Speculative decoding

`keras_seq.generation.speculative_generate(model, draft_model, prompt, ...)` returns exactly
the model's greedy tokens while a cheaper draft model (same vocabulary) proposes
`num_draft_tokens` tokens per round, which the model checks in one call; each round keeps
the proposals it agrees with plus its own next token. A one-layer draft trained on the same
text:
"""

draft = keras_seq.models.GPTCausalLM(
    keras_seq.models.GPTBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        hidden_dim=32,
        num_heads=2,
        intermediate_dim=64,
        sequence_length=128,
        dropout=0.0,
    )
)
draft.compile(optimizer=keras.optimizers.AdamW(3e-3), loss=keras_seq.losses.SequenceCrossEntropy())
draft.fit(inputs, y, batch_size=32, epochs=EPOCHS, verbose=0)
speculative, acceptance = keras_seq.generation.speculative_generate(
    model, draft, prompt, NEW_TOKENS, num_draft_tokens=4, return_acceptance=True
)
show("speculative (greedy)", speculative)
assert np.array_equal(speculative, greedy)
print(
    f"draft tokens accepted: {float(acceptance['acceptance_rate']):.0%}; "
    f"{int(acceptance['target_calls'])} calls of the model instead of {NEW_TOKENS - 1}"
)

"""
## Recap

- `generate(..., strategy="greedy" | "beam" | "sample" | "top_k" | "top_p")` on every
  generative model; `return_scores=True` for scores, `seed=` for reproducible samples.
- Beam search with `length_penalty=0.0` maximises the sequence log-probability and reaches
  the exhaustive optimum with enough beams.
- Temperature, top-k and top-p trade likelihood for variety.
- Prompts of different lengths share one call; `repetition_penalty`, `no_repeat_ngram_size`,
  `min_new_tokens` and `stop_token_ids` shape the output of any strategy.
- `num_return_sequences` gives several answers per prompt, `return_scores="token"` the
  log-probability of each token, `stream_generate` the tokens as they come, and
  `stop_strings` (with a tokenizer) ends a row on text.
- `speculative_generate` gives the greedy tokens with fewer calls of the model when a cheap
  draft model agrees with it.
"""
