"""Window ops: partition / reverse against NumPy loops, the shifted-window mask against a
brute-force construction in original coordinates, relative position indices against the
formula, and argument errors."""

import numpy as np
import pytest
import tensorflow as tf

from keras_seq import ops

RNG = np.random.default_rng(5)


def loop_partition(x, window_height, window_width):
    """Windows row-major within the image, tokens row-major within the window, by loops."""
    batch_size, height, width, channels = x.shape
    rows, columns = height // window_height, width // window_width
    windows = np.zeros(
        (batch_size * rows * columns, window_height * window_width, channels), x.dtype
    )
    for b in range(batch_size):
        for r in range(rows):
            for c in range(columns):
                for i in range(window_height):
                    for j in range(window_width):
                        windows[b * rows * columns + r * columns + c, i * window_width + j] = x[
                            b, r * window_height + i, c * window_width + j
                        ]
    return windows


def brute_force_mask(height, width, window, shift, valid_height, valid_width):
    """May token i attend to token j of the same window of the map rolled by `-shift`?

    Shifted position p holds the token of original coordinate x = (p + s) mod size. On each
    axis, i and j must share floor((x + M - s) / M) (the shifted window they belong to
    before the roll, which keeps the wrapped-around edge apart), and j must be a real token
    (original coordinate below the valid size).
    """
    (window_height, window_width), (shift_height, shift_width) = window, shift
    rows, columns = height // window_height, width // window_width
    tokens = window_height * window_width
    mask = np.zeros((rows * columns, tokens, tokens), bool)

    def original(r, c, t):
        p_y = r * window_height + t // window_width
        p_x = c * window_width + t % window_width
        return (p_y + shift_height) % height, (p_x + shift_width) % width

    def group(x, window_size, shift_size):
        return (x + window_size - shift_size) // window_size

    for r in range(rows):
        for c in range(columns):
            for i in range(tokens):
                y_i, x_i = original(r, c, i)
                for j in range(tokens):
                    y_j, x_j = original(r, c, j)
                    same = group(y_i, window_height, shift_height) == group(
                        y_j, window_height, shift_height
                    ) and group(x_i, window_width, shift_width) == group(
                        x_j, window_width, shift_width
                    )
                    real = y_j < valid_height and x_j < valid_width
                    mask[r * columns + c, i, j] = same and real
    return mask


@pytest.mark.backends
def test_partition_equals_loops_and_reverse_round_trips():
    x = RNG.normal(size=(3, 12, 6, 5)).astype("float32")
    for window in [(2, 3), (4, 2), (3, 3), (12, 1)]:
        windows = np.asarray(ops.window_partition(x, window))
        np.testing.assert_array_equal(windows, loop_partition(x, *window), err_msg=str(window))
        np.testing.assert_array_equal(np.asarray(ops.window_reverse(windows, window, 12, 6)), x)
    square = x[:, :, :4]  # An int window is a square one.
    np.testing.assert_array_equal(
        np.asarray(ops.window_partition(square, 4)), loop_partition(square, 4, 4)
    )


def test_partition_with_unknown_batch_in_a_graph():
    @tf.function(input_signature=[tf.TensorSpec((None, 6, 4, 2), tf.float32)])
    def round_trip(x):
        windows = ops.window_partition(x, (3, 2))
        return windows, ops.window_reverse(windows, (3, 2), 6, 4)

    x = RNG.normal(size=(3, 6, 4, 2)).astype("float32")
    windows, back = round_trip(x)
    np.testing.assert_array_equal(windows.numpy(), loop_partition(x, 3, 2))
    np.testing.assert_array_equal(back.numpy(), x)


