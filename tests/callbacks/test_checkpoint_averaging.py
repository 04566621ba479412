"""Tests of `CheckpointAveraging`: the model ends with the mean of the last snapshots."""

import json

import keras
import numpy as np
import pytest

from keras_seq.callbacks.checkpoint_averaging import CheckpointAveraging

SAMPLES, BATCH = 12, 4  # 3 steps per epoch


def _data():
    rs = np.random.RandomState(0)
    return rs.randn(SAMPLES, 3).astype("float32"), rs.randn(SAMPLES, 1).astype("float32")


def _model():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def _fit(model, callbacks, epochs):
    x, y = _data()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, callbacks=callbacks, verbose=0)


def _assert_weights(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-7)


def test_four_epochs_two_checkpoints_ends_with_mean_of_epochs_three_and_four():
    model = _model()
    recorded = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: recorded.append(model.get_weights())
    )
    averaging = CheckpointAveraging(num_checkpoints=2)
    _fit(model, [record, averaging], epochs=4)
    assert len(recorded) == 4
    expected = [(a + b) / 2 for a, b in zip(recorded[2], recorded[3])]
    assert not np.allclose(recorded[2][0], recorded[3][0])  # the epochs differ
    _assert_weights(model.get_weights(), expected)  # moving statistics included
    _assert_weights(averaging.averaged_weights(), expected)
    assert len(averaging.snapshots) == 2


def test_every_k_steps():
    model = _model()
    recorded = {}
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: recorded.__setitem__(
            int(model.optimizer.iterations), model.get_weights()
        )
    )
    averaging = CheckpointAveraging(num_checkpoints=3, save_freq=2)
    _fit(model, [record, averaging], epochs=3)  # 9 steps: snapshots after 2, 4, 6, 8
    assert sorted(recorded) == list(range(1, 10))
    expected = [np.mean(ws, axis=0) for ws in zip(recorded[4], recorded[6], recorded[8])]
    _assert_weights(model.get_weights(), expected)


def test_apply_on_train_end_false_leaves_the_last_weights():
    model = _model()
    averaging = CheckpointAveraging(num_checkpoints=3, apply_on_train_end=False)
    recorded = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: recorded.append(model.get_weights())
    )
    _fit(model, [record, averaging], epochs=3)
    _assert_weights(model.get_weights(), recorded[-1])
    _assert_weights(averaging.averaged_weights(), [np.mean(ws, axis=0) for ws in zip(*recorded)])
    # A second fit starts afresh.
    _fit(model, [averaging], epochs=1)
    assert len(averaging.snapshots) == 1


def test_no_snapshot_warns_and_keeps_weights():
    model = _model()
    averaging = CheckpointAveraging(save_freq=100)
    averaging.set_model(model)
    with pytest.raises(ValueError, match="snapshot"):
        averaging.averaged_weights()
    recorded = []
    record = keras.callbacks.LambdaCallback(
        on_train_end=lambda logs: recorded.append(model.get_weights())
    )
    with pytest.warns(UserWarning, match="no snapshot"):
        _fit(model, [record, averaging], epochs=1)
    _assert_weights(model.get_weights(), recorded[0])


def test_validation_errors():
    cases = [
        ({"num_checkpoints": 0}, ValueError, "num_checkpoints"),
        ({"num_checkpoints": 2.0}, TypeError, "num_checkpoints"),
        ({"num_checkpoints": True}, TypeError, "num_checkpoints"),
        ({"save_freq": "batch"}, ValueError, "save_freq"),
        ({"save_freq": 0}, ValueError, "save_freq"),
        ({"apply_on_train_end": 1}, TypeError, "apply_on_train_end"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            CheckpointAveraging(**kwargs)


def test_config_round_trip():
    callback = CheckpointAveraging(num_checkpoints=3, save_freq=10, apply_on_train_end=False)
    config = callback.get_config()
    assert config == {"num_checkpoints": 3, "save_freq": 10, "apply_on_train_end": False}
    assert CheckpointAveraging.from_config(json.loads(json.dumps(config))).get_config() == config
    assert keras.saving.get_registered_name(CheckpointAveraging) == "keras_seq>CheckpointAveraging"
