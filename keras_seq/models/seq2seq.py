"""Seq2Seq: the 0.1 recurrent encoder-decoder, now `RNNSeq2SeqLM` on an `RNNSeq2SeqBackbone`."""

from keras_seq.api import keras_seq_export
from keras_seq.models.default_name import default_name
from keras_seq.models.deprecation import LegacyWeightLayout
from keras_seq.models.deprecation import warn_deprecated
from keras_seq.models.presets import preset_config
from keras_seq.models.rnn_seq2seq_backbone import RNNSeq2SeqBackbone
from keras_seq.models.rnn_seq2seq_lm import RNNSeq2SeqLM

# The 0.1 constructor arguments that are the backbone's (then `start_token_id`, the task's).
_BACKBONE_ARGUMENTS = (
    "source_vocabulary_size",
    "target_vocabulary_size",
    "embedding_dim",
    "hidden_dim",
    "num_layers",
    "cell",
    "attention",
    "attention_dim",
    "bidirectional_encoder",
    "dropout",
)


@keras_seq_export
class Seq2Seq(LegacyWeightLayout, RNNSeq2SeqLM):
    """Deprecated: use `RNNSeq2SeqLM(RNNSeq2SeqBackbone(...))` or `RNNSeq2SeqLM.from_preset(name)`.

    The 0.1 recurrent encoder-decoder, kept so that code and `.keras` files written for
    keras_seq 0.1 keep working: it takes `RNNSeq2SeqBackbone`'s arguments and
    `start_token_id`, builds the backbone and is an `RNNSeq2SeqLM` on it (same logits,
    `generate()`, `attention_weights()`), saving its weights at their 0.1 paths; the 0.1
    attributes (`encoder_layers`, `decoder_layers`, `attention`, ...) read the backbone's.
    Constructing one emits a `DeprecationWarning`.

    Args:
        source_vocabulary_size, target_vocabulary_size, embedding_dim, hidden_dim, num_layers,
            cell, attention, attention_dim, bidirectional_encoder, dropout: as
            `RNNSeq2SeqBackbone`.
        start_token_id: as `RNNSeq2SeqLM`. Defaults to `1`.
        **kwargs: base model arguments (`name`, `dtype`).
    """

    presets = RNNSeq2SeqBackbone.presets

    def __init__(
        self,
        source_vocabulary_size,
        target_vocabulary_size,
        embedding_dim,
        hidden_dim,
        num_layers=1,
        cell="lstm",
        attention=None,
        attention_dim=None,
        bidirectional_encoder=False,
        dropout=0.0,
        start_token_id=1,
        **kwargs,
    ):
        warn_deprecated(
            "Seq2Seq", "keras_seq.models.RNNSeq2SeqLM(keras_seq.models.RNNSeq2SeqBackbone(...))"
        )
        kwargs.setdefault("name", default_name("seq2seq"))  # Keras would make it "seq2_seq".
        backbone = RNNSeq2SeqBackbone(
            source_vocabulary_size=source_vocabulary_size,
            target_vocabulary_size=target_vocabulary_size,
            embedding_dim=embedding_dim,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            cell=cell,
            attention=attention,
            attention_dim=attention_dim,
            bidirectional_encoder=bidirectional_encoder,
            dropout=dropout,
            dtype=kwargs.get("dtype"),
            name="rnn_seq2seq_backbone",
        )
        super().__init__(backbone, start_token_id=start_token_id, **kwargs)
        self.use_legacy_layout()

    @classmethod
    def from_preset(cls, preset, **overrides):
        # The backbone's arguments and the task's (`start_token_id`), then the overrides.
        task_config = preset_config(cls, preset).get("task_config", {})
        return RNNSeq2SeqBackbone.from_preset.__func__(cls, preset, **{**task_config, **overrides})

    def legacy_layers(self):
        # 0.1 listed the backbone's layers in this order, then the readout.
        return self.backbone.layers + [self.output_dense]

    def get_config(self):
        config = super().get_config()
        base = {key: config[key] for key in ("name", "trainable", "dtype")}
        backbone_config = self.backbone.get_config()
        return {
            **base,
            **{name: backbone_config[name] for name in _BACKBONE_ARGUMENTS},
            "start_token_id": self.start_token_id,
        }
