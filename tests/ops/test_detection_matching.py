"""DETR's matching cost against its formula in NumPy, and the matching against SciPy on it."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linear_sum_assignment as scipy_assignment

from keras_seq import ops

RNG = np.random.default_rng(7)


def random_problem(batch_size=3, num_queries=7, num_targets=4, num_classes=5):
    logits = RNG.normal(size=(batch_size, num_queries, num_classes + 1)).astype("float32")
    boxes = np.concatenate(
        [
            RNG.uniform(0.2, 0.8, (batch_size, num_queries, 2)),
            RNG.uniform(0.05, 0.3, (batch_size, num_queries, 2)),
        ],
        -1,
    ).astype("float32")
    target_boxes = np.concatenate(
        [
            RNG.uniform(0.2, 0.8, (batch_size, num_targets, 2)),
            RNG.uniform(0.05, 0.3, (batch_size, num_targets, 2)),
        ],
        -1,
    ).astype("float32")
    labels = RNG.integers(0, num_classes, (batch_size, num_targets)).astype("int32")
    return logits, boxes, labels, target_boxes


def numpy_giou(a, b):
    """GIoU of two cxcywh boxes, from the definition."""
    a = [a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2]
    b = [b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2]
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (hull - union) / hull


def numpy_cost(logits, boxes, labels, target_boxes, weights=(1.0, 5.0, 2.0)):
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    batch_size, num_queries, num_targets = logits.shape[0], logits.shape[1], labels.shape[1]
    cost = np.zeros((batch_size, num_queries, num_targets))
    for b in range(batch_size):
        for q in range(num_queries):
            for t in range(num_targets):
                cost[b, q, t] = (
                    -weights[0] * probabilities[b, q, labels[b, t]]
                    + weights[1] * np.abs(boxes[b, q] - target_boxes[b, t]).sum()
                    - weights[2] * numpy_giou(boxes[b, q], target_boxes[b, t])
                )
    return cost


def test_cost_equals_formula():
    logits, boxes, labels, target_boxes = random_problem()
    np.testing.assert_allclose(
        ops.detr_matching_cost(logits, boxes, labels, target_boxes),
        numpy_cost(logits, boxes, labels, target_boxes),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        ops.detr_matching_cost(logits, boxes, labels, target_boxes, 2.0, 1.0, 0.5),
        numpy_cost(logits, boxes, labels, target_boxes, (2.0, 1.0, 0.5)),
        atol=1e-5,
    )


def test_match_is_optimal_against_scipy_with_padding():
    logits, boxes, labels, target_boxes = random_problem(batch_size=4, num_queries=9, num_targets=5)
    labels[1, 3:] = -1  # two padding slots
    labels[2, :] = -1  # an image without objects
    match = np.asarray(ops.hungarian_match(logits, boxes, labels, target_boxes))
    cost = numpy_cost(logits, boxes, np.maximum(labels, 0), target_boxes)
    for b in range(4):
        real = labels[b] >= 0
        np.testing.assert_array_equal(match[b].sum(0), real.astype(float))
        assert match[b].sum(1).max() <= 1
        if real.any():
            rows, columns = scipy_assignment(cost[b][:, real])
            expected = cost[b][:, real][rows, columns].sum()
            np.testing.assert_allclose(
                (match[b][:, real] * cost[b][:, real]).sum(), expected, rtol=1e-5
            )


def test_match_compiles_with_xla_and_has_no_gradient():
    logits, boxes, labels, target_boxes = random_problem()
    compiled = tf.function(ops.hungarian_match, jit_compile=True)
    np.testing.assert_array_equal(
        compiled(logits, boxes, labels, target_boxes),
        ops.hungarian_match(logits, boxes, labels, target_boxes),
    )
    variable = tf.Variable(boxes)
    with tf.GradientTape() as tape:
        match = ops.hungarian_match(logits, variable, labels, target_boxes)
        total = tf.reduce_sum(match)
    gradient = tape.gradient(total, variable)
    assert gradient is None or not np.any(gradient)


def test_too_many_targets_is_an_error():
    logits, boxes, labels, target_boxes = random_problem(num_queries=3, num_targets=4)
    with pytest.raises(ValueError, match="cost"):
        ops.hungarian_match(logits, boxes, labels, target_boxes)
