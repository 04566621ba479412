"""BERTTextTask: what BERT's task models share: an attached tokenizer and `preprocess`."""

import keras

from keras_seq.models.task import Task
from keras_seq.models.text_support import require_tokenizer
from keras_seq.models.text_support import resolve_tokenizer


class BERTTextTask(Task):
    """Base of `BERTMaskedLM` and `BERTTextClassifier` (not exported): a `tokenizer`
    constructor argument (a `BERTTokenizer` or its config, saved in the config; subclasses
    call `_set_tokenizer` after the functional constructor) and `preprocess`."""

    def _set_tokenizer(self, tokenizer):
        self.tokenizer = resolve_tokenizer(tokenizer)

    def preprocess(self, texts, text_pairs=None, sequence_length=None, truncate=False):
        """Texts (and optional second texts) as the backbone's inputs, through `tokenizer`:
        `BERTTokenizer.pack` (`[CLS] a [SEP] b [SEP]`, segment ids, padding mask; works in
        `tf.data`). `sequence_length` defaults to the backbone's `max_sequence_length`."""
        tokenizer = require_tokenizer(self, "preprocess()")
        return tokenizer.pack(
            texts,
            text_pairs=text_pairs,
            sequence_length=sequence_length or self.backbone.max_sequence_length,
            truncate=truncate,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
        }
