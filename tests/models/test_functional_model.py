"""What every keras_seq model shares: Keras' own `fit`, `evaluate` and steps."""

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

