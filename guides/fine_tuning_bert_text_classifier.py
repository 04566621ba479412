"""
Title: Fine-tuning a BERT checkpoint for text classification
Author: keras_seq contributors
Date created: 2026/12/07
Last modified: 2026/12/07
Description: Load a Hugging Face BERT checkpoint with its WordPiece tokenizer, put a new
    classification head on it, fine-tune it on labelled sentences in a tf.data pipeline,
    save it as a preset and a `.keras` file, reload it and classify new texts.
Accelerator: GPU
"""

"""
## Introduction

BERT (Devlin et al., 2019) is an encoder pretrained on large amounts of unlabelled text to
fill in masked words and to tell whether two sentences follow each other. Its fine-tuning
recipe for classification is short: take the pretrained encoder, put a small head on the
pooled `[CLS]` output, and train everything for a few epochs at a small learning rate.

`BERTTextClassifier.from_preset` reads Hugging Face BERT checkpoints (`BertModel`,
`BertForMaskedLM`, `BertForPreTraining`, `BertForSequenceClassification`) together with
their `vocab.txt`, so the model comes with the tokenizer it was trained with. This guide:

1. loads a checkpoint with a new head of three classes;
2. builds a small labelled data set from keras_seq's built-in text;
3. tokenizes it inside a `tf.data` pipeline with `model.preprocess`;
4. trains the head on a frozen encoder, then everything at a lower learning rate;
5. saves the model as a preset directory and as a `.keras` file, reloads both and
   classifies new sentences with them.

The checkpoint defaults to `hf://google-bert/bert-base-uncased` (110 million parameters),
downloaded from the Hugging Face Hub the first time; fine-tuning it at full size wants a
GPU. Any other BERT checkpoint works (a local directory, an `hf://owner/name` handle or a
keras_seq preset): pass it as the first command-line argument or in the
`KERAS_SEQ_GUIDE_CHECKPOINT` environment variable. Set `KERAS_SEQ_GUIDE_FAST=1` for a few
training steps on a subset of the data. The tests run this guide in fast mode on a tiny
BERT checkpoint written by transformers (two layers, width 32, a 300-word uncased
vocabulary) stored in the repository, so they need no network.
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
directory = tempfile.mkdtemp()  # Saved models go here, never into the checkout.
start_time = time.perf_counter()

"""
## The checkpoint

`from_preset` takes a local directory (a transformers checkpoint: `config.json` with
`"model_type": "bert"`, `model.safetensors`, `vocab.txt`; or a keras_seq preset written by
`save_to_preset`) or an `hf://owner/name` handle, downloaded into huggingface_hub's cache
(with `HF_HUB_OFFLINE=1`, the cached copy is used without asking the network).
"""

DEFAULT_CHECKPOINT = "hf://google-bert/bert-base-uncased"
# `python fine_tuning_bert_text_classifier.py CHECKPOINT`; in a notebook, sys.argv holds the
# kernel's own arguments instead.
arguments = sys.argv[1:] if "ipykernel" not in sys.modules else []
CHECKPOINT = (
    arguments[0] if arguments else os.environ.get("KERAS_SEQ_GUIDE_CHECKPOINT", DEFAULT_CHECKPOINT)
)
print("checkpoint:", CHECKPOINT)

"""
## A labelled data set from built-in text

keras_seq ships no labelled text, but it has a generator of English-like sentences,
`keras_seq.data.grammar_text(num_sentences, seed)`: sentences of a tiny grammar, drawn with
a fixed NumPy seed, so the same arguments always give the same text. Every sentence has one
of three shapes, and the shape is the label here:

- **0, action**: someone does something to someone ("the red fox chases a bird.");
- **1, activity**: someone does something alone ("some robot sleeps quietly.");
- **2, description**: someone is something ("a child is green.").

The label follows from the words (a form of "to be" makes a description; otherwise a verb
that takes an object makes an action), so the rule below is the whole annotation: it is
deterministic, and a model can learn it. It is easy, but it is a real classification of
text, and one a model has to read the sentence for: the same nouns and adjectives occur in
every class. The training and held-out sets come from different seeds.
"""

CLASS_NAMES = ["action", "activity", "description"]
TRANSITIVE_VERBS = set(keras_seq.data.char_corpus.TRANSITIVE_VERBS)


def sentence_label(sentence):
    words = sentence.rstrip(".").split()
    if "is" in words:
        return 2
    return 0 if TRANSITIVE_VERBS & set(words) else 1


def labelled_sentences(num_sentences, seed):
    text = keras_seq.data.grammar_text(num_sentences, seed=seed)
    sentences = [sentence.strip() + "." for sentence in text.split(".") if sentence.strip()]
    return sentences, np.array([sentence_label(s) for s in sentences], "int32")


NUM_TRAIN = 256 if FAST else 2000
train_texts, train_labels = labelled_sentences(NUM_TRAIN, seed=0)
test_texts, test_labels = labelled_sentences(128 if FAST else 500, seed=1)
for text, label in zip(train_texts[:4], train_labels[:4]):
    print(f"{CLASS_NAMES[label]:>12}: {text}")
print("class counts (train):", np.bincount(train_labels, minlength=3).tolist())

"""
## A new head on the checkpoint

