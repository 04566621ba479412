"""MarianTokenizer: the tokenizer of Marian translation checkpoints (the opus-mt models):
SentencePiece segmentation, ids from the checkpoint's `vocab.json`.

Its ops are TensorFlow Text's; TensorFlow is imported on first use, so that
`import keras_seq` works without it.
"""

import json
import os

import keras_hub
import numpy as np

from keras_seq.api import keras_seq_export

SOURCE_SPM = "source.spm"
TARGET_SPM = "target.spm"
VOCABULARY_FILE = "vocab.json"


def _read_bytes(value, name):
    if isinstance(value, bytes):
        return value
    if isinstance(value, (str, os.PathLike)):
        with open(value, "rb") as file:
            return file.read()
    raise TypeError(
        f"`{name}` must be a SentencePiece model: a file path or its bytes. Received: "
        f"{name}={value!r}"
    )


def _read_vocabulary(value):
    if isinstance(value, (str, os.PathLike)):
        with open(value, encoding="utf-8") as file:
            value = json.load(file)
    if not isinstance(value, dict):
        raise TypeError(
            "`vocabulary` must be Marian's `vocab.json` (a path) or its dict of piece -> id. "
            f"Received: vocabulary={value!r}"
        )
    if not value:
        raise ValueError("`vocabulary` must not be empty. Received: vocabulary={}")
    ids = sorted(int(index) for index in value.values())
    if ids != list(range(len(ids))):
        raise ValueError(
            "`vocabulary` must map pieces to the ids 0 .. size - 1, each once. Received "
            f"{len(ids)} pieces with ids from {ids[0]} to {ids[-1]}"
        )
    return {str(piece): int(index) for piece, index in value.items()}


