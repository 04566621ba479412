"""What every keras_seq model shares: Keras' own `fit` / `evaluate`, and the private Keras API
the base relies on (a failure here means Keras changed it)."""

import inspect

import keras
import pytest

import keras_seq
from keras_seq.api import REGISTERED_CLASSES

MODEL_CLASSES = [cls for cls in REGISTERED_CLASSES if issubclass(cls, keras.Model)]


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_models_use_keras_training_entry_points(cls):
    for method in ("fit", "evaluate", "train_step", "test_step", "predict"):
        assert getattr(cls, method) is getattr(keras.Model, method), (cls, method)


def test_model_classes_found():
    assert keras_seq.models.GPTCausalLM in MODEL_CLASSES


def test_flatten_layers_still_exists_with_its_signature():
    # FunctionalModel._config_dtype lists the quantized layers with Keras' private
    # `Layer._flatten_layers(include_self, recursive)` (as keras_hub's backbones do).
    parameters = inspect.signature(keras.layers.Layer._flatten_layers).parameters
    assert {"include_self", "recursive"} <= set(parameters)
    outer = keras.Sequential([keras.Input((2,)), keras.Sequential([keras.layers.Dense(1)])])
    found = list(outer._flatten_layers(include_self=False, recursive=True))
    names = [type(layer).__name__ for layer in found if type(layer).__name__ != "InputLayer"]
    assert names == ["Sequential", "Dense"]
