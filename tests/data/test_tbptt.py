"""Tests of `truncated_bptt_dataset`: streaming order, errors, stateful equivalence."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.callbacks.reset_states import ResetStatesAtSequenceBoundary
from keras_seq.data.tbptt import truncated_bptt_dataset
from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.layers.recurrent.lstm_cell import LSTMCell

NUM_SEQUENCES, STEPS, FEATURES, CHUNK, BATCH = 6, 12, 2, 4, 3


def _sequences():
    rs = np.random.RandomState(0)
    return (
        rs.randn(NUM_SEQUENCES, STEPS, FEATURES).astype("float32"),
        rs.randn(NUM_SEQUENCES, STEPS, 1).astype("float32"),
    )


def test_batches_continue_sequences_row_for_row():
    # Value 100 * n + t identifies sequence n, step t.
    ids = 100 * np.arange(NUM_SEQUENCES)[:, None] + np.arange(STEPS)[None, :]  # (N, T)
    inputs = np.stack([ids, -ids], axis=-1)  # (N, T, 2)
    dataset = truncated_bptt_dataset(inputs, ids, CHUNK, BATCH)
    batches = list(dataset.as_numpy_iterator())
    chunks_per_sequence = STEPS // CHUNK
    assert len(batches) == (NUM_SEQUENCES // BATCH) * chunks_per_sequence
    assert int(dataset.cardinality()) == len(batches)
    for k, (x, y) in enumerate(batches):
        group, chunk = divmod(k, chunks_per_sequence)
        rows = np.arange(group * BATCH, (group + 1) * BATCH)
        steps = np.arange(chunk * CHUNK, (chunk + 1) * CHUNK)
        expected = 100 * rows[:, None] + steps[None, :]  # (B, L)
        np.testing.assert_array_equal(y, expected)
        np.testing.assert_array_equal(x[..., 0], expected)
        np.testing.assert_array_equal(x[..., 1], -expected)
    # Static batch size, as a stateful RNN needs.
    x_spec, y_spec = dataset.element_spec
    assert tuple(x_spec.shape) == (BATCH, CHUNK, 2)
    assert tuple(y_spec.shape) == (BATCH, CHUNK)


def test_inputs_only_and_token_sequences():
    tokens = np.arange(4 * 6).reshape(4, 6)  # (N, T) integer ids, no feature axis
    dataset = truncated_bptt_dataset(tokens, None, chunk_length=3, batch_size=2)
    batches = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(batches[0], tokens[:2, :3])
    np.testing.assert_array_equal(batches[1], tokens[:2, 3:])
    np.testing.assert_array_equal(batches[2], tokens[2:, :3])
    np.testing.assert_array_equal(batches[3], tokens[2:, 3:])


def test_errors_name_the_argument():
    x, y = _sequences()
    with pytest.raises(ValueError, match="multiple of `chunk_length`.*chunk_length=5"):
        truncated_bptt_dataset(x, y, chunk_length=5, batch_size=BATCH)
    with pytest.raises(ValueError, match="multiple of `batch_size`.*batch_size=4"):
        truncated_bptt_dataset(x, y, chunk_length=CHUNK, batch_size=4)
    with pytest.raises(ValueError, match="`targets`.*targets.shape=\\(6, 11, 1\\)"):
        truncated_bptt_dataset(x, y[:, :11], chunk_length=CHUNK, batch_size=BATCH)
    with pytest.raises(ValueError, match="`inputs`.*inputs.shape=\\(6,\\)"):
        truncated_bptt_dataset(x[:, 0, 0], None, chunk_length=CHUNK, batch_size=BATCH)
    for bad, error in ((0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match=f"chunk_length={bad!r}"):
            truncated_bptt_dataset(x, y, chunk_length=bad, batch_size=BATCH)
        with pytest.raises(error, match=f"batch_size={bad!r}"):
            truncated_bptt_dataset(x, y, chunk_length=CHUNK, batch_size=bad)


def _model(stateful, cell):
    shape = dict(batch_shape=(BATCH, None, FEATURES)) if stateful else dict(shape=(None, FEATURES))
    inputs = keras.Input(**shape)
    hidden = keras.layers.RNN(cell, return_sequences=True, stateful=stateful)(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


def _unchunk(chunks):
    """`(G * K * B, L, ...)` predictions in streaming order -> `(N, T, ...)`."""
    groups, per_sequence = NUM_SEQUENCES // BATCH, STEPS // CHUNK
    rest = chunks.shape[2:]
    chunks = chunks.reshape((groups, per_sequence, BATCH, CHUNK) + rest)
    return np.swapaxes(chunks, 1, 2).reshape((NUM_SEQUENCES, STEPS) + rest)


@pytest.mark.parametrize("cell_class", [ElmanCell, LSTMCell])
def test_stateful_chunks_equal_full_pass(cell_class):
    x, y = _sequences()
    streaming = _model(True, cell_class(5))
    full = _model(False, cell_class(5))
    full.set_weights(streaming.get_weights())
    inputs_only = truncated_bptt_dataset(x, None, CHUNK, BATCH)
    reset = ResetStatesAtSequenceBoundary(STEPS // CHUNK)
    chunked = streaming.predict(inputs_only, callbacks=[reset], verbose=0)
    np.testing.assert_allclose(_unchunk(chunked), full.predict(x, verbose=0), atol=1e-5)
    # Without resets the second group starts from the first group's final state.
    stale = _unchunk(streaming.predict(inputs_only, verbose=0))
    assert np.abs(stale[BATCH:] - full.predict(x, verbose=0)[BATCH:]).max() > 1e-3


def test_gradients_do_not_cross_chunks_of_a_stateful_rnn():
    x, _ = _sequences()
    layer = keras.layers.RNN(ElmanCell(5), return_sequences=True, stateful=True)
    layer.build((BATCH, CHUNK, FEATURES))
    first = tf.constant(x[:BATCH, :CHUNK])
    second = tf.constant(x[:BATCH, CHUNK : 2 * CHUNK])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(first)
        tape.watch(second)
        layer(first)
        loss = tf.reduce_sum(layer(second) ** 2)
    assert tape.gradient(loss, first) is None
    assert np.abs(tape.gradient(loss, second)).max() > 0.0
    # The forward state did cross: the second chunk saw the first chunk's state.
    layer.reset_state()
    fresh = layer(second)
    layer.reset_state()
    layer(first)
    assert np.abs(layer(second) - fresh).max() > 1e-3