@keras_seq_export
class MarianTokenizer(keras_hub.tokenizers.Tokenizer):
    """Marian's tokenizer: SentencePiece pieces mapped to the ids of `vocab.json`.

    `tokenize` segments source text with the source SentencePiece model (`source.spm`, which
    also NFKC-normalizes), maps each piece to its id in `vocab.json` (a piece the vocabulary
    lacks becomes `<unk>`) and appends `</s>`, as Hugging Face's `MarianTokenizer` does
    (`tokenize_target` does the same with the target model, for labels);
    `detokenize` maps ids back to pieces through `vocab.json`, drops the special tokens
    (`</s>`, `<unk>`, `<pad>`) and joins the pieces with the target SentencePiece model
    (`target.spm`). keras-hub's `SentencePieceTokenizer` alone is not enough: it returns
    the SentencePiece model's own piece ids, while Marian checkpoints are trained on the ids
    of `vocab.json` (one joint vocabulary for source and target, in another order). The
    ops are TensorFlow Text's, so it runs in `tf.data`; the two models and the vocabulary
    are saved as assets with `.keras` files and presets. Language-code prefixes of
    multilingual checkpoints (`>>fr<<`) are not treated specially.

    Args:
        vocabulary: `vocab.json` (a path) or its dict of piece -> id; `None` to load it with
            `load_assets`.
        source_proto: the source SentencePiece model, a path or its bytes; `None` to load it
            with `load_assets`.
        target_proto: the target SentencePiece model, likewise.
        end_token: str. The end token appended to every text. Defaults to `"</s>"`.
        unknown_token: str. The id of pieces missing from the vocabulary. Defaults to
            `"<unk>"`.
        pad_token: str. The padding token. Defaults to `"<pad>"`.
        **kwargs: base layer arguments (`name`).

    Example (with a checkpoint's files):
    ```
    tokenizer = keras_seq.models.MarianTokenizer(
        "vocab.json", source_proto="source.spm", target_proto="target.spm"
    )
    ids = tokenizer.tokenize(["I see three books."])  # ragged, each ending with </s> (0)
    texts = tokenizer.detokenize(ids)
    ```
    """

    def __init__(
        self,
        vocabulary=None,
        source_proto=None,
        target_proto=None,
        end_token="</s>",
        unknown_token="<unk>",
        pad_token="<pad>",
        **kwargs,
    ):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self.end_token = end_token
        self.unknown_token = unknown_token
        self.pad_token = pad_token
        self._add_special_token(end_token, "end_token")
        self._add_special_token(unknown_token, "unknown_token")
        self._add_special_token(pad_token, "pad_token")
        self.file_assets = [SOURCE_SPM, TARGET_SPM, VOCABULARY_FILE]
        self._vocabulary = None
        self._source_proto = None
        self._target_proto = None
        if vocabulary is not None or source_proto is not None or target_proto is not None:
            self.set_assets(vocabulary, source_proto, target_proto)

    def set_assets(self, vocabulary, source_proto, target_proto):
        """Set the vocabulary and both SentencePiece models (paths, bytes or a dict)."""
        self._vocabulary = _read_vocabulary(vocabulary)
        self._source_proto = _read_bytes(source_proto, "source_proto")
        self._target_proto = _read_bytes(target_proto, "target_proto")
        for name in ("end_token", "unknown_token", "pad_token"):
            token = getattr(self, name)
            if token not in self._vocabulary:
                raise ValueError(
                    f"`{name}`={token!r} is not in the vocabulary ({len(self._vocabulary)} pieces)."
                )
        pieces = [None] * len(self._vocabulary)
        for piece, index in self._vocabulary.items():
            pieces[index] = piece
        self._piece_list = pieces
        self._update_special_token_ids()

    # The TensorFlow resources (SentencePiece models, the lookup table) are created per call
    # (once per trace in `tf.data`): resources created eagerly do not survive
    # `keras.backend.clear_session()`.

    def _lookup(self, pieces):
        import tensorflow as tf

        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(self._piece_list), tf.range(len(self._piece_list), dtype=tf.int32)
            ),
            default_value=self._vocabulary[self.unknown_token],
        )
        return table.lookup(pieces)

    def _require_assets(self):
        if self._vocabulary is None:
            raise ValueError(
                "MarianTokenizer has no vocabulary yet: pass `vocabulary`, `source_proto` and "
                "`target_proto`, or call `load_assets`."
            )

    def get_vocabulary(self):
        self._require_assets()
        return list(self._piece_list)

    def vocabulary_size(self):
        self._require_assets()
        return len(self._vocabulary)

    def id_to_token(self, id):
        return self.get_vocabulary()[id]

    def token_to_id(self, token):
        self._require_assets()
        return self._vocabulary.get(token, self._vocabulary[self.unknown_token])

    def save_assets(self, dir_path):
        for filename, content in (
            (SOURCE_SPM, self._source_proto),
            (TARGET_SPM, self._target_proto),
        ):
            with open(os.path.join(dir_path, filename), "wb") as file:
                file.write(content)
        with open(os.path.join(dir_path, VOCABULARY_FILE), "w", encoding="utf-8") as file:
            json.dump(self._vocabulary, file, ensure_ascii=False, indent=1)

    def load_assets(self, dir_path):
        self.set_assets(
            os.path.join(dir_path, VOCABULARY_FILE),
            os.path.join(dir_path, SOURCE_SPM),
            os.path.join(dir_path, TARGET_SPM),
        )

    def tokenize(self, inputs):
        """Source strings (a string, a list or a string tensor of any batch shape) -> ids,
        each text's ids followed by `</s>`: int32, ragged for a batch, 1-D for one string."""
        return self._tokenize(inputs, self._source_proto)

    def tokenize_target(self, inputs):
        """Target strings -> ids, as `tokenize` but segmented with the target SentencePiece
        model (Hugging Face's `tokenizer(text_target=...)`): the labels of a translation
        pair."""
        return self._tokenize(inputs, self._target_proto)

    def _tokenize(self, inputs, proto):
        import tensorflow as tf
        import tensorflow_text as tf_text

        self._require_assets()
        inputs = tf.convert_to_tensor(inputs, tf.string)
        scalar = inputs.shape.rank == 0
        batch = tf.reshape(inputs, [-1]) if scalar else inputs
        model = tf_text.SentencepieceTokenizer(model=proto, out_type=tf.string)
        pieces = model.tokenize(batch)  # ragged (B, None) strings
        ids = tf.ragged.map_flat_values(self._lookup, pieces)
        end = tf.fill([ids.nrows(), 1], tf.constant(self.end_token_id, tf.int32))
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(end)], axis=-1)
        return ids[0] if scalar else ids

    def detokenize(self, inputs):
        """Ids (a list, array, tensor or ragged tensor; 1-D for one text) -> strings, the
        special tokens skipped (Hugging Face's `decode(..., skip_special_tokens=True)`)."""
        import tensorflow as tf
        import tensorflow_text as tf_text

        self._require_assets()
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], (list, tuple)):
            inputs = tf.ragged.constant(inputs, dtype=tf.int32)
        if not isinstance(inputs, tf.RaggedTensor):
            if isinstance(inputs, list):
                inputs = np.asarray(inputs)
            inputs = tf.convert_to_tensor(inputs)
        inputs = tf.cast(inputs, tf.int32)
        scalar = inputs.shape.rank == 1
        if scalar:
            inputs = inputs[None]
        if not isinstance(inputs, tf.RaggedTensor):
            inputs = tf.RaggedTensor.from_tensor(inputs)
        special = tf.constant(sorted(self.special_token_ids), tf.int32)
        keep = tf.ragged.map_flat_values(
            lambda ids: tf.logical_not(tf.reduce_any(tf.equal(ids[:, None], special), axis=-1)),
            inputs,
        )
        kept = tf.ragged.boolean_mask(inputs, keep)
        all_pieces = tf.constant(self._piece_list)
        pieces = tf.ragged.map_flat_values(lambda ids: tf.gather(all_pieces, ids), kept)
        target_model = tf_text.SentencepieceTokenizer(model=self._target_proto)
        spm_ids = tf.ragged.map_flat_values(target_model.string_to_id, pieces)
        texts = target_model.detokenize(spm_ids)
        return texts[0] if scalar else texts

    def call(self, inputs):
        return self.tokenize(inputs)

    def compute_output_spec(self, inputs):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": None,  # Saved as assets (`save_assets`), not in the config.
                "source_proto": None,
                "target_proto": None,
                "end_token": self.end_token,
                "unknown_token": self.unknown_token,
                "pad_token": self.pad_token,
            }
        )
        return config
