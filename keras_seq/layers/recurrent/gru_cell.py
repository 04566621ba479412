"""The gated recurrent unit cell.

Letter legend for shape comments: B batch, F input features, U units.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.recurrent.base_cell import RecurrentCell
from keras_seq.utils.validation import validate_bool


@keras_seq_export
class GRUCell(RecurrentCell):
    """Gated recurrent unit: update gate z, reset gate r, candidate h~.

    z = σ(x W_z + h U_z + b_z), r = σ(x W_r + h U_r + b_r),
    h~ = act(x W_h + r ⊙ (h U_h) + b_h) with `reset_after=True` (the cuDNN form, Keras'
    default) or h~ = act(x W_h + (r ⊙ h) U_h + b_h) with `reset_after=False` (Cho et al.),
    and h_t = z ⊙ h_{t-1} + (1 - z) ⊙ h~.

    Weights and gate order (z, r, h) are those of `keras.layers.GRUCell`, including the
    `(2, 3 * units)` bias of the `reset_after` form, so weights move between the two with
    `get_weights()` / `set_weights()`. What it adds over Keras: argument validation (Keras
    clamps dropout rates silently) and the shared keras_seq cell base, so that it plugs into
    keras_seq's cell resolution, truncated BPTT and (later) attention wrappers.

    Speed: inside `keras.layers.RNN` on CPU the cell trains at least as fast as
    `keras.layers.GRU`: train-step ratios 0.98 in graph mode and 0.97 under XLA on a quiet
    2-core machine, 0.83-0.85 and 0.99-1.01 on a loaded one (batch 64, 100 steps, input
    128, 256 units; `benchmarks/RESULTS.md`). Like Keras' GRU it is bound by small
    batch-row matrix products and the step-by-step accumulation of the weight gradients.

    Args:
        units: int. Size of the hidden state.
        activation: str or callable. Candidate activation. Defaults to `"tanh"`.
        recurrent_activation: str or callable. Gate activation. Defaults to `"sigmoid"`.
        use_bias: bool. Whether the gates have biases. Defaults to `True`.
        reset_after: bool. Apply the reset gate after the recurrent matrix product
            (`True`, two bias vectors) or before it (`False`, one). Defaults to `True`.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of the
            input kernel, recurrent kernel and bias. Default to `"glorot_uniform"`,
            `"orthogonal"` and `"zeros"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: optional regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: optional constraints.
        dropout: float in [0, 1). Variational dropout on the inputs. Defaults to `0.0`.
        recurrent_dropout: float in [0, 1). Variational dropout on the state. Defaults to
            `0.0`.
        seed: non-negative int or `None`. Seed of the dropout masks. Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `(batch_size, input_dim)`, one time step.
        states: list of one tensor `(batch_size, units)`.
        training: bool or `None`; enables dropout.

    Returns:
        `(h_t, [h_t])`, each `(batch_size, units)`.

    Example:
    ```python
    layer = keras.layers.RNN(keras_seq.layers.GRUCell(32), return_sequences=True)
    outputs = layer(np.zeros((2, 10, 8)))
    ```

    References:
        - [Cho et al., 2014](https://arxiv.org/abs/1406.1078)
    """

    num_gates = 3

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        reset_after=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        validate_bool("reset_after", reset_after)
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )
        self.recurrent_activation = recurrent_activation
        self.reset_after = reset_after
        self._recurrent_activation = keras.activations.get(recurrent_activation)

    def _bias_shape(self):
        if self.reset_after:
            return (2, 3 * self.units)  # input bias, recurrent bias
        return (3 * self.units,)

    def call(self, inputs, states, training=False):
        # ops.split, not column slices: slicing adds a StridedSlice (and its gradient) per
        # gate, which made training measurably slower than Keras' GRU (benchmarks/).
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        inputs, h_dropped = self._apply_dropout(inputs, h_tm1, training)
        x = ops.matmul(inputs, self.kernel)  # (B, 3U)
        if self.reset_after:
            inner = ops.matmul(h_dropped, self.recurrent_kernel)  # (B, 3U)
            if self.bias is not None:
                # The bias read as a tensor first: JAX and torch cannot unstack a variable.
                bias = ops.convert_to_tensor(self.bias)  # (2, 3U)
                input_bias, recurrent_bias = ops.unstack(bias, 2, axis=0)
                x = ops.add(x, input_bias)
                inner = ops.add(inner, recurrent_bias)
            x_z, x_r, x_h = ops.split(x, 3, axis=-1)  # 3 x (B, U)
            inner_z, inner_r, inner_h = ops.split(inner, 3, axis=-1)
            z = self._recurrent_activation(x_z + inner_z)
            r = self._recurrent_activation(x_r + inner_r)
            recurrent_h = r * inner_h
        else:
            if self.bias is not None:
                x = ops.add(x, self.bias)
            x_z, x_r, x_h = ops.split(x, 3, axis=-1)  # 3 x (B, U)
            kernel_zr, kernel_h = ops.split(self.recurrent_kernel, [2 * self.units], axis=1)
            inner_z, inner_r = ops.split(ops.matmul(h_dropped, kernel_zr), 2, axis=-1)
            z = self._recurrent_activation(x_z + inner_z)
            r = self._recurrent_activation(x_r + inner_r)
            recurrent_h = ops.matmul(r * h_dropped, kernel_h)
        candidate = self._activation(x_h + recurrent_h)
        h = z * h_tm1 + (1.0 - z) * candidate
        new_state = [h] if isinstance(states, (list, tuple)) else h
        return h, new_state

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "recurrent_activation": keras.activations.serialize(self._recurrent_activation),
                "reset_after": self.reset_after,
            }
        )
        return config
