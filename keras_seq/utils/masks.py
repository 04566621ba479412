"""Keras-mask helpers shared by blocks that take padding masks explicitly or implicitly."""

from keras import ops

# The Keras mask attached to a tensor: private Keras API (no public accessor exists; keras_hub's
# blocks and Keras' own losses read it the same way). keras_seq imports it only here; guarded by
# tests/test_private_keras_api.py.
from keras.src.backend import get_keras_mask
from keras.src.backend import set_keras_mask


def padding_mask_of(inputs, padding_mask=None):
    """The explicit `padding_mask` if given (it wins), else the Keras mask of `inputs`."""
    if padding_mask is not None:
        return ops.cast(padding_mask, "bool")
    mask = get_keras_mask(inputs)
    return None if mask is None else ops.cast(mask, "bool")


def strip_keras_mask(x):
    """Remove the Keras mask attached to `x` (a layer that consumed it, as Keras' own
    MultiHeadAttention does, so that inner layers do not warn that they drop it)."""
    set_keras_mask(x, None)
