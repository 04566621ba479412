"""The shared machinery of keras_seq's recurrent cells.

Letter legend for shape comments: B batch, F input features, U units, G gates.
"""

import keras
from keras import ops

# `keras.layers.RNN` prepares variational dropout masks before its loop only for cells that
# inherit this mixin (it checks with `isinstance`), so that one mask is reused at every step
# and the loop body stays stateless. It is not exported publicly by Keras; we reuse it rather
# than re-implementing the mask caching that `RNN` is wired to.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from keras_seq.layers.recurrent.cell_sizes import cell_state_sizes
from keras_seq.utils.shape_checks import check_shape_rank
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate
from keras_seq.utils.validation import validate_seed


class RecurrentCell(DropoutRNNCell, keras.layers.Layer):
    """Base class of keras_seq's gated and ungated recurrent cells.

    Holds what every cell shares: the `units` / activation / initializer / regularizer /
    constraint / dropout arguments with their validation and config, the fused `kernel`
    `(input_dim, gates * units)`, `recurrent_kernel` `(units, gates * units)` and `bias`
    weights laid out as in Keras, variational dropout through `keras.layers.RNN`, and
    `get_initial_state`. Subclasses set `num_gates`, the bias shape and `call`.

    Not registered itself: it is never instantiated directly.
    """

    num_gates = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
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
        units = validate_positive_int("units", units)
        dropout = validate_rate("dropout", dropout)
        recurrent_dropout = validate_rate("recurrent_dropout", recurrent_dropout)
        seed = validate_seed("seed", seed)
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.bias_regularizer = bias_regularizer
        self.kernel_constraint = kernel_constraint
        self.recurrent_constraint = recurrent_constraint
        self.bias_constraint = bias_constraint
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed

        # Resolved objects; the arguments above stay as given.
        self._activation = keras.activations.get(activation)
        self._kernel_initializer = keras.initializers.get(kernel_initializer)
        self._recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self._bias_initializer = keras.initializers.get(bias_initializer)
        self._kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self._recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self._bias_regularizer = keras.regularizers.get(bias_regularizer)
        self._kernel_constraint = keras.constraints.get(kernel_constraint)
        self._recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self._bias_constraint = keras.constraints.get(bias_constraint)
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.supports_masking = True

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def _bias_shape(self):
        return (self.num_gates * self.units,)

    def _bias_initializer_fn(self):
        return self._bias_initializer

    def build(self, input_shape):
        # keras.layers.RNN builds a cell with one step, (batch_size, input_dim): a rank-2
        # sequence gives a rank-1 step, which failed later in an op ("Index out of range").
        check_shape_rank(
            "inputs",
            input_shape,
            2,
            f"one step (batch_size, input_dim) of {type(self).__name__}; keras.layers.RNN "
            "takes sequences (batch_size, timesteps, input_dim)",
        )
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} needs a known last dimension of `inputs`. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        width = self.num_gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self._kernel_initializer,
            regularizer=self._kernel_regularizer,
            constraint=self._kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self._recurrent_initializer,
            regularizer=self._recurrent_regularizer,
            constraint=self._recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self._bias_shape(),
                name="bias",
                initializer=self._bias_initializer_fn(),
                regularizer=self._bias_regularizer,
                constraint=self._bias_constraint,
            )
        else:
            self.bias = None

    def _apply_dropout(self, inputs, h_tm1, training):
        """Variational dropout: one mask per sequence, prepared by `keras.layers.RNN`."""
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0.0:
            h_tm1 = h_tm1 * self.get_recurrent_dropout_mask(h_tm1)
        return inputs, h_tm1

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, size), dtype=self.compute_dtype)
            for size in cell_state_sizes(self)
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self._activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self._kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self._recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self._bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self._kernel_regularizer),
                "recurrent_regularizer": keras.regularizers.serialize(self._recurrent_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self._bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(self._kernel_constraint),
                "recurrent_constraint": keras.constraints.serialize(self._recurrent_constraint),
                "bias_constraint": keras.constraints.serialize(self._bias_constraint),
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
            }
        )
        return config
