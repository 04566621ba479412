"""Every exported keras_seq class is registered for `.keras` serialization."""

import inspect

import keras
import pytest

import keras_seq
from keras_seq import api
from keras_seq import layers


def exported_classes():
    modules = [keras_seq.layers] + [
        getattr(keras_seq, name)
        for name in ("callbacks", "models", "losses", "metrics", "schedules")
        if hasattr(keras_seq, name)
    ]
    return sorted(
        {
            obj
            for module in modules
            for name, obj in vars(module).items()
            if inspect.isclass(obj)
            and not name.startswith("_")
            and issubclass(
                obj,
                (
                    keras.layers.Layer,
                    keras.callbacks.Callback,
                    keras.losses.Loss,
                    keras.metrics.Metric,
                    keras.optimizers.schedules.LearningRateSchedule,
                ),
            )
        },
        key=lambda cls: cls.__name__,
    )


def test_there_are_exported_classes():
    assert {layers.ElmanCell, layers.LSTMCell, layers.GRUCell} <= set(exported_classes())


@pytest.mark.parametrize("cls", exported_classes(), ids=lambda cls: cls.__name__)
def test_exported_class_is_registered(cls):
    name = keras.saving.get_registered_name(cls)
    assert name == f"keras_seq>{cls.__name__}"
    assert keras.saving.get_registered_object(name) is cls
    assert cls in api.REGISTERED_CLASSES
