"""Recipe `bert-classifier`: a small BERT text classifier, on synthetic reviews or the user's
labeled texts.

Built-in data (`review_rows`; nothing is downloaded): short movie-review sentences built from
templates, labeled `positive` or `negative` by their adjective, with a negation ("not") that
flips the label in a third of them, so that the words' order matters. With `--data`
(`run.data`: CSV or TSV files with a header row naming a text column and a label column, read
by `keras_seq.recipes.data_files.read_labeled_text`) the classifier learns the user's rows; a
seeded fifth of them validates. Labels are strings: the class names are the sorted labels
(numerically when every label is an integer), saved beside the model as `classes.json`.

From scratch the WordPiece vocabulary is built from the training texts with keras-hub's
`compute_word_piece_vocabulary` (lowercased) and kept in the model's `BERTTokenizer`, so the
saved `BERTTextClassifier` reads raw text (`preprocess`). The texts are tokenized once (the
tokenizer's fast path), packed to the longest text's length (at most `MAX_SEQUENCE_LENGTH`;
longer texts are cut, counted in `metrics.json` and logged), and streamed with `tf.data`
(shuffled with the run's seed every epoch). With `--from` a `.keras` file (a
`BERTTextClassifier` with a tokenizer) or a `BERTTextClassifier.from_preset` handle is
fine-tuned with its own tokenizer; it keeps its head when it was trained on the same class
names, and gets a new head otherwise.

Outputs beyond the runner's: `classes.json`; the held-out accuracy is the validation rows'.
"""

import json
import logging
import os

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from keras_seq.models.bert.bert_backbone import BERTBackbone
from keras_seq.models.bert.bert_text_classifier import BERTTextClassifier
from keras_seq.models.bert.bert_tokenizer import BERTTokenizer
from keras_seq.recipes import data_files

logger = logging.getLogger(__name__)

CLASSES_FILE = "classes.json"
CLASSES_FORMAT = "keras_seq.classes"
MAX_SEQUENCE_LENGTH = 128
VALIDATION_SPLIT = 0.2
RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
SIZES = {
    "quick": {"rows": 160, "vocabulary_size": 300, "num_layers": 1, "hidden_dim": 16},
    "bert": {"rows": 1200, "vocabulary_size": 1000, "num_layers": 2, "hidden_dim": 64},
}
_SUBJECTS = ("the film", "this movie", "the plot", "the acting", "the ending", "the music")
_ADJECTIVES = {
    "positive": ("great", "wonderful", "good", "brilliant", "moving", "funny"),
    "negative": ("bad", "boring", "awful", "dull", "weak", "silly"),
}
_ADVERBS = ("", "really ", "very ", "quite ")


def review_rows(num_rows, seed):
    """`num_rows` synthetic `(text, label)` reviews (see the module docstring), seeded."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(num_rows):
        label = str(rng.choice(["positive", "negative"]))
        negated = rng.random() < 1 / 3
        flipped = "negative" if label == "positive" else "positive"
        adjective = str(rng.choice(_ADJECTIVES[flipped if negated else label]))
        subject = str(rng.choice(_SUBJECTS))
        adverb = str(rng.choice(_ADVERBS))
        rows.append((f"{subject} was {'not ' if negated else ''}{adverb}{adjective}", label))
    return rows


def class_names_record(names):
    """The content of `classes.json`: the class names in the order of the model's logits."""
    return {"format": CLASSES_FORMAT, "version": 1, "class_names": list(names)}


def read_class_names(path):
    """The class names of a `classes.json`, or `None` when `path` does not exist; a
    `ValueError` naming it when it is not one."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
        names = record["class_names"]
        if record.get("format") != CLASSES_FORMAT or not all(isinstance(n, str) for n in names):
            raise ValueError("not a class list")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a {CLASSES_FILE} of keras-seq ({error})") from None
    return names


def class_names_beside(model_path):
    """The class names of the `classes.json` beside a `.keras` file, or `None`."""
    directory = os.path.dirname(os.path.abspath(os.fspath(model_path)))
    return read_class_names(os.path.join(directory, CLASSES_FILE))


def build_vocabulary(texts, vocabulary_size):
    """A lowercased WordPiece vocabulary of at most `vocabulary_size` tokens learned from
    `texts` (keras-hub's `compute_word_piece_vocabulary`), `RESERVED_TOKENS` first."""
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(list(texts)),
        vocabulary_size,
        lowercase=True,
        strip_accents=True,
        reserved_tokens=list(RESERVED_TOKENS),
    )


def pack_texts(tokenizer, texts, sequence_length):
    """`texts` as BERT's inputs (NumPy), each at most `sequence_length` tokens with `[CLS]`
    and `[SEP]`; returns `(inputs, num_truncated)`, the texts that were cut counted."""
    lengths = [len(ids) for ids in tokenizer.tokenize(list(texts))]  # with [CLS] and [SEP]
    packed = tokenizer.pack(list(texts), sequence_length=sequence_length, truncate=True)
    inputs = {key: np.asarray(value) for key, value in packed.items()}
    return inputs, sum(length > sequence_length for length in lengths)


def sequence_length_for(tokenizer, texts, limit):
    """The longest text's length in tokens, with `[CLS]` and `[SEP]`, at most `limit`."""
    longest = max(len(ids) for ids in tokenizer.tokenize(list(texts)))
    return min(longest, limit)


def label_ids(rows, names, path=None):
    """The index in `names` of each row's label; a label outside them is a `DataPathError`."""
    index = {name: position for position, name in enumerate(names)}
    unknown = sorted({label for _, label in rows} - set(index))
    if unknown:
        raise data_files.DataPathError(
            path or "data",
            f"has labels the model does not know: {unknown[:10]} (its classes: {', '.join(names)})",
        )
    return np.asarray([index[label] for _, label in rows], "int32")


