"""GPT: the 0.1 single-class GPT language model, now `GPTCausalLM` on a `GPTBackbone`."""

import inspect

from keras_seq.api import keras_seq_export
from keras_seq.models.deprecation import LegacyWeightLayout
from keras_seq.models.deprecation import bind_arguments
from keras_seq.models.deprecation import legacy_from_preset
from keras_seq.models.deprecation import warn_deprecated
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM


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

    def __init__(self, *args, **kwargs):
        warn_deprecated("GPT", "keras_seq.models.GPTCausalLM(keras_seq.models.GPTBackbone(...))")
        arguments, kwargs = bind_arguments(GPTBackbone, args, kwargs)
        backbone = GPTBackbone(**arguments, dtype=kwargs.get("dtype"), name="gpt_backbone")
        super().__init__(backbone, **kwargs)
        self.legacy_arguments = arguments
        self.use_legacy_layout()

    # The 0.1 signature, GPTBackbone's (for help() and `constructor_arguments`).
    __init__.__signature__ = inspect.signature(GPTBackbone.__init__)

    @classmethod
    def from_preset(cls, preset, **overrides):
        return legacy_from_preset(cls, GPTBackbone, preset, overrides)

    def legacy_layers(self):
        return self.backbone.layers

    def get_config(self):
        config = super().get_config()
        # Not arguments of the 0.1 class (its models never carry a tokenizer or defaults).
        del config["backbone"], config["tokenizer"], config["generation_defaults"]
        return {**config, **self.legacy_arguments}
