"""The user's text for `keras-seq train char-lm --data`: its vocabulary and a `tf.data` pipeline.

`scan_text(files)` reads the files once, in chunks, for their characters (the vocabulary: every
character that occurs, in code point order) and their lengths. `CharWindows` streams them
with `tf.data`: each file is read, decoded from UTF-8 to code points, mapped to ids and cut
into windows of `sequence_length + 1` characters that overlap by one (inputs: the first
`sequence_length` ids, targets: the last; a file's tail that does not fill a window is
dropped, as in `keras_seq.data.char_corpus_data`). Every tenth window (the 1st, 11th, ...)
is the validation set, the others train, shuffled with the run's seed.

`TokenWindows` cuts the same windows of a tokenizer's ids (a GPT-2 checkpoint's byte-level
BPE, for fine-tuning it): each file is read whole and tokenized once, in memory.

Letter legend for shape comments: N windows, L `sequence_length`, B batch.
"""

import os

import numpy as np
import tensorflow as tf

from keras_seq.data.char_vocabulary import CharVocabulary
from keras_seq.recipes.data_files import DataPathError

VALIDATION_EVERY = 10
_CHUNK = 1 << 20
_SHUFFLE_BUFFER = 10_000


def scan_text(files, known=None):
    """The characters of `files` (a sorted list) and the number of characters of each file.

    Files are read as UTF-8 with line endings kept as written. A file that is not UTF-8, or
    (with `known`, a set of characters) that holds other characters, is a `DataPathError`
    naming it.
    """
    characters = set()
    lengths = []
    for path in files:
        seen = len(characters)
        length = 0
        try:
            with open(path, encoding="utf-8", newline="") as file:
                while chunk := file.read(_CHUNK):
                    characters.update(chunk)
                    length += len(chunk)
        except UnicodeDecodeError as error:
            raise DataPathError(
                path, f"is not UTF-8 text (byte {error.start}: {error.reason})"
            ) from None
        if known is not None and len(characters) > seen and not characters <= known:
            unknown = sorted(characters - known)
            raise DataPathError(
                path,
                f"holds characters outside the model's vocabulary: {unknown[:20]}",
            )
        lengths.append(length)
    return sorted(characters), lengths


def text_vocabulary(characters):
    """The `CharVocabulary` of a text's characters: id 0 padding, then the characters."""
    return CharVocabulary(characters, special_tokens=())