def _split(rows, seed):
    """A seeded `VALIDATION_SPLIT` of `rows` validates; the rest trains."""
    order = np.random.default_rng(seed).permutation(len(rows))
    count = max(1, round(len(rows) * VALIDATION_SPLIT))
    chosen = set(order[:count].tolist())
    train = [row for i, row in enumerate(rows) if i not in chosen]
    return train, [row for i, row in enumerate(rows) if i in chosen]


def load_base_model(source, num_classes):
    """The `BERTTextClassifier` that `--from` names, with a tokenizer: a `.keras` file, or
    a `from_preset` handle (a new head of `num_classes`)."""
    if source.endswith(".keras"):
        model = keras.saving.load_model(source, compile=False)
        if not isinstance(model, BERTTextClassifier):
            raise data_files.FromModelError(
                source,
                f"holds a {type(model).__name__}; recipe bert-classifier fine-tunes a "
                "BERTTextClassifier",
            )
    else:
        if source in BERTBackbone.presets:
            raise data_files.FromModelError(
                source,
                "is an architecture name (random weights, no vocabulary): train from scratch "
                "without --from, or give a checkpoint",
            )
        model = BERTTextClassifier.from_preset(source, num_classes=num_classes)
    if model.tokenizer is None:
        raise data_files.FromModelError(
            source, "has no tokenizer: fine-tuning reads text with the model's own vocabulary"
        )
    return model


def _rows(run):
    if run.data is None:
        sizes = SIZES["quick" if run.quick else run.model_name]
        train = review_rows(sizes["rows"], seed=0)
        validation = review_rows(max(32, sizes["rows"] // 4), seed=1)
        return train, validation
    train, validation = _split(data_files.read_labeled_text(run.data), run.seed)
    if len({label for _, label in train}) < 2:
        raise data_files.DataPathError(
            " ".join(run.data), "holds one label in the rows left for training: give more rows"
        )
    return train, validation


def train_bert_classifier(run):
    """Train the `bert-classifier` recipe (see the module docstring) for a `RecipeRun`."""
    sizes = SIZES["quick" if run.quick else run.model_name]
    train_rows, validation_rows = _rows(run)
    names = data_files.class_names([label for _, label in train_rows + validation_rows])
    train_texts = [text for text, _ in train_rows]
    with run.scope():
        if run.from_model is not None:
            base = load_base_model(run.from_model, len(names))
            tokenizer = base.tokenizer
            limit = base.backbone.max_sequence_length
            old_names = (
                class_names_beside(run.from_model) if run.from_model.endswith(".keras") else None
            )
            run.details["from_model_class"] = type(base).__name__
        else:
            base = None
            vocabulary = build_vocabulary(train_texts, sizes["vocabulary_size"])
            tokenizer = BERTTokenizer(vocabulary, lowercase=True)
            limit = MAX_SEQUENCE_LENGTH
    sequence_length = sequence_length_for(tokenizer, train_texts, limit)
    train_inputs, cut = pack_texts(tokenizer, train_texts, sequence_length)
    validation_inputs, cut_validation = pack_texts(
        tokenizer, [text for text, _ in validation_rows], sequence_length
    )
    if cut or cut_validation:
        logger.info(
            "%d texts are longer than %d tokens and were cut to it",
            cut + cut_validation,
            sequence_length,
        )
    train_labels = label_ids(train_rows, names)
    validation_labels = label_ids(validation_rows, names)
    run.details["data_rows"] = {
        "train": len(train_rows),
        "validation": len(validation_rows),
        "classes": len(names),
        "sequence_length": sequence_length,
        "truncated_texts": int(cut + cut_validation),
    }

    batch_size = min(run.batch_size, len(train_rows))
    batches = (
        tf.data.Dataset.from_tensor_slices((train_inputs, train_labels))
        .shuffle(len(train_rows), seed=run.seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)  # one traced train step
        .prefetch(tf.data.AUTOTUNE)
    )
    validation = tf.data.Dataset.from_tensor_slices((validation_inputs, validation_labels)).batch(
        run.batch_size
    )
    steps = max(1, run.epochs * (len(train_rows) // batch_size))
    with run.scope():
        if base is None:
            width = sizes["hidden_dim"]
            backbone = BERTBackbone(
                vocabulary_size=tokenizer.vocabulary_size(),
                num_layers=sizes["num_layers"],
                num_heads=2,
                hidden_dim=width,
                intermediate_dim=2 * width,
                max_sequence_length=sequence_length,
            )
            model = BERTTextClassifier(backbone, num_classes=len(names), tokenizer=tokenizer)
            learning_rate = 1e-3
        else:
            model = base
            if old_names != names or base.num_classes != len(names):
                model = BERTTextClassifier(
                    base.backbone, num_classes=len(names), dropout=base.dropout, tokenizer=tokenizer
                )
            learning_rate = 5e-5  # BERT's fine-tuning rate
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, steps, warmup_target=learning_rate, warmup_steps=max(1, steps // 10)
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=run.compile_jit(),
        )
    run.write_json(CLASSES_FILE, class_names_record(names))
    run.fit(model, batches, validation_data=validation, shuffle=False)  # `batches` reshuffles
    probe = {key: value[:8] for key, value in validation_inputs.items()}
    run.save_model(model, probe_inputs=probe)
    logits = model.predict(validation, verbose=0)
    predicted = np.argmax(np.asarray(logits, "float32"), axis=-1)
    run.report(accuracy=np.mean(predicted == validation_labels))
