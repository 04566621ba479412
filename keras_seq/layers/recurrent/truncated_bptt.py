"""Truncated backpropagation through time as a wrapper around a `keras.layers.RNN`.

Letter legend for shape comments: B batch, T time steps, F input features, L chunk length.
"""

import copy

import keras
from keras import ops
from keras import tree

from keras_seq.api import keras_seq_export
from keras_seq.layers.recurrent.cell_sizes import cell_output_size
from keras_seq.utils.shape_checks import check_not_empty
from keras_seq.utils.shape_checks import check_padding_mask
from keras_seq.utils.validation import validate_positive_int


class _ChunkBoundaryCell(keras.layers.Layer):
    """Runs `cell` on steps whose last input channel flags the start of a new chunk.

    At a flagged step every incoming state is replaced by its `stop_gradient` copy before the
    wrapped cell sees it, so the forward values are unchanged and the gradient through the
    state is exactly zero at the boundary. Shares `cell` (and so its weights) with the
    wrapped `RNN`. Private to `TruncatedBPTT`: never serialized.
    """

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self._cell_has_training_arg = isinstance(cell, keras.layers.Layer) and (
            cell._call_has_training_arg
        )

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return cell_output_size(self.cell)

    def build(self, input_shape):
        # The last channel of a step is the chunk-start flag; the cell sees the rest.
        if isinstance(self.cell, keras.layers.Layer) and not self.cell.built:
            self.cell.build(tuple(input_shape[:-1]) + (input_shape[-1] - 1,))

    def get_initial_state(self, batch_size=None):
        return self.cell.get_initial_state(batch_size=batch_size)

    def call(self, inputs, states, training=None):
        flag = inputs[..., -1]  # (B,) or (B, *spatial) with one value per example
        inputs = inputs[..., :-1]  # (B, F)
        while len(flag.shape) > 1:
            flag = flag[:, 0]
        flag = ops.greater(flag, 0.5)  # (B,)

        def cut(state):
            flag_b = ops.reshape(flag, (-1,) + (1,) * (len(state.shape) - 1))  # (B, 1)
            return ops.where(flag_b, ops.stop_gradient(state), state)

        states = tree.map_structure(cut, states)
        kwargs = {"training": training} if self._cell_has_training_arg else {}
        return self.cell(inputs, states, **kwargs)


