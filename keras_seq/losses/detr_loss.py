"""DETR's set-prediction loss: Hungarian matching, then class, L1 and GIoU terms.

Letter legend for shape comments: B batch, L decoder layers with outputs (the last one and
the auxiliary ones), Q queries, T target slots (padded), C classes including "no object".
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.ops.boxes import box_cxcywh_to_xyxy
from keras_seq.ops.boxes import generalized_box_iou
from keras_seq.ops.detection_matching import hungarian_match
from keras_seq.utils.distribute import cross_replica_sum
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_non_negative_float
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.value_checks import check_values

REDUCTIONS = ("sum", "none")


def check_detection_targets(y_true, num_classes):
    """`(labels, boxes)` of `y_true`, checked, as int32 and float32.

    Labels must be class ids in `[0, num_classes)` (whole numbers) or `-1` for padding: an
    id `>= num_classes` would zero its target's class term (its one-hot row is empty) and
    the "no object" id `num_classes` would be trained as a real class. The boxes of real
    targets must be normalized `(cx, cy, w, h)` with each value in `[0, 1]` (pixels, or
    negative sizes, give wrong matches and GIoU terms that train); every box, padding
    included, must be finite (a NaN makes the whole loss NaN). See
    `keras_seq.utils.value_checks.check_values` for when (eagerly, in a graph) and how the
    checks raise.
    """
    labels = y_true["labels"]
    invalid = ops.logical_and(
        ops.not_equal(labels, -1),
        ops.logical_or(ops.less(labels, 0), ops.greater_equal(labels, num_classes)),
    )
    if "float" in keras.backend.standardize_dtype(labels.dtype):
        invalid = ops.logical_or(invalid, ops.logical_not(ops.equal(labels, ops.floor(labels))))
    labels = check_values(
        "y_true['labels']",
        labels,
        invalid,
        "hold class ids in [0, num_classes) or -1 for padding (the last logit, "
        "num_classes, is 'no object' and no target's label)",
        f"num_classes={num_classes}",
    )
    labels = ops.cast(labels, "int32")
    boxes = ops.cast(y_true["boxes"], "float32")
    in_unit_range = ops.all(
        ops.logical_and(ops.greater_equal(boxes, 0.0), ops.less_equal(boxes, 1.0)), axis=-1
    )  # (B, T); False for NaN
    finite = ops.all(ops.isfinite(boxes), axis=-1)  # (B, T)
    invalid = ops.logical_or(
        ops.logical_not(finite),
        ops.logical_and(ops.greater_equal(labels, 0), ops.logical_not(in_unit_range)),
    )
    boxes = check_values(
        "y_true['boxes']",
        boxes,
        invalid,
        "hold normalized (cx, cy, w, h) boxes: each value in [0, 1] for a real target "
        "(divide pixel boxes by the image size; widths and heights >= 0), finite in padding "
        "slots",
    )
    return labels, boxes


@keras_seq_export
class DETRLoss(keras.losses.Loss):
    """DETR's loss: match predictions to targets one-to-one, then score the matched pairs.

    For every decoder output (the final one and, with `auxiliary_loss=True`, each earlier
    layer's), queries are matched to the real targets by `keras_seq.ops.hungarian_match`
    (costs weighted `class_weight`, `l1_weight`, `giou_weight`), and the loss adds:
    - cross-entropy of every query's logits against its matched label, or "no object" (the
      last class) for unmatched queries, which weigh `no_object_weight`; divided by the sum
      of the query weights (PyTorch's weighted mean, as in the original);
    - `l1_weight` x the L1 distance of matched boxes and `giou_weight` x `(1 - GIoU)`,
      summed over matched pairs and divided by the number of target boxes (at least 1).
    Both normalizers are counted over the global batch: under `tf.distribute` they are
    summed across replicas, so the loss and its gradients equal single-device training
    (the original divides by the number of boxes but averages the cross-entropy per
    replica). Matching is exact, batched and compiles with XLA; keras_hub has no DETR loss.

    Use it with `keras_seq.models.DETRObjectDetector`, whose `compute_loss` hands it the
    whole output and target dicts (Keras would otherwise pair a single loss with each
    output).

    Targets are checked: labels must be class ids in `[0, num_classes)` or `-1` (padding),
    where `num_classes` is `y_pred["logits"].shape[-1] - 1` (the last logit is "no object",
    never a target's label); the boxes of real targets must be normalized, each value in
    `[0, 1]` (not pixels; widths and heights >= 0), and every box finite. Otherwise a label
    `>= num_classes` silently drops its class term, the "no object" id trains as a real
    class and a NaN box makes the loss NaN. Called eagerly (or with `run_eagerly=True`) a
    bad target raises `ValueError` naming it, its position and value; in a `tf.function`
    graph (`fit` without XLA, the default on CPU) the step fails with
    `tf.errors.InvalidArgumentError` and the same message. Under XLA (`jit_compile=True`)
    the compiler drops the checks: run a step without XLA to check a data set.

    Args:
        class_weight: float >= 0. Weight of the class term in matching and in the loss.
            Defaults to `1.0`.
        l1_weight: float >= 0. Weight of the L1 box term. Defaults to `5.0`.
        giou_weight: float >= 0. Weight of the GIoU term. Defaults to `2.0`.
        no_object_weight: float > 0. Cross-entropy weight of queries matched to nothing.
            Defaults to `0.1`.
        auxiliary_loss: bool. Also apply the loss to the auxiliary decoder outputs
            (`"aux_logits"`, `"aux_boxes"`) when `y_pred` has them. Defaults to `True`.
        reduction: `"sum"` (the loss, a scalar) or `"none"` (each example's share,
            `(batch_size,)`, summing to the loss). Defaults to `"sum"`.
        name: str. Defaults to `"detr_loss"`.

    Call arguments:
        y_true: dict `{"boxes": float (batch_size, num_targets, 4) normalized (cx, cy, w,
            h), "labels": int (batch_size, num_targets)}`, label `-1` in padding slots;
            `num_targets <= num_queries`. Checked, see "Targets" above.
        y_pred: dict `{"logits": (batch_size, num_queries, num_classes + 1), "boxes":
            (batch_size, num_queries, 4)}` and optionally `"aux_logits"` / `"aux_boxes"`
            with a layer axis after the batch, as `keras_seq.models.DETRObjectDetector`
            returns.
        sample_weight: not supported (must be `None`).

    Returns:
        float32 scalar, or `(batch_size,)` with `reduction="none"`.

    Example:
    ```python
    loss = keras_seq.losses.DETRLoss()
    y_true = {"boxes": np.array([[[0.5, 0.5, 0.2, 0.2], [0, 0, 0, 0]]], "float32"),
              "labels": np.array([[1, -1]])}
    y_pred = {"logits": np.random.randn(1, 3, 4).astype("float32"),
              "boxes": np.random.rand(1, 3, 4).astype("float32")}
    value = loss(y_true, y_pred)  # one target box: terms divided by 1
    ```

    References:
        - [Carion et al., 2020](https://arxiv.org/abs/2005.12872) (DETR)
    """

    def __init__(
        self,
        class_weight=1.0,
        l1_weight=5.0,
        giou_weight=2.0,
        no_object_weight=0.1,
        auxiliary_loss=True,
        reduction="sum",
        name="detr_loss",
    ):
        class_weight = validate_non_negative_float("class_weight", class_weight)
        l1_weight = validate_non_negative_float("l1_weight", l1_weight)
        giou_weight = validate_non_negative_float("giou_weight", giou_weight)
        no_object_weight = validate_positive_float("no_object_weight", no_object_weight)
        validate_bool("auxiliary_loss", auxiliary_loss)
        reduction = validate_choice("reduction", reduction, REDUCTIONS)
        # Always float32: matching and logs are computed in float32 under mixed precision.
        super().__init__(name=name, reduction=reduction, dtype="float32")
        self.class_weight = class_weight
        self.l1_weight = l1_weight
        self.giou_weight = giou_weight
        self.no_object_weight = no_object_weight
        self.auxiliary_loss = auxiliary_loss

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                "DETRLoss does not take `sample_weight`: the loss of an image is a sum over "
                "its matched boxes. Received: a sample_weight"
            )
        with keras.name_scope(self.name):
            losses = self.call(y_true, y_pred)
            return ops.sum(losses) if self.reduction == "sum" else losses

    def _levels(self, y_pred):
        """`(logits, boxes)` of each decoder output the loss applies to."""
        levels = [(y_pred["logits"], y_pred["boxes"])]
        if self.auxiliary_loss and "aux_logits" in y_pred:
            num_aux = y_pred["aux_logits"].shape[1]
            levels += [
                (y_pred["aux_logits"][:, i], y_pred["aux_boxes"][:, i]) for i in range(num_aux)
            ]
        return levels

    def components(self, y_true, y_pred):
        """The unweighted terms of the final output: `{"class", "l1", "giou"}` scalars.

        Each is normalized as in the loss (class by the query weights, the box terms by
        the number of boxes); the loss is `class_weight * class + l1_weight * l1 +
        giou_weight * giou` plus the same for each auxiliary output.
        """
        target_labels, target_boxes = check_detection_targets(
            y_true, y_pred["logits"].shape[-1] - 1
        )
        logits = ops.cast(y_pred["logits"], "float32")
        boxes = ops.cast(y_pred["boxes"], "float32")
        terms = self._terms(logits, boxes, target_labels, target_boxes)
        return {name: ops.sum(value) for name, value in zip(("class", "l1", "giou"), terms)}

    def _match(self, logits, boxes, target_labels, target_boxes, target_mask):
        """One-hot matching `(B, Q, T)` of one decoder output (overridable, e.g. by the
        benchmark's SciPy reference matcher)."""
        return hungarian_match(
            logits,
            boxes,
            target_labels,
            target_boxes,
            target_mask,
            self.class_weight,
            self.l1_weight,
            self.giou_weight,
        )

    def _terms(self, logits, boxes, target_labels, target_boxes):
        """Per-example class, L1 and GIoU terms `(B,)` of one decoder output, normalized."""
        target_mask = ops.greater_equal(target_labels, 0)  # (B, T)
        num_classes = logits.shape[-1] - 1  # the last class is "no object"
        assignment = self._match(logits, boxes, target_labels, target_boxes, target_mask)
        matched = ops.sum(assignment, axis=-1)  # (B, Q): 1 where the query has a target
        # Class target of each query: its target's label, or "no object".
        labels = ops.cast(ops.maximum(target_labels, 0), "float32")
        query_labels = ops.einsum("bqt,bt->bq", assignment, labels) + (1 - matched) * num_classes
        query_labels = ops.cast(ops.round(query_labels), "int32")
        log_probabilities = ops.log_softmax(logits, axis=-1)  # (B, Q, C)
        cross_entropy = -ops.sum(
            ops.one_hot(query_labels, num_classes + 1, dtype="float32") * log_probabilities,
            axis=-1,
        )  # (B, Q)
        weights = matched + (1 - matched) * self.no_object_weight
        class_term = ops.sum(weights * cross_entropy, axis=-1) / cross_replica_sum(ops.sum(weights))
        # Box terms over matched pairs, normalized by the global number of boxes.
        num_boxes = ops.maximum(cross_replica_sum(ops.sum(ops.cast(target_mask, "float32"))), 1.0)
        # Each query's matched target box (zeros for unmatched queries): (B, Q, 4)
        matched_boxes = ops.einsum("bqt,btk->bqk", assignment, target_boxes)
        l1 = ops.sum(ops.abs(boxes - matched_boxes), axis=-1) * matched  # (B, Q)
        l1_term = ops.sum(l1, axis=-1) / num_boxes
        giou = generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(target_boxes))
        giou_term = ops.sum(assignment * (1.0 - giou), axis=(1, 2)) / num_boxes
        return class_term, l1_term, giou_term

    def call(self, y_true, y_pred):
        target_labels, target_boxes = check_detection_targets(
            y_true, y_pred["logits"].shape[-1] - 1
        )
        total = 0.0
        for logits, boxes in self._levels(y_pred):
            class_term, l1_term, giou_term = self._terms(
                ops.cast(logits, "float32"), ops.cast(boxes, "float32"), target_labels, target_boxes
            )
            total = total + (
                self.class_weight * class_term
                + self.l1_weight * l1_term
                + self.giou_weight * giou_term
            )
        return total  # (B,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "class_weight": self.class_weight,
                "l1_weight": self.l1_weight,
                "giou_weight": self.giou_weight,
                "no_object_weight": self.no_object_weight,
                "auxiliary_loss": self.auxiliary_loss,
            }
        )
        return config
