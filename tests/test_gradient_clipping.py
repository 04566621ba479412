"""Gradient clipping of recurrent models comes from the Keras optimizers; pin it down.

An Elman RNN with a large recurrent initialisation has exploding gradients. One SGD step with
`global_clipnorm`, `clipnorm` or `clipvalue` must change the weights by exactly the learning
rate times the gradient (from `tf.GradientTape`) clipped by the textbook formula.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.layers.recurrent.gru_cell import GRUCell

LEARNING_RATE, CLIP = 0.5, 1.0


def _data():
    rs = np.random.RandomState(0)
    return rs.randn(4, 30, 3).astype("float32"), rs.randn(4, 1).astype("float32")


def _exploding_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((30, 3)),
            keras.layers.RNN(
                ElmanCell(8, recurrent_initializer=keras.initializers.Orthogonal(gain=4.0))
            ),
            keras.layers.Dense(1),
        ]
    )


def _tape_gradients(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)  # the "mse" that `fit` minimises
    return [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]


def _one_sgd_step(model, x, y, **clip):
    before = [w.numpy() for w in model.trainable_weights]
    model.compile(keras.optimizers.SGD(LEARNING_RATE, **clip), "mse", jit_compile=False)
    model.train_on_batch(x, y)
    return [w.numpy() - b for w, b in zip(model.trainable_weights, before)]


def _global_norm(grads):
    return float(np.sqrt(sum(np.sum(g.astype("float64") ** 2) for g in grads)))


def _assert_updates(updates, expected_grads):
    for update, grad in zip(updates, expected_grads):
        np.testing.assert_allclose(update, -LEARNING_RATE * grad, rtol=1e-4, atol=1e-6)


def test_global_clipnorm_step_is_lr_times_clipped_gradient():
    x, y = _data()
    model = _exploding_model()
    grads = _tape_gradients(model, x, y)
    norm = _global_norm(grads)
    assert norm > 100 * CLIP  # the setting really explodes
    initial = model.get_weights()

    clipped_updates = _one_sgd_step(model, x, y, global_clipnorm=CLIP)
    _assert_updates(clipped_updates, [g * CLIP / max(norm, CLIP) for g in grads])
    # The clipped step has length lr * c ...
    np.testing.assert_allclose(_global_norm(clipped_updates), LEARNING_RATE * CLIP, rtol=1e-4)

    # ... while the unclipped step is the raw gradient step, hundreds of times longer.
    model.set_weights(initial)
    raw_updates = _one_sgd_step(model, x, y)
    _assert_updates(raw_updates, grads)
    assert _global_norm(raw_updates) > 100 * _global_norm(clipped_updates)


def test_clipnorm_clips_each_variable():
    x, y = _data()
    model = _exploding_model()
    grads = _tape_gradients(model, x, y)
    clip = 10.0
    clipped = [g * clip / max(np.linalg.norm(g), clip) for g in grads]
    assert any(np.linalg.norm(g) > clip for g in grads)
    assert any(np.linalg.norm(g) < clip for g in grads)  # small ones left alone
    _assert_updates(_one_sgd_step(model, x, y, clipnorm=clip), clipped)


def test_clipvalue_clips_each_entry():
    x, y = _data()
    model = _exploding_model()
    grads = _tape_gradients(model, x, y)
    value = 0.5
    assert max(np.abs(g).max() for g in grads) > value
    _assert_updates(
        _one_sgd_step(model, x, y, clipvalue=value),
        [np.clip(g, -value, value) for g in grads],
    )


def test_global_clipnorm_below_threshold_is_a_plain_step():
    x, y = _data()
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((30, 3)), keras.layers.RNN(GRUCell(4)), keras.layers.Dense(1)]
    )
    grads = _tape_gradients(model, x, y)
    large = 10 * _global_norm(grads)
    _assert_updates(_one_sgd_step(model, x, y, global_clipnorm=large), grads)


def test_optimizer_rejects_two_clipping_modes():
    with pytest.raises(ValueError, match="clipnorm"):
        keras.optimizers.SGD(clipnorm=1.0, global_clipnorm=1.0)
