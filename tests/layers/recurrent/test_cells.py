"""Recurrent cells: the contract harness, NumPy references of the formulas, and properties.

The NumPy step functions below are written from the equations in the docstrings, not from
the cell code, and cover what Keras has no peer for (layer norm, peepholes, output
projection).
"""

import keras
import numpy as np
import pytest

from keras_seq import layers
from keras_seq import testing

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

rng = np.random.default_rng(11)
X = rng.normal(size=(3, 6, 4)).astype("float32")
MASK = np.ones((3, 6), bool)
MASK[0, 4:] = False
MASK[2, 2:] = False


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def layer_norm(x, gamma, beta, groups, epsilon):
    shape = x.shape
    x = x.reshape(shape[0], groups, -1)
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + epsilon)
    return x.reshape(shape) * gamma + beta


def numpy_lstm_step(cell, x, h, c):
    w = {v.name: np.asarray(v) for v in cell.weights}
    zx, zh = x @ w["kernel"], h @ w["recurrent_kernel"]
    if cell.use_layer_norm:
        eps = cell.layer_norm_epsilon
        zx = layer_norm(zx, w["kernel_norm_gamma"], w["kernel_norm_beta"], 4, eps)
        zh = layer_norm(zh, w["recurrent_norm_gamma"], w["recurrent_norm_beta"], 4, eps)
    z = zx + zh + w.get("bias", 0.0)
    zi, zf, zc, zo = np.split(z, 4, axis=-1)
    if cell.use_peepholes:
        zi, zf = zi + w["input_peephole"] * c, zf + w["forget_peephole"] * c
    c_new = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zc)
    if cell.use_peepholes:
        zo = zo + w["output_peephole"] * c_new
    c_out = c_new
    if cell.use_layer_norm:
        c_out = layer_norm(
            c_new, w["cell_norm_gamma"], w["cell_norm_beta"], 1, cell.layer_norm_epsilon
        )
    h_new = sigmoid(zo) * np.tanh(c_out)
    return h_new, [h_new, c_new]


def numpy_gru_step(cell, x, h):
    w = {v.name: np.asarray(v) for v in cell.weights}
    k, r_k, u = w["kernel"], w["recurrent_kernel"], cell.units
    if cell.reset_after:
        b_in, b_rec = w["bias"]
        xz, xr, xh = np.split(x @ k + b_in, 3, -1)
        hz, hr, hh = np.split(h @ r_k + b_rec, 3, -1)
        z, r = sigmoid(xz + hz), sigmoid(xr + hr)
        candidate = np.tanh(xh + r * hh)
    else:
        xz, xr, xh = np.split(x @ k + w["bias"], 3, -1)
        z = sigmoid(xz + h @ r_k[:, :u])
        r = sigmoid(xr + h @ r_k[:, u : 2 * u])
        candidate = np.tanh(xh + (r * h) @ r_k[:, 2 * u :])
    h_new = z * h + (1 - z) * candidate
    return h_new, [h_new]


