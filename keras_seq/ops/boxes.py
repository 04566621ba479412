"""Bounding-box conversions, areas, IoU and generalized IoU (DETR's box algebra).

Boxes are float tensors whose last axis has 4 coordinates: `"cxcywh"` is `(center_x,
center_y, width, height)` (DETR's predictions and targets, normalized to [0, 1]); `"xyxy"` is
`(x_min, y_min, x_max, y_max)`. Units are the caller's (normalized or pixels); IoU and
generalized IoU do not depend on them. Pairwise functions take boxes `(..., N, 4)` and
`(..., M, 4)` and return `(..., N, M)`; leading axes broadcast (a batch of images).

Keras has box conversions and IoU too (`keras.utils.bounding_boxes`); this module uses them
where they give the same numbers and keeps its own functions only where they add something,
said in each docstring: `box_cxcywh_to_xyxy` is Keras' `convert_format("center_xywh",
"xyxy")`; `box_xyxy_to_cxcywh`, `box_iou` and `generalized_box_iou` are DETR's own.
"""

import keras
from keras import ops


def _check_boxes(boxes, name):
    if len(boxes.shape) < 1 or boxes.shape[-1] != 4:
        raise ValueError(
            f"`{name}` must have 4 coordinates on its last axis. "
            f"Received: {name}.shape={tuple(boxes.shape)}"
        )


def box_cxcywh_to_xyxy(boxes):
    """Convert boxes from `(center_x, center_y, width, height)` to `(x_min, y_min, x_max, y_max)`.

    `keras.utils.bounding_boxes.convert_format(boxes, "center_xywh", "xyxy")` in the dtype of
    `boxes` (Keras' default would cast to float32), bit for bit, with any number of leading
    axes; this name is DETR's.

    Args:
        boxes: float tensor `(..., 4)`.

    Returns:
        Tensor `(..., 4)` of the same dtype.

    Example:
    ```python
    boxes = np.array([[0.5, 0.5, 0.2, 0.4]], "float32")
    np.testing.assert_allclose(
        keras_seq.ops.box_cxcywh_to_xyxy(boxes), [[0.4, 0.3, 0.6, 0.7]], rtol=1e-6
    )
    ```
    """
    boxes = ops.convert_to_tensor(boxes)
    _check_boxes(boxes, "boxes")
    return keras.utils.bounding_boxes.convert_format(
        boxes, "center_xywh", "xyxy", dtype=keras.backend.standardize_dtype(boxes.dtype)
    )


def box_xyxy_to_cxcywh(boxes):
    """Convert boxes from `(x_min, y_min, x_max, y_max)` to `(center_x, center_y, width, height)`.

    Ours rather than Keras' `convert_format(boxes, "xyxy", "center_xywh")`: the centre is
    DETR's `(x_min + x_max) / 2`, where Keras computes `x_min + (x_max - x_min) / 2`, which
    differs in the last bit for some boxes; DETR's reference implementation uses this
    formula.

    Args:
        boxes: float tensor `(..., 4)`.

    Returns:
        Tensor `(..., 4)` of the same dtype.

    Example:
    ```python
    boxes = np.array([[0.4, 0.3, 0.6, 0.7]], "float32")
    np.testing.assert_allclose(
        keras_seq.ops.box_xyxy_to_cxcywh(boxes), [[0.5, 0.5, 0.2, 0.4]], rtol=1e-6
    )
    ```
    """
    boxes = ops.convert_to_tensor(boxes)
    _check_boxes(boxes, "boxes")
    x_min, y_min, x_max, y_max = ops.unstack(boxes, 4, axis=-1)
    return ops.stack(
        [(x_min + x_max) / 2, (y_min + y_max) / 2, x_max - x_min, y_max - y_min], axis=-1
    )


