"""Bicubic resizing of grids whose output size may be a tensor (unknown until run time)."""

from keras import ops


def _cubic_weights(distance, cubic_coefficient):
    """Keys' cubic convolution kernel at `distance` (float tensor)."""
    a = cubic_coefficient
    d = ops.abs(distance)
    near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0  # |d| <= 1
    far = ((d - 5.0) * d + 8.0) * d * a - 4.0 * a  # 1 < |d| < 2
    return ops.where(d <= 1.0, near, ops.where(d < 2.0, far, 0.0))


def _interpolation_matrix(source_size, target_size, cubic_coefficient):
    """`(target_size, source_size)` float32 matrix of one axis' bicubic interpolation.

    Half-pixel centres (`align_corners=False`); taps outside the grid read the border row
    (their weight goes to the nearest edge index).
    """
    scale = source_size / ops.cast(target_size, "float32")
    centres = (ops.cast(ops.arange(target_size), "float32") + 0.5) * scale - 0.5
    base = ops.floor(centres)
    matrix = 0.0
    for tap in (-1.0, 0.0, 1.0, 2.0):
        position = base + tap
        weight = _cubic_weights(centres - position, cubic_coefficient)  # (target,)
        index = ops.cast(ops.clip(position, 0, source_size - 1), "int32")
        matrix = matrix + weight[:, None] * ops.one_hot(index, source_size, dtype="float32")
    return matrix


def bicubic_resize(grid, size, cubic_coefficient=-0.75):
    """Resize a `(height, width, channels)` grid (or a batch of them) bicubically.

    Separable bicubic interpolation with half-pixel centres, written as two small matrix products,
    so that `size` may hold scalar tensors known only at run time (inside a `tf.function` with
    unknown image sizes); `keras.ops.image.resize` needs Python ints. With the default
    `cubic_coefficient=-0.75` it is PyTorch's `interpolate(mode="bicubic", align_corners=False,
    antialias=False)` (timm's `resample_abs_pos_embed(..., antialias=False)`; timm's default
    antialiased variant differs); `-0.5` is TensorFlow's `tf.image.resize(method="bicubic")`
    away from the borders (TensorFlow renormalizes the weights of taps outside the grid).
    Resizing to the same size returns the input unchanged.

    Args:
        grid: float tensor `(height, width, channels)` or `(batch_size, height, width,
            channels)`, with static height and width.
        size: pair `(new_height, new_width)` of positive ints or int scalar tensors.
        cubic_coefficient: float. The `a` of Keys' cubic kernel. Defaults to `-0.75`.

    Returns:
        Tensor `(new_height, new_width, channels)` (with the batch axis if given), in the
        dtype of `grid` (computed in float32).

    Example:
    ```python
    grid = np.random.rand(7, 7, 4).astype("float32")
    assert keras_seq.ops.bicubic_resize(grid, (12, 9)).shape == (12, 9, 4)
    np.testing.assert_allclose(keras_seq.ops.bicubic_resize(grid, (7, 7)), grid, atol=1e-6)
    ```
    """
    if len(grid.shape) not in (3, 4):
        raise ValueError(
            "`grid` must have rank 3 (height, width, channels) or 4 (batch_size, height, "
            f"width, channels). Received: grid.shape={tuple(grid.shape)}"
        )
    if grid.shape[-3] is None or grid.shape[-2] is None:
        raise ValueError(
            "`grid` must have a static height and width (only `size` may be unknown until "
            f"run time). Received: grid.shape={tuple(grid.shape)}"
        )
    if len(size) != 2 or any(isinstance(s, int) and s < 1 for s in size):
        raise ValueError(
            "`size` must be a pair (new_height, new_width) of positive ints or int scalar "
            f"tensors. Received: size={size}"
        )
    dtype = grid.dtype
    grid = ops.cast(grid, "float32")
    height, width = grid.shape[-3], grid.shape[-2]
    rows = _interpolation_matrix(height, size[0], cubic_coefficient)  # (h', h)
    columns = _interpolation_matrix(width, size[1], cubic_coefficient)  # (w', w)
    equation = "ih,jw,bhwc->bijc" if len(grid.shape) == 4 else "ih,jw,hwc->ijc"
    return ops.cast(ops.einsum(equation, rows, columns, grid), dtype)
