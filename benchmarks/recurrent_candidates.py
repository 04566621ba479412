"""Designs tried for a faster LSTM train step on CPU, kept so their timings can be rerun.

Each is a Keras layer with the weights of `keras.layers.LSTM(units)` (`kernel`,
`recurrent_kernel`, `bias`, gate order i, f, c, o) returning the last output, for
`bench_recurrent.py --candidates`. None of them is faster than the generic loop on a 2-core
CPU (see benchmarks/RESULTS.md); they are not part of the library.

- `StepGradientLSTM`: `RNN` over a cell whose step has a hand-written gradient
  (`keras.ops.custom_gradient`) that saves only the gates and the cell states.
- `HoistedLSTM`: the input projection `x @ W + b` for the whole sequence as one product
  before the loop; the loop adds `h @ U` and runs `StepGradientLSTM`'s step. TensorFlow
  then computes `dW` as one product after the loop as well.
- `SequenceGradientLSTM`: the cuDNN structure: projection hoisted, a hand-written backward
  loop that computes only `dh`, then `dW` and `dU` as two products over all steps.
- `XLASequenceGradientLSTM`: the same, each of its two loops one XLA function called from
  the plain graph that `fit` runs on CPU (XLA's loop costs less per step; its small matmuls
  run slower than oneDNN's). A first measurement returning every step's output: 0.93x
  `keras.layers.LSTM`'s train step.

Letter legend: B batch, T time steps, F input features, U units.
"""

import keras
import tensorflow as tf
from keras import ops


def _lstm_gates(z, c_prev):
    """`(h, c)` from the pre-activations `z` (B, 4U), with a hand-written gradient."""

    @ops.custom_gradient
    def step(z, c_prev):
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=1)  # 4 x (B, U)
        i, f, o = ops.sigmoid(z_i), ops.sigmoid(z_f), ops.sigmoid(z_o)
        g = ops.tanh(z_c)
        c = f * c_prev + i * g
        tanh_c = ops.tanh(c)
        h = o * tanh_c

        def grad(*args, upstream=None):
            dh, dc = args if upstream is None else upstream
            dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
            dz = ops.concatenate(
                [
                    dc * g * i * (1.0 - i),
                    dc * c_prev * f * (1.0 - f),
                    dc * i * (1.0 - g * g),
                    dh * tanh_c * o * (1.0 - o),
                ],
                axis=1,
            )  # (B, 4U)
            return dz, dc * f

        return (h, c), grad

    return step(z, c_prev)


class _LSTMWeights(keras.layers.Layer):
    """The three weights of `keras.layers.LSTM`, under the same names and in the same order."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        width = 4 * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], width), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, width), name="recurrent_kernel")
        self.bias = self.add_weight(shape=(width,), name="bias", initializer="zeros")


class _StepCell(keras.layers.Layer):
    """One step; shares the owner's variables (the owner itself is not tracked: a cycle)."""

    def __init__(self, owner, hoisted, **kwargs):
        super().__init__(**kwargs)
        self.kernel = owner.kernel
        self.recurrent_kernel = owner.recurrent_kernel
        self.bias = owner.bias
        self.hoisted = hoisted
        self.state_size = [owner.units, owner.units]
        self.output_size = owner.units

    def call(self, inputs, states):
        h, c = states
        if self.hoisted:
            z = inputs + ops.matmul(h, self.recurrent_kernel)  # inputs: x W + b
        else:
            z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias
        h, c = _lstm_gates(z, c)
        return h, [h, c]


class StepGradientLSTM(_LSTMWeights):
    def build(self, input_shape):
        super().build(input_shape)
        self.rnn = keras.layers.RNN(_StepCell(self, hoisted=False))

    def call(self, inputs):
        return self.rnn(inputs)


class HoistedLSTM(_LSTMWeights):
    def build(self, input_shape):
        super().build(input_shape)
        self.rnn = keras.layers.RNN(_StepCell(self, hoisted=True))

    def call(self, inputs):
        return self.rnn(ops.matmul(inputs, self.kernel) + self.bias)  # (B, T, 4U)


@tf.custom_gradient
def _sequence_lstm(x, kernel, recurrent_kernel, bias):
    """Last output of an LSTM over time-major `x` (T, B, F), with the cuDNN backward structure."""
    steps, batch, units = tf.shape(x)[0], tf.shape(x)[1], recurrent_kernel.shape[0]
    x_flat = tf.reshape(x, (-1, x.shape[-1]))  # (T * B, F)
    projected = tf.reshape(tf.matmul(x_flat, kernel) + bias, (steps, batch, 4 * units))
    zeros = tf.zeros((batch, units))

    def forward(step, h, c, hs, cs, gates):
        z = projected[step] + tf.matmul(h, recurrent_kernel)
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=1)
        i, f, g, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_c), tf.sigmoid(z_o)
        hs, cs = hs.write(step, h), cs.write(step, c)  # the states entering this step
        c = f * c + i * g
        h = o * tf.tanh(c)
        return step + 1, h, c, hs, cs, gates.write(step, tf.concat([i, f, g, o], 1))

    arrays = [tf.TensorArray(tf.float32, size=steps) for _ in range(3)]
    _, h, c, hs, cs, gates = tf.while_loop(
        lambda step, *_: step < steps, forward, (0, zeros, zeros, *arrays)
    )
    h_prev, c_prev, gates = hs.stack(), cs.stack(), gates.stack()  # (T, B, U), (T, B, 4U)

    def grad(dh_last):
        def backward(step, dh, dc, dzs):
            i, f, g, o = tf.split(gates[step], 4, axis=1)
            c_t = f * c_prev[step] + i * g
            tanh_c = tf.tanh(c_t)
            dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
            dz = tf.concat(
                [
                    dc * g * i * (1.0 - i),
                    dc * c_prev[step] * f * (1.0 - f),
                    dc * i * (1.0 - g * g),
                    dh * tanh_c * o * (1.0 - o),
                ],
                1,
            )
            return (
                step - 1,
                tf.matmul(dz, recurrent_kernel, transpose_b=True),
                dc * f,
                dzs.write(step, dz),
            )

        dzs = tf.TensorArray(tf.float32, size=steps)
        *_, dzs = tf.while_loop(
            lambda step, *_: step >= 0, backward, (steps - 1, dh_last, zeros, dzs)
        )
        dz = tf.reshape(dzs.stack(), (-1, 4 * units))  # (T * B, 4U)
        d_kernel = tf.matmul(x_flat, dz, transpose_a=True)
        d_recurrent = tf.matmul(tf.reshape(h_prev, (-1, units)), dz, transpose_a=True)
        return None, d_kernel, d_recurrent, tf.reduce_sum(dz, 0)

    return h, grad


