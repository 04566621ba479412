"""Fixed sinusoidal position encoding (Vaswani et al., 2017), added or concatenated.

Letter legend for shape comments: B batch, T sequence length, F input features, D encoding width.
"""

import math
import numbers

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int

MERGE_MODES = ("add", "concat")
LAYOUTS = ("interleaved", "halves")


def validate_merge(merge, hidden_dim):
    """Check a `merge` / `hidden_dim` pair of a position layer; `hidden_dim` only with concat."""
    merge = validate_choice("merge", merge, MERGE_MODES)
    if merge == "concat":
        if hidden_dim is None:
            raise ValueError(
                "`hidden_dim` is required with merge='concat': it is the width of the "
                "concatenated position vectors. Received: merge='concat', hidden_dim=None"
            )
        hidden_dim = validate_positive_int("hidden_dim", hidden_dim)
    elif hidden_dim is not None:
        raise ValueError(
            "`hidden_dim` only applies with merge='concat'; with merge='add' the width is the "
            f"input's last dimension. Received: merge='add', hidden_dim={hidden_dim!r}"
        )


def static_start_index(start_index):
    """Check a `start_index` call argument; return it as a Python int, or `None` for a tensor."""
    if isinstance(start_index, bool):
        raise TypeError(
            "`start_index` must be an int or an integer scalar tensor. "
            f"Received: start_index={start_index!r}"
        )
    if isinstance(start_index, numbers.Integral):
        return int(start_index)
    dtype = getattr(start_index, "dtype", None)
    if dtype is None or "int" not in keras.backend.standardize_dtype(dtype):
        raise TypeError(
            "`start_index` must be an int or an integer scalar tensor. "
            f"Received: start_index={start_index!r} of type {type(start_index).__name__}"
        )
    if len(start_index.shape) != 0:
        raise ValueError(
            "`start_index` must be a scalar: one start position shared by the batch. "
            f"Received: start_index with shape {tuple(start_index.shape)}"
        )
    return None


def check_sequence_input_shape(layer, input_shape, merge):
    """Shape checks shared by the position layers: rank 3, known width when adding."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{type(layer).__name__} expects `inputs` of shape (batch_size, sequence_length, "
            f"feature_dim). Received: input_shape={tuple(input_shape)}"
        )
    if merge == "add" and input_shape[-1] is None:
        raise ValueError(
            f"{type(layer).__name__} with merge='add' needs a known last dimension of "
            f"`inputs`. Received: input_shape={tuple(input_shape)}"
        )


def merged_output_shape(input_shape, merge, hidden_dim):
    """Output shape of a position layer: `inputs`' shape, widened by `hidden_dim` for concat."""
    input_shape = tuple(input_shape)
    if merge == "add":
        return input_shape
    width = None if input_shape[-1] is None else input_shape[-1] + hidden_dim
    return input_shape[:-1] + (width,)


def merge_positions(inputs, positions, merge):
    """Add `positions` (T, D) to `inputs` (B, T, F), or concatenate them along features."""
    if merge == "add":
        return ops.add(inputs, positions[None])  # (B, T, F)
    shape = ops.shape(inputs)
    positions = ops.broadcast_to(positions[None], (shape[0], shape[1], ops.shape(positions)[-1]))
    return ops.concatenate([inputs, positions], axis=-1)  # (B, T, F + D)


