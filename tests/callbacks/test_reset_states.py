"""Tests of `ResetStatesAtSequenceBoundary`: streaming TBPTT under `fit` is exact."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.callbacks.reset_states import ResetStatesAtSequenceBoundary
from keras_seq.data.tbptt import truncated_bptt_dataset
from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.layers.recurrent.truncated_bptt import TruncatedBPTT
from keras_seq.utils.layer_walk import find_layers

NUM_SEQUENCES, STEPS, FEATURES, CHUNK, BATCH, UNITS = 4, 9, 2, 3, 2, 5
LEARNING_RATE = 0.1


def _sequences():
    rs = np.random.RandomState(0)
    return (
        rs.randn(NUM_SEQUENCES, STEPS, FEATURES).astype("float32"),
        rs.randn(NUM_SEQUENCES, STEPS, 1).astype("float32"),
    )


def _streaming_model():
    inputs = keras.Input(batch_shape=(BATCH, None, FEATURES))
    hidden = keras.layers.RNN(ElmanCell(UNITS), return_sequences=True, stateful=True)(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


def _reference_fit(initial_weights, x, y, epochs):
    """Truncated BPTT by hand: per chunk one SGD step; state carried, reset per group."""
    rnn = keras.layers.RNN(ElmanCell(UNITS), return_sequences=True, return_state=True)
    dense = keras.layers.Dense(1)
    rnn.build((BATCH, CHUNK, FEATURES))
    dense.build((BATCH, CHUNK, UNITS))
    weights = rnn.trainable_weights + dense.trainable_weights
    for w, value in zip(weights, initial_weights):
        w.assign(value)
    for _ in range(epochs):
        for group in range(NUM_SEQUENCES // BATCH):
            rows = slice(group * BATCH, (group + 1) * BATCH)
            state = tf.zeros((BATCH, UNITS))
            for start in range(0, STEPS, CHUNK):
                x_chunk = x[rows, start : start + CHUNK]
                y_chunk = y[rows, start : start + CHUNK]
                with tf.GradientTape() as tape:
                    outputs, next_state = rnn(x_chunk, initial_state=[state])
                    loss = tf.reduce_mean((dense(outputs) - y_chunk) ** 2)
                grads = tape.gradient(loss, weights)
                for w, g in zip(weights, grads):
                    w.assign(w - LEARNING_RATE * g)
                state = next_state
    return [w.numpy() for w in weights]


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_fit_with_callback_equals_hand_written_tbptt(steps_per_execution):
    x, y = _sequences()
    model = _streaming_model()
    model.compile(
        keras.optimizers.SGD(LEARNING_RATE),
        "mse",
        steps_per_execution=steps_per_execution,
    )
    initial = model.get_weights()
    dataset = truncated_bptt_dataset(x, y, CHUNK, BATCH)
    callback = ResetStatesAtSequenceBoundary(STEPS // CHUNK)
    history = model.fit(dataset, epochs=2, shuffle=False, callbacks=[callback], verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    expected = _reference_fit(initial, x, y, epochs=2)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Without the callback the states leak across groups and epochs: different weights.
    model.set_weights(initial)
    model.layers[1].reset_state()
    model.fit(dataset, epochs=2, shuffle=False, verbose=0)
    assert max(np.abs(a - b).max() for a, b in zip(model.get_weights(), expected)) > 1e-4


def _nested_model():
    inputs = keras.Input(batch_shape=(BATCH, CHUNK, FEATURES))
    hidden = TruncatedBPTT(keras.layers.RNN(ElmanCell(3), return_sequences=True, stateful=True), 2)(
        inputs
    )
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True, stateful=True))(
        hidden
    )
    inner_inputs = keras.Input(batch_shape=(BATCH, CHUNK, 6))
    inner = keras.Model(inner_inputs, keras.layers.GRU(2, stateful=True)(inner_inputs))
    return keras.Model(inputs, inner(hidden))


def _states(model):
    return [
        np.asarray(v)
        for _, layer in find_layers(model, keras.layers.RNN)
        if layer.stateful
        for v in layer.states
    ]


def test_resets_every_nested_stateful_rnn_at_group_starts():
    model = _nested_model()
    x = np.random.RandomState(1).randn(BATCH, CHUNK, FEATURES).astype("float32")
    callback = ResetStatesAtSequenceBoundary(chunks_per_sequence=2)
    callback.set_model(model)
    # TruncatedBPTT's Elman (1 state), Bidirectional LSTM (2 x 2), nested GRU (1).
    assert len(_states(model)) == 6
    for hook in (
        lambda: callback.on_train_batch_begin(2),
        lambda: callback.on_test_batch_begin(4),
        lambda: callback.on_predict_batch_begin(0),
        lambda: callback.on_epoch_begin(1),
        lambda: callback.on_train_begin(),
        lambda: callback.on_test_begin(),
        lambda: callback.on_predict_begin(),
    ):
        model(x)
        callback.on_train_batch_begin(1)  # mid-sequence: no reset
        callback.on_test_batch_begin(3)
        assert all(np.abs(s).max() > 0.0 for s in _states(model))
        hook()
        assert all(np.all(s == 0.0) for s in _states(model))


def test_errors():
    for bad, error in ((0, ValueError), (-1, ValueError), (2.0, TypeError), (None, TypeError)):
        with pytest.raises(error, match=f"chunks_per_sequence={bad!r}"):
            ResetStatesAtSequenceBoundary(bad)
    x, y = _sequences()
    dataset = truncated_bptt_dataset(x, y, CHUNK, BATCH)
    stateless = keras.Sequential(
        [keras.Input((None, FEATURES)), keras.layers.SimpleRNN(2, return_sequences=True)]
    )
    stateless.compile("sgd", "mse")
    with pytest.raises(ValueError, match="no `keras.layers.RNN` with `stateful=True`"):
        stateless.fit(
            dataset, shuffle=False, callbacks=[ResetStatesAtSequenceBoundary(3)], verbose=0
        )
    model = _streaming_model()
    model.compile("sgd", "mse", steps_per_execution=2)
    with pytest.raises(ValueError, match="chunks_per_sequence=3, steps_per_execution=2"):
        model.fit(dataset, shuffle=False, callbacks=[ResetStatesAtSequenceBoundary(3)], verbose=0)


def test_serialization_round_trip():
    callback = ResetStatesAtSequenceBoundary(4)
    config = keras.saving.serialize_keras_object(callback)
    assert config["registered_name"] == "keras_seq>ResetStatesAtSequenceBoundary"
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, ResetStatesAtSequenceBoundary)
    assert restored.chunks_per_sequence == 4
