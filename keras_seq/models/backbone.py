"""The base of keras_seq's backbones: the part of a model that computes features."""

import logging

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

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Build the architecture named `preset` with constructor `overrides`.

        Built-in preset names are architectures only: the weights are random (a log line says
        so). Raises `ValueError` for an unknown name, listing the available ones, and `TypeError`
        for an override that is not a constructor argument.
        """
        config = preset_config(cls, preset)["config"]
        check_overrides(cls, preset, overrides, constructor_arguments(cls))
        logger.info(
            "%s.from_preset(%r) builds the architecture with random weights.", cls.__name__, preset
        )
        return cls(**{**config, **overrides})

