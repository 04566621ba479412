"""keras_seq cells in their default configuration are weight-for-weight Keras' cells.

Weights are copied both ways with get_weights / set_weights and outputs compared to 1e-5,
through keras.layers.RNN, Bidirectional and StackedRNNCells, with masks and go_backwards.
"""

import keras
import numpy as np
import pytest

from keras_seq import layers

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

rng = np.random.default_rng(7)
X = rng.normal(size=(4, 9, 6)).astype("float32")
MASK = np.ones((4, 9), bool)
MASK[1, 6:] = False
MASK[3, 2:] = False

PAIRS = [
    ("elman", lambda: layers.ElmanCell(5), keras.layers.SimpleRNN, {}),
    (
        "elman_relu",
        lambda: layers.ElmanCell(5, activation="relu"),
        keras.layers.SimpleRNN,
        {"activation": "relu"},
    ),
    ("lstm", lambda: layers.LSTMCell(5), keras.layers.LSTM, {}),
    (
        "lstm_no_bias",
        lambda: layers.LSTMCell(5, use_bias=False),
        keras.layers.LSTM,
        {"use_bias": False},
    ),
    ("gru_reset_after", lambda: layers.GRUCell(5), keras.layers.GRU, {}),
    (
        "gru_reset_before",
        lambda: layers.GRUCell(5, reset_after=False),
        keras.layers.GRU,
        {"reset_after": False},
    ),
]


def random_weights(layer):
    return [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]


@pytest.mark.parametrize("name,make_cell,keras_cls,keras_kwargs", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_rnn_matches_keras_layer_with_mask(name, make_cell, keras_cls, keras_kwargs, go_backwards):
    common = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    theirs = keras_cls(5, **keras_kwargs, **common)
    ours = keras.layers.RNN(make_cell(), **common)
    theirs.build(X.shape)
    ours.build(X.shape)
    theirs.set_weights(random_weights(theirs))
    ours.set_weights(theirs.get_weights())
    for a, b in zip(ours(X, mask=MASK), theirs(X, mask=MASK)):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("name,make_cell,keras_cls,keras_kwargs", PAIRS, ids=[p[0] for p in PAIRS])
def test_weights_move_from_keras_seq_to_keras(name, make_cell, keras_cls, keras_kwargs):
    ours = keras.layers.RNN(make_cell(), return_sequences=True)
    theirs = keras_cls(5, return_sequences=True, **keras_kwargs)
    ours.build(X.shape)
    theirs.build(X.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    ours.set_weights(random_weights(ours))
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(X), theirs(X), atol=1e-5)


def test_bidirectional_matches_keras():
    theirs = keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True))
    ours = keras.layers.Bidirectional(keras.layers.RNN(layers.LSTMCell(5), return_sequences=True))
    theirs.build(X.shape)
    ours.build(X.shape)
    theirs.set_weights(random_weights(theirs))
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(X, mask=MASK), theirs(X, mask=MASK), atol=1e-5)


def test_stacked_cells_match_keras():
    theirs = keras.layers.RNN(
        keras.layers.StackedRNNCells(
            [keras.layers.GRUCell(5), keras.layers.LSTMCell(4), keras.layers.SimpleRNNCell(3)]
        ),
        return_sequences=True,
    )
    ours = keras.layers.RNN(
        keras.layers.StackedRNNCells([layers.GRUCell(5), layers.LSTMCell(4), layers.ElmanCell(3)]),
        return_sequences=True,
    )
    theirs.build(X.shape)
    ours.build(X.shape)
    theirs.set_weights(random_weights(theirs))
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(X), theirs(X), atol=1e-5)


@pytest.mark.parametrize(
    "make_cell,keras_cell_cls",
    [
        (lambda: layers.LSTMCell(5), keras.layers.LSTMCell),
        (lambda: layers.GRUCell(5), keras.layers.GRUCell),
    ],
)
def test_default_initialization_matches_keras_distributions(make_cell, keras_cell_cls):
    """Same initializers as Keras: same seeds give the same starting weights."""
    keras.utils.set_random_seed(3)
    ours = keras.layers.RNN(make_cell())
    ours.build(X.shape)
    keras.utils.set_random_seed(3)
    theirs = keras.layers.RNN(keras_cell_cls(5))
    theirs.build(X.shape)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b)
