"""RNNLanguageModel: the 0.1 recurrent language model, now `RNNCausalLM` on an `RNNBackbone`."""

import keras

from keras_seq.api import keras_seq_export
from keras_seq.models.deprecation import LegacyWeightLayout
from keras_seq.models.deprecation import warn_deprecated
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM
from keras_seq.utils.validation import validate_bool

# The 0.1 constructor arguments: the backbone's, then the readout's.
_ARGUMENTS = (
    "vocabulary_size",
    "embedding_dim",
    "hidden_dim",
    "num_layers",
    "cell",
    "dropout",
    "mask_zero",
    "tie_weights",
)


@keras_seq_export
class RNNLanguageModelBackbone(RNNBackbone):
    """The backbone of an untied deprecated `RNNLanguageModel` (not exported).

    An `RNNBackbone` whose token embedding is a plain `keras.layers.Embedding`, as the 0.1
    model's was without `tie_weights`: Keras saves a layer's weights under its class name,
    so this keeps them at their 0.1 path. It cannot serve a tied readout; use `RNNBackbone`.
    """

    def _make_token_embedding(self, vocabulary_size, embedding_dim, mask_zero, dtype):
        return keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=mask_zero, dtype=dtype, name="token_embedding"
        )


@keras_seq_export
class RNNLanguageModel(LegacyWeightLayout, RNNCausalLM):
    """Deprecated: use `RNNCausalLM(RNNBackbone(...))` or `RNNCausalLM.from_preset(name)`.

    The 0.1 recurrent language model, kept so that code and `.keras` files written for
    keras_seq 0.1 keep working: it takes `RNNBackbone`'s arguments and `RNNCausalLM`'s
    `tie_weights`, builds the backbone and is an `RNNCausalLM` on it (same outputs, masking
    and `generate()`), saving its weights at their 0.1 paths. Constructing one emits a
    `DeprecationWarning`.

    Args:
        vocabulary_size, embedding_dim, hidden_dim, num_layers, cell, dropout, mask_zero: as
            `RNNBackbone`.
        tie_weights: as `RNNCausalLM`.
        **kwargs: base model arguments (`name`, `dtype`).
    """

    presets = RNNBackbone.presets

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        hidden_dim,
        num_layers=1,
        cell="lstm",
        dropout=0.0,
        mask_zero=True,
        tie_weights=False,
        **kwargs,
    ):
        warn_deprecated(
            "RNNLanguageModel", "keras_seq.models.RNNCausalLM(keras_seq.models.RNNBackbone(...))"
        )
        validate_bool("tie_weights", tie_weights)
        # 0.1 embedded with a ReversibleEmbedding only when tied (see RNNLanguageModelBackbone).
        backbone_cls = RNNBackbone if tie_weights else RNNLanguageModelBackbone
        backbone = backbone_cls(
            vocabulary_size=vocabulary_size,
            embedding_dim=embedding_dim,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            cell=cell,
            dropout=dropout,
            mask_zero=mask_zero,
            dtype=kwargs.get("dtype"),
            name="rnn_backbone",
        )
        super().__init__(backbone, tie_weights=tie_weights, **kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        # The backbone's JSON value, past Keras' tracking (as RNNBackbone stores it).
        object.__setattr__(self, "cell", backbone.cell)
        self.dropout = dropout
        self.mask_zero = mask_zero
        self.use_legacy_layout()

    @classmethod
    def from_preset(cls, preset, **overrides):
        return RNNBackbone.from_preset.__func__(cls, preset, **overrides)

    def legacy_layers(self):
        # 0.1: [token_ids, token_embedding, dropout_0, recurrent_layer_0, ..., dropout_n,
        # output_dense (untied only)].
        head = [] if self.tie_weights else [self.output_dense]
        return self.backbone.layers + head

    def get_config(self):
        config = super().get_config()
        del config["backbone"], config["generation_defaults"]  # Not 0.1 arguments.
        return {**config, **{name: getattr(self, name) for name in _ARGUMENTS}}