MASK_CASES = [  # height, width, window, shift, valid size (None: no padding)
    (8, 8, 4, 0, None),
    (8, 8, 4, 2, None),
    (8, 12, (4, 6), (2, 3), None),
    (8, 12, (4, 3), (2, 1), (6, 10)),  # shift and padding on both axes
    (8, 8, 4, (2, 0), (7, 5)),  # shift on one axis only
    (4, 8, 4, (0, 2), (3, 8)),
    (12, 8, 4, 1, (10, 8)),  # a shift other than half a window
    (6, 6, 3, 0, (5, 4)),  # padding only
]


@pytest.mark.backends
def test_shifted_window_mask_equals_brute_force():
    for height, width, window, shift, valid in MASK_CASES:
        case = f"case {(height, width, window, shift, valid)}"
        window_pair = (window, window) if isinstance(window, int) else window
        shift_pair = (shift, shift) if isinstance(shift, int) else shift
        valid_height, valid_width = (height, width) if valid is None else valid
        kwargs = {} if valid is None else {"valid_height": valid_height, "valid_width": valid_width}
        mask = ops.shifted_window_mask(height, width, window, shift, **kwargs)
        expected = brute_force_mask(
            height, width, window_pair, shift_pair, valid_height, valid_width
        )
        assert isinstance(mask, np.ndarray) and mask.dtype == bool, case
        np.testing.assert_array_equal(mask, expected, err_msg=case)
        # The unshifted, unpadded case attends everywhere; every other one masks something.
        assert mask.all() == (shift_pair == (0, 0) and valid is None), case


@pytest.mark.backends
def test_relative_position_index_equals_formula():
    for window_height, window_width in [(1, 1), (2, 2), (3, 4), (4, 2), (7, 7)]:
        tokens = window_height * window_width
        expected = np.zeros((tokens, tokens), int)
        for i in range(tokens):
            for j in range(tokens):
                dy = i // window_width - j // window_width
                dx = i % window_width - j % window_width
                expected[i, j] = (dy + window_height - 1) * (2 * window_width - 1) + (
                    dx + window_width - 1
                )
        index = ops.relative_position_index((window_height, window_width))
        assert index.dtype == np.int32 and index.shape == (tokens, tokens)
        np.testing.assert_array_equal(index, expected)
        rows = (2 * window_height - 1) * (2 * window_width - 1)
        np.testing.assert_array_equal(np.unique(index), np.arange(rows))  # Every row used.
        # Offsets (dy, dx) and (-dy, -dx) sit symmetrically about the zero-offset row.
        centre = (window_height - 1) * (2 * window_width - 1) + window_width - 1
        np.testing.assert_array_equal(index + index.T, 2 * centre)
        np.testing.assert_array_equal(np.diag(index), centre)
    np.testing.assert_array_equal(
        ops.relative_position_index(3), ops.relative_position_index((3, 3))
    )


@pytest.mark.backends
def test_errors_name_the_argument():
    x = np.zeros((1, 8, 6, 2), "float32")
    with pytest.raises(ValueError, match="`window_size`"):
        ops.window_partition(x, (3, 3))  # 8 is not a multiple of 3.
    with pytest.raises(ValueError, match="`window_size`"):
        ops.window_partition(x, (2, 2, 2))
    with pytest.raises(TypeError, match="`window_size`"):
        ops.window_partition(x, True)
    with pytest.raises(ValueError, match="`height`"):
        ops.window_reverse(np.zeros((4, 4, 2), "float32"), 2, 5, 4)
    with pytest.raises(ValueError, match="`shift_size`"):
        ops.shifted_window_mask(8, 8, 4, (2,))
    with pytest.raises(TypeError, match="`window_size`"):
        ops.relative_position_index("7")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shift_size": 4}, "shift_size"),
        ({"shift_size": -1}, "shift_size"),
        ({"valid_height": 9}, "valid_height"),
        ({"valid_width": 0}, "valid_width"),
        ({"height": 10}, "window_size"),
    ],
)
def test_shifted_window_mask_rejects_inconsistent_arguments(kwargs, match):
    arguments = {"height": 8, "width": 8, "window_size": 4, "shift_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        ops.shifted_window_mask(**arguments)
