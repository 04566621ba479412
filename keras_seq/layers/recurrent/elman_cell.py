"""The Elman (vanilla) recurrent cell.

Letter legend for shape comments: B batch, F input features, U units, O output units.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.recurrent.base_cell import RecurrentCell
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class ElmanCell(RecurrentCell):
    """Elman (vanilla) RNN cell: h_t = act(x_t W_xh + h_{t-1} W_hh + b).

    The recurrence above, with an optional output projection
    y_t = out_act(h_t W_hy + b_y) so that a cell can emit something other than its state (a
    per-step vocabulary distribution, say). With `output_units=None` it is weight-for-weight
    `keras.layers.SimpleRNNCell`: the same `kernel`, `recurrent_kernel` and `bias`, so
    `get_weights()` / `set_weights()` move between the two. What it adds over Keras: the
    output projection, and argument validation (Keras clamps bad dropout rates silently).

    Args:
        units: int. Size of the hidden state h_t.
        activation: str or callable. Nonlinearity of the recurrence. Defaults to `"tanh"`.
        use_bias: bool. Whether the recurrence has the bias b. Defaults to `True`.
        output_units: int or `None`. Size of the projected output y_t; `None` (the
            default) emits h_t itself, as `SimpleRNNCell` does. On JAX, Keras' `RNN` with a
            mask carries a masked step's output over from the first state, which fails for
            a projected output of another size (Keras 3.15): pass
            `zero_output_for_mask=True` to `keras.layers.RNN` there.
        output_activation: str, callable or `None`. Activation of the projected output;
            `None` means linear. Only used with `output_units`. Defaults to `None`.
        kernel_initializer: initializer of W_xh and W_hy. Defaults to `"glorot_uniform"`.
        recurrent_initializer: initializer of W_hh. Defaults to `"orthogonal"`.
        bias_initializer: initializer of b and b_y. Defaults to `"zeros"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: optional regularizers
            of the input, recurrent and bias weights. Default to `None`.
        kernel_constraint, recurrent_constraint, bias_constraint: optional constraints of
            the same weights. Default to `None`.
        dropout: float in [0, 1). Variational dropout rate on x_t. Defaults to `0.0`.
        recurrent_dropout: float in [0, 1). Variational dropout rate on h_{t-1}.
            Defaults to `0.0`.
        seed: non-negative int or `None`. Seed of the dropout masks. Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `(batch_size, input_dim)`, one time step.
        states: list of one tensor `(batch_size, units)`.
        training: bool or `None`; enables dropout.

    Returns:
        `(output, [h_t])` where output is h_t `(batch_size, units)`, or y_t
        `(batch_size, output_units)` with an output projection.

    Example:
    ```python
    layer = keras.layers.RNN(keras_seq.layers.ElmanCell(32), return_sequences=True)
    outputs = layer(np.zeros((2, 10, 8)))
    ```

    References:
        - [Elman, 1990](https://doi.org/10.1207/s15516709cog1402_1)
    """

    num_gates = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        output_units=None,
        output_activation=None,
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
        if output_units is not None:
            output_units = validate_positive_int("output_units", output_units)
        elif output_activation is not None:
            raise ValueError(
                "`output_activation` only applies with an output projection; set "
                "`output_units` too. Received: output_units=None, "
                f"output_activation={output_activation!r}"
            )
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
        self.output_units = output_units
        self.output_activation = output_activation
        self._output_activation = keras.activations.get(output_activation)

    @property
    def output_size(self):
        return self.units if self.output_units is None else self.output_units

    def build(self, input_shape):
        super().build(input_shape)
        if self.output_units is not None:
            self.output_kernel = self.add_weight(
                shape=(self.units, self.output_units),
                name="output_kernel",
                initializer=self._kernel_initializer,
                regularizer=self._kernel_regularizer,
                constraint=self._kernel_constraint,
            )
            self.output_bias = None
            if self.use_bias:
                self.output_bias = self.add_weight(
                    shape=(self.output_units,),
                    name="output_bias",
                    initializer=self._bias_initializer,
                    regularizer=self._bias_regularizer,
                    constraint=self._bias_constraint,
                )

    def call(self, inputs, states, training=False):
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        inputs, h_dropped = self._apply_dropout(inputs, h_tm1, training)
        z = ops.matmul(inputs, self.kernel)  # (B, U)
        if self.bias is not None:
            z = ops.add(z, self.bias)
        h = self._activation(ops.add(z, ops.matmul(h_dropped, self.recurrent_kernel)))
        output = h
        if self.output_units is not None:
            output = ops.matmul(h, self.output_kernel)  # (B, O)
            if self.output_bias is not None:
                output = ops.add(output, self.output_bias)
            output = self._output_activation(output)
        new_state = [h] if isinstance(states, (list, tuple)) else h
        return output, new_state

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_units": self.output_units,
                "output_activation": (
                    None
                    if self.output_activation is None
                    else keras.activations.serialize(self._output_activation)
                ),
            }
        )
        return config