def box_area(boxes):
    """Area of `(x_min, y_min, x_max, y_max)` boxes: `(x_max - x_min) * (y_max - y_min)`.

    Args:
        boxes: float tensor `(..., 4)` in `"xyxy"` format.

    Returns:
        Tensor `(...)`. A degenerate box (max below min) gives a negative or zero area; it is
        not clipped (the caller decides what such a box means).

    Example:
    ```python
    area = keras_seq.ops.box_area(np.array([[0.0, 0.0, 2.0, 3.0]], "float32"))
    np.testing.assert_allclose(area, [6.0])
    ```
    """
    boxes = ops.convert_to_tensor(boxes)
    _check_boxes(boxes, "boxes")
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _pairwise_intersection_union(boxes1, boxes2):
    """Intersection and union areas `(..., N, M)` of `"xyxy"` boxes, and the two areas."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    # (..., N, 1, 2) against (..., 1, M, 2)
    top_left = ops.maximum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    bottom_right = ops.minimum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    size = ops.maximum(bottom_right - top_left, 0.0)
    intersection = size[..., 0] * size[..., 1]  # (..., N, M)
    union = area1[..., :, None] + area2[..., None, :] - intersection
    return intersection, union


def box_iou(boxes1, boxes2):
    """Pairwise intersection over union of `(x_min, y_min, x_max, y_max)` boxes.

    Two boxes whose union is empty (both of zero area) have IoU 0, not NaN. Ours rather than
    `keras.utils.bounding_boxes.compute_iou`, which adds an epsilon to the union (so its
    values differ slightly), takes boxes of rank 2 or 3 only and has no generalized IoU; this
    one shares its intersection and union with `generalized_box_iou`.

    Args:
        boxes1: float tensor `(..., N, 4)`, `"xyxy"`.
        boxes2: float tensor `(..., M, 4)`, `"xyxy"`.

    Returns:
        Tensor `(..., N, M)` in [0, 1].

    Example:
    ```python
    a = np.array([[0.0, 0.0, 2.0, 2.0]], "float32")
    b = np.array([[1.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 6.0]], "float32")
    np.testing.assert_allclose(keras_seq.ops.box_iou(a, b), [[2 / 6, 0.0]], rtol=1e-6)
    ```
    """
    boxes1, boxes2 = ops.convert_to_tensor(boxes1), ops.convert_to_tensor(boxes2)
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    intersection, union = _pairwise_intersection_union(boxes1, boxes2)
    return ops.divide_no_nan(intersection, union)


def generalized_box_iou(boxes1, boxes2):
    """Pairwise generalized IoU: IoU minus the share of the enclosing box that the union misses.

    `GIoU = IoU - (C - U) / C` with `C` the area of the smallest box enclosing both and `U`
    their union; it lies in (-1, 1] and, unlike IoU, still has a gradient when boxes do not
    overlap, which is why DETR's loss uses `1 - GIoU`. Degenerate pairs (zero enclosing
    area) give 0 instead of NaN.

    Args:
        boxes1: float tensor `(..., N, 4)`, `"xyxy"`.
        boxes2: float tensor `(..., M, 4)`, `"xyxy"`.

    Returns:
        Tensor `(..., N, M)`.

    Example:
    ```python
    a = np.array([[0.0, 0.0, 1.0, 1.0]], "float32")
    b = np.array([[2.0, 0.0, 3.0, 1.0]], "float32")  # disjoint: IoU 0, enclosing area 3
    np.testing.assert_allclose(
        keras_seq.ops.generalized_box_iou(a, b), [[0.0 - (3.0 - 2.0) / 3.0]], rtol=1e-6
    )
    ```

    References:
        - [Rezatofighi et al., 2019](https://arxiv.org/abs/1902.09630)
    """
    boxes1, boxes2 = ops.convert_to_tensor(boxes1), ops.convert_to_tensor(boxes2)
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    intersection, union = _pairwise_intersection_union(boxes1, boxes2)
    iou = ops.divide_no_nan(intersection, union)
    top_left = ops.minimum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    bottom_right = ops.maximum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    size = ops.maximum(bottom_right - top_left, 0.0)
    enclosing = size[..., 0] * size[..., 1]  # (..., N, M)
    return iou - ops.divide_no_nan(enclosing - union, enclosing)
