"""bicubic_resize: PyTorch's upsample_bicubic2d written as NumPy loops, TensorFlow's bicubic
in the interior, linear ramps, run-time sizes, batches, dtypes and argument errors."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_seq import ops

RNG = np.random.default_rng(8)


def torch_bicubic(image, out_height, out_width, a=-0.75):
    """PyTorch's upsample_bicubic2d (align_corners=False) on a `(H, W, C)` array, by loops.

    Source coordinate `scale * (dst + 0.5) - 0.5` with `scale = in / out`, four taps at
    `floor - 1 .. floor + 2` with PyTorch's cubic_convolution1 / cubic_convolution2 weights,
    tap indices clamped into the image; the same size is copied.
    """
    height, width, _ = image.shape
    if (height, width) == (out_height, out_width):
        return image.astype("float64").copy()

    def convolution1(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def convolution2(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    def taps(dst, in_size, out_size):
        real = in_size / out_size * (dst + 0.5) - 0.5
        base = math.floor(real)
        t = real - base
        weights = [convolution2(t + 1), convolution1(t), convolution1(1 - t), convolution2(2 - t)]
        indices = [min(max(base - 1 + k, 0), in_size - 1) for k in range(4)]
        return indices, weights

    output = np.zeros((out_height, out_width, image.shape[-1]))
    for y in range(out_height):
        rows, row_weights = taps(y, height, out_height)
        for x in range(out_width):
            columns, column_weights = taps(x, width, out_width)
            for row, row_weight in zip(rows, row_weights):
                for column, column_weight in zip(columns, column_weights):
                    output[y, x] += row_weight * column_weight * image[row, column]
    return output


def interior(in_size, out_size):
    """Output indices whose four taps all lie inside the input (no clamping, no renormalizing)."""
    real = in_size / out_size * (np.arange(out_size) + 0.5) - 0.5
    base = np.floor(real)
    return np.nonzero((base - 1 >= 0) & (base + 2 <= in_size - 1))[0]


def test_same_size_is_identity():
    grid = RNG.normal(size=(5, 7, 3)).astype("float32")
    np.testing.assert_allclose(ops.bicubic_resize(grid, (5, 7)), grid, atol=1e-6)
    np.testing.assert_allclose(
        ops.bicubic_resize(grid, (5, 7), cubic_coefficient=-0.5), grid, atol=1e-6
    )


def test_equals_pytorch_bicubic_loops():
    sizes = [((7, 7), (11, 11)), ((11, 11), (7, 7)), ((4, 6), (9, 5)), ((3, 3), (13, 2))]
    for in_size, out_size in sizes + [((8, 5), (3, 12)), ((1, 4), (3, 2))]:
        grid = RNG.normal(size=(*in_size, 3)).astype("float32")
        outputs = np.asarray(ops.bicubic_resize(grid, out_size))
        assert outputs.shape == (*out_size, 3) and outputs.dtype == np.float32
        np.testing.assert_allclose(
            outputs, torch_bicubic(grid, *out_size), atol=1e-5, err_msg=f"{in_size}->{out_size}"
        )


def test_cubic_coefficient_is_used():
    grid = RNG.normal(size=(5, 6, 2)).astype("float32")
    outputs = np.asarray(ops.bicubic_resize(grid, (9, 4), cubic_coefficient=-0.5))
    np.testing.assert_allclose(outputs, torch_bicubic(grid, 9, 4, a=-0.5), atol=1e-5)
    assert not np.allclose(outputs, torch_bicubic(grid, 9, 4, a=-0.75), atol=1e-3)


def check_against_tensorflow(in_size, out_size):
    grid = RNG.normal(size=(*in_size, 2)).astype("float32")
    outputs = np.asarray(ops.bicubic_resize(grid, out_size, cubic_coefficient=-0.5))
    rows, columns = interior(in_size[0], out_size[0]), interior(in_size[1], out_size[1])
    assert len(rows) > 2 and len(columns) > 2
    inside = np.ix_(rows, columns)
    # TensorFlow renormalizes the weights of taps outside the image, so only the interior
    # compares. Keys' kernel evaluated exactly (ScaleAndTranslate, no antialiasing):
    exact = tf.raw_ops.ScaleAndTranslate(
        images=grid[None],
        size=out_size,
        scale=[out_size[0] / in_size[0], out_size[1] / in_size[1]],
        translation=[0.0, 0.0],
        kernel_type="keyscubic",
        antialias=False,
    )[0].numpy()
    np.testing.assert_allclose(outputs[inside], exact[inside], atol=1e-5)
    # tf.image.resize reads the kernel from a 1024-entry table: equal to about 1e-3.
    resized = tf.image.resize(grid, out_size, method="bicubic").numpy()
    np.testing.assert_allclose(outputs[inside], resized[inside], atol=5e-3)


def test_minus_half_equals_tensorflow_bicubic_in_the_interior():
    for in_size, out_size in [((8, 9), (17, 13)), ((16, 12), (9, 7))]:
        check_against_tensorflow(in_size, out_size)


def test_linear_ramp_and_constants_are_reproduced_in_the_interior():
    y, x = np.meshgrid(np.arange(9.0), np.arange(7.0), indexing="ij")
    ramp = np.stack([2.0 * y - 3.0 * x + 1.0, 0.5 * x], axis=-1).astype("float32")  # (9, 7, 2)
    for out_size in [(20, 15), (5, 4)]:
        out_y = 9 / out_size[0] * (np.arange(out_size[0]) + 0.5) - 0.5
        out_x = 7 / out_size[1] * (np.arange(out_size[1]) + 0.5) - 0.5
        yy, xx = np.meshgrid(out_y, out_x, indexing="ij")
        expected = np.stack([2.0 * yy - 3.0 * xx + 1.0, 0.5 * xx], axis=-1)
        inside = np.ix_(interior(9, out_size[0]), interior(7, out_size[1]))
        # Keys' kernel reproduces linear functions only for a = -0.5 (the first moment of
        # the a = -0.75 kernel is not t), so the ramp is checked there ...
        outputs = np.asarray(ops.bicubic_resize(ramp, out_size, cubic_coefficient=-0.5))
        np.testing.assert_allclose(outputs[inside], expected[inside], atol=1e-4)
        assert not np.allclose(
            np.asarray(ops.bicubic_resize(ramp, out_size))[inside], expected[inside], atol=1e-2
        )
        # ... while every a sums its weights to one: constants survive everywhere.
        constant = np.full((9, 7, 1), 3.5, "float32")
        np.testing.assert_allclose(ops.bicubic_resize(constant, out_size), 3.5, atol=1e-5)


def test_sizes_known_only_at_run_time():
    @tf.function(
        input_signature=[
            tf.TensorSpec((None, 5, 4, 3), tf.float32),
            tf.TensorSpec((), tf.int32),
            tf.TensorSpec((), tf.int32),
        ]
    )
    def resize(grid, height, width):
        return ops.bicubic_resize(grid, (height, width))

    grid = RNG.normal(size=(2, 5, 4, 3)).astype("float32")
    for size in [(8, 6), (3, 7), (5, 4)]:
        outputs = resize(grid, *size).numpy()
        assert outputs.shape == (2, *size, 3)
        np.testing.assert_allclose(outputs, ops.bicubic_resize(grid, size), atol=1e-6)
        np.testing.assert_allclose(outputs[1], torch_bicubic(grid[1], *size), atol=1e-5)


def test_batch_equals_per_image():
    grid = RNG.normal(size=(3, 6, 5, 2)).astype("float32")
    outputs = np.asarray(ops.bicubic_resize(grid, (4, 9)))
    assert outputs.shape == (3, 4, 9, 2)
    for index in range(3):
        np.testing.assert_allclose(
            outputs[index], ops.bicubic_resize(grid[index], (4, 9)), atol=1e-6
        )


def test_keeps_the_input_dtype():
    grid = RNG.normal(size=(4, 4, 2))
    for dtype in ("float16", "float64"):
        outputs = ops.bicubic_resize(tf.constant(grid, dtype), (6, 3))
        assert outputs.dtype == dtype
        np.testing.assert_allclose(
            np.asarray(outputs, "float64"), torch_bicubic(grid, 6, 3), atol=1e-2
        )


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`grid`"):
        ops.bicubic_resize(np.zeros((4, 4), "float32"), (2, 2))
    with pytest.raises(ValueError, match="`grid`"):
        ops.bicubic_resize(np.zeros((1, 1, 4, 4, 2), "float32"), (2, 2))
    with pytest.raises(ValueError, match="`size`"):
        ops.bicubic_resize(np.zeros((4, 4, 2), "float32"), (2, 2, 2))
    with pytest.raises(ValueError, match="`size`"):
        ops.bicubic_resize(np.zeros((4, 4, 2), "float32"), (2,))
    for size in [(0, 3), (3, -1)]:
        with pytest.raises(ValueError, match="`size`"):
            ops.bicubic_resize(np.zeros((4, 4, 2), "float32"), size)

    @tf.function(input_signature=[tf.TensorSpec((None, None, 2), tf.float32)])
    def resize_unknown_grid(grid):
        return ops.bicubic_resize(grid, (3, 3))

    with pytest.raises(ValueError, match="`grid`"):
        resize_unknown_grid(np.zeros((4, 4, 2), "float32"))
