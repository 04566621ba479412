"""BERTTokenizer: keras-hub's WordPiece `BertTokenizer` that adds [CLS] and [SEP] as BERT's
checkpoints do.

Its tensor path runs TensorFlow ops; TensorFlow is imported on first use, so that
`import keras_seq` works without it.
"""

import keras_hub
import numpy as np

from keras_seq.api import keras_seq_export
from keras_seq.models.fast_tokenization import FastPythonStrings
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class BERTTokenizer(FastPythonStrings, keras_hub.models.BertTokenizer):
    """BERT's WordPiece tokenizer with the checkpoint's default special tokens.

    keras-hub's `BertTokenizer` (WordPiece; with `lowercase=True` it also strips accents,
    and `[MASK]`-style special tokens in the text stay single tokens, as Hugging Face's
    `BertTokenizer` does) gives Hugging Face's ids for the words; what this adds is
    `[CLS]` before and `[SEP]` after each text, which Hugging Face's tokenizer adds by
    default (`add_special_tokens=True`), so `tokenize(texts)` equals its `input_ids`.
    `detokenize` is keras-hub's. For model inputs of a fixed length with segment ids and a
    padding mask (single texts or pairs), use `keras_hub.layers.MultiSegmentPacker` on the
    ids of `add_special_tokens=False`, as `BERTTextClassifier.preprocess` does.

    Python strings outside a graph (`tokenize("text")`, `tokenize(["a", "b"])`) go through
    Hugging Face's Rust `tokenizers` WordPiece built on the same vocabulary and casing, which
    is faster than keras-hub's eager path on CPU (benchmarks/bench_text.py) and is exactly
    Hugging Face's normalization. Tensors and `tf.data` pipelines use keras-hub's TensorFlow
    ops, which give the same ids on ordinary text (checked on the test fixtures and on the
    benchmark's corpus) but, as keras-hub does, differ from Hugging Face in two corners: with
    `lowercase=True` they case-fold with NFKC (`"ß"` -> `"ss"`, `"ﬁ"` -> `"fi"`, full-width
    letters -> ASCII) where Hugging Face only lowercases, and they split words at format
    characters (soft hyphen, zero-width space) where Hugging Face deletes them.

    Args:
        vocabulary: the WordPiece vocabulary: a `vocab.txt` path or a list of tokens.
        lowercase: bool. Lowercase and strip accents first (uncased checkpoints).
            Defaults to `False`.
        add_special_tokens: bool. Add `[CLS]` and `[SEP]`. Defaults to `True`.
        **kwargs: keras-hub `BertTokenizer` arguments (`strip_accents` defaults to
            `lowercase`; `special_tokens_in_strings` to `True`).

    Example:
    ```python
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat"]
    tokenizer = keras_seq.models.BERTTokenizer(vocabulary, lowercase=True)
    assert list(tokenizer.tokenize("The cat sat")) == [2, 5, 6, 7, 3]
    ```
    """

    def __init__(self, vocabulary=None, lowercase=False, add_special_tokens=True, **kwargs):
        validate_bool("add_special_tokens", add_special_tokens)
        kwargs.setdefault("strip_accents", lowercase)
        kwargs.setdefault("special_tokens_in_strings", True)
        super().__init__(vocabulary=vocabulary, lowercase=lowercase, **kwargs)
        self.add_special_tokens = add_special_tokens

    def build_fast_tokenizer(self):
        """Hugging Face's WordPiece on this vocabulary and casing."""
        from tokenizers import Tokenizer
        from tokenizers import models
        from tokenizers import normalizers
        from tokenizers import pre_tokenizers

        vocabulary = self.get_vocabulary()
        fast = Tokenizer(
            models.WordPiece(
                {token: index for index, token in enumerate(vocabulary)},
                unk_token=self.oov_token,
            )
        )
        fast.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=True,
            strip_accents=bool(self.strip_accents),
            lowercase=bool(self.lowercase),
        )
        fast.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        if self.special_tokens_in_strings:
            # Kept whole in the text, as keras-hub's `special_tokens_in_strings`.
            fast.add_special_tokens([token for token in self.special_tokens if token in vocabulary])
        return fast

    def special_ids(self, add_special_tokens):
        if add_special_tokens is None:
            add_special_tokens = self.add_special_tokens
        if not add_special_tokens:
            return [], []
        return [self.cls_token_id], [self.sep_token_id]

    def tokenize(self, inputs):
        import tensorflow as tf

        fast = self.tokenize_python_strings(inputs)
        if fast is not None:
            return fast
        ids = super().tokenize(inputs)
        if not self.add_special_tokens:
            return ids
        start, end = self.cls_token_id, self.sep_token_id
        if isinstance(ids, list):  # keras-hub's Python lists for Python inputs.
            if ids and isinstance(ids[0], list):
                return [[start, *row, end] for row in ids]
            return [start, *ids, end]
        if isinstance(ids, np.ndarray) and ids.ndim == 1:  # One Python string.
            return np.concatenate([[start], ids, [end]]).astype(ids.dtype)
        if isinstance(ids, tf.RaggedTensor):
            rows = ids.nrows()
            starts = tf.fill([rows, 1], tf.cast(start, ids.dtype))
            ends = tf.fill([rows, 1], tf.cast(end, ids.dtype))
            return tf.concat([starts, ids, ends], axis=1)
        ids = tf.convert_to_tensor(ids)
        if ids.shape.rank == 1:
            return tf.concat([[start], tf.cast(ids, tf.int32), [end]], axis=0)
        raise ValueError(
            "BERTTokenizer adds [CLS] and [SEP] to unpadded ids; with a `sequence_length`, "
            "use add_special_tokens=False and keras_hub.layers.MultiSegmentPacker. Received "
            f"ids of shape {ids.shape}"
        )

    def pack(self, texts, text_pairs=None, sequence_length=512, truncate=False):
        """Texts (and optional second texts) as BERT's inputs of `sequence_length`:
        `{"token_ids", "segment_ids", "padding_mask"}`, `[CLS] a [SEP]` or
        `[CLS] a [SEP] b [SEP]` padded with `[PAD]` (keras-hub's `MultiSegmentPacker`; works
        in `tf.data`). A text that does not fit is an error unless `truncate=True` (then
        the longer segment loses tokens first)."""
        import tensorflow as tf

        validate_positive_int("sequence_length", sequence_length)
        validate_bool("truncate", truncate)
        segments = [_as_ragged(self._words(texts))]
        if text_pairs is not None:
            segments.append(_as_ragged(self._words(text_pairs)))
        if not truncate:
            needed = sum(segment.row_lengths() for segment in segments) + 1 + len(segments)
            tf.debugging.assert_less_equal(
                tf.cast(needed, tf.int64),
                tf.constant(sequence_length, tf.int64),
                message=(
                    f"A text (with [CLS] and [SEP]) is longer than sequence_length="
                    f"{sequence_length}; pass truncate=True to cut it, or a longer "
                    "sequence_length."
                ),
            )
        packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=sequence_length,
            start_value=self.cls_token_id,
            end_value=self.sep_token_id,
            pad_value=self.pad_token_id,
            truncate="round_robin",
        )
        token_ids, segment_ids = packer(tuple(segments) if len(segments) > 1 else segments[0])
        return {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": token_ids != self.pad_token_id,
        }

    def _words(self, texts):
        """The ids of `texts` without special tokens (fast path for Python strings)."""
        fast = self.tokenize_python_strings(texts, add_special_tokens=False)
        return super().tokenize(texts) if fast is None else fast

    def get_config(self):
        return {**super().get_config(), "add_special_tokens": self.add_special_tokens}


def _as_ragged(ids):
    """Token ids (Python lists, NumPy, a tensor or ragged tensor) as a ragged `(batch, None)`
    tensor, or a 1-D tensor for one text."""
    import tensorflow as tf

    if isinstance(ids, tf.RaggedTensor):
        return ids
    if isinstance(ids, list) and ids and isinstance(ids[0], list):
        return tf.ragged.constant(ids, dtype=tf.int32)
    return tf.convert_to_tensor(ids, tf.int32)
