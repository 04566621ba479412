"""The encoder-decoder Transformer of Vaswani et al. (2017), with cached generation.

Letter legend for shape comments: B batch, S source length, T target length, D `hidden_dim`,
V target vocabulary size.
"""

import math

import keras
import keras_hub
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.blocks.transformer_encoder import TransformerEncoder
from keras_seq.layers.embeddings.position_embedding import PositionEmbedding
from keras_seq.layers.embeddings.sine_position_encoding import SinePositionEncoding
from keras_seq.models.cached_decoder import decoder_stack_step
from keras_seq.models.cached_decoder import prefill_decoder_stack
from keras_seq.models.legacy_generative_model import GenerativeModel
from keras_seq.models.transformer_seq2seq_presets import TRANSFORMER_SEQ2SEQ_PRESETS
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate

POSITION_TYPES = ("sine", "learned")


def _embedding_initializer(hidden_dim):
    """`RandomNormal(stddev=hidden_dim ** -0.5)` as a config: embeddings scaled by
    `sqrt(hidden_dim)` then start at unit scale (as in tensor2tensor and fairseq)."""
    return {
        "class_name": "RandomNormal",
        "config": {"mean": 0.0, "stddev": hidden_dim**-0.5, "seed": None},
    }


def _validate_vocabularies(
    vocabulary_size, source_vocabulary_size, target_vocabulary_size, share_embeddings
):
    """Check the vocabulary arguments; return the `(source, target)` vocabulary sizes."""
    separate = (source_vocabulary_size, target_vocabulary_size)
    if vocabulary_size is not None:
        validate_positive_int("vocabulary_size", vocabulary_size)
        if any(size is not None for size in separate):
            raise ValueError(
                "Pass either `vocabulary_size` (one vocabulary for source and target) or "
                "`source_vocabulary_size` and `target_vocabulary_size`, not both. Received: "
                f"vocabulary_size={vocabulary_size}, source_vocabulary_size="
                f"{source_vocabulary_size}, target_vocabulary_size={target_vocabulary_size}"
            )
        return vocabulary_size, vocabulary_size
    if any(size is None for size in separate):
        raise ValueError(
            "`vocabulary_size` is required, or else both `source_vocabulary_size` and "
            "`target_vocabulary_size`. Received: vocabulary_size=None, source_vocabulary_size="
            f"{source_vocabulary_size}, target_vocabulary_size={target_vocabulary_size}"
        )
    validate_positive_int("source_vocabulary_size", source_vocabulary_size)
    validate_positive_int("target_vocabulary_size", target_vocabulary_size)
    if share_embeddings:
        raise ValueError(
            "`share_embeddings=True` shares one matrix between source, target and output, so "
            "it needs one joint vocabulary: pass `vocabulary_size`, or set "
            "share_embeddings=False. Received: share_embeddings=True, source_vocabulary_size="
            f"{source_vocabulary_size}, target_vocabulary_size={target_vocabulary_size}"
        )
    return source_vocabulary_size, target_vocabulary_size


