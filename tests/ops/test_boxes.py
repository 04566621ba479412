"""Box ops against NumPy loops of the definitions and against keras.utils.bounding_boxes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import ops

RNG = np.random.default_rng(11)


def random_xyxy(*shape):
    low = RNG.uniform(0, 0.7, shape + (2,))
    size = RNG.uniform(0.0, 0.5, shape + (2,))
    return np.concatenate([low, low + size], -1).astype("float32")


def loop_iou_giou(a, b):
    """IoU and GIoU of two single xyxy boxes, straight from the definitions."""
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    iou = inter / union if union > 0 else 0.0
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    giou = iou - (hull - union) / hull if hull > 0 else iou
    return iou, giou


@pytest.mark.backends
def test_conversions_round_trip_and_match_keras():
    xyxy = random_xyxy(3, 7)
    cxcywh = ops.box_xyxy_to_cxcywh(xyxy)
    np.testing.assert_allclose(ops.box_cxcywh_to_xyxy(cxcywh), xyxy, atol=1e-6)
    # keras' "center_xywh" is the same convention as DETR's cxcywh; its centre formula
    # differs in the last bit, hence our own box_xyxy_to_cxcywh.
    reference = keras.utils.bounding_boxes.convert_format(xyxy, "xyxy", "center_xywh")
    np.testing.assert_allclose(cxcywh, reference, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_cxcywh_to_xyxy_is_keras_convert_format_exactly(dtype):
    cxcywh = tf.cast(ops.box_xyxy_to_cxcywh(random_xyxy(2, 3, 5)), dtype)  # two batch axes
    ours = ops.box_cxcywh_to_xyxy(cxcywh)
    assert keras.backend.standardize_dtype(ours.dtype) == dtype
    keras_boxes = keras.utils.bounding_boxes.convert_format(
        cxcywh, "center_xywh", "xyxy", dtype=dtype
    )
    np.testing.assert_array_equal(tf.cast(ours, "float64"), tf.cast(keras_boxes, "float64"))
    if dtype == "float32":  # and the definition, in NumPy
        values = np.asarray(cxcywh)
        corners = [values[..., :2] - values[..., 2:] / 2, values[..., :2] + values[..., 2:] / 2]
        np.testing.assert_array_equal(ours, np.concatenate(corners, axis=-1))


@pytest.mark.backends
def test_area():
    boxes = random_xyxy(5)
    expected = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    np.testing.assert_allclose(ops.box_area(boxes), expected, rtol=1e-6)


@pytest.mark.backends
def test_iou_and_giou_against_loops_with_batch_axes():
    boxes1, boxes2 = random_xyxy(2, 6), random_xyxy(2, 5)
    boxes2[0, 0] = boxes1[0, 0]  # an identical pair: IoU = GIoU = 1
    boxes2[1, 1] = [0.1, 0.1, 0.1, 0.1]  # zero area
    iou, giou = ops.box_iou(boxes1, boxes2), ops.generalized_box_iou(boxes1, boxes2)
    assert iou.shape == giou.shape == (2, 6, 5)
    for b in range(2):
        for i in range(6):
            for j in range(5):
                expected_iou, expected_giou = loop_iou_giou(boxes1[b, i], boxes2[b, j])
                np.testing.assert_allclose(iou[b, i, j], expected_iou, atol=1e-6)
                np.testing.assert_allclose(giou[b, i, j], expected_giou, atol=1e-6)
    np.testing.assert_allclose(iou[0, 0, 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(giou[0, 0, 0], 1.0, rtol=1e-6)
    assert np.all(np.asarray(giou) <= np.asarray(iou) + 1e-7)
    assert np.all(np.asarray(giou) > -1.0)


@pytest.mark.backends
def test_iou_matches_keras_compute_iou():
    boxes1, boxes2 = random_xyxy(6), random_xyxy(4)
    reference = keras.utils.bounding_boxes.compute_iou(boxes1, boxes2, "xyxy")
    np.testing.assert_allclose(ops.box_iou(boxes1, boxes2), reference, atol=1e-6)


def test_degenerate_boxes_give_zero_not_nan_and_finite_gradients():
    points = np.zeros((1, 4), "float32")
    np.testing.assert_array_equal(ops.box_iou(points, points), [[0.0]])
    np.testing.assert_array_equal(ops.generalized_box_iou(points, points), [[0.0]])
    boxes = tf.Variable(np.concatenate([points, random_xyxy(2)]))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(ops.generalized_box_iou(boxes, boxes))
    assert np.all(np.isfinite(tape.gradient(loss, boxes)))


def test_giou_gradient_moves_disjoint_boxes_together():
    target = np.array([[0.6, 0.6, 0.9, 0.9]], "float32")
    box = tf.Variable([[0.0, 0.0, 0.2, 0.2]])
    with tf.GradientTape() as tape:
        loss = 1.0 - ops.generalized_box_iou(box, target)[0, 0]
    gradient = tape.gradient(loss, box).numpy()
    # IoU is flat (0) here; GIoU pulls the box's far corner toward the target.
    assert gradient[0, 2] < 0 and gradient[0, 3] < 0


def test_compiles_with_xla():
    boxes1, boxes2 = random_xyxy(3, 4), random_xyxy(3, 2)
    compiled = tf.function(
        lambda a, b: ops.generalized_box_iou(ops.box_cxcywh_to_xyxy(ops.box_xyxy_to_cxcywh(a)), b),
        jit_compile=True,
    )
    np.testing.assert_allclose(
        compiled(boxes1, boxes2), ops.generalized_box_iou(boxes1, boxes2), atol=1e-6
    )


@pytest.mark.parametrize(
    "function,argument",
    [
        (lambda x: ops.box_cxcywh_to_xyxy(x), "boxes"),
        (lambda x: ops.box_xyxy_to_cxcywh(x), "boxes"),
        (lambda x: ops.box_area(x), "boxes"),
        (lambda x: ops.box_iou(x, random_xyxy(2)), "boxes1"),
        (lambda x: ops.generalized_box_iou(random_xyxy(2), x), "boxes2"),
    ],
)
@pytest.mark.backends
def test_wrong_number_of_coordinates_is_an_error(function, argument):
    with pytest.raises(ValueError, match=rf"`{argument}` must have 4 coordinates.*\(2, 3\)"):
        function(np.zeros((2, 3), "float32"))