def numpy_elman_step(cell, x, h):
    w = {v.name: np.asarray(v) for v in cell.weights}
    h_new = np.tanh(x @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"])
    y = h_new
    if cell.output_units is not None:
        logits = h_new @ w["output_kernel"] + w["output_bias"]
        y = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # softmax in the test below
    return y, [h_new]


def randomize(layer, scale=0.5):
    layer.set_weights(
        [rng.normal(scale=scale, size=w.shape).astype("float32") for w in layer.get_weights()]
    )


REFERENCE_CASES = [
    ("lstm", lambda: layers.LSTMCell(5), numpy_lstm_step),
    ("lstm_layer_norm", lambda: layers.LSTMCell(5, use_layer_norm=True), numpy_lstm_step),
    ("lstm_peepholes", lambda: layers.LSTMCell(5, use_peepholes=True), numpy_lstm_step),
    (
        "lstm_both",
        lambda: layers.LSTMCell(
            5, use_layer_norm=True, use_peepholes=True, layer_norm_epsilon=1e-5
        ),
        numpy_lstm_step,
    ),
    ("gru_reset_after", lambda: layers.GRUCell(5), numpy_gru_step),
    ("gru_reset_before", lambda: layers.GRUCell(5, reset_after=False), numpy_gru_step),
    ("elman", lambda: layers.ElmanCell(5), numpy_elman_step),
    (
        "elman_projection",
        lambda: layers.ElmanCell(5, output_units=3, output_activation="softmax"),
        numpy_elman_step,
    ),
]


@pytest.mark.parametrize(
    "name,make_cell,reference", REFERENCE_CASES, ids=[c[0] for c in REFERENCE_CASES]
)
def test_rnn_layer_equals_numpy_formula_and_hand_stepping(name, make_cell, reference):
    cell = make_cell()
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    rnn.build(X.shape)
    randomize(rnn)
    outputs, *final_states = rnn(X)

    states = [np.zeros((3, s), "float32") for s in np.atleast_1d(cell.state_size)]
    hand_states = [keras.ops.convert_to_tensor(s) for s in states]
    expected = []
    for t in range(X.shape[1]):
        y, states = reference(cell, X[:, t], *states)
        expected.append(y)
        hand_y, hand_states = cell(X[:, t], hand_states)  # the cell protocol, by hand
        np.testing.assert_allclose(hand_y, y, atol=1e-5)
    np.testing.assert_allclose(outputs, np.stack(expected, 1), atol=1e-5)
    for actual, ref in zip(final_states, states):
        np.testing.assert_allclose(actual, ref, atol=1e-5)


def test_fresh_peephole_cell_equals_plain_cell():
    plain = keras.layers.RNN(layers.LSTMCell(5), return_sequences=True)
    peephole = keras.layers.RNN(layers.LSTMCell(5, use_peepholes=True), return_sequences=True)
    plain.build(X.shape)
    peephole.build(X.shape)
    randomize(plain)
    peephole.set_weights(plain.get_weights() + [np.zeros(5, "float32")] * 3)
    np.testing.assert_allclose(peephole(X), plain(X), atol=1e-6)


@pytest.mark.parametrize("unit_forget_bias,expected_forget", [(True, 1.0), (False, 0.0)])
def test_unit_forget_bias(unit_forget_bias, expected_forget):
    cell = layers.LSTMCell(4, unit_forget_bias=unit_forget_bias, bias_initializer="zeros")
    cell.build((None, 3))
    bias = np.asarray(cell.bias)
    np.testing.assert_array_equal(bias[4:8], expected_forget)
    np.testing.assert_array_equal(np.delete(bias, np.s_[4:8]), 0.0)


@pytest.mark.parametrize(
    "make_cell",
    [
        lambda **kw: layers.LSTMCell(5, **kw),
        lambda **kw: layers.GRUCell(5, **kw),
        lambda **kw: layers.ElmanCell(5, **kw),
    ],
)
def test_dropout_only_in_training_and_seeded(make_cell):
    def run(training, seed=1):
        keras.utils.set_random_seed(0)
        rnn = keras.layers.RNN(make_cell(dropout=0.5, recurrent_dropout=0.5, seed=seed))
        return np.asarray(rnn(X, training=training))

    np.testing.assert_allclose(run(False), run(False))
    assert not np.allclose(run(True), run(False))
    np.testing.assert_allclose(run(True), run(True))  # same seed, same masks
    assert not np.allclose(run(True, seed=1), run(True, seed=2))


def test_variational_dropout_uses_one_input_mask_per_sequence():
    """With a constant input sequence, an input-dropout-only Elman cell with zero recurrence
    sees the same dropped input every step, so all its outputs are equal."""
    cell = layers.ElmanCell(6, dropout=0.5, recurrent_initializer="zeros", seed=3)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    constant = np.repeat(rng.normal(size=(2, 1, 4)).astype("float32"), 5, axis=1)
    outputs = np.asarray(rnn(constant, training=True))
    np.testing.assert_allclose(outputs, np.repeat(outputs[:, :1], 5, axis=1), atol=1e-6)
    np.testing.assert_allclose(outputs, np.asarray(rnn(constant, training=True)) * 0 + outputs)


# The contract harness on every public cell and its options ----------------------------------

HARNESS_CASES = [
    (layers.ElmanCell, {"units": 5}, 3),
    pytest.param(
        layers.ElmanCell,
        {"units": 5, "output_units": 2, "output_activation": "softmax"},
        5,
        # Keras' JAX `rnn` keeps a masked step's output from `states[0]` (its comment:
        # "Assume the first state is the previous output"), which fails when the output is
        # not the state: an upstream limitation, strict so that a fix upstream is noticed.
        marks=pytest.mark.xfail(
            keras.backend.backend() == "jax",
            reason="keras' JAX rnn takes a masked step's output from states[0]",
            strict=True,
        ),
    ),
    (
        layers.ElmanCell,
        {"units": 5, "use_bias": False, "dropout": 0.1, "recurrent_dropout": 0.2},
        2,
    ),
    (layers.LSTMCell, {"units": 5}, 3),
    (layers.LSTMCell, {"units": 5, "use_layer_norm": True}, 9),
    (layers.LSTMCell, {"units": 5, "use_peepholes": True, "dropout": 0.2}, 6),
    (
        layers.LSTMCell,
        {
            "units": 5,
            "use_layer_norm": True,
            "use_peepholes": True,
            "kernel_regularizer": "l2",
            "recurrent_dropout": 0.1,
        },
        12,
    ),
    (layers.GRUCell, {"units": 5}, 3),
    (layers.GRUCell, {"units": 5, "reset_after": False, "recurrent_activation": "hard_sigmoid"}, 3),
]


@pytest.mark.parametrize(
    "cell_cls,init_kwargs,num_weights",
    HARNESS_CASES,
    ids=[
        f"{(c.values if hasattr(c, 'values') else c)[0].__name__}-{i}"
        for i, c in enumerate(HARNESS_CASES)
    ],
)
def test_contract_return_sequences(cell_cls, init_kwargs, num_weights):
    output_dim = init_kwargs.get("output_units", init_kwargs["units"])
    testing.run_cell_test(
        cell_cls,
        init_kwargs,
        X,
        expected_output_shape=(3, 6, output_dim),
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
        padding_mask=MASK,
    )


@pytest.mark.parametrize("cell_cls", [layers.ElmanCell, layers.LSTMCell, layers.GRUCell])
def test_contract_return_state(cell_cls):
    num_states = 2 if cell_cls is layers.LSTMCell else 1
    testing.run_cell_test(
        cell_cls,
        {"units": 4},
        X,
        rnn_kwargs={"return_state": True},
        expected_output_shape=[(3, 4)] * (1 + num_states),
        padding_mask=MASK,
        expected_output_mask=None,
    )


# Validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("cell_cls", [layers.ElmanCell, layers.LSTMCell, layers.GRUCell])
@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"units": 0}, ValueError, r"`units` must be a positive integer. Received: units=0"),
        ({"units": 4.0}, TypeError, r"`units` .* Received: units=4.0"),
        (
            {"units": 4, "dropout": 1.0},
            ValueError,
            r"`dropout` must be a float in \[0, 1\). Received: dropout=1.0",
        ),
        ({"units": 4, "dropout": -0.1}, ValueError, r"Received: dropout=-0.1"),
        (
            {"units": 4, "recurrent_dropout": "0.5"},
            TypeError,
            r"`recurrent_dropout` .* Received: recurrent_dropout='0.5'",
        ),
        (
            {"units": 4, "seed": "42"},
            TypeError,
            r"`seed` must be None or a non-negative integer. Received: seed='42'",
        ),
        (
            {"units": 4, "seed": -1},
            ValueError,
            r"`seed` must be None or a non-negative integer. Received: seed=-1",
        ),
    ],
)
def test_shared_argument_errors(cell_cls, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        cell_cls(**kwargs)


@pytest.mark.parametrize(
    "make,error,pattern",
    [
        (
            lambda: layers.LSTMCell(4, use_layer_norm="yes"),
            TypeError,
            r"`use_layer_norm` must be a bool. Received: use_layer_norm='yes'",
        ),
        (
            lambda: layers.LSTMCell(4, use_peepholes=1),
            TypeError,
            r"`use_peepholes` must be a bool. Received: use_peepholes=1",
        ),
        (lambda: layers.LSTMCell(4, unit_forget_bias=None), TypeError, r"`unit_forget_bias`"),
        (
            lambda: layers.LSTMCell(4, layer_norm_epsilon=0.0),
            ValueError,
            r"`layer_norm_epsilon` .* Received: layer_norm_epsilon=0.0",
        ),
        (
            lambda: layers.GRUCell(4, reset_after=1),
            TypeError,
            r"`reset_after` must be a bool. Received: reset_after=1",
        ),
        (
            lambda: layers.ElmanCell(4, output_units=-2),
            ValueError,
            r"`output_units` .* Received: output_units=-2",
        ),
        (
            lambda: layers.ElmanCell(4, output_activation="softmax"),
            ValueError,
            r"`output_activation` only applies .* output_activation='softmax'",
        ),
        (
            lambda: layers.LSTMCell(4, activation="no_such_activation"),
            ValueError,
            r"no_such_activation",
        ),
    ],
)
def test_specific_argument_errors(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_unknown_input_dimension_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match=r"LSTMCell needs a known last dimension of `inputs`. "
        r"Received: input_shape=\(None, None\)",
    ):
        layers.LSTMCell(4).build((None, None))