class _Windows:
    """Windows of `sequence_length + 1` ids split into training and validation sets (every
    tenth window validates), as `tf.data` pipelines; subclasses give `_windows()`."""

    def _count_windows(self, lengths, unit):
        """Set `num_train` and `num_validation` from the files' `lengths` in `unit`s (ids);
        a `DataPathError` naming the files when they make less than two windows."""
        length = self.sequence_length
        # Windows of L + 1 ids overlapping by one: (length - 1) // L per file.
        counts = [max(0, count - 1) // length for count in lengths]
        total = sum(counts)
        if total < 2:
            raise DataPathError(
                " ".join(self.files),
                f"holds too little text: {sum(lengths)} {unit} make {total} window(s) of "
                f"{length + 1} {unit}, and training needs at least 2 (one of them for "
                "validation)",
            )
        self.num_validation = -(-total // VALIDATION_EVERY)  # indices 0, 10, 20, ...
        self.num_train = total - self.num_validation

    def _windows(self):
        """All windows, int32 `(L + 1,)` each, in file order."""
        raise NotImplementedError

    def _split(self, validation):
        keep = (
            (lambda index: index % VALIDATION_EVERY == 0)
            if validation
            else (lambda index: index % VALIDATION_EVERY != 0)
        )
        count = self.num_validation if validation else self.num_train
        return (
            self._windows()
            .enumerate()
            .filter(lambda index, window: keep(index))
            .map(lambda index, window: window)
            # Known to Keras (progress bar, no "ran out of data"); checked while iterating.
            .apply(tf.data.experimental.assert_cardinality(count))
        )

    def train_batch_size(self, batch_size):
        """The batch size of training: `batch_size`, or fewer when there are fewer windows."""
        return min(batch_size, self.num_train)

    def steps_per_epoch(self, batch_size):
        """Training batches per epoch (full batches only)."""
        return self.num_train // self.train_batch_size(batch_size)

    def train(self, batch_size, seed, model_inputs):
        """Training batches `(model_inputs(inputs), targets)`, reshuffled every epoch with
        `seed`; full batches only (a smaller last batch would trace the train step again)."""
        return self._batched(
            self._split(validation=False).shuffle(
                min(self.num_train, _SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True
            ),
            self.train_batch_size(batch_size),
            model_inputs,
            drop_remainder=True,
        )

    def validation(self, batch_size, model_inputs):
        """Validation batches `(model_inputs(inputs), targets)`, in order."""
        return self._batched(
            self._split(validation=True), batch_size, model_inputs, drop_remainder=False
        )

    def every_window(self, batch_size, model_inputs):
        """Every window, training and validation alike (evaluation), in order."""
        total = self.num_train + self.num_validation
        windows = self._windows().apply(tf.data.experimental.assert_cardinality(total))
        return self._batched(windows, batch_size, model_inputs, drop_remainder=False)

    def validation_inputs(self, count):
        """The first `count` validation windows' inputs, int32 NumPy `(count, L)`."""
        windows = self._split(validation=True).take(count).batch(count)
        return np.asarray(next(iter(windows)))[:, :-1]

    @staticmethod
    def _batched(windows, batch_size, model_inputs, drop_remainder):
        return (
            windows.batch(batch_size, drop_remainder=drop_remainder)
            .map(lambda batch: (model_inputs(batch[:, :-1]), batch[:, 1:]))  # (B, L) each
            .prefetch(tf.data.AUTOTUNE)
        )

class CharWindows(_Windows):
    """Training and validation windows of the user's text files, as `tf.data` pipelines.

    Args:
        files: list of paths of UTF-8 text files (`keras_seq.recipes.data_files.text_files`).
        sequence_length: int. Steps per window L.
        vocabulary: a `CharVocabulary` or `None`. A model's vocabulary (fine-tuning): the
            files must hold its characters only. `None` builds it from the files.

    Attributes:
        vocabulary: the `CharVocabulary` given, or that of the files' characters.
        num_train, num_validation: int. Windows of each set.

    A `DataPathError` names the files when they hold less than two windows of text.
    """

    def __init__(self, files, sequence_length, vocabulary=None):
        self.files = list(files)
        self.sequence_length = sequence_length
        known = None if vocabulary is None else set(vocabulary.characters)
        characters, lengths = scan_text(self.files, known)
        self.vocabulary = text_vocabulary(characters) if vocabulary is None else vocabulary
        self._count_windows(lengths, "characters")

    def _windows(self):
        """All windows, int32 `(L + 1,)` each, in file order."""
        codes = [ord(character) for character in self.vocabulary.characters]
        ids = [self.vocabulary.token_id(character) for character in self.vocabulary.characters]
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(codes, "int32"), tf.constant(ids, "int32")
            ),
            default_value=0,
        )
        length = self.sequence_length

        def file_windows(path):
            code_points = tf.strings.unicode_decode(tf.io.read_file(path), "UTF-8")
            token_ids = table.lookup(code_points)
            return tf.data.Dataset.from_tensor_slices(
                tf.signal.frame(token_ids, length + 1, length)  # (N, L + 1)
            )

        files = tf.data.Dataset.from_tensor_slices(tf.constant(self.files, tf.string))
        return files.flat_map(file_windows)


class TokenWindows(_Windows):
    """Training and validation windows of the user's text files in a tokenizer's ids.

    Args:
        files: list of paths of UTF-8 text files.
        sequence_length: int. Tokens per window L.
        tokenizer: a tokenizer layer with `tokenize` (a GPT-2 checkpoint's `GPT2Tokenizer`).

    Attributes:
        num_train, num_validation: int. Windows of each set.

    A file that is not UTF-8, and files holding less than two windows of tokens, are a
    `DataPathError` naming them.
    """

    def __init__(self, files, sequence_length, tokenizer):
        from keras_seq.models.text_support import tokenize_texts

        self.files = [os.fspath(path) for path in files]
        self.sequence_length = sequence_length
        rows, lengths = [], []
        for path in self.files:
            try:
                with open(path, encoding="utf-8", newline="") as file:
                    text = file.read()
            except UnicodeDecodeError as error:
                raise DataPathError(
                    path, f"is not UTF-8 text (byte {error.start}: {error.reason})"
                ) from None
            ids = np.asarray(tokenize_texts(tokenizer, [text])[0] if text else [], "int32")
            count = max(0, len(ids) - 1) // sequence_length
            starts = np.arange(count)[:, None] * sequence_length  # (N, 1)
            rows.append(ids[starts + np.arange(sequence_length + 1)])  # (N, L + 1)
            lengths.append(len(ids))
        self._count_windows(lengths, "tokens")
        self._rows = np.concatenate(rows).astype("int32")  # (N, L + 1), file order

    def _windows(self):
        return tf.data.Dataset.from_tensor_slices(self._rows)
