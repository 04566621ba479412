"""TransformerSeq2SeqBackbone: the encoder-decoder Transformer of Vaswani et al. (2017).

Letter legend for shape comments: B batch, S source length, T target length, P decoder prefix
length, D `hidden_dim`.
"""

import math

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.blocks.transformer_encoder import TransformerEncoder
from keras_seq.layers.embeddings.position_embedding import PositionEmbedding
from keras_seq.layers.embeddings.sine_position_encoding import SinePositionEncoding
from keras_seq.models.backbone import Backbone
from keras_seq.models.cached_decoder import decoder_stack_step
from keras_seq.models.cached_decoder import prefill_decoder_stack
from keras_seq.models.default_name import default_name
from keras_seq.models.marian_converter_transformers import MarianTransformersConverter
from keras_seq.models.transformer_seq2seq_presets import TRANSFORMER_SEQ2SEQ_PRESETS
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_non_negative_int
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate

POSITION_TYPES = ("sine", "sine_halves", "learned")


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
class TransformerSeq2SeqBackbone(Backbone):
    """Encoder-decoder Transformer (Vaswani et al., 2017): encoder and decoder stacks.

    The source is embedded, scaled by `sqrt(hidden_dim)`, added to position encodings and run
    through `num_encoder_layers` `keras_seq.layers.TransformerEncoder` blocks; the shifted
    target (`target_in`) goes the same way through `num_decoder_layers`
    `keras_seq.layers.TransformerDecoder` blocks (causal self-attention, cross-attention to the
    encoder outputs). It returns both stacks' outputs, as keras_hub's `BartBackbone` and
    Hugging Face's `MarianModel` do; `TransformerSeq2SeqLM` puts the output projection and
    `generate()` on it. Token id `padding_token_id` (0 unless told) is padding on both sides:
    padded source tokens are never attended to, padded target positions attend to nothing
    (their outputs are meaningless).

    With `share_embeddings=True` (the paper's section 3.4) one `(vocabulary_size, hidden_dim)`
    matrix embeds source and target tokens and, transposed, is the output projection; the
    embedding initializer is `RandomNormal(stddev=hidden_dim ** -0.5)`, so that the scaled
    embeddings start at unit scale. With `False`, source and target get their own tables and
    the target table (`token_embedding`, a `keras.layers.ReversibleEmbedding` with
    `tie_weights=False`) holds a separate `(hidden_dim, target_vocabulary_size)` output
    projection. `normalize_first=True` gives the pre-norm variant, with a final layer norm
    after each stack (part of the returned outputs). `from_preset("transformer_base")` is the
    paper's base model (63,082,496 parameters with the 37000-token vocabulary).

    For cached decoding (`TransformerSeq2SeqLM.generate`) it also offers `encode(source)`,
    `prefill(source, target_in, cache_length)` and `call_with_cache(token_ids, cache, index)`:
    the source is encoded once, each decoder block's cross-attention keys and values are
    computed once, and each step feeds one position through the self-attention caches.

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
        max_sequence_length: int or `None`. Rows of the learned position tables (the longest
            source and target) with `position="learned"`, where it is required; must be
            `None` with `"sine"`, which works at any length. Defaults to `None`.
        position: `"sine"` (fixed sinusoidal encoding, sine and cosine interleaved),
            `"sine_halves"` (the same frequencies, sines in the first half of the channels and
            cosines in the second, as Marian / Hugging Face's `MarianMTModel` lay them out) or
            `"learned"` (one learned table per side). Defaults to `"sine"`.
        share_embeddings: bool. Share one matrix between the source embedding, the target
            embedding and the output projection (requires `vocabulary_size`). Defaults to
            `True`.
        normalize_first: bool. Pre-norm blocks plus a final layer norm per stack if `True`;
            post-norm (the paper) if `False`. Defaults to `False`.
        source_vocabulary_size: int or `None`. Source vocabulary size, with
            `share_embeddings=False` and no `vocabulary_size`. Defaults to `None`.
        target_vocabulary_size: int or `None`. Target vocabulary size, likewise.
            Defaults to `None`.
        activation: activation of every block's feed-forward hidden layer (`"relu"` as in
            the paper; `"silu"` for Marian checkpoints). Defaults to `"relu"`.
        padding_token_id: int >= 0. The token id that marks padding in `source` and
            `target_in` (masked out of attention). Marian checkpoints pad with their last id
            and use 0 as the end token. Defaults to `0`.
        mask_target_padding: bool. Mask `padding_token_id` in `target_in` too; with `False`
            the decoder's self-attention is causal only (Marian's and Hugging Face's: there
            the start token is the padding token, and padded positions come after the real
            ones, so they never affect them). Defaults to `True`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: dict with `"source"`, int `(batch_size, source_length)`, and `"target_in"`,
            int `(batch_size, target_length)`: the target shifted right (a start token first,
            the last token dropped). `padding_token_id` is padding.
        training: bool or `None`.

    Returns:
        Dict with `"encoder_sequence_output"`, float `(batch_size, source_length,
        hidden_dim)`, and `"decoder_sequence_output"`, float `(batch_size, target_length,
        hidden_dim)`.

    Example:
    ```python
    backbone = keras_seq.models.TransformerSeq2SeqBackbone.from_preset(
        "transformer_tiny", vocabulary_size=50
    )
    source = np.array([[5, 9, 12, 2, 0], [7, 3, 2, 0, 0]])
    target_in = np.array([[1, 8, 4], [1, 6, 0]])
    outputs = backbone({"source": source, "target_in": target_in})
    assert outputs["encoder_sequence_output"].shape == (2, 5, 64)
    assert outputs["decoder_sequence_output"].shape == (2, 3, 64)
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Press and Wolf, 2017](https://arxiv.org/abs/1608.05859) (shared embeddings)
        - [Xiong et al., 2020](https://arxiv.org/abs/2002.04745) (pre-norm)
    """

    presets = TRANSFORMER_SEQ2SEQ_PRESETS
    checkpoint_converters = (MarianTransformersConverter,)

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
        source_vocabulary_size=None,
        target_vocabulary_size=None,
        activation="relu",
        padding_token_id=0,
        mask_target_padding=True,
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
        validate_non_negative_int("padding_token_id", padding_token_id)
        if not 0 <= padding_token_id < max(source_size, target_size):
            raise ValueError(
                "`padding_token_id` must be an int in [0, vocabulary size). Received: "
                f"padding_token_id={padding_token_id}, source_vocabulary_size={source_size}, "
                f"target_vocabulary_size={target_size}"
            )
        self._padding_token_id = padding_token_id
        validate_bool("mask_target_padding", mask_target_padding)
        # Keras would name it "transformer_seq2_seq_backbone".
        kwargs.setdefault("name", default_name("transformer_seq2seq_backbone"))
        dtype = kwargs.get("dtype")
        source_name = "vocabulary_size" if vocabulary_size is not None else "source_vocabulary_size"
        target_name = "vocabulary_size" if vocabulary_size is not None else "target_vocabulary_size"
        check_model_size(
            "TransformerSeq2SeqBackbone",
            {
                source_name: source_size,
                target_name: target_size,
                "max_sequence_length": max_sequence_length or 0,
                "num_encoder_layers": num_encoder_layers,
                "num_decoder_layers": num_decoder_layers,
                "hidden_dim": hidden_dim,
                "intermediate_dim": intermediate_dim,
            },
            [
                (1, source_name, "hidden_dim"),
                (1, target_name, "hidden_dim"),
                (2, "max_sequence_length", "hidden_dim"),
                (4, "num_encoder_layers", "hidden_dim", "hidden_dim"),
                (2, "num_encoder_layers", "hidden_dim", "intermediate_dim"),
                (8, "num_decoder_layers", "hidden_dim", "hidden_dim"),
                (2, "num_decoder_layers", "hidden_dim", "intermediate_dim"),
            ],
            num_blocks=num_encoder_layers + num_decoder_layers,
            dtype=dtype,
        )

        # === Layers ===
        def token_embedding(size, tie_weights, name):
            return keras.layers.ReversibleEmbedding(
                size,
                hidden_dim,
                tie_weights=tie_weights,
                embeddings_initializer=_embedding_initializer(hidden_dim),
                dtype=dtype,
                name=name,
            )

        def position_embedding(name):
            if position in ("sine", "sine_halves"):
                layout = "halves" if position == "sine_halves" else "interleaved"
                return SinePositionEncoding(layout=layout, dtype=dtype, name=name)
            return PositionEmbedding(max_sequence_length, dtype=dtype, name=name)

        if share_embeddings:
            self.source_token_embedding = token_embedding(target_size, True, "token_embedding")
            self.target_token_embedding = self.source_token_embedding
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
            activation=activation,
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
        self.encoder_layer_norm = None
        self.decoder_layer_norm = None
        if normalize_first:
            self.encoder_layer_norm = keras.layers.LayerNormalization(
                epsilon=1e-5, dtype=dtype, name="encoder_layer_norm"
            )
            self.decoder_layer_norm = keras.layers.LayerNormalization(
                epsilon=1e-5, dtype=dtype, name="decoder_layer_norm"
            )
        self._embedding_scale = math.sqrt(hidden_dim)

        # === Functional model ===
        source = keras.Input(shape=(None,), dtype="int32", name="source")
        target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
        encoded, source_mask = self.encode(source)  # (B, S, D), (B, S)
        target_mask = self._padding_mask(target_in) if mask_target_padding else None  # (B, T)
        x = self._embed_target(target_in)  # (B, T, D)
        for block in self.decoder_layers:
            x = block(
                x, encoded, decoder_padding_mask=target_mask, encoder_padding_mask=source_mask
            )
        decoded = self._decoder_output(x)  # (B, T, D)
        super().__init__(
            inputs={"source": source, "target_in": target_in},
            outputs={"encoder_sequence_output": encoded, "decoder_sequence_output": decoded},
            **kwargs,
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
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.activation = activation
        self.padding_token_id = padding_token_id
        self.mask_target_padding = mask_target_padding

    @property
    def token_embedding(self):
        """The target token embedding, a keras_hub `ReversibleEmbedding` whose reverse is the
        output projection (the shared matrix with `share_embeddings=True`)."""
        return self.target_token_embedding

    # === The computation, shared by the functional graph and cached decoding ===

    def _padding_mask(self, token_ids):
        # True at real tokens.
        return ops.not_equal(token_ids, self._padding_token_id)

    def _embed(self, token_ids, table, position_embedding, dropout, start_index=0, training=None):
        x = ops.multiply(table(token_ids), self._embedding_scale)  # (B, T, D)
        x = position_embedding(x, start_index=start_index)
        return dropout(x, training=training)

    def encode(self, source, training=None):
        """Run the encoder on source ids int `(batch_size, source_length)`; returns
        `(encoder_sequence_output, encoder_padding_mask)`: `(batch_size, source_length,
        hidden_dim)` and bool `(batch_size, source_length)`, `True` at real tokens."""
        source_mask = self._padding_mask(source)  # (B, S)
        x = self._embed(
            source,
            self.source_token_embedding,
            self.source_position_embedding,
            self.source_embedding_dropout,
            training=training,
        )  # (B, S, D)
        for block in self.encoder_layers:
            x = block(x, padding_mask=source_mask, training=training)
        if self.encoder_layer_norm is not None:
            x = self.encoder_layer_norm(x)
        return x, source_mask

    def _embed_target(self, token_ids, start_index=0, training=None):
        return self._embed(
            token_ids,
            self.target_token_embedding,
            self.target_position_embedding,
            self.target_embedding_dropout,
            start_index=start_index,
            training=training,
        )

    def _decoder_output(self, x):
        if self.decoder_layer_norm is not None:
            x = self.decoder_layer_norm(x)
        return x

    def prefill(self, source, target_in, cache_length):
        """Encode `source` int `(batch_size, source_length)`, run the decoder prefix
        `target_in` int `(batch_size, prefix_length)` (e.g. the start token) and create the
        caches.

        Returns `(hidden, cache)`: the decoder output `(batch_size, prefix_length,
        hidden_dim)`, equal to the full pass on that prefix, and the cache that
        `call_with_cache` continues from: `"self_attention"` (per block, `(batch_size, 2,
        cache_length, num_heads, key_dim)`, the prefix written), `"cross_attention"` (per
        block, the encoder's keys and values `(batch_size, 2, source_length, num_heads,
        key_dim)`) and `"encoder_padding_mask"` `(batch_size, source_length)`; all batch first.
        `cache_length` counts every decoder position, the prefix's included.
        """
        if len(target_in.shape) != 2 or not 1 <= (target_in.shape[1] or 0) <= cache_length:
            raise ValueError(
                "`target_in` must be int token ids `(batch_size, prefix_length)` with a static "
                "prefix_length in [1, cache_length]. Received: "
                f"shape={tuple(target_in.shape)}, cache_length={cache_length}"
            )
        encoded, source_mask = self.encode(source, training=False)  # (B, S, D)
        x, cache = prefill_decoder_stack(
            self.decoder_layers,
            self._embed_target(target_in, training=False),  # (B, P, D)
            encoded,
            cache_length=cache_length,
            encoder_padding_mask=source_mask,
        )
        cache["encoder_padding_mask"] = source_mask
        return self._decoder_output(x), cache

    def call_with_cache(self, token_ids, cache, index):
        """One decoding step: `token_ids` int `(batch_size, 1)` at decoder position `index`
        (an int32 scalar); returns `(hidden, cache)`, hidden `(batch_size, 1, hidden_dim)`."""
        x = self._embed_target(
            ops.cast(token_ids, "int32"), start_index=index, training=False
        )  # (B, 1, D)
        x, updated = decoder_stack_step(
            self.decoder_layers,
            x,
            cache,
            index,
            encoder_padding_mask=cache["encoder_padding_mask"],
        )
        updated["encoder_padding_mask"] = cache["encoder_padding_mask"]
        return self._decoder_output(x), updated

    def get_config(self):
        return {
            **super().get_config(),
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
            "source_vocabulary_size": self.source_vocabulary_size,
            "target_vocabulary_size": self.target_vocabulary_size,
            "activation": self.activation,
            "padding_token_id": self.padding_token_id,
            "mask_target_padding": self.mask_target_padding,
        }
