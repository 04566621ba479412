"""The base of keras_seq's backbones: the part of a model that computes features."""

import logging

from keras_seq.models.checkpoints import keras_preset
from keras_seq.models.checkpoints import loader
from keras_seq.models.functional_model import FunctionalModel
from keras_seq.models.presets import check_overrides
from keras_seq.models.presets import constructor_arguments
from keras_seq.models.presets import preset_config

logger = logging.getLogger(__name__)


class Backbone(FunctionalModel):
    """Base of the backbones in `keras_seq.models` (not exported): a model that returns
    features, the part a checkpoint's body loads into. Task models (`Task`) put a head on one.

    A subclass sets `presets`, a dict mapping a preset name to `{"description": str,
    "config": dict of constructor arguments}` (and optionally `"task_config"`, the arguments of
    the task models built from it, such as a classifier's `num_classes`).

    Text backbones expose their token embedding as `token_embedding` (a tied output layer reads
    it); others return `None`.
    """

    presets = {}

    @property
    def token_embedding(self):
        return None

    checkpoint_converters = ()

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Build the backbone `preset` names, with constructor `overrides`.

        `preset` is one of:

        - a built-in preset name (`cls.presets`): the architecture only, with random weights
          (a log line says so);
        - a local directory holding a checkpoint in a format one of `cls.checkpoint_converters`
          reads (Hugging Face transformers or timm: `config.json` and safetensors weights) or
          a preset written by `save_to_preset`;
        - `hf://owner/name[@revision]`: a Hugging Face Hub model, downloaded into (or, offline,
          read from) huggingface_hub's cache;
        - a keras-hub preset name or handle, for families with a keras-hub converter.

        A checkpoint's tensors must all be used and every weight set; anything else is a
        `ValueError` naming it. Overrides may change what keeps the weights valid (dropout
        rates, the image size of vision models); one that contradicts the checkpoint is a
        `ValueError`. `TypeError` for an override that is not a constructor argument.
        """
        check_overrides(cls, preset, overrides, constructor_arguments(cls))
        if not (isinstance(preset, str) and preset in cls.presets):
            return loader.load_backbone(cls, preset, overrides)
        config = preset_config(cls, preset)["config"]
        logger.info(
            "%s.from_preset(%r) builds the architecture with random weights.", cls.__name__, preset
        )
        return cls(**{**config, **overrides})

    def save_to_preset(self, preset_dir):
        """Write this backbone to `preset_dir` in keras-hub's preset layout (`config.json`,
        `model.weights.h5`, `metadata.json`); `from_preset(preset_dir)` reads it back."""
        keras_preset.save(self, self, preset_dir)

