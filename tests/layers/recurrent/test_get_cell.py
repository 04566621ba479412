"""Any registered cell plugs in by name, config or instance, and saves and reloads."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_seq import layers
from keras_seq import testing

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

X = np.random.default_rng(5).normal(size=(2, 4, 3)).astype("float32")


@keras.saving.register_keras_serializable(package="my_lab")
class MinimalGatedCell(keras.layers.Layer):
    """A user's own cell: h_t = f ⊙ h_{t-1} + (1 - f) ⊙ tanh(x W), f = σ(x U)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 2 * self.units), name="kernel")

    def call(self, inputs, states):
        f, candidate = ops.split(ops.matmul(inputs, self.kernel), 2, axis=-1)
        f = ops.sigmoid(f)
        h = f * states[0] + (1 - f) * ops.tanh(candidate)
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@pytest.mark.parametrize(
    "identifier,cls",
    [
        ("lstm", layers.LSTMCell),
        ("GRU", layers.GRUCell),
        ("elman", layers.ElmanCell),
        ("simple_rnn", layers.ElmanCell),
        ("keras_seq>LSTMCell", layers.LSTMCell),
        ("my_lab>MinimalGatedCell", MinimalGatedCell),
    ],
)
def test_by_name(identifier, cls):
    cell = layers.get_cell(identifier, units=7)
    assert type(cell) is cls and cell.units == 7


def test_by_name_passes_options():
    cell = layers.get_cell("lstm", units=3, use_layer_norm=True)
    assert cell.use_layer_norm is True


@pytest.mark.parametrize("original", [layers.GRUCell(6, reset_after=False), MinimalGatedCell(6)])
def test_by_config_round_trips(original):
    config = keras.saving.serialize_keras_object(original)
    cell = layers.get_cell(config)
    assert type(cell) is type(original)
    assert cell.get_config() == original.get_config()


def test_by_short_config():
    cell = layers.get_cell({"class_name": "lstm", "config": {"units": 4, "use_peepholes": True}})
    assert isinstance(cell, layers.LSTMCell) and cell.use_peepholes


def test_instance_is_returned_unchanged():
    cell = MinimalGatedCell(3)
    assert layers.get_cell(cell) is cell


def test_custom_cell_saves_and_reloads_in_rnn_and_stack(tmp_path):
    inputs = keras.Input((4, 3))
    stacked = keras.layers.StackedRNNCells(
        [layers.get_cell("my_lab>MinimalGatedCell", units=5), layers.get_cell("lstm", units=4)]
    )
    outputs = keras.layers.Bidirectional(keras.layers.RNN(stacked, return_sequences=True))(inputs)
    model = keras.Model(inputs, outputs)
    path = os.path.join(tmp_path, "custom.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(X), model(X), atol=1e-6)


def test_custom_cell_passes_the_contract():
    testing.run_cell_test(
        MinimalGatedCell,
        {"units": 4},
        X,
        expected_output_shape=(2, 4, 4),
        expected_num_trainable_weights=1,
        padding_mask=np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool),
    )


def test_unknown_name_lists_the_choices():
    with pytest.raises(
        ValueError, match=r"Unknown `cell`: 'lstn'. Expected one of \['elman', 'gru', 'lstm'"
    ):
        layers.get_cell("lstn", units=3)


def test_non_cell_is_rejected():
    with pytest.raises(
        TypeError, match=r"`cell` must resolve to a recurrent cell .* \(resolved to Dense\)"
    ):
        layers.get_cell(keras.layers.Dense(3))


def test_kwargs_with_an_instance_are_rejected():
    with pytest.raises(ValueError, match=r"only apply when `cell` is a name"):
        layers.get_cell(layers.LSTMCell(3), units=4)
