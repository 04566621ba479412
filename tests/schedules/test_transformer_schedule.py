"""Tests of `TransformerSchedule` against the formula of Vaswani et al. (2017), section 5.3."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.schedules.transformer_schedule import TransformerSchedule


def _paper_lrate(step_num, d, warmup, scale=1.0):
    """The paper's formula, with the update number `step_num` counted from 1."""
    step_num = np.asarray(step_num, "float64")
    return scale * d**-0.5 * np.minimum(step_num**-0.5, step_num * warmup**-1.5)


@pytest.mark.parametrize("d,warmup,scale", [(512, 4000, 1.0), (64, 100, 2.5), (1024, 1, 0.3)])
def test_equals_formula_at_update_number_step_plus_one(d, warmup, scale):
    schedule = TransformerSchedule(d, warmup_steps=warmup, scale=scale)
    steps = np.array([0, 1, 2, warmup // 2, warmup - 2, warmup - 1, warmup, 3 * warmup, 10**6])
    steps = steps[steps >= 0]
    got = np.array([float(schedule(int(s))) for s in steps])
    np.testing.assert_allclose(got, _paper_lrate(steps + 1, d, warmup, scale), rtol=1e-6)


def test_step_zero_is_finite_and_positive():
    value = float(TransformerSchedule(512)(0))
    assert np.isfinite(value) and value > 0
    np.testing.assert_allclose(value, 512**-0.5 * 4000**-1.5, rtol=1e-6)


def test_peak_at_warmup():
    d, warmup = 32, 50
    schedule = TransformerSchedule(d, warmup_steps=warmup)
    steps = np.arange(0, 5 * warmup)
    values = np.array(schedule(steps))  # vectorised over a step array
    assert int(np.argmax(values)) == warmup - 1  # the `warmup`-th update
    np.testing.assert_allclose(values.max(), (d * warmup) ** -0.5, rtol=1e-6)
    # Linear increase before, decrease after.
    assert np.all(np.diff(values[:warmup]) > 0) and np.all(np.diff(values[warmup:]) < 0)
    np.testing.assert_allclose(
        values[:warmup] / values[warmup - 1], (steps[:warmup] + 1) / warmup, rtol=1e-6
    )


def test_runs_in_xla_compiled_function():
    schedule = TransformerSchedule(16, warmup_steps=10)
    compiled = tf.function(lambda step: schedule(step), jit_compile=True)
    for step in (0, 9, 30):
        np.testing.assert_allclose(
            float(compiled(tf.constant(step, "int64"))), _paper_lrate(step + 1, 16, 10), rtol=1e-6
        )


def test_adam_uses_the_schedule_per_iteration():
    schedule = TransformerSchedule(16, warmup_steps=10, scale=2.0)
    optimizer = keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9)
    variable = keras.Variable(np.zeros((3,), "float32"))
    optimizer.build([variable])
    for step in range(3):
        np.testing.assert_allclose(
            float(optimizer.learning_rate), _paper_lrate(step + 1, 16, 10, 2.0), rtol=1e-6
        )
        before = variable.numpy().copy()
        optimizer.apply_gradients([(tf.ones((3,)), variable)])
        # Adam's first steps move each weight by about the learning rate.
        np.testing.assert_allclose(
            before - variable.numpy(), _paper_lrate(step + 1, 16, 10, 2.0), rtol=1e-3
        )


def test_validation_errors():
    cases = [
        ({"hidden_dim": 0}, ValueError, "hidden_dim"),
        ({"hidden_dim": 8.0}, TypeError, "hidden_dim"),
        ({"hidden_dim": True}, TypeError, "hidden_dim"),
        ({"hidden_dim": 8, "warmup_steps": 0}, ValueError, "warmup_steps"),
        ({"hidden_dim": 8, "warmup_steps": -5}, ValueError, "warmup_steps"),
        ({"hidden_dim": 8, "scale": 0.0}, ValueError, "scale"),
        ({"hidden_dim": 8, "scale": float("inf")}, ValueError, "scale"),
        ({"hidden_dim": 8, "scale": "1"}, TypeError, "scale"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            TransformerSchedule(**kwargs)


def test_config_round_trip():
    schedule = TransformerSchedule(128, warmup_steps=300, scale=0.5)
    config = schedule.get_config()
    assert config == {"hidden_dim": 128, "warmup_steps": 300, "scale": 0.5}
    serialized = keras.saving.serialize_keras_object(schedule)
    assert serialized["registered_name"] == "keras_seq>TransformerSchedule"
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert isinstance(restored, TransformerSchedule)
    assert restored.get_config() == config
    assert float(restored(77)) == float(schedule(77))


def test_model_save_reload_keeps_the_schedule(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    schedule = TransformerSchedule(32, warmup_steps=20, scale=3.0)
    optimizer = keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9)
    model.compile(optimizer, "mse", jit_compile=True)
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 2), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)

    restored = keras.saving.load_model(path)
    serialized = restored.optimizer.get_config()["learning_rate"]
    assert serialized["registered_name"] == "keras_seq>TransformerSchedule"
    restored_schedule = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored_schedule, TransformerSchedule)
    assert restored_schedule.get_config() == schedule.get_config()
    assert int(restored.optimizer.iterations) == 2
    np.testing.assert_allclose(
        float(restored.optimizer.learning_rate), _paper_lrate(3, 32, 20, 3.0), rtol=1e-6
    )
    np.testing.assert_allclose(restored.optimizer.beta_2, 0.98)
    np.testing.assert_allclose(restored.optimizer.epsilon, 1e-9)
