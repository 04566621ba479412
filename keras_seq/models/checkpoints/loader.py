"""Loading a checkpoint into a backbone or a task: the one loader every family uses.

`Backbone.from_preset` and `Task.from_preset` call `load_backbone` / `load_task` for any
handle that is not a built-in architecture name. The family-specific work (config
translation, tensor names and layouts) is in the converters the backbone class lists in
`checkpoint_converters`; this module resolves the handle, picks the converter, applies the
overrides and checks that every tensor was used and every weight set.
"""

import logging

from keras_seq.models.checkpoints import handles
from keras_seq.models.checkpoints import image_preprocessing
from keras_seq.models.checkpoints import keras_preset
from keras_seq.models.checkpoints.tensors import CheckpointTensors
from keras_seq.models.checkpoints.weight_assignment import WeightAssignment
from keras_seq.models.presets import constructor_arguments

logger = logging.getLogger(__name__)


def _converter(backbone_cls, handle):
    """The converter of `backbone_cls` for the checkpoint at `handle` (not a Keras preset)."""
    kind, location = handle
    converters = getattr(backbone_cls, "checkpoint_converters", ())
    if kind == "keras_hub":
        for converter_cls in converters:
            if converter_cls.source == "keras_hub":
                return converter_cls.from_keras_hub(location)
        raise ValueError(
            f"Unknown `preset` for {backbone_cls.__name__}: {location!r}. It is not a built-in "
            f"preset ({sorted(backbone_cls.presets)}), not a local directory and not an "
            "`hf://owner/name` handle, and this family reads no keras-hub presets."
        )
    source, config = handles.directory_format(location)
    if source == "keras":  # A keras-hub preset directory (keras_seq's own are read before).
        for converter_cls in converters:
            if converter_cls.source == "keras_hub" and converter_cls.matches(source, config):
                return converter_cls.from_keras_hub(location)
        raise ValueError(
            f"{backbone_cls.__name__} cannot read the Keras preset in {location}: it holds a "
            f"{config.get('registered_name')!r}, and this family reads keras-hub presets of "
            f"{sorted(n for c in converters if c.source == 'keras_hub' for n in c.model_types)}."
        )
    for converter_cls in converters:
        if converter_cls.matches(source, config):
            return converter_cls(location, config, CheckpointTensors(location))
    key = config.get("model_type", config.get("architecture"))
    readable = sorted(
        {f"{c.source} {', '.join(c.model_types)}" for c in converters if c.source != "keras_hub"}
    )
    raise ValueError(
        f"{backbone_cls.__name__} cannot read the {source} checkpoint in {location} "
        f"(`{'model_type' if source == 'transformers' else 'architecture'}`={key!r}). It reads: "
        f"{readable}. Load it with the family it belongs to."
    )


def _apply_overrides(converter, config, overrides, backbone_cls):
    """The checkpoint's backbone config with `overrides`: a free argument replaces the value;
    any other must equal the checkpoint's (it would change the weights' shapes or meaning)."""
    config = dict(config)
    for key, value in overrides.items():
        if key in converter.free_arguments or key not in config or config[key] == value:
            config[key] = value
            continue
        raise ValueError(
            f"{backbone_cls.__name__}.from_preset(): the override {key}={value!r} contradicts "
            f"the checkpoint in {converter.directory}, which has {key}={config[key]!r}. "
            f"Overrides that keep the weights valid: {sorted(converter.free_arguments)}"
        )
    return config


def _log_skipped(converter):
    for name, reason in sorted(converter.tensors.skipped.items()):
        logger.info("Checkpoint tensor %r is not loaded: %s.", name, reason)


def _build_backbone(backbone_cls, converter, overrides):
    config = _apply_overrides(converter, converter.backbone_config(), overrides, backbone_cls)
    backbone = backbone_cls(**config)
    assignment = WeightAssignment(backbone)
    converter.load_backbone(assignment)
    assignment.check_all_set()
    return backbone


def load_backbone(backbone_cls, preset, overrides):
    """`backbone_cls` with the weights of the checkpoint or preset `preset`."""
    handle = handles.resolve(preset)
    if handle[0] == "directory" and keras_preset.is_keras_preset(handle[1]):
        return keras_preset.load_backbone(backbone_cls, handle[1], overrides)
    converter = _converter(backbone_cls, handle)
    try:
        backbone = _build_backbone(backbone_cls, converter, overrides)
        converter.tensors.skip(
            converter.task_tensors(), f"the task's layers, not part of {backbone_cls.__name__}"
        )
        _skip_unrepresented(converter)
        converter.tensors.check_all_used(backbone_cls.__name__)
    finally:
        converter.tensors.close()
    _log_skipped(converter)
    return backbone


def _skip_unrepresented(converter):
    """Mark the checkpoint's tensors that no keras_seq model holds (with their reasons)."""
    for name, reason in converter.skipped_tensors().items():
        converter.tensors.skip([name], reason)


def _task_assets(converter, new_head, backbone_overrides):
    """The task arguments a checkpoint brings besides weights: its label names (unless the
    head is new), preprocessing (resized to an `image_shape` override) and tokenizer."""
    assets = {}
    label_names = None if new_head else converter.label_names()
    if label_names is not None:
        assets["label_names"] = label_names
    preprocessor = image_preprocessing.fit_to_image_shape(
        converter.preprocessor(), backbone_overrides.get("image_shape")
    )
    if preprocessor is not None:
        assets["preprocessor"] = preprocessor
    tokenizer = converter.tokenizer()
    if tokenizer is not None:
        assets["tokenizer"] = tokenizer
    return assets


def load_task(task_cls, preset, backbone_overrides, task_overrides):
    """`task_cls` on a backbone loaded from `preset`, with the checkpoint's head unless
    `task_overrides` sets `num_classes` (then the head is new: the fine-tuning path)."""
    handle = handles.resolve(preset)
    if handle[0] == "directory" and keras_preset.is_keras_preset(handle[1]):
        return keras_preset.load_task(task_cls, handle[1], backbone_overrides, task_overrides)
    converter = _converter(task_cls.backbone_cls, handle)
    try:
        backbone = _build_backbone(task_cls.backbone_cls, converter, backbone_overrides)
        new_head = "num_classes" in task_overrides
        accepted = constructor_arguments(task_cls)
        if not new_head and not converter.has_head(task_cls):
            hint = (
                f": pass `num_classes` to {task_cls.__name__}.from_preset() to put a new head on it"
                if "num_classes" in accepted
                else ""
            )
            raise ValueError(
                f"The checkpoint in {converter.directory} has no head for "
                f"{task_cls.__name__}{hint}."
            )
        task_config = {
            **{k: v for k, v in converter.task_config().items() if k in accepted},
            **{
                k: v
                for k, v in _task_assets(converter, new_head, backbone_overrides).items()
                if k in accepted
            },
            **task_overrides,
        }
        task = task_cls(backbone, **task_config)
        backbone_paths = {variable.path for variable in backbone.weights}
        assignment = WeightAssignment(task, exclude=backbone_paths)
        converter.load_task(assignment, new_head)
        assignment.check_all_set()
        _skip_unrepresented(converter)
        converter.tensors.check_all_used(task_cls.__name__)
    finally:
        converter.tensors.close()
    _log_skipped(converter)
    return task