@keras_seq_export
class SinePositionEncoding(keras.layers.Layer):
    """Fixed sinusoidal position encoding, added to (or concatenated with) its input.

    The encoding of the Transformer paper, with sine and cosine interleaved:
    `PE[t, 2i] = sin(t / max_wavelength ** (2i / d))` and
    `PE[t, 2i + 1] = cos(t / max_wavelength ** (2i / d))` for positions `t` and channels
    `0 <= 2i, 2i + 1 < d`. It has no weights and no maximum length: any sequence length
    works without retraining, and for an even `d` the dot product `PE[t] . PE[t + k]`
    depends only on the offset `k`. An odd `d` is accepted: its last channel is a sine
    without a cosine partner (so the offset property then holds only up to that channel).
    The angles are computed in float32 and cast to the compute dtype, so positions stay
    exact under mixed precision.

    What it adds over `keras_hub.layers.SinePositionEncoding` (same formula): it returns
    `inputs + PE` (or the concatenation) instead of the encoding alone, propagates the Keras
    mask, computes in float32 whatever the dtype policy (float16 positions are inexact above
    2048), and validates its arguments.

    Args:
        max_wavelength: float. Sets the slowest channels: wavelengths grow geometrically
            from `2 * pi` (channels 0 and 1) towards `2 * pi * max_wavelength`.
            Defaults to `10000`.
        merge: `"add"` or `"concat"`. `"add"` returns `inputs + PE` with `d` the last
            dimension of `inputs`; `"concat"` appends a `hidden_dim`-wide encoding to the
            features. Defaults to `"add"`.
        hidden_dim: int or `None`. Width `d` of the encoding with `merge="concat"`
            (required there); must be `None` with `merge="add"`. Defaults to `None`.
        layout: `"interleaved"` (the paper's: sine at even channels, cosine at odd ones) or
            `"halves"` (the sines of all frequencies in the first `ceil(d / 2)` channels,
            the cosines in the rest, as fairseq, Marian and Hugging Face's `MarianModel`
            lay them out; same frequencies). Defaults to `"interleaved"`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `(batch_size, sequence_length, feature_dim)`.
        start_index: int or integer scalar tensor. Position of the first step of `inputs`:
            the encoding of positions `start_index .. start_index + sequence_length - 1` is
            used, as when decoding one token at a time. Defaults to `0`.

    Returns:
        `(batch_size, sequence_length, feature_dim)` with `merge="add"`;
        `(batch_size, sequence_length, feature_dim + hidden_dim)` with `merge="concat"`.

    Masking:
        Propagates the Keras mask of `inputs` unchanged; padded steps are encoded like any
        other, and real steps do not depend on them.

    Example:
    ```python
    layer = keras_seq.layers.SinePositionEncoding()
    outputs = layer(np.zeros((2, 10, 16)))  # (2, 10, 16): the encoding itself
    step = layer(np.zeros((2, 1, 16)), start_index=9)  # position 9 only
    np.testing.assert_allclose(step, outputs[:, 9:], atol=1e-6)
    concat = keras_seq.layers.SinePositionEncoding(merge="concat", hidden_dim=8)
    outputs = concat(np.zeros((2, 10, 16)))  # (2, 10, 24)
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def __init__(
        self, max_wavelength=10000, merge="add", hidden_dim=None, layout="interleaved", **kwargs
    ):
        max_wavelength = validate_positive_float("max_wavelength", max_wavelength)
        validate_merge(merge, hidden_dim)
        validate_choice("layout", layout, LAYOUTS)
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength
        self.merge = merge
        self.hidden_dim = hidden_dim
        self.layout = layout
        self.supports_masking = True

    def build(self, input_shape):
        check_sequence_input_shape(self, input_shape, self.merge)

    def encoding(self, length, width, start_index=0):
        """The encoding of `length` positions from `start_index`, `(length, width)`, float32."""
        static_start_index(start_index)
        positions = ops.add(
            ops.cast(ops.arange(length), "float32"), ops.cast(start_index, "float32")
        )  # (T,)
        channels = ops.arange(width)
        if self.layout == "halves":
            # Channel c < ceil(D / 2) is the sine of pair c, channel c >= ceil(D / 2) the
            # cosine of pair c - ceil(D / 2).
            half = (width + 1) // 2
            is_sine = ops.less(channels, half)
            pair_index = ops.where(is_sine, channels, channels - half)
        else:
            pair_index = ops.floor_divide(channels, 2)  # (D,): i of channels 2i, 2i + 1
            is_sine = ops.equal(ops.mod(channels, 2), 0)  # even channels
        exponents = ops.cast(2 * pair_index, "float32") / float(width)
        frequencies = ops.exp(-math.log(self.max_wavelength) * exponents)  # (D,)
        angles = positions[:, None] * frequencies[None, :]  # (T, D)
        return ops.where(is_sine, ops.sin(angles), ops.cos(angles))

    def call(self, inputs, start_index=0):
        width = inputs.shape[-1] if self.merge == "add" else self.hidden_dim
        encoding = self.encoding(ops.shape(inputs)[1], width, start_index)
        return merge_positions(inputs, ops.cast(encoding, self.compute_dtype), self.merge)

    def compute_output_shape(self, input_shape):
        return merged_output_shape(input_shape, self.merge, self.hidden_dim)

    def compute_output_spec(self, inputs, start_index=0):
        static_start_index(start_index)
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_wavelength": self.max_wavelength,
                "merge": self.merge,
                "hidden_dim": self.hidden_dim,
                "layout": self.layout,
            }
        )
        return config
