"""keras_seq models as presets in keras-hub's directory layout, written and read back.

A preset directory holds `config.json` (the backbone, serialized by
`keras.saving.serialize_keras_object`, so its `registered_name` is `keras_seq>...`),
`model.weights.h5` (the backbone's weights), `metadata.json`, and for a task `task.json`
(the task, its backbone, preprocessor and label names included) and `task.weights.h5` (all
the task's weights: the file `Task.from_preset` reads) and, for a task with a tokenizer,
keras-hub's `tokenizer.json` and `assets/tokenizer/`. keras-hub's upload tools
(`keras_hub.upload_preset`) work on it. keras-hub's own saver is private API, so this
module writes the layout with public Keras calls.
"""

import datetime
import json
import os

import keras

from keras_seq.models.checkpoints import handles
from keras_seq.models.checkpoints import image_preprocessing
from keras_seq.version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
TASK_FILE = "task.json"
TASK_WEIGHTS_FILE = "task.weights.h5"
METADATA_FILE = "metadata.json"
TOKENIZER_ASSETS = ("assets", "tokenizer")  # Where keras-hub keeps a tokenizer's vocabulary.
KERAS_SEQ_PREFIX = "keras_seq>"


def is_keras_preset(directory):
    config = handles.read_json(directory, CONFIG_FILE)
    return isinstance(config, dict) and str(config.get("registered_name", "")).startswith(
        KERAS_SEQ_PREFIX
    )


def _write_json(directory, filename, value):
    with open(os.path.join(directory, filename), "w") as file:
        json.dump(value, file, indent=2)


def save(model, backbone, directory):
    """Write `backbone` (and `model`, a task on it, unless `model is backbone`) to
    `directory` (created; existing preset files in it are replaced)."""
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"`preset_dir` must be a directory. Received: preset_dir={directory!r}")
    os.makedirs(directory, exist_ok=True)
    _write_json(directory, CONFIG_FILE, keras.saving.serialize_keras_object(backbone))
    backbone.save_weights(os.path.join(directory, WEIGHTS_FILE))
    if model is not backbone:
        _write_json(directory, TASK_FILE, keras.saving.serialize_keras_object(model))
        model.save_weights(os.path.join(directory, TASK_WEIGHTS_FILE))
        if getattr(model, "tokenizer", None) is not None:
            # keras-hub's layout: tokenizer.json and its vocabulary in assets/tokenizer/.
            model.tokenizer.save_to_preset(directory)
    _write_json(
        directory,
        METADATA_FILE,
        {
            "keras_version": keras.__version__,
            "keras_seq_version": __version__,
            "parameter_count": model.count_params(),
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        },
    )


def _with_overrides(serialized, overrides, cls, directory):
    config = dict(serialized["config"])
    for key, value in overrides.items():
        if key not in config:
            raise TypeError(
                f"{cls.__name__}.from_preset(): {key!r} is not an argument of the preset's "
                f"model in {directory}. Its arguments: {sorted(config)}"
            )
        config[key] = value
    return {**serialized, "config": config}


def _deserialize(serialized, cls, directory, what):
    model = keras.saving.deserialize_keras_object(serialized)
    if not isinstance(model, cls):
        raise ValueError(
            f"The preset in {directory} holds a {type(model).__name__} {what}, which "
            f"{cls.__name__}.from_preset() cannot return; load it with "
            f"{type(model).__name__}.from_preset()."
        )
    return model


def load_backbone(cls, directory, overrides):
    serialized = handles.read_json(directory, CONFIG_FILE)
    backbone = _deserialize(
        _with_overrides(serialized, overrides, cls, directory), cls, directory, "backbone"
    )
    backbone.load_weights(os.path.join(directory, WEIGHTS_FILE))
    return backbone


def load_task(cls, directory, backbone_overrides, task_overrides):
    serialized = handles.read_json(directory, TASK_FILE)
    if serialized is None or "num_classes" in task_overrides:
        backbone = load_backbone(cls.backbone_cls, directory, backbone_overrides)
        if serialized is None and "num_classes" not in task_overrides:
            raise ValueError(
                f"The preset in {directory} is a backbone only (no {TASK_FILE}): pass "
                f"`num_classes` to {cls.__name__}.from_preset() to put a new head on it."
            )
        task_config = dict(serialized["config"]) if serialized else {}
        kept = {}
        if task_config.get("preprocessor") is not None:
            kept["preprocessor"] = image_preprocessing.fit_to_image_shape(
                task_config["preprocessor"], backbone_overrides.get("image_shape")
            )
        return cls(backbone, **{**kept, **task_overrides})
    config = dict(serialized["config"])
    if config.get("preprocessor") is not None:
        config["preprocessor"] = image_preprocessing.fit_to_image_shape(
            config["preprocessor"], backbone_overrides.get("image_shape")
        )
    backbone_config = _with_overrides(
        config["backbone"], backbone_overrides, cls.backbone_cls, directory
    )
    serialized = _with_overrides(
        {**serialized, "config": {**config, "backbone": backbone_config}},
        task_overrides,
        cls,
        directory,
    )
    task = _deserialize(serialized, cls, directory, "task")
    task.load_weights(os.path.join(directory, TASK_WEIGHTS_FILE))
    if getattr(task, "tokenizer", None) is not None:
        task.tokenizer.load_assets(os.path.join(directory, *TOKENIZER_ASSETS))
    return task
