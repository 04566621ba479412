"""Static shape checks at a layer's boundary: masks, ranks and empty sequences.

A mask of the wrong length, an input of the wrong rank or a sequence of length zero otherwise
fails deep inside a backend op ("condition [2,1,1,4], then [2,2,5,5] ... must be
broadcastable", "Index out of range using input dim 2"), far from the argument at fault.
These helpers compare the static shapes (`tensor.shape`, known eagerly and, for fixed-size
inputs, while tracing) and raise a `ValueError` naming the argument and the shape received.
An axis unknown while tracing (`None`) is not checked: they cost nothing at run time and add
no op to a graph. Arrays without a `shape` (lists) are read with NumPy.
"""

import numpy as np


def shape_of(value):
    """The static shape of a tensor or array as a tuple (`None` for unknown axes)."""
    shape = getattr(value, "shape", None)
    if shape is None:
        shape = np.shape(value)
    try:
        return tuple(shape)
    except (TypeError, ValueError):  # a tf.TensorShape of unknown rank
        return None


def _differs(size, expected, allow_one):
    if size is None or expected is None:
        return False
    return size != expected and not (allow_one and size == 1)


def check_rank(name, value, ranks, layout):
    """Raise `ValueError` unless `value` has one of `ranks` (an int or a tuple of ints).

    `layout` describes the expected shape, e.g. `"(batch_size, sequence_length, hidden_dim)"`.
    Returns the static shape.
    """
    return check_shape_rank(name, shape_of(value), ranks, layout)


def check_shape_rank(name, shape, ranks, layout):
    """`check_rank` given the shape (e.g. in `build`)."""
    shape = None if shape is None else tuple(shape)
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if shape is not None and len(shape) not in ranks:
        expected = " or ".join(str(rank) for rank in ranks)
        raise ValueError(
            f"`{name}` must have rank {expected}: {layout}. Received: {name}.shape={shape}"
        )
    return shape


def check_not_empty(name, value, axis, axis_name):
    """Raise `ValueError` if axis `axis` of `value` is statically 0 (an empty sequence)."""
    shape = shape_of(value)
    if shape is not None and len(shape) > axis and shape[axis] == 0:
        raise ValueError(
            f"`{name}` must have at least one step: its {axis_name} is 0. "
            f"Received: {name}.shape={shape}"
        )
    return shape


def check_padding_mask(name, mask, inputs_name, inputs):
    """Raise `ValueError` unless `mask` is `(batch_size, length)` of the sequence `inputs`
    (`(batch_size, length, ...)`). `None` passes."""
    if mask is None:
        return
    shape, inputs_shape = shape_of(mask), shape_of(inputs)
    if shape is None or inputs_shape is None or len(inputs_shape) < 2:
        return
    expected = tuple(inputs_shape[:2])
    if len(shape) != 2 or any(map(_differs, shape, expected, (False, False))):
        raise ValueError(
            f"`{name}` must be (batch_size, sequence_length) = {expected}, the first two axes "
            f"of `{inputs_name}`. Received: {name}.shape={shape}, "
            f"{inputs_name}.shape={inputs_shape}"
        )


def check_attention_mask(name, mask, batch_size, query_length, key_length):
    """Raise `ValueError` unless `mask` broadcasts to `(batch_size, query_length,
    key_length)` (rank 2 or 3; axes of size 1 broadcast; with a leading heads axis, rank 4
    broadcasting to `(batch_size, num_heads, query_length, key_length)`). `None` passes, and
    so does any unknown size."""
    if mask is None:
        return
    shape = shape_of(mask)
    if shape is None:
        return
    expected = (batch_size, query_length, key_length)
    valid = 2 <= len(shape) <= 4
    if valid:
        pairs = [(shape[-1], key_length), (shape[-2], query_length)]
        if len(shape) >= 3:
            pairs.append((shape[0], batch_size))
        valid = not any(_differs(size, want, True) for size, want in pairs)
    if not valid:
        raise ValueError(
            f"`{name}` must broadcast to (batch_size, query_length, key_length) = "
            f"{expected}. Received: {name}.shape={shape}"
        )
