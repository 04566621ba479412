"""KerasHubConverter: the base of the converters that read keras-hub presets.

A keras-hub preset is loaded by keras-hub itself, through its public `from_preset` (so
keras-hub resolves its preset names, `kaggle://` handles and directories, and reads its own
files); the converter then reads the loaded model's config (`get_config()`) and its variables
by path (`KerasHubVariables`), exactly as the other converters read a config file and
safetensors tensors.
"""

import logging
import os

from keras_seq.models.checkpoints import handles
from keras_seq.models.checkpoints import image_preprocessing
from keras_seq.models.checkpoints.converter import Converter
from keras_seq.models.checkpoints.keras_hub_variables import KerasHubVariables

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
TASK_FILE = "task.json"
IMAGE_CONVERTER_FILE = "image_converter.json"
# keras-hub classifier activations whose inputs are our logits.
_LOGIT_ACTIVATIONS = (None, "linear", "softmax")


def _activation_name(activation):
    if activation is None or isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", repr(activation))


class KerasHubConverter(Converter):
    """Reads a keras-hub preset of one family: its backbone, and its image classifier when
    the preset holds one (not exported).

    `from_keras_hub(handle)` loads the preset with keras-hub: a local directory's config is
    checked first (a backbone we cannot represent is refused before its weights are read)
    and its `task.json` says whether it holds a classifier (then the classifier is loaded,
    its backbone with it); a preset name or `kaggle://` handle is loaded as a backbone, and its
    classifier (if any) only when a task is asked for, since keras-hub's public API cannot
    tell without loading. A preset name keras-hub does not list for this family is a
    `ValueError` before keras-hub is asked, so no unknown name is ever looked up remotely.

    A family subclass sets `model_types` (the keras-hub backbones' `registered_name`s),
    `task_types` (its classifiers'), `family` (our backbone class name), `builtin_presets`
    (ours, listed in errors), `keras_hub_classes()` (keras-hub's backbone and classifier
    classes) and implements `backbone_config`, `load_backbone`, `head_config(config)` (our
    task's pooling arguments from keras-hub's task config) and `check_head(config)`. The
    class head is keras-hub's `predictions` layer; its activation may be none or softmax
    (our head returns the logits); its dropout, active only in training, is not carried over.
    """

    source = "keras_hub"
    task_types = ()
    family = None
    builtin_presets = {}
    head_layer = "predictions"
    # The loaded keras-hub models, set by `from_keras_hub`.
    keras_hub_backbone = None
    _task = None  # keras-hub's classifier, or None.
    _task_type = None  # The `registered_name` of a directory's task.json.
    _task_pending = False  # A preset name or handle whose classifier is not loaded yet.
    _head_names = ()  # Paths of the classifier's variables outside the backbone.

    @classmethod
    def keras_hub_classes(cls):
        """`(backbone class, classifier class)` of keras-hub for this family."""
        raise NotImplementedError

    @classmethod
    def from_keras_hub(cls, handle):
        """The converter of the keras-hub preset `handle` (a directory, preset name or handle)."""
        backbone_cls, classifier_cls = cls.keras_hub_classes()
        handle = os.fspath(handle)
        task, task_type, pending = None, None, False
        if os.path.isdir(handle):
            serialized = handles.read_json(handle, CONFIG_FILE)
            if isinstance(serialized, dict) and isinstance(serialized.get("config"), dict):
                # Refuse what we cannot represent before keras-hub loads the weights.
                cls(handle, serialized["config"], None).backbone_config()
            task_config = handles.read_json(handle, TASK_FILE)
            if isinstance(task_config, dict):
                task_type = task_config.get("registered_name")
            if task_type in cls.task_types:
                task = cls._load(classifier_cls, handle)
                backbone = task.backbone
            else:
                backbone = cls._load(backbone_cls, handle)
        else:
            cls._check_name(handle, backbone_cls, classifier_cls)
            backbone = cls._load(backbone_cls, handle)
            pending = True
        if type(backbone) is not backbone_cls:
            raise ValueError(
                f"The keras-hub preset {handle!r} holds a {type(backbone).__name__}, not "
                f"keras-hub's {backbone_cls.__name__}: {cls.family}.from_preset() reads only "
                "the latter."
            )
        tensors = KerasHubVariables(backbone.weights, handle)
        converter = cls(handle, backbone.get_config(), tensors)
        converter.keras_hub_backbone = backbone
        converter._task_type = task_type
        converter._task_pending = pending
        if task is not None:
            converter._adopt_task(task)
        return converter

    @classmethod
    def _check_name(cls, handle, backbone_cls, classifier_cls):
        """`ValueError` for a plain name keras-hub does not list for this family."""
        if "://" in handle:
            return
        known = set(backbone_cls.presets) | set(classifier_cls.presets)
        if handle in known:
            return
        raise ValueError(
            f"Unknown `preset` for {cls.family}: {handle!r}. keras_seq reads: its built-in "
            f"presets {sorted(cls.builtin_presets)} (architectures with random weights), "
            "local directories (Hugging Face transformers or timm checkpoints, keras_seq or "
            "keras-hub presets), `hf://owner/name` handles, and keras-hub presets of this "
            f"family by name ({sorted(known)}) or `kaggle://` handle."
        )

    @classmethod
    def _load(cls, keras_hub_cls, handle):
        try:
            return keras_hub_cls.from_preset(handle)
        except ValueError as error:
            raise ValueError(
                f"{cls.family}.from_preset({handle!r}): keras-hub cannot load it as a "
                f"{keras_hub_cls.__name__}: {error}"
            ) from error

    def _adopt_task(self, task):
        """Expose the variables of `task` outside its backbone (the head)."""
        backbone_ids = {id(variable) for variable in task.backbone.weights}
        head = [variable for variable in task.weights if id(variable) not in backbone_ids]
        self._head_names = sorted(self.tensors.add(head))
        self._task = task

    def keras_hub_task(self):
        """keras-hub's classifier of this preset, or `None` (loaded on first use for a preset
        name or handle)."""
        if self._task_pending:
            self._task_pending = False
            _, classifier_cls = self.keras_hub_classes()
            try:
                task = classifier_cls.from_preset(self.directory)
            except (FileNotFoundError, TypeError) as error:
                # A preset without `task.json`: keras-hub then builds the classifier from the
                # backbone with default arguments, which fails (no `num_classes`, or no
                # image converter file).
                logger.info("The keras-hub preset %r has no classifier: %s", self.directory, error)
                task = None
            if task is not None:
                if task.backbone.get_config() != self.config:
                    raise ValueError(
                        f"The classifier of the keras-hub preset {self.directory!r} has "
                        "another backbone config than its backbone."
                    )
                self._adopt_task(task)
        return self._task

    # === The converter contract ===

    def task_tensors(self):
        return list(self._head_names)

    def task_config(self):
        task = self.keras_hub_task()
        if task is None:
            if self._task_type is not None:
                raise ValueError(
                    f"The keras-hub preset in {self.directory} holds a {self._task_type} task, "
                    f"not an image classifier keras_seq reads ({list(self.task_types)}). "
                    f"{self.family}.from_preset() reads its backbone."
                )
            return {}
        config = task.get_config()
        return {**self.head_config(config), "num_classes": int(config["num_classes"])}

    def load_task(self, assignment, new_head):
        if new_head:
            self.replace_head(assignment, self.task_tensors(), "head/")
            return
        config = self._task.get_config()
        activation = _activation_name(config.get("activation"))
        if activation not in _LOGIT_ACTIVATIONS:
            raise ValueError(
                f"The keras-hub classifier in {self.directory} has activation={activation!r} "
                "on its head; keras_seq's head returns the logits, whose softmax is the "
                "only activation it represents (activation None or 'softmax')."
            )
        self.check_head(config)
        self.copy_layer(assignment, self.head_layer, "head", ("kernel", "bias"))

    def preprocessor(self):
        converter = None
        task = self._task
        if task is not None and task.preprocessor is not None:
            converter = getattr(task.preprocessor, "image_converter", None)
        elif task is None:
            converter = self._image_converter()
        if converter is None:
            return None
        return image_preprocessing.from_keras_hub(
            converter, f"the keras-hub image converter of {self.directory}"
        )

    def _image_converter(self):
        """keras-hub's image converter of a preset without a classifier, or `None`."""
        import keras_hub

        if os.path.isdir(self.directory):
            if not os.path.exists(os.path.join(self.directory, IMAGE_CONVERTER_FILE)):
                return None
        try:
            return keras_hub.layers.ImageConverter.from_preset(self.directory)
        except FileNotFoundError:
            return None

    def head_config(self, config):
        """Our classifier's arguments (besides `num_classes`) from keras-hub's task config."""
        return {}

    def check_head(self, config):
        """`ValueError` for a head keras-hub's task config sets that ours cannot represent."""

    # === Helpers ===

    def copy(self, assignment, source, target):
        """Variable `source` of the keras-hub model into our variable `target`, as it is."""
        assignment.set(target, self.tensors.take(source), source)

    def copy_layer(self, assignment, source, target, names):
        """The variables `names` of keras-hub layer `source` into our layer `target` (Keras
        layouts on both sides: `kernel` / `bias`, `gamma` / `beta`)."""
        for name in names:
            self.copy(assignment, f"{source}/{name}", f"{target}/{name}")

    def copy_attention(self, assignment, source, target):
        """keras-hub's `CachedMultiHeadAttention` / Keras `MultiHeadAttention` layer `source`
        (`query`, `key`, `value`, `attention_output`) into our `MultiHeadAttention` `target`
        (the same kernel layouts under `*_dense` names)."""
        for theirs, ours in (
            ("query", "query_dense"),
            ("key", "key_dense"),
            ("value", "value_dense"),
            ("attention_output", "output_dense"),
        ):
            self.copy_layer(
                assignment, f"{source}/{theirs}", f"{target}/{ours}", ("kernel", "bias")
            )

    def copy_transformer_layer(self, assignment, source, target, attention):
        """A keras-hub `TransformerEncoder` / `TransformerDecoder` block `source` (its
        self-attention layer named `attention`) into our block `target`."""
        self.copy_attention(assignment, f"{source}/{attention}", f"{target}/self_attention")
        for norm in ("self_attention_layer_norm", "feedforward_layer_norm"):
            self.copy_layer(assignment, f"{source}/{norm}", f"{target}/{norm}", ("gamma", "beta"))
        for theirs, ours in (
            ("feedforward_intermediate_dense", "intermediate_dense"),
            ("feedforward_output_dense", "output_dense"),
        ):
            self.copy_layer(
                assignment, f"{source}/{theirs}", f"{target}/feedforward/{ours}", ("kernel", "bias")
            )

    def require_channels_last(self):
        """`ValueError` if keras-hub's loaded backbone takes channels-first images (keras-hub's
        ViT does not save its `data_format`: it follows Keras' global setting)."""
        data_format = getattr(self.keras_hub_backbone, "data_format", "channels_last")
        if data_format != "channels_last":
            raise ValueError(
                f"The keras-hub model of {self.directory} takes images with "
                f"data_format={data_format!r}; keras_seq's {self.family} takes channels-last "
                "images only (data_format='channels_last')."
            )
