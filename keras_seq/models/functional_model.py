"""The base of keras_seq's models: a functional model whose config is its constructor arguments."""

import keras

from keras_seq.utils.fit_checks import check_fit_data
from keras_seq.utils.multi_worker import apply_multi_worker_fixes


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

    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """`keras.Model.fit`, after `keras_seq.utils.check_fit_data` has checked
        the data (and the validation data) against the model, and with the workaround of
        `keras_seq.utils.apply_multi_worker_fixes` under `MultiWorkerMirroredStrategy`."""
        check_fit_data(self, x, y, batch_size)
        apply_multi_worker_fixes(self)
        validation_data = kwargs.get("validation_data")
        if validation_data is not None:
            # As Keras: validation batches of `validation_batch_size`, else `batch_size`.
            validation_batch_size = kwargs.get("validation_batch_size") or batch_size
            if isinstance(validation_data, tuple):
                x_val, y_val = (tuple(validation_data) + (None,))[:2]
            else:
                x_val, y_val = validation_data, None
            check_fit_data(self, x_val, y_val, validation_batch_size, name="validation_data")
        return super().fit(x, y, batch_size, *args, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """`keras.Model.evaluate`, after `check_fit_data` has checked the data (and with
        `apply_multi_worker_fixes`, as `fit`)."""
        check_fit_data(self, x, y, batch_size)
        apply_multi_worker_fixes(self)
        return super().evaluate(x, y, batch_size, *args, **kwargs)

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
