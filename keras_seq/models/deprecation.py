"""Support for the model classes of keras_seq 0.1 that the backbone / task split replaced.

Each deprecated class is a subclass of the task model that replaces it: it keeps its 0.1
constructor arguments (building the backbone itself), its config, and the weight layout of its
0.1 `.keras` files, so code and files written for 0.1 keep working; constructing one warns
with the replacement.
"""

import inspect
import warnings

from keras_seq.models.presets import BASE_ARGUMENTS
from keras_seq.models.presets import check_overrides
from keras_seq.models.presets import constructor_arguments
from keras_seq.models.presets import preset_config


def warn_deprecated(old, replacement):
    """A `DeprecationWarning` saying that `keras_seq.models.<old>` is replaced by `replacement`
    (attributed to the caller's caller: the user code that constructed the model)."""
    warnings.warn(
        f"keras_seq.models.{old} is deprecated and will be removed in a future release. "
        f"Use {replacement} instead.",
        DeprecationWarning,
        stacklevel=3,
    )


def bind_arguments(cls, args, kwargs):
    """Bind a deprecated class's `*args, **kwargs` to the constructor of `cls` (the class that
    now takes the 0.1 arguments): returns `(arguments, base_kwargs)`, `arguments` every
    constructor argument of `cls` (defaults filled in) and `base_kwargs` the base model
    arguments (`name`, `dtype`, `trainable`). `TypeError` as a call of `cls` would raise."""
    base_kwargs = {key: kwargs.pop(key) for key in BASE_ARGUMENTS if key in kwargs}
    bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    arguments.pop(next(iter(arguments)))  # self
    unknown = arguments.pop("kwargs", {})
    if unknown:
        raise TypeError(
            f"Unexpected keyword arguments: {sorted(unknown)}. The arguments are "
            f"{sorted(constructor_arguments(cls))}."
        )
    return arguments, base_kwargs


def legacy_from_preset(cls, arguments_cls, preset, overrides):
    """`from_preset` of a deprecated class `cls` whose 0.1 arguments are `arguments_cls`'s (the
    backbone's): the preset's config with `overrides`, checked against those arguments."""
    config = preset_config(arguments_cls, preset)["config"]
    check_overrides(cls, preset, overrides, constructor_arguments(arguments_cls))
    return cls(**{**config, **overrides})


class LegacyWeightLayout:
    """Mixin of the deprecated classes: weights are saved and loaded at their 0.1 paths.

    Keras stores a functional model's weights under `layers/<snake_case class name>[_n]/...`
    for each entry of `model.layers`, in order. A 0.1 model listed its layers flat; the task
    model that replaces it lists `[inputs..., backbone, head...]`. `legacy_layers()` returns the
    layers in their 0.1 order (the backbone's, then the head's), which `layers` then reports, so
    `.keras` files written by 0.1 load unchanged and files these classes write stay readable by
    0.1. The mixin comes first in the bases; the subclass calls `use_legacy_layout()` at the
    end of its constructor (Keras' own constructor reads `layers` before that).
    """

    def use_legacy_layout(self):
        self._legacy_layout = True

    def legacy_layers(self):
        raise NotImplementedError

    def __getattr__(self, name):
        # 0.1 attributes that now live on the backbone (`model.decoder_layers`, ...). Only
        # reached when normal lookup fails.
        backbone = self.__dict__.get("backbone")
        if backbone is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(backbone, name)

    @property
    def layers(self):
        if getattr(self, "_legacy_layout", False):
            return self.legacy_layers()
        return super().layers