class SequenceGradientLSTM(_LSTMWeights):
    def call(self, inputs):
        return _sequence_lstm(
            tf.transpose(inputs, (1, 0, 2)),  # (T, B, F)
            self.kernel.value,
            self.recurrent_kernel.value,
            self.bias.value,
        )


@tf.function(jit_compile=True, autograph=False)
def _xla_forward(x, kernel, recurrent_kernel, bias):
    """`SequenceGradientLSTM`'s forward loop as one XLA function: the last output, and the
    states entering each step and the gates, as `(T, B, ...)` buffers."""
    steps, batch, units = x.shape[0], tf.shape(x)[1], recurrent_kernel.shape[0]
    projected = tf.einsum("tbf,fg->tbg", x, kernel) + bias  # (T, B, 4U)
    zeros = tf.zeros((batch, units))

    def forward(step, h, c, hs, cs, gates):
        z = projected[step] + tf.matmul(h, recurrent_kernel)
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=1)
        i, f, g, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_c), tf.sigmoid(z_o)
        # In-place updates of preallocated buffers (a TensorArray cannot leave XLA).
        hs = ops.slice_update(hs, (step, 0, 0), h[None])
        cs = ops.slice_update(cs, (step, 0, 0), c[None])
        gates = ops.slice_update(gates, (step, 0, 0), tf.concat([i, f, g, o], 1)[None])
        c = f * c + i * g
        h = o * tf.tanh(c)
        return step + 1, h, c, hs, cs, gates

    buffers = (tf.zeros((steps, batch, units)),) * 2 + (tf.zeros((steps, batch, 4 * units)),)
    _, h, _, hs, cs, gates = tf.while_loop(
        lambda step, *_: step < steps, forward, (0, zeros, zeros, *buffers)
    )
    return h, hs, cs, gates


@tf.function(jit_compile=True, autograph=False)
def _xla_backward(dh_last, x, recurrent_kernel, h_prev, c_prev, gates):
    """`SequenceGradientLSTM`'s backward loop and weight gradients as one XLA function."""
    steps, batch, units = x.shape[0], tf.shape(x)[1], recurrent_kernel.shape[0]

    def backward(step, dh, dc, dzs):
        i, f, g, o = tf.split(gates[step], 4, axis=1)
        c_t = f * c_prev[step] + i * g
        tanh_c = tf.tanh(c_t)
        dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
        dz = tf.concat(
            [
                dc * g * i * (1.0 - i),
                dc * c_prev[step] * f * (1.0 - f),
                dc * i * (1.0 - g * g),
                dh * tanh_c * o * (1.0 - o),
            ],
            1,
        )
        dzs = ops.slice_update(dzs, (step, 0, 0), dz[None])
        return step - 1, tf.matmul(dz, recurrent_kernel, transpose_b=True), dc * f, dzs

    zeros = tf.zeros((batch, units))
    dzs = tf.zeros((steps, batch, 4 * units))
    *_, dzs = tf.while_loop(lambda step, *_: step >= 0, backward, (steps - 1, dh_last, zeros, dzs))
    d_kernel = tf.einsum("tbf,tbg->fg", x, dzs)
    d_recurrent = tf.einsum("tbu,tbg->ug", h_prev, dzs)
    return d_kernel, d_recurrent, tf.reduce_sum(dzs, (0, 1))


@tf.custom_gradient
def _xla_sequence_lstm(x, kernel, recurrent_kernel, bias):
    """`_sequence_lstm` with each loop compiled by XLA, called from a plain graph. The XLA
    functions get no gradient of their own (`stop_gradient`): TensorFlow would otherwise ask
    them for the loops' intermediates as TensorLists, which cannot leave XLA."""
    stop = tf.stop_gradient
    h, h_prev, c_prev, gates = _xla_forward(
        stop(x), stop(kernel), stop(recurrent_kernel), stop(bias)
    )

    def grad(dh_last):
        d_kernel, d_recurrent, d_bias = _xla_backward(
            stop(dh_last), stop(x), stop(recurrent_kernel), h_prev, c_prev, gates
        )
        return None, d_kernel, d_recurrent, d_bias

    return h, grad


class XLASequenceGradientLSTM(_LSTMWeights):
    def call(self, inputs):
        return _xla_sequence_lstm(
            tf.transpose(inputs, (1, 0, 2)),  # (T, B, F)
            self.kernel.value,
            self.recurrent_kernel.value,
            self.bias.value,
        )


CANDIDATES = {
    "per-step custom gradient": StepGradientLSTM,
    "hoisted input projection": HoistedLSTM,
    "cuDNN structure (sequence gradient)": SequenceGradientLSTM,
    "cuDNN structure, loops in XLA": XLASequenceGradientLSTM,
}
