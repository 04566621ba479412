"""Window partitioning, shifted-window masks and relative position indices (Swin).

Letter legend for shape comments: B batch, H / W feature-map height and width, C channels,
M window height and width (`Mh`, `Mw`), T tokens per window (`Mh * Mw`), K windows per image.
"""

import numpy as np
from keras import ops

from keras_seq.utils.validation import validate_int_pair


def window_partition(inputs, window_size):
    """Split a feature map into non-overlapping windows of tokens.

    Args:
        inputs: tensor `(batch_size, height, width, channels)`; `height` and `width` are
            static multiples of the window's height and width.
        window_size: int or pair `(window_height, window_width)`.

    Returns:
        Tensor `(batch_size * num_windows, window_height * window_width, channels)`, windows
        in row-major order within each image, tokens in row-major order within each window.

    Example:
    ```python
    x = np.random.rand(2, 8, 6, 3).astype("float32")
    windows = keras_seq.ops.window_partition(x, (4, 3))
    assert windows.shape == (2 * 4, 12, 3)
    np.testing.assert_array_equal(keras_seq.ops.window_reverse(windows, (4, 3), 8, 6), x)
    ```
    """
    window_height, window_width = validate_int_pair("window_size", window_size)
    height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
    if height is None or width is None or height % window_height or width % window_width:
        raise ValueError(
            "The feature map's height and width must be static multiples of `window_size`. "
            f"Received: inputs.shape={tuple(inputs.shape)}, window_size={window_size}"
        )
    rows, columns = height // window_height, width // window_width
    # (B, H, W, C) -> (B, rows, Mh, columns, Mw, C) -> (B, rows, columns, Mh, Mw, C)
    x = ops.reshape(inputs, (-1, rows, window_height, columns, window_width, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, window_height * window_width, channels))  # (B * K, T, C)


def window_reverse(windows, window_size, height, width):
    """Inverse of `window_partition`: windows back into `(batch_size, height, width, channels)`.

    Args:
        windows: tensor `(batch_size * num_windows, window_height * window_width, channels)`.
        window_size: int or pair `(window_height, window_width)`.
        height, width: ints. Size of the feature map, multiples of the window's.

    Returns:
        Tensor `(batch_size, height, width, channels)`.
    """
    window_height, window_width = validate_int_pair("window_size", window_size)
    if height % window_height or width % window_width:
        raise ValueError(
            "`height` and `width` must be multiples of `window_size`. Received: "
            f"height={height}, width={width}, window_size={window_size}"
        )
    rows, columns = height // window_height, width // window_width
    channels = windows.shape[-1]
    # (B * K, T, C) -> (B, rows, columns, Mh, Mw, C) -> (B, rows, Mh, columns, Mw, C)
    x = ops.reshape(windows, (-1, rows, columns, window_height, window_width, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def _axis_regions(length, window, shift):
    """Region id of each position along one axis of the cyclically shifted map."""
    regions = np.zeros(length, "int64")
    if shift:
        # After rolling by -shift, the last window holds the map's end (region 1) and the
        # rows that wrapped around from its start (region 2): they must not see each other.
        regions[length - window : length - shift] = 1
        regions[length - shift :] = 2
    return regions


def shifted_window_mask(
    height, width, window_size, shift_size, valid_height=None, valid_width=None
):
    """Boolean attention mask of (shifted) window attention, computed once in NumPy.

    For a feature map of `height x width` (multiples of the window), rolled by `-shift_size`
    before partitioning, a token may attend to another token of its window only if they were
    neighbours before the roll (the cyclic shift brings together pieces of the map's opposite
    edges, which must not attend to each other). Positions at or beyond `valid_height` /
    `valid_width` (zero padding added to reach a window multiple) are never attended to.

    Args:
        height, width: ints. Size of the (padded) feature map.
        window_size: int or pair `(window_height, window_width)`.
        shift_size: int or pair. Cyclic shift of each axis; `0` for no shift.
        valid_height, valid_width: optional ints. Size of the map before padding. Default to
            `height` / `width`.

    Returns:
        NumPy bool array `(num_windows, tokens, tokens)`, `True` = may attend, windows and
        tokens in `window_partition`'s order.
    """
    window_height, window_width = validate_int_pair("window_size", window_size)
    shift_height, shift_width = validate_int_pair("shift_size", shift_size)
    valid_height = height if valid_height is None else valid_height
    valid_width = width if valid_width is None else valid_width
    for axis, size, window, shift, valid in (
        ("height", height, window_height, shift_height, valid_height),
        ("width", width, window_width, shift_width, valid_width),
    ):
        if window < 1 or size % window or not 0 <= shift < window or not 0 < valid <= size:
            raise ValueError(
                f"Along the {axis}, the map size must be a multiple of `window_size`, "
                "`shift_size` in [0, window), and the valid size in [1, map size]. Received: "
                f"{axis}={size}, window_size={window_size}, shift_size={shift_size}, "
                f"valid_{axis}={valid}"
            )
    regions = (
        _axis_regions(height, window_height, shift_height)[:, None] * 3
        + _axis_regions(width, window_width, shift_width)[None, :]
    )  # (H, W), in shifted coordinates
    valid = np.zeros((height, width), bool)
    valid[:valid_height, :valid_width] = True
    valid = np.roll(valid, (-shift_height, -shift_width), axis=(0, 1))  # shifted coordinates
    grid = np.stack([regions, valid], axis=-1)[None]  # (1, H, W, 2)
    windows = np.asarray(window_partition(grid, (window_height, window_width)))  # (K, T, 2)
    same_region = windows[:, :, None, 0] == windows[:, None, :, 0]
    return same_region & windows[:, None, :, 1].astype(bool)


def relative_position_index(window_size):
    """Index into a relative position bias table for every pair of tokens in a window.

    The table has `(2 * window_height - 1) * (2 * window_width - 1)` rows, one per relative
    offset `(dy, dx)`; row `(dy + window_height - 1) * (2 * window_width - 1) + dx +
    window_width - 1`.

    Args:
        window_size: int or pair `(window_height, window_width)`.

    Returns:
        NumPy int32 array `(tokens, tokens)`, tokens in row-major order within the window.
    """
    window_height, window_width = validate_int_pair("window_size", window_size)
    coordinates = np.stack(
        np.meshgrid(np.arange(window_height), np.arange(window_width), indexing="ij")
    ).reshape(2, -1)  # (2, T)
    offsets = coordinates[:, :, None] - coordinates[:, None, :]  # (2, T, T)
    dy = offsets[0] + window_height - 1
    dx = offsets[1] + window_width - 1
    return (dy * (2 * window_width - 1) + dx).astype("int32")
