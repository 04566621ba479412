"""Cells for the stacked recurrent models: one fresh cell per layer from a name, config or
instance, and one decoding step of a cell with a uniform list of states."""

import copy

import keras
from keras import tree

from keras_seq.layers.recurrent.cell_sizes import cell_output_size
from keras_seq.layers.recurrent.get_cell import get_cell
from keras_seq.layers.recurrent.get_cell import is_recurrent_cell


def cell_argument(cell):
    """The JSON value stored for a `cell` argument: a name or a config dict.

    An instance is kept as its config, never tracked itself: every layer of a stacked model
    makes its own cell from it, so the instance would be a sublayer without weights.
    """
    if isinstance(cell, str):
        return cell
    if isinstance(cell, dict):
        return copy.deepcopy(cell)
    if not is_recurrent_cell(cell):
        raise TypeError(
            "`cell` must be a cell name (e.g. 'lstm'), a config dict or a recurrent cell "
            "instance (an object with `state_size` and `call`). "
            f"Received: cell={cell!r} of type {type(cell).__name__}"
        )
    return keras.saving.serialize_keras_object(cell)


def make_cell(cell, hidden_dim, dtype, name):
    """A fresh, unbuilt cell for one layer.

    Args:
        cell: the stored `cell` value (a name or a config dict, see `cell_argument`).
        hidden_dim: int. Units of a cell given by name; a cell given by config must already
            output `hidden_dim` features.
        dtype: the model's dtype policy, given to a cell made from a name.
        name: the name of a cell made from a name.
    """
    if isinstance(cell, str):
        return get_cell(cell, units=hidden_dim, dtype=dtype, name=name)
    resolved = get_cell(copy.deepcopy(cell))
    if cell_output_size(resolved) != hidden_dim:
        raise ValueError(
            "A `cell` given as a config or an instance must output `hidden_dim` features. "
            f"Received: hidden_dim={hidden_dim} and a cell with output size "
            f"{cell_output_size(resolved)} (cell={cell!r})"
        )
    return resolved


def as_state_list(states):
    """A cell's states as a flat list, whether the cell returned a tensor or a list."""
    return list(tree.flatten(states))
