"""DETRLoss against a NumPy + SciPy transcription of DETR's criterion; invariances; errors."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linear_sum_assignment as scipy_assignment

from keras_seq import losses
from tests.ops.test_detection_matching import numpy_cost
from tests.ops.test_detection_matching import numpy_giou
from tests.ops.test_detection_matching import random_problem

RNG = np.random.default_rng(9)


def make_batch(batch_size=3, num_queries=6, num_targets=4, num_classes=3, num_aux=2):
    logits, boxes, labels, target_boxes = random_problem(
        batch_size, num_queries, num_targets, num_classes
    )
    labels[0, 2:] = -1
    labels[2, :] = -1  # no objects
    target_boxes[labels < 0] = 0.0
    y_true = {"boxes": target_boxes, "labels": labels}
    y_pred = {
        "logits": logits,
        "boxes": boxes,
        "aux_logits": RNG.normal(size=(batch_size, num_aux) + logits.shape[1:]).astype("float32"),
        "aux_boxes": RNG.uniform(0.1, 0.4, (batch_size, num_aux) + boxes.shape[1:]).astype(
            "float32"
        ),
    }
    return y_true, y_pred


def numpy_detr_loss(y_true, y_pred, weights=(1.0, 5.0, 2.0), no_object=0.1, auxiliary=True):
    labels, target_boxes = y_true["labels"], y_true["boxes"]
    levels = [(y_pred["logits"], y_pred["boxes"])]
    if auxiliary:
        levels += [
            (y_pred["aux_logits"][:, i], y_pred["aux_boxes"][:, i])
            for i in range(y_pred["aux_logits"].shape[1])
        ]
    num_boxes = max((labels >= 0).sum(), 1)
    total = 0.0
    for logits, boxes in levels:
        batch_size, num_queries, num_classes = logits.shape
        cost = numpy_cost(logits, boxes, np.maximum(labels, 0), target_boxes, weights)
        query_labels = np.full((batch_size, num_queries), num_classes - 1)
        class_weights = np.full((batch_size, num_queries), no_object)
        l1 = giou = 0.0
        for b in range(batch_size):
            real = np.flatnonzero(labels[b] >= 0)
            if len(real) == 0:
                continue
            queries, columns = scipy_assignment(cost[b][:, real])
            for q, t in zip(queries, real[columns]):
                query_labels[b, q] = labels[b, t]
                class_weights[b, q] = 1.0
                l1 += np.abs(boxes[b, q] - target_boxes[b, t]).sum()
                giou += 1.0 - numpy_giou(boxes[b, q], target_boxes[b, t])
        log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        cross_entropy = -np.take_along_axis(log_probabilities, query_labels[..., None], -1)[..., 0]
        class_term = (class_weights * cross_entropy).sum() / class_weights.sum()
        total += weights[0] * class_term + (weights[1] * l1 + weights[2] * giou) / num_boxes
    return total


@pytest.mark.parametrize("auxiliary", [True, False])
def test_equals_reference(auxiliary):
    y_true, y_pred = make_batch()
    loss = losses.DETRLoss(auxiliary_loss=auxiliary)
    np.testing.assert_allclose(
        loss(y_true, y_pred), numpy_detr_loss(y_true, y_pred, auxiliary=auxiliary), rtol=1e-5
    )
    weighted = losses.DETRLoss(
        class_weight=2.0, l1_weight=1.0, giou_weight=3.0, no_object_weight=0.5
    )
    np.testing.assert_allclose(
        weighted(y_true, y_pred),
        numpy_detr_loss(y_true, y_pred, (2.0, 1.0, 3.0), no_object=0.5),
        rtol=1e-5,
    )


def test_invariant_to_permuting_queries_and_target_slots():
    y_true, y_pred = make_batch()
    loss = losses.DETRLoss()
    expected = float(loss(y_true, y_pred))
    queries = RNG.permutation(6)
    permuted_pred = {
        "logits": y_pred["logits"][:, queries],
        "boxes": y_pred["boxes"][:, queries],
        "aux_logits": y_pred["aux_logits"][:, :, queries],
        "aux_boxes": y_pred["aux_boxes"][:, :, queries],
    }
    np.testing.assert_allclose(loss(y_true, permuted_pred), expected, rtol=1e-5)
    slots = RNG.permutation(4)  # padding slots move to the front too
    permuted_true = {"boxes": y_true["boxes"][:, slots], "labels": y_true["labels"][:, slots]}
    np.testing.assert_allclose(loss(permuted_true, y_pred), expected, rtol=1e-5)


def test_no_targets_is_finite_no_object_cross_entropy():
    y_true, y_pred = make_batch()
    y_true["labels"][:] = -1
    value = float(losses.DETRLoss(auxiliary_loss=False)(y_true, y_pred))
    logits = y_pred["logits"]
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(value, -log_probabilities[..., -1].mean(), rtol=1e-5)


def test_reduction_none_sums_to_the_loss_and_gradients_are_finite():
    y_true, y_pred = make_batch()
    per_example = losses.DETRLoss(reduction="none")(y_true, y_pred)
    assert per_example.shape == (3,)
    np.testing.assert_allclose(np.sum(per_example), losses.DETRLoss()(y_true, y_pred), rtol=1e-5)
    variables = {key: tf.Variable(value) for key, value in y_pred.items()}
    with tf.GradientTape() as tape:
        value = losses.DETRLoss()(y_true, variables)
    gradients = tape.gradient(value, variables)
    for key, gradient in gradients.items():
        assert gradient is not None and np.all(np.isfinite(gradient)), key
        assert np.any(gradient), key


def test_compiles_with_xla_and_components():
    y_true, y_pred = make_batch()
    loss = losses.DETRLoss()
    compiled = tf.function(loss, jit_compile=True)
    np.testing.assert_allclose(compiled(y_true, y_pred), loss(y_true, y_pred), rtol=1e-5)
    terms = loss.components(y_true, y_pred)
    final_only = losses.DETRLoss(auxiliary_loss=False)(y_true, y_pred)
    np.testing.assert_allclose(
        terms["class"] + 5.0 * terms["l1"] + 2.0 * terms["giou"], final_only, rtol=1e-5
    )


def test_config_round_trip():
    loss = losses.DETRLoss(l1_weight=3.0, no_object_weight=0.2, auxiliary_loss=False)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, losses.DETRLoss)
    assert restored.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"l1_weight": -1.0}, ValueError, "l1_weight"),
        ({"class_weight": "1"}, TypeError, "class_weight"),
        ({"no_object_weight": 0.0}, ValueError, "no_object_weight"),
        ({"auxiliary_loss": 1}, TypeError, "auxiliary_loss"),
        ({"reduction": "mean"}, ValueError, "reduction"),
    ],
)
def test_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        losses.DETRLoss(**kwargs)


def test_sample_weight_is_an_error():
    y_true, y_pred = make_batch()
    with pytest.raises(ValueError, match="sample_weight"):
        losses.DETRLoss()(y_true, y_pred, sample_weight=np.ones(3))


# === Targets: a bad label or box is an error, not a silently wrong loss ===


def _one_target(label, box):
    y_true = {
        "boxes": np.array([[box, [0.0, 0.0, 0.0, 0.0]]], "float32"),
        "labels": np.array([[label, -1]]),
    }
    y_pred = {
        "logits": np.zeros((1, 3, 4), "float32"),  # 3 classes and "no object"
        "boxes": np.full((1, 3, 4), 0.5, "float32"),
    }
    return y_true, y_pred


GOOD_BOX = [0.5, 0.5, 0.2, 0.2]
BAD_DETR_TARGETS = [
    (3, GOOD_BOX, "y_true['labels']", "y_true['labels'][0, 0]=3"),  # the "no object" id
    (7, GOOD_BOX, "y_true['labels']", "y_true['labels'][0, 0]=7"),  # beyond the logits
    (-2, GOOD_BOX, "y_true['labels']", "y_true['labels'][0, 0]=-2"),  # padding is -1
    (1, [0.5, 0.5, -0.2, 0.2], "y_true['boxes']", "-0.2"),  # a negative width
    (1, [320.0, 240.0, 64.0, 48.0], "y_true['boxes']", "320."),  # pixels
    (1, [0.5, np.nan, 0.2, 0.2], "y_true['boxes']", "nan"),
]


@pytest.mark.parametrize("label,box,argument,value", BAD_DETR_TARGETS)
def test_bad_targets_raise_eagerly(label, box, argument, value):
    y_true, y_pred = _one_target(label, box)
    loss = losses.DETRLoss()
    with pytest.raises(ValueError, match=re.escape(f"`{argument}` must")) as info:
        loss(y_true, y_pred)
    assert value in str(info.value)
    with pytest.raises(ValueError, match=re.escape(argument)):
        loss.components(y_true, y_pred)


def test_bad_targets_fail_in_a_graph_and_good_ones_pass():
    compute = tf.function(losses.DETRLoss())
    y_true, y_pred = _one_target(2, GOOD_BOX)
    assert np.isfinite(float(compute(y_true, y_pred)))
    y_true["boxes"][0, 1, 0] = np.nan  # NaN in a padding slot would make the loss NaN
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"y_true\[boxes\].*nan"):
        compute(y_true, y_pred)
    y_true, y_pred = _one_target(3, GOOD_BOX)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"y_true\[labels\].*\[3\]"):
        compute(y_true, y_pred)
