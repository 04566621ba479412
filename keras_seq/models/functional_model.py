"""The base of keras_seq's models: a functional model whose config is its constructor arguments."""

import keras

from keras_seq.models import lora
from keras_seq.utils.layer_walk import iter_layers
from keras_seq.utils.saved_weights import check_no_extra_weights


class FunctionalModel(keras.Model):
    """Base of `Backbone` and `Task` (not exported).

    A subclass builds its graph in `__init__` from its constructor arguments, stores each
    argument on an attribute of the same name, passes its `dtype` (from `**kwargs`) to every
    layer it makes, and passes `inputs` / `outputs` / `**kwargs` to this base;
    `get_config()` then returns `super().get_config()` plus exactly those arguments, and
    `from_config(config)` is `cls(**config)`, as keras_hub's backbones do. Keras' own functional
    config (the layer graph) is never saved for these models: the constructor rebuilds it.

    `fit` and `evaluate` are Keras' own. The data checks of `keras_seq.utils.check_fit_data` and
    the `MultiWorkerMirroredStrategy` workaround of `keras_seq.utils.apply_multi_worker_fixes`
    are calls a user makes before `fit` (the `keras-seq` recipes make both).

    Quantization: after `model.quantize(mode)`, `get_config()` records each quantized layer's
    dtype policy in a `keras.dtype_policies.DTypePolicyMap` keyed by layer path (as keras_hub's
    backbones do), so the constructor rebuilds quantized layers and the `.keras` file reloads.
    """

    def __init__(self, *args, **kwargs):
        # Keras' functional constructor ignores `dtype`: set the model's own policy after it,
        # as keras_hub's backbones do, so that get_config() and .keras files keep it.
        dtype = kwargs.pop("dtype", None)
        super().__init__(*args, **kwargs)
        if dtype is not None and not isinstance(dtype, keras.dtype_policies.DTypePolicyMap):
            self.dtype_policy = keras.dtype_policies.get(dtype)
        elif isinstance(dtype, keras.dtype_policies.DTypePolicyMap):
            self.dtype_policy = keras.dtype_policies.get(dtype.default_policy)

    def load_own_variables(self, store):
        # A config that builds a smaller model than the one saved (num_layers edited) would
        # load silently without the weights of the missing layers: refuse it.
        check_no_extra_weights(self, store)
        super().load_own_variables(store)

    def __setattr__(self, name, value):
        # On the PyTorch backend every Keras layer is a `torch.nn.Module`, which refuses a
        # sublayer assigned before `Module.__init__` has run; a subclass makes its layers (and
        # keeps them on attributes) before this constructor, whose graph needs them. Until then
        # they are plain attributes: the functional graph tracks the layers and their weights,
        # as keras_hub's `Backbone` and `Task` rely on too. `_modules` is the registry that
        # `Module.__init__` creates (private; tests/test_private_keras_api.py checks it).
        if keras.config.backend() == "torch" and "_modules" not in self.__dict__:
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def _config_dtype(self):
        """The dtype policy for `get_config()`: a `DTypePolicyMap` of the quantized layers' paths
        when the model is quantized, else the model's policy."""
        policy_map = keras.dtype_policies.DTypePolicyMap(default_policy=self.dtype_policy)
        # Keyed by Keras' `layer.path`, which is what a DTypePolicyMap is looked up by.
        for _, layer in iter_layers(self):
            if getattr(layer, "quantization_mode", None) is not None:
                policy_map[layer.path] = layer.dtype_policy
        if len(policy_map) > 0:
            return policy_map
        return self.dtype_policy

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self._config_dtype()),
        }

    def enable_lora(self, rank, target_layer_names=None, lora_alpha=None, trainable_layer_names=()):
        """Freeze the model and add trainable LoRA adapters of `rank` to the layers named in
        `target_layer_names` (default: the attention query and value projections); layers in
        `trainable_layer_names` (a new task head) stay trainable. See `keras_seq.models.lora`."""
        return lora.enable_lora(self, rank, target_layer_names, lora_alpha, trainable_layer_names)

    def save_lora_weights(self, filepath):
        """Write the LoRA adapters alone to the safetensors file `filepath`."""
        lora.save_lora_weights(self, filepath)

    def load_lora_weights(self, filepath):
        """Set the LoRA adapters from `filepath` (enabling them first if needed); every adapter
        in the file and in the model must match."""
        lora.load_lora_weights(self, filepath)

    def merge_lora(self):
        """A copy of the model with the LoRA adapters folded into its kernels."""
        return lora.merge_lora(self)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "dtype" in config and isinstance(config["dtype"], dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)