`num_classes` puts a new classification head (dropout and a `Dense` layer on the pooled
`[CLS]` output) on the pretrained encoder: a `BertForPreTraining` checkpoint's masked-LM and
next-sentence heads are left out (said in the log at INFO level). The tokenizer comes from
the checkpoint's `vocab.txt`, as `model.tokenizer` (lower-cased and accent-stripped for an
uncased checkpoint, as transformers' `BertTokenizer` does).
"""


def load(checkpoint, **kwargs):
    """`BERTTextClassifier.from_preset`, exiting with an explanation when the checkpoint
    cannot be fetched (an `hf://` handle without network, say)."""
    try:
        return keras_seq.models.BERTTextClassifier.from_preset(checkpoint, **kwargs)
    except OSError as error:  # huggingface_hub's download errors are all OSErrors
        raise SystemExit(
            f"Could not load the checkpoint {checkpoint!r}: {type(error).__name__}: {error}\n"
            "Downloading from the Hugging Face Hub needs network access (or a copy already in "
            "its cache, with HF_HUB_OFFLINE=1). To use a checkpoint on disk instead, pass its "
            "directory as the first argument of this script or set KERAS_SEQ_GUIDE_CHECKPOINT."
        ) from error


model = load(CHECKPOINT, num_classes=len(CLASS_NAMES))
print("parameters:", f"{model.count_params():,}")
print("tokens:", model.tokenizer.tokenize(train_texts[0]).tolist())
print("back to text:", model.tokenizer.detokenize(model.tokenizer.tokenize(train_texts[0])))

"""
## Text in a tf.data pipeline

`model.preprocess(texts, sequence_length=...)` packs a batch of strings into the encoder's
inputs: `[CLS] tokens [SEP]` padded to `sequence_length`, with `segment_ids` and a
`padding_mask`. (For sentence-pair tasks, `text_pairs=` adds the second sentence after the
first `[SEP]`, with segment id 1.) It is made of TensorFlow ops, so it runs inside
`Dataset.map`, on batches of strings: the data stay text until the model needs numbers.
A text longer than `sequence_length` is an error unless `truncate=True`.

Our sentences are short, so the length is the longest tokenized sentence, `[CLS]` and
`[SEP]` included, rounded up to a multiple of 8 (BERT takes up to
`model.backbone.max_sequence_length` tokens, 512 for bert-base). How many tokens a sentence
takes depends on the vocabulary: bert-base's 30,522 word pieces hold every word of these
sentences whole, while the tests' 300-piece vocabulary cuts many words into pieces.
"""

longest = max(len(ids) for ids in model.tokenizer.tokenize(train_texts + test_texts))
SEQUENCE_LENGTH = min(-(-longest // 8) * 8, model.backbone.max_sequence_length)
print("longest sentence:", longest, "tokens; sequence_length:", SEQUENCE_LENGTH)
BATCH_SIZE = 32


def text_dataset(texts, labels, shuffle=False):
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
    if shuffle:
        dataset = dataset.shuffle(len(texts), seed=0)
    return (
        dataset.batch(BATCH_SIZE)
        .map(
            lambda text, label: (model.preprocess(text, sequence_length=SEQUENCE_LENGTH), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )


train_data = text_dataset(train_texts, train_labels, shuffle=True)
test_data = text_dataset(test_texts, test_labels)
train_eval_data = text_dataset(train_texts, train_labels)  # the training set, in order
inputs, labels = next(iter(train_data))
print({name: tuple(value.shape) for name, value in inputs.items()}, "labels", labels.shape)
print("first token ids:", inputs["token_ids"][0, :12].numpy().tolist())

"""
## Fine-tuning

Two measures: the cross-entropy on the training set (what training lowers; in fast mode,
with a handful of steps on a tiny random-ish checkpoint, that is all this guide can
promise) and the accuracy on the held-out sentences.
"""

loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_model(learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss_fn,
        metrics=["accuracy"],
        run_eagerly=FAST,  # a few steps: tracing the train step would cost more than them
    )


def training_loss():
    return model.evaluate(train_eval_data, verbose=0)[0]  # [loss, accuracy]


compile_model(1e-3)
initial_loss = training_loss()
_, initial_accuracy = model.evaluate(test_data, verbose=0)
print(f"before training: loss {initial_loss:.3f}, held-out accuracy {initial_accuracy:.3f}")

"""
### Step 1: the head alone

