"""TransformerSeq2Seq: the 0.1 encoder-decoder Transformer, now `TransformerSeq2SeqLM` on a
`TransformerSeq2SeqBackbone`."""

from keras_seq.api import keras_seq_export
from keras_seq.models.default_name import default_name
from keras_seq.models.deprecation import LegacyWeightLayout
from keras_seq.models.deprecation import warn_deprecated
from keras_seq.models.presets import preset_config
from keras_seq.models.transformer_seq2seq_backbone import TransformerSeq2SeqBackbone
from keras_seq.models.transformer_seq2seq_lm import TransformerSeq2SeqLM

# The 0.1 constructor arguments in their order; all but `start_token_id` are the backbone's.
_ARGUMENTS = (
    "vocabulary_size",
    "num_encoder_layers",
    "num_decoder_layers",
    "hidden_dim",
    "num_heads",
    "intermediate_dim",
    "dropout",
    "attention_dropout",
    "max_sequence_length",
    "position",
    "share_embeddings",
    "normalize_first",
    "start_token_id",
    "source_vocabulary_size",
    "target_vocabulary_size",
)


@keras_seq_export
class TransformerSeq2Seq(LegacyWeightLayout, TransformerSeq2SeqLM):
    """Deprecated: use `TransformerSeq2SeqLM(TransformerSeq2SeqBackbone(...))` or its `from_preset`.

    The 0.1 encoder-decoder Transformer, kept so that code and `.keras` files written for
    keras_seq 0.1 keep working: it takes `TransformerSeq2SeqBackbone`'s arguments and
    `start_token_id`, builds the backbone and is a `TransformerSeq2SeqLM` on it (same logits,
    `generate()`), saving its weights at their 0.1 paths; the 0.1 attributes
    (`encoder_layers`, `decoder_layers`, `token_embedding`, ...) read the backbone's.
    Constructing one emits a `DeprecationWarning`.

    Args:
        vocabulary_size, num_encoder_layers, num_decoder_layers, hidden_dim, num_heads,
            intermediate_dim, dropout, attention_dropout, max_sequence_length, position,
            share_embeddings, normalize_first, source_vocabulary_size,
            target_vocabulary_size: as `TransformerSeq2SeqBackbone`.
        start_token_id: as `TransformerSeq2SeqLM`. Defaults to `1`.
        **kwargs: base model arguments (`name`, `dtype`).
    """

    presets = TransformerSeq2SeqBackbone.presets

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
        warn_deprecated(
            "TransformerSeq2Seq",
            "keras_seq.models.TransformerSeq2SeqLM(keras_seq.models.TransformerSeq2SeqBackbone(...))",
        )
        kwargs.setdefault("name", default_name("transformer_seq2seq"))
        backbone = TransformerSeq2SeqBackbone(
            vocabulary_size=vocabulary_size,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            max_sequence_length=max_sequence_length,
            position=position,
            share_embeddings=share_embeddings,
            normalize_first=normalize_first,
            source_vocabulary_size=source_vocabulary_size,
            target_vocabulary_size=target_vocabulary_size,
            dtype=kwargs.get("dtype"),
            name="transformer_seq2seq_backbone",
        )
        super().__init__(backbone, start_token_id=start_token_id, **kwargs)
        self.use_legacy_layout()

    @classmethod
    def from_preset(cls, preset, **overrides):
        # The backbone's arguments and the task's (`start_token_id`), then the overrides.
        task_config = preset_config(cls, preset).get("task_config", {})
        arguments = {**task_config, **overrides}
        return TransformerSeq2SeqBackbone.from_preset.__func__(cls, preset, **arguments)

    def legacy_layers(self):
        # 0.1 listed the backbone's layers in this order (the output projection is the
        # target token embedding's reverse).
        return self.backbone.layers

    def get_config(self):
        config = super().get_config()
        arguments = {**self.backbone.get_config(), "start_token_id": self.start_token_id}
        return {
            **{key: config[key] for key in ("name", "trainable", "dtype")},
            **{name: arguments[name] for name in _ARGUMENTS},
        }
