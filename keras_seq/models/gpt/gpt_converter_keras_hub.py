"""keras-hub GPT-2 presets (`keras_hub>GPT2Backbone`, alone or under a
`keras_hub>GPT2CausalLM`) -> `GPTBackbone` / `GPTCausalLM`.

keras-hub loads the preset (a directory, a keras-hub preset name such as `gpt2_base_en`, or
a `kaggle://` handle); this module maps its config and its variables, by path, to ours, and
takes the preset's `GPT2Tokenizer` as it is. Checkpoint names appear only in this module.
"""

import logging

from keras_seq.models.checkpoints.keras_hub_converter import KerasHubConverter
from keras_seq.models.gpt.gpt2_tokenizer import GPT2Tokenizer
from keras_seq.models.gpt.gpt_presets import GPT_PRESETS

logger = logging.getLogger(__name__)


class GPTKerasHubConverter(KerasHubConverter):
    """keras-hub's `GPT2Backbone` (and `GPT2CausalLM`, whose head is the tied token
    embedding: no variable of its own) -> keras_seq's GPT family.

    keras-hub's GPT-2 is GPT-2's architecture exactly (tanh-approximate GELU, layer norm
    epsilon 1e-5, learned positions, tied output projection), as is ours, so every variable
    maps one to one. The tokenizer is the preset's keras-hub `GPT2Tokenizer`, which is also
    what keras_seq uses for Hugging Face GPT-2 checkpoints. keras-hub's sampler settings
    (compiled into its task, not saved in the preset) are not carried over: `generate()`
    decodes greedily unless told otherwise.
    """

    model_types = ("keras_hub>GPT2Backbone",)
    # The causal LM adds no variable: its directory is read through its backbone.
    task_types = ()
    family = "GPTBackbone"
    builtin_presets = GPT_PRESETS

    @classmethod
    def keras_hub_classes(cls):
        import keras_hub

        return keras_hub.models.GPT2Backbone, keras_hub.models.GPT2CausalLM

    def backbone_config(self):
        config = self.config
        return {
            "vocabulary_size": config["vocabulary_size"],
            "num_layers": config["num_layers"],
            "num_heads": config["num_heads"],
            "hidden_dim": config["hidden_dim"],
            "intermediate_dim": config["intermediate_dim"],
            "sequence_length": config["max_sequence_length"],
            "dropout": config.get("dropout", 0.1),
            "layer_norm_epsilon": 1e-5,  # Fixed in keras-hub's GPT2Backbone.
        }

    def load_backbone(self, assignment):
        self.copy(assignment, "token_embedding/embeddings", "embedding/token_embedding/embeddings")
        self.copy(
            assignment,
            "position_embedding/embeddings",
            "embedding/position_embedding/embeddings",
        )
        for index in range(self.config["num_layers"]):
            source, target = f"transformer_layer_{index}", f"decoder_layer_{index}"
            self.copy_transformer_layer(assignment, source, target, "self_attention")
        self.copy_layer(assignment, "layer_norm", "layer_norm", ("gamma", "beta"))

    # === The task: the language-model head is the tied token embedding ===

    def task_tensors(self):
        return []

    def task_config(self):
        return {}

    def has_head(self, task_cls=None):
        return True

    def load_task(self, assignment, new_head):
        pass

    def preprocessor(self):
        return None

    def tokenizer(self):
        tokenizer = keras_hub_tokenizer(self.directory, "GPT2Tokenizer")
        if tokenizer is None:
            return None
        return GPT2Tokenizer(
            vocabulary=dict(tokenizer.vocabulary),
            merges=list(tokenizer.merges),
            name="tokenizer",
        )


def keras_hub_tokenizer(handle, class_name):
    """keras-hub's tokenizer `class_name` of the preset `handle`, or `None` when the preset
    has none (a backbone saved alone)."""
    import keras_hub

    tokenizer_cls = getattr(keras_hub.models, class_name)
    try:
        return tokenizer_cls.from_preset(handle)
    except FileNotFoundError as error:
        logger.info("The keras-hub preset %r has no tokenizer: %s", handle, error)
        return None
