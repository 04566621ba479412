"""A user's own recurrent cell through `run_cell_test`, on whichever backend runs the tests.

The cell is written only in `keras.ops`, as a user's would be; its hand-stepped outputs are
the reference for the `RNN` layer the harness wraps it in.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_seq import testing

pytestmark = pytest.mark.backends


@keras.saving.register_keras_serializable(package="keras_seq_cell_tests")
class LeakyCell(keras.layers.Layer):
    """h_t = (1 - leak) * h_{t-1} + leak * tanh(x_t W + h_{t-1} U)."""

    def __init__(self, units, leak=0.5, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.leak = leak
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), name="recurrent_kernel"
        )

    def call(self, inputs, states, training=None):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        candidate = ops.tanh(
            ops.matmul(inputs, self.kernel) + ops.matmul(previous, self.recurrent_kernel)
        )
        h = (1.0 - self.leak) * previous + self.leak * candidate
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "leak": self.leak}


X = np.random.default_rng(1).normal(size=(2, 4, 3)).astype("float32")
MASK = np.array([[True] * 4, [True, True, False, False]])


def test_a_users_cell_passes_the_contract():
    testing.run_cell_test(
        LeakyCell,
        {"units": 5, "leak": 0.3},
        X,
        expected_output_shape=(2, 4, 5),
        expected_num_trainable_weights=2,
        padding_mask=MASK,
    )


def test_the_wrapped_cell_equals_the_cell_stepped_by_hand():
    layer = keras.layers.RNN(LeakyCell(5, leak=0.3), return_sequences=True)
    outputs = ops.convert_to_numpy(layer(X))
    kernel, recurrent_kernel = (ops.convert_to_numpy(w) for w in layer.cell.weights)
    h = np.zeros((2, 5), "float32")
    for t in range(X.shape[1]):
        h = 0.7 * h + 0.3 * np.tanh(X[:, t] @ kernel + h @ recurrent_kernel)
        np.testing.assert_allclose(outputs[:, t], h, atol=1e-5)
