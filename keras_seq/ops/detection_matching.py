"""DETR's Hungarian matching: the pairwise matching cost and the optimal assignment.

Letter legend for shape comments: B batch, Q queries (predictions), T target slots (padded),
C classes including the final "no object" class.
"""

from keras import ops

from keras_seq.ops.assignment import linear_sum_assignment
from keras_seq.ops.boxes import box_cxcywh_to_xyxy
from keras_seq.ops.boxes import generalized_box_iou


def detr_matching_cost(
    logits,
    boxes,
    target_labels,
    target_boxes,
    class_weight=1.0,
    l1_weight=5.0,
    giou_weight=2.0,
):
    """Pairwise cost of assigning each prediction to each target, as in DETR's matcher.

    `cost[b, q, t] = -class_weight * p_q(label_t) + l1_weight * |box_q - box_t|_1
    - giou_weight * GIoU(box_q, box_t)`, with `p_q` the softmax of the query's logits. The
    class term uses the probability rather than its log, as the paper does: it keeps the
    terms on comparable scales.

    Args:
        logits: float `(batch_size, num_queries, num_classes + 1)`.
        boxes: float `(batch_size, num_queries, 4)`, normalized `(cx, cy, w, h)`.
        target_labels: int `(batch_size, num_targets)`; padding slots may hold any value
            (e.g. -1): their costs are computed on a clamped label and must be masked by
            the caller.
        target_boxes: float `(batch_size, num_targets, 4)`, normalized `(cx, cy, w, h)`.
        class_weight, l1_weight, giou_weight: floats. Weights of the three terms. Default
            to the paper's `1.0`, `5.0`, `2.0`.

    Returns:
        Float32 tensor `(batch_size, num_queries, num_targets)`.

    Example:
    ```python
    logits = np.zeros((1, 3, 3), "float32")
    boxes = np.array([[[0.2, 0.2, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2], [0.8, 0.8, 0.1, 0.1]]],
                     "float32")
    cost = keras_seq.ops.detr_matching_cost(logits, boxes, np.array([[0]]), boxes[:, 1:2])
    assert cost.shape == (1, 3, 1) and int(np.argmin(cost[0, :, 0])) == 1
    ```

    References:
        - [Carion et al., 2020](https://arxiv.org/abs/2005.12872) (DETR)
    """
    logits = ops.cast(logits, "float32")
    boxes = ops.cast(boxes, "float32")
    target_boxes = ops.cast(target_boxes, "float32")
    probabilities = ops.softmax(logits, axis=-1)  # (B, Q, C)
    num_classes = logits.shape[-1]
    labels = ops.clip(ops.cast(target_labels, "int32"), 0, num_classes - 1)
    # p_q(label_t) for every pair: (B, Q, C) x (B, T, C) one-hot -> (B, Q, T)
    class_cost = -ops.einsum(
        "bqc,btc->bqt", probabilities, ops.one_hot(labels, num_classes, dtype="float32")
    )
    l1_cost = ops.sum(ops.abs(boxes[:, :, None, :] - target_boxes[:, None, :, :]), axis=-1)
    giou = generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(target_boxes))
    return class_weight * class_cost + l1_weight * l1_cost - giou_weight * giou


def hungarian_match(
    logits,
    boxes,
    target_labels,
    target_boxes,
    target_mask=None,
    class_weight=1.0,
    l1_weight=5.0,
    giou_weight=2.0,
):
    """Optimal one-to-one matching of predictions to targets (DETR's Hungarian matcher).

    The cost of `detr_matching_cost`, minimized exactly by
    `keras_seq.ops.linear_sum_assignment` for the whole batch at once: fixed shapes, no
    SciPy, compiles with XLA (DETR's original matcher runs SciPy per image on the host).
    No gradient flows through the matching.

    Args:
        logits: float `(batch_size, num_queries, num_classes + 1)`.
        boxes: float `(batch_size, num_queries, 4)`, normalized `(cx, cy, w, h)`.
        target_labels: int `(batch_size, num_targets)`, `-1` in padding slots.
        target_boxes: float `(batch_size, num_targets, 4)`, normalized `(cx, cy, w, h)`.
        target_mask: optional bool `(batch_size, num_targets)`, `True` = real target.
            Defaults to `target_labels >= 0`.
        class_weight, l1_weight, giou_weight: floats. Matching cost weights. Default to
            `1.0`, `5.0`, `2.0`.

    Returns:
        Float32 one-hot `(batch_size, num_queries, num_targets)`: `[b, q, t] = 1` when
        query `q` predicts target `t`. Each real target has exactly one query, padding
        slots none, each query at most one target. Needs `num_targets <= num_queries`.

    Example:
    ```python
    boxes = np.array([[[0.2, 0.2, 0.1, 0.1], [0.7, 0.7, 0.3, 0.3]]], "float32")
    match = keras_seq.ops.hungarian_match(
        np.zeros((1, 2, 4), "float32"), boxes, np.array([[2, -1]]), boxes[:, ::-1]
    )
    np.testing.assert_array_equal(match[0], [[0, 0], [1, 0]])
    ```
    """
    if target_mask is None:
        target_mask = ops.greater_equal(target_labels, 0)
    cost = detr_matching_cost(
        logits, boxes, target_labels, target_boxes, class_weight, l1_weight, giou_weight
    )
    return linear_sum_assignment(ops.stop_gradient(cost), target_mask)
