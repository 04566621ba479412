"""The long short-term memory cell, with layer normalization and peepholes as options.

Letter legend for shape comments: B batch, F input features, U units.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.recurrent.base_cell import RecurrentCell
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_float


@keras_seq_export
class LSTMCell(RecurrentCell):
    """LSTM cell: input, forget and output gates around an additive cell state.

    i, f, o = σ(x W + h U + b) per gate, g = act(x W_g + h U_g + b_g),
    c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ act(c_t). The additive path through c_t is what
    lets gradients survive long spans that defeat an Elman cell.

    In the default configuration the cell is weight-for-weight `keras.layers.LSTMCell`
    (`kernel`, `recurrent_kernel`, `bias`; gate order i, f, c, o), so weights move between
    the two with `get_weights()` / `set_weights()`. What it adds over Keras:

    - `use_layer_norm`: layer normalization of each gate's input and recurrent
      pre-activations and of the cell state before the output (Ba et al., 2016; each gate
      normalized on its own, as in TensorFlow's former `LayerNormBasicLSTMCell`),
      computed in float32 under mixed precision. Adds `kernel_norm_gamma/beta`,
      `recurrent_norm_gamma/beta` `(4 * units,)` and `cell_norm_gamma/beta` `(units,)`.
    - `use_peepholes`: the gates see the cell state (Gers & Schmidhuber, 2000):
      i and f look at c_{t-1}, o at c_t. Adds `input_peephole`, `forget_peephole` and
      `output_peephole` `(units,)`, initialized to zero so a fresh peephole cell starts as
      the plain cell.
    - argument validation (Keras clamps dropout rates silently).

    Speed: inside `keras.layers.RNN` on CPU the cell trains as fast as `keras.layers.LSTM`,
    not faster: train-step ratios 0.98 in graph mode and 1.01 under XLA on a quiet 2-core
    machine, 0.98-1.08 and 1.01-1.07 on a loaded one (batch 64, 100 steps, input 128, 256
    units; `benchmarks/RESULTS.md`). Both run the generic per-step loop, bound by small
    batch-row matrix products, the step-by-step accumulation of the weight gradients and
    the gradient of the gate split; the step runs at 40-53% of the float32 matmul ceiling
    measured in the same process. A hand-written step gradient, the input projection
    hoisted out of the loop and the cuDNN loop structure were measured
    (`benchmarks/recurrent_candidates.py`); none brought the step to 0.8x.

    Args:
        units: int. Size of the hidden and cell states.
        activation: str or callable. Candidate and output activation. Defaults to
            `"tanh"`.
        recurrent_activation: str or callable. Gate activation. Defaults to `"sigmoid"`.
        use_bias: bool. Whether the gates have biases. Defaults to `True`.
        unit_forget_bias: bool. Add 1 to the forget-gate bias at initialization
            (Jozefowicz et al., 2015). Defaults to `True`.
        use_layer_norm: bool. Layer-normalize the gates and the cell state. Defaults to
            `False`.
        use_peepholes: bool. Add peephole connections. Defaults to `False`.
        layer_norm_epsilon: float > 0. Epsilon of the layer normalizations. Defaults to
            `1e-3`.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of the
            input kernel, recurrent kernel and bias. Default to `"glorot_uniform"`,
            `"orthogonal"` and `"zeros"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: optional regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: optional constraints.
        dropout: float in [0, 1). Variational dropout on the inputs. Defaults to `0.0`.
        recurrent_dropout: float in [0, 1). Variational dropout on h_{t-1}. Defaults to
            `0.0`.
        seed: non-negative int or `None`. Seed of the dropout masks. Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `(batch_size, input_dim)`, one time step.
        states: list `[h, c]`, each `(batch_size, units)`.
        training: bool or `None`; enables dropout.

    Returns:
        `(h_t, [h_t, c_t])`, each `(batch_size, units)`.

    Example:
    ```python
    cell = keras_seq.layers.LSTMCell(32, use_layer_norm=True)
    outputs = keras.layers.RNN(cell, return_sequences=True)(np.zeros((2, 10, 8)))
    ```

    References:
        - [Hochreiter & Schmidhuber, 1997](https://doi.org/10.1162/neco.1997.9.8.1735)
        - [Gers & Schmidhuber, 2000](https://doi.org/10.1109/IJCNN.2000.861302)
        - [Ba et al., 2016](https://arxiv.org/abs/1607.06450)
    """

    num_gates = 4

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        unit_forget_bias=True,
        use_layer_norm=False,
        use_peepholes=False,
        layer_norm_epsilon=1e-3,
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
        validate_bool("unit_forget_bias", unit_forget_bias)
        validate_bool("use_layer_norm", use_layer_norm)
        validate_bool("use_peepholes", use_peepholes)
        layer_norm_epsilon = validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
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
        self.unit_forget_bias = unit_forget_bias
        self.use_layer_norm = use_layer_norm
        self.use_peepholes = use_peepholes
        self.layer_norm_epsilon = layer_norm_epsilon
        self._recurrent_activation = keras.activations.get(recurrent_activation)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_initializer_fn(self):
        if not self.unit_forget_bias:
            return self._bias_initializer
        units, base = self.units, self._bias_initializer

        def initializer(shape, dtype=None):
            return ops.concatenate(
                [
                    base((units,), dtype=dtype),
                    ops.ones((units,), dtype=dtype),
                    base((2 * units,), dtype=dtype),
                ]
            )

        return initializer

    def build(self, input_shape):
        super().build(input_shape)
        if self.use_layer_norm:
            for prefix, width in (
                ("kernel_norm", 4 * self.units),
                ("recurrent_norm", 4 * self.units),
                ("cell_norm", self.units),
            ):
                gamma = self.add_weight(shape=(width,), name=f"{prefix}_gamma", initializer="ones")
                beta = self.add_weight(shape=(width,), name=f"{prefix}_beta", initializer="zeros")
                setattr(self, f"{prefix}_gamma", gamma)
                setattr(self, f"{prefix}_beta", beta)
        if self.use_peepholes:
            for gate in ("input", "forget", "output"):
                weight = self.add_weight(
                    shape=(self.units,), name=f"{gate}_peephole", initializer="zeros"
                )
                setattr(self, f"{gate}_peephole", weight)

    def _layer_norm(self, x, gamma, beta, groups):
        """Normalize each of `groups` equal slices of the last axis, in float32."""
        dtype = x.dtype
        x = ops.cast(x, "float32")
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], groups, self.units))  # (B, G, U)
        mean, variance = ops.moments(x, axes=[-1], keepdims=True)
        x = (x - mean) * ops.rsqrt(variance + self.layer_norm_epsilon)
        x = ops.reshape(x, shape)  # (B, G * U)
        x = x * ops.cast(gamma, "float32") + ops.cast(beta, "float32")
        return ops.cast(x, dtype)

    def call(self, inputs, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        inputs, h_dropped = self._apply_dropout(inputs, h_tm1, training)
        x = ops.matmul(inputs, self.kernel)  # (B, 4U)
        recurrent = ops.matmul(h_dropped, self.recurrent_kernel)  # (B, 4U)
        if self.use_layer_norm:
            x = self._layer_norm(x, self.kernel_norm_gamma, self.kernel_norm_beta, 4)
            recurrent = self._layer_norm(
                recurrent, self.recurrent_norm_gamma, self.recurrent_norm_beta, 4
            )
        z = ops.add(x, recurrent)
        if self.bias is not None:
            z = ops.add(z, self.bias)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=1)  # 4 x (B, U)
        if self.use_peepholes:
            z_i = z_i + self.input_peephole * c_tm1
            z_f = z_f + self.forget_peephole * c_tm1
        i = self._recurrent_activation(z_i)
        f = self._recurrent_activation(z_f)
        c = f * c_tm1 + i * self._activation(z_c)
        if self.use_peepholes:
            z_o = z_o + self.output_peephole * c
        o = self._recurrent_activation(z_o)
        if self.use_layer_norm:
            h = o * self._activation(
                self._layer_norm(c, self.cell_norm_gamma, self.cell_norm_beta, 1)
            )
        else:
            h = o * self._activation(c)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "recurrent_activation": keras.activations.serialize(self._recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias,
                "use_layer_norm": self.use_layer_norm,
                "use_peepholes": self.use_peepholes,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