@keras_seq_export
class TransformerSeq2Seq(GenerativeModel):
    """Encoder-decoder Transformer (Vaswani et al., 2017) for sequence-to-sequence tasks.

    The source is embedded, scaled by `sqrt(hidden_dim)`, added to position encodings and
    run through `num_encoder_layers` `keras_seq.layers.TransformerEncoder` blocks; the
    shifted target (`target_in`, starting with `start_token_id`) goes the same way through
    `num_decoder_layers` `keras_seq.layers.TransformerDecoder` blocks (causal self-attention,
    cross-attention to the encoder outputs), and a linear projection gives the next-token
    logits. Token id 0 is padding on both sides: padded source tokens are never attended
    to, padded target positions attend to nothing (their logits are meaningless; weight
    them out of the loss, e.g. with `keras_seq.losses.SequenceCrossEntropy(ignore_index=0)`).

    With `share_embeddings=True` (the paper's section 3.4) one `(vocabulary_size,
    hidden_dim)` matrix embeds source and target tokens and, transposed, projects onto the
    vocabulary; the embedding initializer is `RandomNormal(stddev=hidden_dim ** -0.5)`, so
    that the scaled embeddings start at unit scale. `normalize_first=True` gives the pre-norm
    variant, with a final layer norm after each stack. `TransformerSeq2Seq.from_preset(
    "transformer_base")` is the paper's base model (63,082,496 parameters with the 37000-token
    vocabulary); see `TransformerSeq2Seq.presets` for `transformer_big` and
    `transformer_tiny`.

    Generation (`generate()`, every strategy of `keras_seq.generation.generate`) encodes the
    source once and computes each decoder block's cross-attention keys and values once;
    each step then feeds one token through the self-attention caches. The output holds the
    new tokens only (the prefix is empty): `(batch_size, max_new_tokens)`.

    Args:
        vocabulary_size: int or `None`. Size of one vocabulary shared by source and target
            (padding id 0 included). Give it, or both `source_vocabulary_size` and
            `target_vocabulary_size`.
        num_encoder_layers: int. Number of encoder blocks. Defaults to `6`.
        num_decoder_layers: int. Number of decoder blocks. Defaults to `6`.
        hidden_dim: int. Width of the embeddings and blocks (d_model); must be divisible by
            `num_heads`. Defaults to `512`.
        num_heads: int. Attention heads per block. Defaults to `8`.
        intermediate_dim: int. Width of each block's feed-forward hidden layer.
            Defaults to `2048`.
        dropout: float in [0, 1). Dropout on the embedding sums and on every residual
            branch. Defaults to `0.1`.
        attention_dropout: float in [0, 1). Dropout on the attention probabilities.
            Defaults to `0.0`.
        max_sequence_length: int or `None`. Rows of the learned position tables (the
            longest source and target) with `position="learned"`, where it is required;
            must be `None` with `"sine"`, which works at any length. Defaults to `None`.
        position: `"sine"` (fixed sinusoidal encoding) or `"learned"` (one learned table
            per side). Defaults to `"sine"`.
        share_embeddings: bool. Share one matrix between the source embedding, the target
            embedding and the output projection (requires `vocabulary_size`). With `False`,
            source and target get their own tables and the output projection its own
            `(hidden_dim, target_vocabulary_size)` matrix. Defaults to `True`.
        normalize_first: bool. Pre-norm blocks plus a final layer norm per stack if `True`;
            post-norm (the paper) if `False`. Defaults to `False`.
        start_token_id: int. The token that starts every target: `generate()` feeds it
            first, and `target_in` should start with it. Must not be the padding id 0.
            Defaults to `1`.
        source_vocabulary_size: int or `None`. Source vocabulary size, with
            `share_embeddings=False` and no `vocabulary_size`. Defaults to `None`.
        target_vocabulary_size: int or `None`. Target vocabulary size (the logits' last
            dimension), likewise. Defaults to `None`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: dict with `"source"`, int `(batch_size, source_length)`, and
            `"target_in"`, int `(batch_size, target_length)`: the target shifted right
            (`start_token_id` first, the last token dropped). 0 is padding.
        training: bool or `None`.

    Returns:
        Float logits `(batch_size, target_length, target_vocabulary_size)`: position `t`
        scores the target token after `target_in[:, :t + 1]`.

    Example:
    ```python
    model = keras_seq.models.TransformerSeq2Seq.from_preset(
        "transformer_tiny", vocabulary_size=50
    )
    source = np.array([[5, 9, 12, 2, 0], [7, 3, 2, 0, 0]])
    target_in = np.array([[1, 8, 4], [1, 6, 0]])
    logits = model({"source": source, "target_in": target_in})  # (2, 3, 50)
    token_ids = model.generate(source, max_new_tokens=4, stop_token_id=2)  # (2, 4)
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Press and Wolf, 2017](https://arxiv.org/abs/1608.05859) (shared embeddings)
        - [Xiong et al., 2020](https://arxiv.org/abs/2002.04745) (pre-norm)
    """

    presets = TRANSFORMER_SEQ2SEQ_PRESETS

    def __init__(
        self,
        vocabulary_size=None,
        num_encoder_layers=6,
        num_decoder_layers=6,
        hidden_dim=512,
        num_heads=8,
        intermediate_dim=2048,
        dropout=0.1,
        attention_dropout=0.0,
        max_sequence_length=None,
        position="sine",
        share_embeddings=True,
        normalize_first=False,
        start_token_id=1,
        source_vocabulary_size=None,
        target_vocabulary_size=None,
        **kwargs,
    ):
        validate_bool("share_embeddings", share_embeddings)
        source_size, target_size = _validate_vocabularies(
            vocabulary_size, source_vocabulary_size, target_vocabulary_size, share_embeddings
        )
        for name, value in (
            ("num_encoder_layers", num_encoder_layers),
            ("num_decoder_layers", num_decoder_layers),
            ("hidden_dim", hidden_dim),
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
        ):
            validate_positive_int(name, value)
        validate_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
        validate_rate("dropout", dropout)
        validate_rate("attention_dropout", attention_dropout)
        validate_choice("position", position, POSITION_TYPES)
        if position == "learned":
            if max_sequence_length is None:
                raise ValueError(
                    "`max_sequence_length` is required with position='learned': it is the "
                    "number of rows of the position tables. Received: max_sequence_length=None"
                )
            validate_positive_int("max_sequence_length", max_sequence_length)
        elif max_sequence_length is not None:
            raise ValueError(
                "`max_sequence_length` only applies to position='learned'; the sine "
                "encoding works at any length. Received: "
                f"max_sequence_length={max_sequence_length!r}, position={position!r}"
            )
        validate_bool("normalize_first", normalize_first)
        if isinstance(start_token_id, bool) or not isinstance(start_token_id, int):
            raise ValueError(
                f"`start_token_id` must be an int. Received: start_token_id={start_token_id!r}"
            )
        if not 0 < start_token_id < target_size:
            raise ValueError(
                "`start_token_id` must be a target token id other than the padding id 0, "
                f"in [1, {target_size}). Received: start_token_id={start_token_id}"
            )
        dtype = kwargs.get("dtype")

        # === Layers ===
        def token_embedding(size, tie_weights, name):
            return keras_hub.layers.ReversibleEmbedding(
                size,
                hidden_dim,
                tie_weights=tie_weights,
                embeddings_initializer=_embedding_initializer(hidden_dim),
                dtype=dtype,
                name=name,
            )

        def position_embedding(name):
            if position == "sine":
                return SinePositionEncoding(dtype=dtype, name=name)
            return PositionEmbedding(max_sequence_length, dtype=dtype, name=name)

        if share_embeddings:
            self.token_embedding = token_embedding(target_size, True, "token_embedding")
        else:
            self.source_token_embedding = token_embedding(
                source_size, True, "source_token_embedding"
            )
            # Untied: its reverse projection is the separate output matrix.
            self.target_token_embedding = token_embedding(
                target_size, False, "target_token_embedding"
            )
        self.source_position_embedding = position_embedding("source_position_embedding")
        self.target_position_embedding = position_embedding("target_position_embedding")
        self.source_embedding_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="source_embedding_dropout"
        )
        self.target_embedding_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="target_embedding_dropout"
        )
        block_kwargs = dict(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            normalize_first=normalize_first,
            dtype=dtype,
        )
        self.encoder_layers = [
            TransformerEncoder(**block_kwargs, name=f"encoder_layer_{index}")
            for index in range(num_encoder_layers)
        ]
        self.decoder_layers = [
            TransformerDecoder(**block_kwargs, name=f"decoder_layer_{index}")
            for index in range(num_decoder_layers)
        ]
        if normalize_first:
            self.encoder_layer_norm = keras.layers.LayerNormalization(
                epsilon=1e-5, dtype=dtype, name="encoder_layer_norm"
            )
            self.decoder_layer_norm = keras.layers.LayerNormalization(
                epsilon=1e-5, dtype=dtype, name="decoder_layer_norm"
            )
        self._embedding_scale = math.sqrt(hidden_dim)
        self._normalize_first = normalize_first
        self._shared_embeddings = share_embeddings

        # === Functional graph ===
        source = keras.Input(shape=(None,), dtype="int32", name="source")
        target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
        source_mask = ops.not_equal(source, 0)  # (B, S)
        target_mask = ops.not_equal(target_in, 0)  # (B, T)
        encoded = self._encode(source, source_mask)  # (B, S, D)
        x = self._embed_target(target_in)  # (B, T, D)
        for block in self.decoder_layers:
            x = block(
                x, encoded, decoder_padding_mask=target_mask, encoder_padding_mask=source_mask
            )
        logits = self._logits(x)  # (B, T, V)
        super().__init__(
            inputs={"source": source, "target_in": target_in}, outputs=logits, **kwargs
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_encoder_layers = num_encoder_layers
        self.num_decoder_layers = num_decoder_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.max_sequence_length = max_sequence_length
        self.position = position
        self.share_embeddings = share_embeddings
        self.normalize_first = normalize_first
        self.start_token_id = start_token_id
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size

    # === The computation, shared by the functional graph and the generation protocol ===

    def _source_table(self):
        return self.token_embedding if self._shared_embeddings else self.source_token_embedding

    def _target_table(self):
        return self.token_embedding if self._shared_embeddings else self.target_token_embedding

    def _embed(self, token_ids, table, position_embedding, dropout, start_index=0, training=None):
        x = ops.multiply(table(token_ids), self._embedding_scale)  # (B, T, D)
        x = position_embedding(x, start_index=start_index)
        return dropout(x, training=training)

    def _encode(self, source, source_mask, training=None):
        x = self._embed(
            source,
            self._source_table(),
            self.source_position_embedding,
            self.source_embedding_dropout,
            training=training,
        )  # (B, S, D)
        for block in self.encoder_layers:
            x = block(x, padding_mask=source_mask, training=training)
        if self._normalize_first:
            x = self.encoder_layer_norm(x)
        return x

    def _embed_target(self, token_ids, start_index=0, training=None):
        return self._embed(
            token_ids,
            self._target_table(),
            self.target_position_embedding,
            self.target_embedding_dropout,
            start_index=start_index,
            training=training,
        )

    def _logits(self, x):
        if self._normalize_first:
            x = self.decoder_layer_norm(x)
        # Keras' Embedding does not autocast: inside the autocast scope of a mixed-precision
        # model it reads its float32 table, so the reverse projection would return float32
        # there and the compute dtype elsewhere. Logits follow the hidden states' dtype.
        return ops.cast(self._target_table()(x, reverse=True), x.dtype)  # (B, T, V)

    # === Generation protocol ===

    def prefill(self, inputs, max_new_tokens):
        if isinstance(inputs, dict):
            if "source" not in inputs:
                raise ValueError(
                    "`inputs` of TransformerSeq2Seq.generate must be the source token ids "
                    f"or a dict with a 'source' entry. Received keys: {sorted(inputs)}"
                )
            inputs = inputs["source"]
        if self.position == "learned" and max_new_tokens > self.max_sequence_length:
            raise ValueError(
                "`max_new_tokens` must not exceed `max_sequence_length` (the rows of the "
                f"learned position table). Received: max_new_tokens={max_new_tokens}, "
                f"max_sequence_length={self.max_sequence_length}"
            )
        source = ops.cast(inputs, "int32")  # (B, S)
        source_mask = ops.not_equal(source, 0)
        encoded = self._encode(source, source_mask, training=False)  # (B, S, D)
        batch_size = ops.shape(source)[0]
        start = ops.full((batch_size, 1), self.start_token_id, dtype="int32")
        x, caches = prefill_decoder_stack(
            self.decoder_layers,
            self._embed_target(start, training=False),
            encoded,
            cache_length=max_new_tokens + 1,
            encoder_padding_mask=source_mask,
        )
        caches["encoder_padding_mask"] = source_mask
        prefix = ops.zeros((batch_size, 0), dtype="int32")
        return prefix, self._logits(x)[:, 0], caches

    def call_with_cache(self, token_ids, cache, index):
        # Output position `index` is decoder position `index + 1`: the start token is at 0.
        position = ops.cast(index, "int32") + 1
        x = self._embed_target(
            ops.cast(token_ids, "int32")[:, None], start_index=position, training=False
        )  # (B, 1, D)
        x, caches = decoder_stack_step(
            self.decoder_layers,
            x,
            cache,
            position,
            encoder_padding_mask=cache["encoder_padding_mask"],
        )
        caches["encoder_padding_mask"] = cache["encoder_padding_mask"]
        return self._logits(x)[:, 0], caches

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_encoder_layers": self.num_encoder_layers,
                "num_decoder_layers": self.num_decoder_layers,
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "max_sequence_length": self.max_sequence_length,
                "position": self.position,
                "share_embeddings": self.share_embeddings,
                "normalize_first": self.normalize_first,
                "start_token_id": self.start_token_id,
                "source_vocabulary_size": self.source_vocabulary_size,
                "target_vocabulary_size": self.target_vocabulary_size,
            }
        )
        return config
