"""The base of keras_seq's models: a functional model whose config is its constructor arguments."""

import keras


class FunctionalModel(keras.Model):
    """Base of the models in `keras_seq.models` (not exported).

    A subclass builds its graph in `__init__` from its constructor arguments, stores each
    argument on an attribute of the same name, passes its `dtype` (from `**kwargs`) to every
    layer it makes, and passes `inputs` / `outputs` / `**kwargs` to this base;
    `get_config()` then returns `super().get_config()` plus exactly those arguments, and
    `from_config(config)` is `cls(**config)`, as keras_hub's backbones do. Keras' own functional
    config (the layer graph) is never saved for these models: the constructor rebuilds it.

    Presets: a subclass sets `presets`, a dict mapping a preset name to
    `{"description": str, "config": dict of constructor arguments}`; `from_preset(name,
    **overrides)` builds the architecture with random weights (nothing is downloaded).
    """

    presets = {}

    def __init__(self, *args, **kwargs):
        # Keras' functional constructor ignores `dtype`: set the model's own policy after it,
        # as keras_hub's backbones do, so that get_config() and .keras files keep it.
        dtype = kwargs.pop("dtype", None)
        super().__init__(*args, **kwargs)
        if dtype is not None:
            self.dtype_policy = keras.dtype_policies.get(dtype)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "dtype" in config and isinstance(config["dtype"], dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Build the architecture named `preset` (random weights), with constructor overrides.

        Raises `ValueError` for an unknown preset name, listing the available ones.
        """
        if not isinstance(preset, str) or preset not in cls.presets:
            raise ValueError(
                f"Unknown `preset` for {cls.__name__}: {preset!r}. Available presets: "
                f"{sorted(cls.presets)}"
            )
        config = {**cls.presets[preset]["config"], **overrides}
        return cls(**config)
