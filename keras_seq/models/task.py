"""The base of keras_seq's task models: a head on a backbone."""

import keras

from keras_seq.models.checkpoints import keras_preset
from keras_seq.models.checkpoints import loader
from keras_seq.models.functional_model import FunctionalModel
from keras_seq.models.presets import BASE_ARGUMENTS
from keras_seq.models.presets import check_overrides
from keras_seq.models.presets import constructor_arguments
from keras_seq.models.presets import preset_config


class Task(FunctionalModel):
    """Base of the task models in `keras_seq.models` (not exported): a head on a backbone.

    A subclass sets `backbone_cls` (the backbone class its presets come from) and takes the
    backbone as its first constructor argument, `backbone`: an instance (its weights are
    shared, not copied) or its config as written by `keras.saving.serialize_keras_object`
    (`resolve_backbone` turns either into a model). `get_config()` stores the backbone's
    serialized config under `"backbone"`.

    `from_preset(name, **overrides)` builds `backbone_cls.from_preset(name, ...)` and the task
    on it: each override goes to the constructor that has an argument of its name (the
    backbone's first, so `vocabulary_size=` sizes the backbone and `num_classes=` the head), the
    preset's `"task_config"` supplies task arguments, and `dtype` goes to both.
    """

    backbone_cls = None

    @staticmethod
    def resolve_backbone(backbone, accepts=None, description="a keras.Model backbone"):
        """`backbone` as a model: an instance, or a serialized config deserialized here.

        `accepts(model) -> bool` narrows what is accepted; `TypeError` naming `backbone` and
        `description` otherwise.
        """
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        if not isinstance(backbone, keras.Model) or (accepts is not None and not accepts(backbone)):
            raise TypeError(
                f"`backbone` must be {description} (or its config from "
                f"keras.saving.serialize_keras_object). Received: backbone={backbone!r}"
            )
        return backbone

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
        }

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Build the preset's backbone (`backbone_cls.from_preset`) and this task on it.

        `preset` is a built-in architecture name (random weights), a checkpoint directory, an
        `hf://owner/name` handle or a keras-hub preset, as for `Backbone.from_preset`. From a
        checkpoint with a task head, the head, its label names and the checkpoint's
        preprocessing are loaded too; passing `num_classes` puts a new head on the loaded
        backbone instead (the fine-tuning path). Raises `ValueError` for an unknown preset or
        a checkpoint that does not fit, and `TypeError` for an override that neither the
        backbone nor the task takes.
        """
        if cls.backbone_cls is None:
            raise TypeError(f"{cls.__name__} has no presets (no `backbone_cls`).")
        backbone_arguments = set(constructor_arguments(cls.backbone_cls)) - set(BASE_ARGUMENTS)
        task_arguments = set(constructor_arguments(cls)) - {"backbone"}
        check_overrides(cls, preset, overrides, backbone_arguments | task_arguments)
        backbone_overrides = {
            key: value for key, value in overrides.items() if key in backbone_arguments
        }
        task_overrides = {
            key: value for key, value in overrides.items() if key not in backbone_arguments
        }
        if "dtype" in overrides:
            backbone_overrides["dtype"] = overrides["dtype"]
        if not (isinstance(preset, str) and preset in cls.backbone_cls.presets):
            return loader.load_task(cls, preset, backbone_overrides, task_overrides)
        entry = preset_config(cls.backbone_cls, preset)
        backbone = cls.backbone_cls.from_preset(preset, **backbone_overrides)
        task_config = {
            key: value
            for key, value in entry.get("task_config", {}).items()
            if key in task_arguments
        }
        return cls(backbone, **{**task_config, **task_overrides})

    def save_to_preset(self, preset_dir):
        """Write this task and its backbone to `preset_dir` in keras-hub's preset layout
        (`config.json` and `model.weights.h5` for the backbone, `task.json` and
        `task.weights.h5` for the task, `metadata.json`); `from_preset(preset_dir)` reads it
        back, and `backbone_cls.from_preset(preset_dir)` reads the backbone alone."""
        keras_preset.save(self, self.backbone, preset_dir)