@keras_seq_export
class TruncatedBPTT(keras.layers.Wrapper):
    """Truncated backpropagation through time for any `keras.layers.RNN`.

    Cuts the gradient through the recurrent state every `chunk_length` steps of one call,
    while the forward pass is exactly the wrapped layer's: outputs and states equal a
    full-sequence pass, but the gradient of a loss at step t reaches only the steps of t's
    own chunk (the state that enters a chunk is treated as a constant). Keras has no gradient
    truncation: its RNNs always backpropagate through the whole sequence. Use it to bound the
    length of the credit-assignment paths (and of exploding gradients) on long sequences;
    for sequences too long to fit in memory at all, stream chunks with
    `keras_seq.data.truncated_bptt_dataset` into a stateful RNN instead.

    Works with `keras.layers.LSTM`, `GRU`, `SimpleRNN`, `RNN(cell)` (keras_seq cells and
    `StackedRNNCells` included), unknown sequence lengths, masks, dropout, stateful layers,
    mixed precision and `jit_compile=True`. The wrapped layer holds the weights (and, if
    `stateful=True`, the states): `layer.reset_state()` resets them.

    Args:
        layer: `keras.layers.RNN` instance (or subclass: `LSTM`, `GRU`, `SimpleRNN`), or
            its config from `keras.saving.serialize_keras_object`, to truncate; its
            `return_sequences`, `return_state`, `stateful`, `unroll` and
            `zero_output_for_mask` are honoured. `go_backwards=True` and `Bidirectional`
            are rejected: truncating a reversed pass is not causal chunking.
        chunk_length: int. Number of time steps per chunk; the gradient stops at steps
            `chunk_length, 2 * chunk_length, ...`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`). `dtype` (the
            dtype of the outputs) defaults to the wrapped layer's dtype policy; the wrapped
            cell keeps computing in its own.

    Call arguments:
        inputs: float tensor `(batch_size, sequence_length, input_dim)`.
        initial_state: optional list of state tensors, as for `keras.layers.RNN`.
        mask: optional bool `(batch_size, sequence_length)`; `True` marks real steps.
            Filled in by Keras from the mask of `inputs`.
        padding_mask: optional bool `(batch_size, sequence_length)`; `True` marks real
            steps. An explicit `padding_mask` wins over `mask`.
        training: bool or `None`; enables the wrapped cell's dropout.

    Returns:
        Exactly what `layer` returns: `(batch_size, units)`, or
        `(batch_size, sequence_length, units)` with `return_sequences=True`, followed by the
        final states with `return_state=True`.

    Masking:
        Consumes the mask like the wrapped layer and returns its `compute_mask`. A chunk
        boundary that falls on a masked step is moved to the chunk's first real step, so no
        gradient crosses a boundary whatever the padding.

    Example:
    ```python
    layer = keras_seq.layers.TruncatedBPTT(
        keras.layers.LSTM(16, return_sequences=True), chunk_length=4
    )
    outputs = layer(np.zeros((2, 10, 8)))
    ```

    References:
        - [Williams and Peng, 1990](https://doi.org/10.1162/neco.1990.2.4.490)
    """

    def __init__(self, layer, chunk_length, **kwargs):
        if isinstance(layer, dict):
            # Copied: keras.layers.RNN.from_config pops "cell" out of the dict it is given.
            layer = keras.saving.deserialize_keras_object(copy.deepcopy(layer))
        if isinstance(layer, keras.layers.Bidirectional):
            raise TypeError(
                "`layer` cannot be a `Bidirectional` layer: truncating its backward pass is "
                "not causal chunking. Wrap a unidirectional RNN instead. "
                f"Received: layer={layer.name!r} of type Bidirectional"
            )
        if not isinstance(layer, keras.layers.RNN):
            raise TypeError(
                "`layer` must be a `keras.layers.RNN` instance (e.g. `LSTM`, `GRU`, "
                "`SimpleRNN` or `RNN(cell)`). "
                f"Received: layer={layer!r} of type {type(layer).__name__}"
            )
        if layer.go_backwards:
            raise ValueError(
                "`layer` must not have `go_backwards=True`: truncating a reversed pass is "
                "not causal chunking. "
                f"Received: layer={layer.name!r} with go_backwards=True"
            )
        chunk_length = validate_positive_int("chunk_length", chunk_length)
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        self.chunk_length = chunk_length
        self.supports_masking = True

        # The loop that runs the shared cell with the chunk-start flag. It is never stateful
        # itself: `call` feeds it the wrapped layer's states and writes them back.
        self.truncated_rnn = keras.layers.RNN(
            _ChunkBoundaryCell(
                layer.cell, dtype=getattr(layer.cell, "dtype_policy", None), name="cell"
            ),
            return_sequences=layer.return_sequences,
            return_state=layer.return_state or layer.stateful,
            unroll=layer.unroll,
            zero_output_for_mask=layer.zero_output_for_mask,
            dtype=self.dtype_policy,
            name="truncated_rnn",
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if input_shape[-1] is None:
            raise ValueError(
                "TruncatedBPTT needs a known last dimension of `inputs`. "
                f"Received: input_shape={input_shape}"
            )
        if not self.layer.built:
            self.layer.build(input_shape)
        # One extra input channel: the chunk-start flag.
        self.truncated_rnn.build(input_shape[:-1] + (input_shape[-1] + 1,))

    def _chunk_start_flags(self, inputs, mask):
        """Bool `(B, T)`: True at the first real step of every chunk but the first."""
        steps = ops.shape(inputs)[1]
        t = ops.arange(steps)  # (T,)
        chunk = ops.floor_divide(t, self.chunk_length)  # (T,)
        if mask is None:
            flags = ops.logical_and(
                ops.equal(t, chunk * self.chunk_length), ops.greater(t, 0)
            )  # (T,)
            return ops.broadcast_to(flags[None, :], ops.shape(inputs)[:2])  # (B, T)
        mask = ops.cast(mask, "bool")  # (B, T)
        real = ops.cast(mask, "int32")
        real_before = ops.cumsum(real, axis=1) - real  # (B, T): real steps before t
        # Real steps before the start of t's chunk; equal to `real_before` iff no real step
        # of t's chunk precedes t.
        real_before_chunk = ops.take(real_before, chunk * self.chunk_length, axis=1)
        first_in_chunk = ops.equal(real_before, real_before_chunk)  # (B, T)
        return ops.logical_and(
            ops.logical_and(mask, first_in_chunk), ops.greater(chunk, 0)[None, :]
        )

    def call(self, inputs, initial_state=None, mask=None, padding_mask=None, training=None):
        check_not_empty("inputs", inputs, 1, "number of steps")
        check_padding_mask("padding_mask", padding_mask, "inputs", inputs)
        rnn = self.layer
        if padding_mask is not None:
            mask = padding_mask
        if rnn.stateful and inputs.shape[0] is not None and rnn.states is not None:
            expected = tree.flatten(rnn.states)[0].shape[0]
            if inputs.shape[0] != expected:
                raise ValueError(
                    "`inputs` must have the batch size that the stateful `layer` was built "
                    f"with, {expected}; reset or rebuild the layer for another batch size. "
                    f"Received: inputs.shape={tuple(inputs.shape)}"
                )
        if initial_state is None:
            if rnn.stateful:
                initial_state = rnn.states
            else:
                initial_state = rnn.get_initial_state(batch_size=ops.shape(inputs)[0])
        if not tree.is_nested(initial_state):
            initial_state = [initial_state]
        state_dtype = self.truncated_rnn.cell.compute_dtype
        initial_state = tree.map_structure(
            lambda x: ops.convert_to_tensor(x, dtype=state_dtype), list(initial_state)
        )

        flags = self._chunk_start_flags(inputs, mask)  # (B, T)
        flags = ops.reshape(
            flags, tuple(ops.shape(flags)) + (1,) * (len(inputs.shape) - 2)
        )  # (B, T, 1) or (B, T, 1, ..., 1)
        flags = ops.broadcast_to(
            ops.cast(flags, inputs.dtype), tuple(ops.shape(inputs)[:-1]) + (1,)
        )
        flagged = ops.concatenate([inputs, flags], axis=-1)  # (B, T, F + 1)

        # `keras.layers.RNN` prepares variational dropout masks before its loop, for the cell
        # it runs; ours is the private boundary cell, so prepare them on the wrapped layer's
        # own cell (StackedRNNCells included) exactly as the wrapped layer would.
        rnn._maybe_config_dropout_masks(
            rnn.cell, ops.cast(inputs[:, 0], state_dtype), initial_state
        )
        try:
            results = self.truncated_rnn(
                flagged, initial_state=initial_state, mask=mask, training=training
            )
        finally:
            rnn._maybe_reset_dropout_masks(rnn.cell)

        if not rnn.stateful:
            return results
        output, *states = results
        for variable, state in zip(tree.flatten(rnn.states), tree.flatten(states)):
            variable.assign(state)
        if rnn.return_state:
            return results
        return output

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_mask(self, inputs, mask=None):
        return self.layer.compute_mask(inputs, mask)

    def get_config(self):
        config = super().get_config()
        config.update({"chunk_length": self.chunk_length})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # `keras.layers.Wrapper.from_config` pops "layer" from the caller's dict; copy first.
        config = dict(config)
        with keras.saving.custom_object_scope(custom_objects or {}):
            return cls(**config)
