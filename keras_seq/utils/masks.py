"""Keras-mask helpers shared by blocks that take padding masks explicitly or implicitly."""

from keras import ops
from keras.src.backend import get_keras_mask  # Also how keras_hub's blocks read it.


def padding_mask_of(inputs, padding_mask=None):
    """The explicit `padding_mask` if given (it wins), else the Keras mask of `inputs`."""
    if padding_mask is not None:
        return ops.cast(padding_mask, "bool")
    mask = get_keras_mask(inputs)
    return None if mask is None else ops.cast(mask, "bool")
