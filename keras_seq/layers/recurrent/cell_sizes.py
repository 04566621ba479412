"""The sizes of any cell that follows the Keras cell protocol (`state_size`, `output_size`).

Keras' protocol lets `state_size` be one int or a list of ints (one per state) and makes
`output_size` optional, falling back to the first state size; these two functions read a
cell's sizes with the same rules as `keras.layers.RNN`, for keras_seq's cells and a user's.
"""


def cell_state_sizes(cell):
    """A cell's state sizes as a list, one entry per state (`[units]` for a one-state cell)."""
    state_size = cell.state_size
    return list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]


def cell_output_size(cell):
    """A cell's output size: its `output_size`, else its first state size (as `keras.layers.RNN`).

    `output_size` is optional in the protocol, and may be `None` until the cell is built.
    """
    size = getattr(cell, "output_size", None)
    return size if isinstance(size, int) else cell_state_sizes(cell)[0]
