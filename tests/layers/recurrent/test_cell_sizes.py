"""`cell_output_size` / `cell_state_sizes` read any cell's sizes as `keras.layers.RNN` does."""

import keras
import numpy as np
import pytest

from keras_seq import layers
from keras_seq.layers.recurrent.cell_sizes import cell_output_size
from keras_seq.layers.recurrent.cell_sizes import cell_state_sizes

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")


class StatesOnlyCell(keras.layers.Layer):
    """A protocol cell without `output_size`: Keras outputs its first state."""

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.state_size = sizes

    def call(self, inputs, states):
        states = states if isinstance(states, (list, tuple)) else [states]
        new_states = [keras.ops.zeros_like(state) + keras.ops.sum(inputs) for state in states]
        return new_states[0], new_states


@pytest.mark.parametrize(
    "cell,state_sizes,output_size",
    [
        (layers.LSTMCell(5), [5, 5], 5),
        (layers.GRUCell(4), [4], 4),
        (keras.layers.LSTMCell(3), [3, 3], 3),
        (StatesOnlyCell(6), [6], 6),
        (StatesOnlyCell([2, 7]), [2, 7], 2),
    ],
)
def test_sizes_as_keras_rnn(cell, state_sizes, output_size):
    assert cell_state_sizes(cell) == state_sizes
    assert cell_output_size(cell) == output_size
    outputs = keras.layers.RNN(cell)(np.zeros((2, 3, 4), "float32"))
    assert outputs.shape[-1] == output_size
