"""The layer that runs an `AttentionCell` over a sequence and returns its alignment history.

Letter legend for shape comments: B batch, T decoder steps, F input features, S memory
length, O cell output size.
"""

import copy

import keras
from keras import ops
from keras import tree

from keras_seq.api import keras_seq_export
from keras_seq.layers.recurrent.attention_cell import AttentionCell
from keras_seq.ops.loops import counted_loop
from keras_seq.utils.masks import padding_mask_of
from keras_seq.utils.shape_checks import check_not_empty
from keras_seq.utils.shape_checks import check_padding_mask
from keras_seq.utils.validation import validate_bool


@keras_seq_export
class AttentionRNN(keras.layers.Layer):
    """Runs an `AttentionCell` over a decoder sequence, attending over a memory at each step.

    The attention counterpart of `keras.layers.RNN`, which in Keras 3 cannot pass a memory to
    its cell. One call runs the recurrence documented in `AttentionCell` over all steps
    (a `keras_seq.ops.counted_loop`: it compiles with XLA and trains on every backend) and
    can return the alignment history `(batch_size, steps, memory_length)` for plotting.
    Decode one step at a time by calling the cell itself; the result equals this layer's full
    pass.

    Args:
        cell: an `AttentionCell` instance, or its config dict.
        return_sequences: bool. Return the outputs of every step instead of only the last
            one. Defaults to `False`.
        return_state: bool. Also return the final states. Defaults to `False`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`). `dtype` defaults to
            the cell's dtype policy.

    Call arguments:
        inputs: float tensor `(batch_size, steps, input_dim)`, the decoder inputs.
        memory: float tensor `(batch_size, memory_length, memory_dim)`, e.g. encoder outputs.
        memory_mask: optional bool `(batch_size, memory_length)`; `True` marks real memory
            positions. Filled in from the Keras mask of `memory`; an explicit value wins.
        initial_state: optional list of the cell's states (`cell.get_initial_state`
            layout), or only the wrapped cell's states (e.g. the encoder's final states),
            in which case the fed-back attention vector starts at zero.
        mask: optional bool `(batch_size, steps)`; `True` marks real decoder steps. Filled in
            from the Keras mask of `inputs`; an explicit `mask` wins.
        return_attention_scores: bool. Also return the alignment history. Defaults to
            `False`.
        training: bool or `None`; enables the dropout of the cell and the attention.

    Returns:
        The outputs `(batch_size, steps, output_size)` with `return_sequences=True`, else
        the last output `(batch_size, output_size)`; then, with
        `return_attention_scores=True`, the alignments `(batch_size, steps,
        memory_length)`; then, with `return_state=True`, the final states (the list
        layout of `cell.get_initial_state`). One tensor, or a tuple in that order.

    Masking:
        A masked decoder step keeps every state, outputs zeros and has an all-zero alignment
        row; the last output is that of the last real step. Padded memory positions get
        zero alignment. Returns the decoder mask as the output mask with
        `return_sequences=True`.

    Example:
    ```python
    inputs = keras.Input((None, 8))
    memory = keras.Input((None, 12))
    cell = keras_seq.layers.AttentionCell("gru", units=16, attention_dim=16)
    outputs, alignments = keras_seq.layers.AttentionRNN(cell, return_sequences=True)(
        inputs, memory, return_attention_scores=True
    )
    model = keras.Model([inputs, memory], [outputs, alignments])
    outputs, alignments = model([np.ones((2, 5, 8)), np.ones((2, 7, 12))])
    ```

    References:
        - [Bahdanau et al., 2015](https://arxiv.org/abs/1409.0473)
        - [Luong et al., 2015](https://arxiv.org/abs/1508.04025)
    """

    def __init__(self, cell, return_sequences=False, return_state=False, **kwargs):
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(copy.deepcopy(cell))
        if not isinstance(cell, AttentionCell):
            raise TypeError(
                "`cell` must be an `AttentionCell` instance or its config. "
                f"Received: cell={cell!r} of type {type(cell).__name__}"
            )
        validate_bool("return_sequences", return_sequences)
        validate_bool("return_state", return_state)
        kwargs.setdefault("dtype", cell.dtype_policy)
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.supports_masking = True

    def build(self, inputs_shape, memory_shape):
        if len(inputs_shape) != 3 or len(memory_shape) != 3:
            raise ValueError(
                "AttentionRNN expects `inputs` `(batch_size, steps, input_dim)` and `memory` "
                "`(batch_size, memory_length, memory_dim)`. Received shapes: "
                f"inputs={tuple(inputs_shape)}, memory={tuple(memory_shape)}"
            )
        if not self.cell.built:
            self.cell.build((inputs_shape[0], inputs_shape[-1]), tuple(memory_shape))

    def _initial_states(self, initial_state, batch_size):
        states = self.cell.get_initial_state(batch_size=batch_size)
        if initial_state is None:
            return states
        initial_state = list(initial_state)
        if len(initial_state) == len(states) - 1:
            initial_state.append(states[-1])  # a_0 = 0
        if len(initial_state) != len(states):
            raise ValueError(
                f"`initial_state` must hold {len(states)} states (the layout of "
                f"`cell.get_initial_state`) or the wrapped cell's {len(states) - 1}. "
                f"Received: {len(initial_state)} states"
            )
        return tree.map_structure(
            lambda given, default: ops.cast(given, default.dtype), initial_state, states
        )

    def call(
        self,
        inputs,
        memory,
        memory_mask=None,
        initial_state=None,
        mask=None,
        return_attention_scores=False,
        training=None,
    ):
        # Keras fills in `mask` from the Keras mask of `inputs` only when `inputs` is the
        # call's single tensor argument; beside `memory` it has to be read off the tensor.
        # (The same rule makes `keras.layers.LSTM(...)(x, initial_state=...)` ignore x's mask.)
        check_not_empty("inputs", inputs, 1, "number of steps")
        check_not_empty("memory", memory, 1, "memory_length")
        check_padding_mask("mask", mask, "inputs", inputs)
        check_padding_mask("memory_mask", memory_mask, "memory", memory)
        mask = padding_mask_of(inputs, mask)
        dtype = self.cell.compute_dtype
        inputs, memory = ops.cast(inputs, dtype), ops.cast(memory, dtype)
        batch_size = ops.shape(inputs)[0]
        states = self._initial_states(initial_state, batch_size)
        steps = ops.moveaxis(inputs, 1, 0)  # (T, B, F)
        if mask is None:
            keep = ops.ones(ops.shape(steps)[:2], dtype="bool")  # (T, B)
        else:
            keep = ops.moveaxis(mask, 1, 0)  # (T, B)
        self.cell._prepare_dropout_masks(steps[0], states)
        num_steps = ops.shape(steps)[0]
        output_size = self.cell.output_size

        def step(index, carry):
            states, last_output, outputs, alignments = carry
            output, new_states, alignment = self.cell(
                steps[index],
                states,
                memory=memory,
                memory_mask=memory_mask,
                training=training,
                return_attention_scores=True,
            )
            keep_step = keep[index]  # (B,)

            def select(new, old):
                keep_b = ops.reshape(keep_step, (-1,) + (1,) * (len(old.shape) - 1))  # (B, 1..)
                return ops.where(keep_b, ops.cast(new, old.dtype), old)

            new_states = tree.map_structure(select, new_states, states)
            output = select(output, ops.zeros_like(last_output))  # (B, O)
            alignment = select(alignment, ops.zeros_like(alignments[0]))  # (B, S)
            # `scatter_update`, not `slice_update`: TensorFlow has no gradient for the latter.
            at_step = ops.reshape(index, (1, 1))
            outputs = ops.scatter_update(outputs, at_step, output[None])  # (T, B, O)
            alignments = ops.scatter_update(alignments, at_step, alignment[None])  # (T, B, S)
            return new_states, select(output, last_output), outputs, alignments

        # `counted_loop`: a while loop with `maximum_iterations` (XLA differentiates it) on
        # TensorFlow, a scan on JAX (which cannot differentiate a while loop).
        final_states, last_output, outputs, alignments = counted_loop(
            num_steps,
            step,
            (
                states,
                ops.zeros((batch_size, output_size), dtype=dtype),  # last output
                ops.zeros((num_steps, batch_size, output_size), dtype=dtype),  # (T, B, O)
                ops.zeros((num_steps, batch_size, ops.shape(memory)[1]), dtype=dtype),  # (T, B, S)
            ),
        )
        self.cell._reset_dropout_masks()
        results = [ops.moveaxis(outputs, 0, 1) if self.return_sequences else last_output]
        if return_attention_scores:
            results.append(ops.moveaxis(alignments, 0, 1))  # (B, T, S)
        if self.return_state:
            results.extend(final_states)
        results = [ops.cast(x, self.compute_dtype) for x in results]
        return results[0] if len(results) == 1 else tuple(results)

    def compute_output_spec(
        self,
        inputs,
        memory,
        memory_mask=None,
        initial_state=None,
        mask=None,
        return_attention_scores=False,
        training=None,
    ):
        batch_size, num_steps = inputs.shape[0], inputs.shape[1]

        def spec(*shape):
            return keras.KerasTensor(shape, dtype=self.compute_dtype)

        output_size = self.cell.output_size
        if self.return_sequences:
            results = [spec(batch_size, num_steps, output_size)]
        else:
            results = [spec(batch_size, output_size)]
        if return_attention_scores:
            results.append(spec(batch_size, num_steps, memory.shape[1]))
        if self.return_state:
            results.extend(
                tree.map_structure(lambda size: spec(batch_size, size), self.cell.state_size)
            )
        return results[0] if len(results) == 1 else tuple(results)

    def compute_mask(self, inputs, mask=None):
        output_mask = mask if self.return_sequences else None
        if not self.return_state:
            return output_mask
        return [output_mask] + [None] * len(tree.flatten(self.cell.state_size))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": keras.saving.serialize_keras_object(self.cell),
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
            }
        )
        return config
