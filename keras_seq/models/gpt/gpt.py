"""GPT: the 0.1 single-class GPT language model, now `GPTCausalLM` on a `GPTBackbone`."""

from keras_seq.api import keras_seq_export
from keras_seq.models.deprecation import LegacyWeightLayout
from keras_seq.models.deprecation import warn_deprecated
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM

# The 0.1 constructor arguments, the backbone's.
_ARGUMENTS = (
    "vocabulary_size",
    "num_layers",
    "hidden_dim",
    "num_heads",
    "intermediate_dim",
    "sequence_length",
    "dropout",
    "layer_norm_epsilon",
)


@keras_seq_export
class GPT(LegacyWeightLayout, GPTCausalLM):
    """Deprecated: use `GPTCausalLM(GPTBackbone(...))` or `GPTCausalLM.from_preset(name)`.

    The 0.1 GPT language model, kept so that code and `.keras` files written for keras_seq 0.1
    keep working: it takes `GPTBackbone`'s arguments, builds the backbone and is a
    `GPTCausalLM` on it (same outputs, `generate()`), saving its weights at their 0.1 paths.
    Constructing one emits a `DeprecationWarning`.

    Args:
        vocabulary_size, num_layers, hidden_dim, num_heads, intermediate_dim, sequence_length,
            dropout, layer_norm_epsilon: as `GPTBackbone`.
        **kwargs: base model arguments (`name`, `dtype`).
    """

    presets = GPTBackbone.presets

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        hidden_dim,
        num_heads,
        intermediate_dim,
        sequence_length=1024,
        dropout=0.1,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        warn_deprecated("GPT", "keras_seq.models.GPTCausalLM(keras_seq.models.GPTBackbone(...))")
        arguments = dict(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            sequence_length=sequence_length,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
        )
        backbone = GPTBackbone(**arguments, dtype=kwargs.get("dtype"), name="gpt_backbone")
        super().__init__(backbone, **kwargs)
        for name, value in arguments.items():
            setattr(self, name, value)
        self.use_legacy_layout()

    @classmethod
    def from_preset(cls, preset, **overrides):
        return GPTBackbone.from_preset.__func__(cls, preset, **overrides)

    def legacy_layers(self):
        return self.backbone.layers

    @property
    def token_embedding(self):
        return self.backbone.token_embedding

    def get_config(self):
        config = super().get_config()
        del config["backbone"]
        return {**config, **{name: getattr(self, name) for name in _ARGUMENTS}}
