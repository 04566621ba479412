"""Tests of `average_checkpoints`: models, `.keras` and `.weights.h5` files, errors."""

import keras
import ml_dtypes
import numpy as np
import pytest

from keras_seq.utils.checkpoint_averaging import average_checkpoints
from keras_seq.utils.checkpoint_averaging import average_weight_lists


def _model(units=3, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(units),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    # Distinct moving statistics per model, so that their averaging is tested too.
    batch_norm = model.layers[1]
    batch_norm.moving_mean.assign(np.random.RandomState(seed).randn(units))
    batch_norm.moving_variance.assign(np.random.RandomState(seed + 100).uniform(1, 2, units))
    return model


def _numpy_mean(models):
    count = len(models[0].weights)
    return [np.mean([m.weights[i].numpy() for m in models], axis=0) for i in range(count)]


def _assert_weights(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-7)


def test_average_of_three_models_equals_numpy_mean():
    models = [_model(seed=s) for s in range(3)]
    expected = _numpy_mean(models)
    assert len(models[0].weights) == 8  # 2 kernels, 2 biases, gamma, beta, moving mean/var
    averaged = average_checkpoints(models)
    _assert_weights(averaged, expected)
    target = _model(seed=7)
    returned = average_checkpoints(models, model=target)
    _assert_weights(returned, expected)
    _assert_weights([w.numpy() for w in target.weights], expected)
    assert all(a.dtype == np.float32 for a in returned)


def test_files_keras_and_weights_h5(tmp_path):
    models = [_model(seed=s) for s in range(3)]
    expected = _numpy_mean(models)
    keras_paths, h5_paths = [], []
    for index, model in enumerate(models):
        keras_paths.append(tmp_path / f"checkpoint_{index}.keras")
        model.save(keras_paths[-1])
        h5_paths.append(str(tmp_path / f"checkpoint_{index}.weights.h5"))
        model.save_weights(h5_paths[-1])

    _assert_weights(average_checkpoints(keras_paths), expected)  # pathlib paths work too
    target = _model(seed=9)
    _assert_weights(average_checkpoints(h5_paths, model=target), expected)
    _assert_weights([w.numpy() for w in target.weights], expected)
    mixed = [h5_paths[0], str(keras_paths[1]), models[2]]
    _assert_weights(average_checkpoints(mixed, model=_model(seed=9)), expected)


class _Counter(keras.layers.Layer):
    """Identity with an integer, non-trainable weight."""

    def build(self, input_shape):
        self.count = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False, name="count"
        )

    def call(self, inputs):
        return inputs


def test_integer_weights_are_copied_from_the_last_checkpoint():
    def with_counter(seed, count):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2), _Counter()])
        model.layers[1].count.assign(count)
        return model

    models = [with_counter(0, 3), with_counter(1, 8)]
    averaged = average_checkpoints(models)
    assert averaged[2].dtype == np.int32 and int(averaged[2]) == 8
    np.testing.assert_allclose(
        averaged[0], (models[0].weights[0].numpy() + models[1].weights[0].numpy()) / 2, 1e-6
    )


def test_bfloat16_weights_are_averaged():
    lists = [[np.array(v, ml_dtypes.bfloat16)] for v in ([1.0, 2.0], [2.0, 4.0])]
    averaged = average_weight_lists(lists)[0]
    assert averaged.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(averaged.astype("float32"), [1.5, 3.0])


def test_mismatched_architectures_name_the_weight():
    models = [_model(units=3, seed=0), _model(units=5, seed=1)]
    with pytest.raises(ValueError, match=r"kernel.*index 0.*\(4, 3\).*checkpoint 0"):
        average_checkpoints(models)
    deeper = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"8 weights in checkpoint 0.* but 4 in checkpoint 1"):
        average_checkpoints([_model(), deeper])


def test_mismatched_model_is_left_unchanged():
    models = [_model(seed=s) for s in range(2)]
    target = _model(units=5, seed=3)
    before = target.get_weights()
    with pytest.raises(ValueError, match="kernel"):
        average_checkpoints(models, model=target)
    _assert_weights(target.get_weights(), before)


def test_weights_h5_of_another_architecture_restores_the_model(tmp_path):
    path = str(tmp_path / "other.weights.h5")
    _model(units=5).save_weights(path)
    target = _model(units=3, seed=3)
    before = target.get_weights()
    with pytest.raises(ValueError, match=r"(?s)checkpoint 0 .*other.weights.h5.*kernel"):
        average_checkpoints([path], model=target)
    _assert_weights(target.get_weights(), before)


def test_argument_errors():
    cases = [
        ([], None, ValueError, "checkpoints"),
        ("model.keras", None, ValueError, "checkpoints"),
        (["model.h5"], None, ValueError, "checkpoints"),
        ([3], None, ValueError, "checkpoints"),
        (["a.weights.h5"], None, ValueError, "model"),
        ([], "not a model", ValueError, "checkpoints"),
    ]
    for checkpoints, model, error, match in cases:
        with pytest.raises(error, match=match):
            average_checkpoints(checkpoints, model=model)
    with pytest.raises(TypeError, match="model"):
        average_checkpoints([_model()], model="not a model")