With the encoder frozen (`model.backbone.trainable = False`), only the new head learns:
a quick start that keeps the large, still meaningless gradients of a random head away from
the pretrained weights. A change of `trainable` takes effect at the next `compile`.
"""

HEAD_EPOCHS = 1 if FAST else 2
model.backbone.trainable = False
compile_model(1e-3)
history = model.fit(train_data, epochs=HEAD_EPOCHS, shuffle=False, verbose=0)
print("head losses:", [round(loss, 3) for loss in history.history["loss"]])
head_loss = training_loss()
print(f"head trained: loss {head_loss:.3f}")

"""
### Step 2: everything, at a small learning rate

BERT's authors fine-tuned the whole network for 2 to 4 epochs at learning rates between
2e-5 and 5e-5. The tiny checkpoint of the tests needs larger steps to move in a few of
them, so the rate depends on the model's size here.
"""

FULL_EPOCHS = 2 if FAST else 3
small_model = model.count_params() < 1_000_000
model.backbone.trainable = True
compile_model(3e-3 if small_model else 3e-5)
history = model.fit(train_data, epochs=FULL_EPOCHS, shuffle=False, verbose=0)
print("losses:", [round(loss, 3) for loss in history.history["loss"]])
final_loss = training_loss()
_, final_accuracy = model.evaluate(test_data, verbose=0)
print(f"fine-tuned: loss {final_loss:.3f}, held-out accuracy {final_accuracy:.3f}")
assert final_loss < initial_loss, (final_loss, initial_loss)
PRETRAINED_RUN = not FAST and CHECKPOINT == DEFAULT_CHECKPOINT
if PRETRAINED_RUN:
    assert final_accuracy > 0.9, final_accuracy  # the rule is easy to learn

"""
## Saving, reloading, predicting

`save_to_preset(directory)` writes keras-hub's preset layout, the tokenizer's vocabulary
included; `BERTTextClassifier.from_preset(directory)` reads it back. A `.keras` file holds
the same model, tokenizer included, in one archive. Both reloads give the same predictions
on new text, tokenized by their own tokenizer.
"""

preset_dir = os.path.join(directory, "bert_sentence_shapes")
model.save_to_preset(preset_dir)
print("preset files:", sorted(os.listdir(preset_dir)))
keras_path = os.path.join(directory, "bert_sentence_shapes.keras")
model.save(keras_path)

new_texts = [
    "the old robot follows a happy child.",
    "every farmer laughs again.",
    "no dog is lazy.",
    "a quick bird sings near the teacher.",  # an activity; the grammar never makes these
]


def predict(classifier, texts):
    inputs = classifier.preprocess(texts, sequence_length=SEQUENCE_LENGTH)
    logits = classifier.predict(inputs, verbose=0)
    return keras.ops.convert_to_numpy(logits)


expected = predict(model, new_texts)
for text, row in zip(new_texts, expected):
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(row))
    print(f"{CLASS_NAMES[int(np.argmax(row))]:>12} ({probabilities.max():.2f}): {text}")

for reloaded in (
    keras_seq.models.BERTTextClassifier.from_preset(preset_dir),
    keras.saving.load_model(keras_path),
):
    assert type(reloaded) is keras_seq.models.BERTTextClassifier
    np.testing.assert_allclose(predict(reloaded, new_texts), expected, atol=1e-5)
print("reloaded from the preset and from the .keras file: same predictions")
if PRETRAINED_RUN:
    # The first three are sentences of the grammar; the last one is not (an activity with a
    # place, which the training data never shows): a test of how far the model generalizes,
    # not asserted.
    assert np.argmax(expected[:3], axis=-1).tolist() == [0, 1, 2]

"""
## Recap

- `BERTTextClassifier.from_preset(handle, num_classes=N)` puts a new head on a pretrained
  BERT encoder and attaches the checkpoint's WordPiece tokenizer.
- `model.preprocess(texts, text_pairs=None, sequence_length=...)` packs strings into the
  model's inputs, inside `tf.data` too.
- Train the head on a frozen encoder, then everything at a small learning rate
  (recompile after changing `trainable`).
- `save_to_preset` and `.keras` files keep the tokenizer: the reloaded model takes text.
"""

print(f"done in {time.perf_counter() - start_time:.0f} s")
