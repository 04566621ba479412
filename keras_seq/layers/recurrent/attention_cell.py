"""A recurrent cell that attends over a memory (encoder outputs) at every step.

Letter legend for shape comments: B batch, F step input features, S memory length,
M memory features, H wrapped cell output size, C context size, A fed-back attention vector
size (`attention_dim`, or C).
"""

import keras
from keras import ops
from keras import tree

# `keras.layers.RNN` prepares the variational dropout masks of cells that inherit this mixin
# before its loop; `AttentionRNN` does the same for the wrapped cell (see base_cell.py).
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from keras_seq.api import keras_seq_export
from keras_seq.layers.attention.bahdanau_attention import BahdanauAttention
from keras_seq.layers.attention.get_attention import ATTENTION_ALIASES
from keras_seq.layers.attention.get_attention import get_attention
from keras_seq.layers.attention.luong_attention import LuongAttention
from keras_seq.layers.recurrent.cell_sizes import cell_output_size
from keras_seq.layers.recurrent.cell_sizes import cell_state_sizes
from keras_seq.layers.recurrent.get_cell import get_cell
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class AttentionCell(keras.layers.Layer):
    """A recurrent cell with attention over a memory, computing a new context every step.

    Wraps any recurrent cell and any attention layer. With states [s_{t-1}, a_{t-1}] (the
    wrapped cell's states and the fed-back attention vector, a_0 = 0), one step is:

    1. h_t, s_t = cell([x_t; a_{t-1}], s_{t-1})  (input feeding)
    2. c_t, α_t = attention(query=h_t, memory, memory_mask)  (context `(batch_size,
       memory_dim)` and alignment `(batch_size, memory_length)`)
    3. with `attention_dim`: a_t = tanh(W_c [c_t; h_t]), Luong's attentional hidden state
       (W_c `(memory_dim + cell_output_size, attention_dim)`, no bias), and the output is
       y_t = a_t; without: a_t = c_t and the output is y_t = [h_t; c_t].

    The context that enters step t is thus computed from the state after step t-1, the
    chain of Bahdanau et al. (the state after step 1 computes the context of step 2), except
    that step 1 is fed a_0 = 0 (or whatever `initial_state` holds) rather than attending
    from s_0; a readout `Dense` on y_t gives the next-token distribution.

    Keras 3's `keras.layers.RNN` passes a cell nothing but `training` (no `constants`), so
    this cell takes the memory as a call argument and runs in `AttentionRNN`, which also
    returns the alignment history; call it directly to decode one step at a time.

    Args:
        cell: the wrapped recurrent cell: a name (`"lstm"`, `"gru"`, `"elman"`, or a
            registered `"package>ClassName"`) built with `units`, a config dict or an
            instance (see `keras_seq.layers.get_cell`). Its output h_t is the query.
        units: int or `None`. Units of the wrapped cell; required when `cell` is a name and
            must be `None` otherwise. Defaults to `None`.
        attention: the attention layer, resolved by `keras_seq.layers.get_attention`:
            `"bahdanau"` or `"additive"` (`BahdanauAttention` with as many units as the
            cell's output), `"luong"` or `"multiplicative"` (`LuongAttention("general")`,
            which compares vectors of any sizes), a registered name, a config dict or an
            instance of any layer called as `layer([query, value],
            mask=[query_mask, value_mask], return_attention_scores=True)` on 3-D queries
            (`keras.layers.Attention` works too). Defaults to `"bahdanau"`.
        attention_dim: int or `None`. Size of Luong's attentional hidden state a_t; `None`
            feeds back the context and outputs [h_t; c_t]. Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`); the dtype policy
            also applies to a cell and attention given by name.

    Call arguments:
        inputs: float tensor `(batch_size, input_dim)`, one step.
        states: list of the wrapped cell's states followed by a_{t-1} `(batch_size,
            attention_dim or memory_dim)`, as from `get_initial_state(batch_size)`.
        memory: float tensor `(batch_size, memory_length, memory_dim)`, e.g. the encoder
            outputs.
        memory_mask: optional bool `(batch_size, memory_length)`; `True` marks real memory
            positions.
        training: bool or `None`; enables the dropout of the cell and the attention.
        return_attention_scores: bool. Also return α_t. Defaults to `False`.

    Returns:
        `(y_t, new_states)` with y_t `(batch_size, output_size)`; with
        `return_attention_scores=True`, `(y_t, new_states, alignment)` with alignment
        `(batch_size, memory_length)`. `state_size` and `output_size` (`attention_dim`, or
        the cell's output size plus `memory_dim`) are known once the cell is built.

    Masking:
        Padded memory positions get zero alignment. Decoder padding is handled by
        `AttentionRNN` (masked steps keep their states).

    Example:
    ```python
    cell = keras_seq.layers.AttentionCell("lstm", units=16, attention="bahdanau")
    decoder = keras_seq.layers.AttentionRNN(cell, return_sequences=True)
    memory = np.random.rand(2, 7, 12)  # encoder outputs
    outputs, alignments = decoder(
        np.random.rand(2, 5, 8), memory, return_attention_scores=True
    )  # (2, 5, 16 + 12), (2, 5, 7)
    # One step at a time, e.g. for greedy decoding:
    states = cell.get_initial_state(batch_size=2)
    output, states = cell(np.random.rand(2, 8), states, memory=memory)
    ```

    References:
        - [Bahdanau et al., 2015](https://arxiv.org/abs/1409.0473)
        - [Luong et al., 2015](https://arxiv.org/abs/1508.04025)
    """

    def __init__(self, cell, units=None, attention="bahdanau", attention_dim=None, **kwargs):
        if units is not None:
            units = validate_positive_int("units", units)
        if isinstance(cell, str) and units is None:
            raise ValueError(
                f"`units` is required when `cell` is a name. Received: cell={cell!r}, units=None"
            )
        if attention_dim is not None:
            attention_dim = validate_positive_int("attention_dim", attention_dim)
        super().__init__(**kwargs)
        cell_kwargs = {} if units is None else {"units": units}
        if isinstance(cell, str):
            cell_kwargs.update(name="recurrent_cell", dtype=self.dtype_policy)
        self.recurrent_cell = get_cell(cell, **cell_kwargs)
        if not isinstance(self.recurrent_cell, keras.layers.Layer):
            raise TypeError(
                "`cell` must resolve to a `keras.layers.Layer` cell. "
                f"Received: cell={cell!r} of type {type(self.recurrent_cell).__name__}"
            )
        attention_kwargs = {}
        if isinstance(attention, str):
            attention_kwargs.update(name="attention_layer", dtype=self.dtype_policy)
            attention_class = ATTENTION_ALIASES.get(attention.lower())
            if attention_class is BahdanauAttention:
                attention_kwargs["units"] = cell_output_size(self.recurrent_cell)
            elif attention_class is LuongAttention:
                attention_kwargs["score_mode"] = "general"
        self.attention_layer = get_attention(attention, **attention_kwargs)
        # Names stay as given; a config dict is kept as the instance it describes, so that
        # its weights are saved and reloaded under the same attribute path.
        self.cell = cell if isinstance(cell, str) else self.recurrent_cell
        self.units = units
        self.attention = attention if isinstance(attention, str) else self.attention_layer
        self.attention_dim = attention_dim
        self.attention_projection = None
        if attention_dim is not None:
            self.attention_projection = keras.layers.Dense(
                attention_dim,
                activation="tanh",
                use_bias=False,
                dtype=self.dtype_policy,
                name="attention_projection",
            )
        self._context_dim = None  # known once built

    @property
    def state_size(self):
        fed_dim = self.attention_dim or self._context_dim
        return cell_state_sizes(self.recurrent_cell) + [fed_dim]

    @property
    def output_size(self):
        if self.attention_dim is not None:
            return self.attention_dim
        if self._context_dim is None:
            return None
        return cell_output_size(self.recurrent_cell) + self._context_dim

    def build(self, inputs_shape, memory_shape):
        if inputs_shape[-1] is None or len(memory_shape) != 3 or memory_shape[-1] is None:
            raise ValueError(
                "AttentionCell needs `inputs` `(batch_size, input_dim)` and `memory` "
                "`(batch_size, memory_length, memory_dim)` with known last dimensions. "
                f"Received shapes: inputs={tuple(inputs_shape)}, memory={tuple(memory_shape)}"
            )
        batch_size, memory_shape = inputs_shape[0], tuple(memory_shape)
        query_shape = (batch_size, 1, cell_output_size(self.recurrent_cell))
        if not self.attention_layer.built:
            self.attention_layer.build([query_shape, memory_shape])
        context, _ = self.attention_layer.compute_output_spec(
            [keras.KerasTensor(query_shape), keras.KerasTensor(memory_shape)],
            return_attention_scores=True,
        )
        self._context_dim = context.shape[-1]
        fed_dim = self.attention_dim or self._context_dim
        if not self.recurrent_cell.built:
            self.recurrent_cell.build((batch_size, inputs_shape[-1] + fed_dim))
        if self.attention_projection is not None:
            self.attention_projection.build((batch_size, self._context_dim + query_shape[-1]))

    def get_initial_state(self, batch_size=None):
        if not self.built:
            raise ValueError(
                "AttentionCell.get_initial_state needs a built cell (the fed-back vector's "
                "size depends on the memory): call the cell or `build(inputs_shape, "
                "memory_shape)` first."
            )
        get_state = getattr(self.recurrent_cell, "get_initial_state", None)
        if get_state is None:
            cell_states = [
                ops.zeros((batch_size, size), dtype=self.compute_dtype)
                for size in cell_state_sizes(self.recurrent_cell)
            ]
        else:
            cell_states = get_state(batch_size=batch_size)
            cell_states = list(cell_states) if tree.is_nested(cell_states) else [cell_states]
        fed = ops.zeros((batch_size, self.state_size[-1]), dtype=self.compute_dtype)
        return cell_states + [fed]

    def call(
        self,
        inputs,
        states,
        memory,
        memory_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        states = list(states)
        cell_states, fed = states[:-1], states[-1]
        cell_inputs = ops.concatenate([inputs, ops.cast(fed, inputs.dtype)], axis=-1)  # (B, F+A)
        h, new_cell_states = self.recurrent_cell(cell_inputs, cell_states)  # (B, H)
        if not tree.is_nested(new_cell_states):
            new_cell_states = [new_cell_states]
        context, alignment = self.attention_layer(
            [ops.expand_dims(h, 1), memory],  # query (B, 1, H)
            mask=[None, memory_mask],
            return_attention_scores=True,
        )
        context, alignment = context[:, 0], alignment[:, 0]  # (B, C), (B, S)
        h = ops.cast(h, context.dtype)
        if self.attention_projection is not None:
            fed = self.attention_projection(ops.concatenate([context, h], axis=-1))  # (B, A)
            output = fed
        else:
            fed = context
            output = ops.concatenate([h, context], axis=-1)  # (B, H+C)
        new_states = list(new_cell_states) + [fed]
        if return_attention_scores:
            return output, new_states, alignment
        return output, new_states

    def _prepare_dropout_masks(self, first_inputs, states):
        """Create the wrapped cell's variational dropout masks before a loop over steps."""
        if isinstance(self.recurrent_cell, DropoutRNNCell):
            fed = ops.cast(states[-1], first_inputs.dtype)
            self.recurrent_cell.get_dropout_mask(ops.concatenate([first_inputs, fed], -1))
            self.recurrent_cell.get_recurrent_dropout_mask(states[0])

    def _reset_dropout_masks(self):
        if isinstance(self.recurrent_cell, DropoutRNNCell):
            self.recurrent_cell.reset_dropout_mask()
            self.recurrent_cell.reset_recurrent_dropout_mask()

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": keras.saving.serialize_keras_object(self.cell),
                "units": self.units,
                "attention": keras.saving.serialize_keras_object(self.attention),
                "attention_dim": self.attention_dim,
            }
        )
        return config
