"""COCO mean average precision of box detections, in NumPy on the host (e.g. DETR evaluation)."""

# Shapes: N images, K detections per image, M ground-truth slots per image, T IoU thresholds,
# R recall points, C classes, D detections kept for evaluation (over all images).

from collections.abc import Mapping

import keras
import numpy as np

from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_int

# pycocotools' Params.setDetParams: linspace, not arange, so that 0.75 is exactly 0.75.
_COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)
# pycocotools' "all" area range: ground truth and unmatched detections outside it are ignored.
_ALL_AREAS = (0.0, 1e5**2)
_COCO_AREA_RANGES = {
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
# Our box format names -> keras.utils.bounding_boxes' names.
_BOX_FORMATS = {"xyxy": "xyxy", "xywh": "xywh", "cxcywh": "center_xywh"}
_MAX_CHUNK_ELEMENTS = 4_000_000  # IoU entries (float64) held at once: 32 MB


def mean_average_precision(
    predictions,
    ground_truth,
    box_format="xyxy",
    iou_thresholds=None,
    max_detections=100,
    num_classes=None,
    area_ranges=None,
):
    """COCO mean average precision (and recall) of box detections, as pycocotools computes it.

    Evaluates a padded batch of detections (e.g. DETR's queries after post-processing) against
    a padded batch of labelled ground-truth boxes, with the semantics of pycocotools'
    `COCOeval(iouType="bbox")` for non-crowd objects: per image and class, detections are
    sorted by score (descending, stable: ties keep their order in `predictions`) and only the
    first `max_detections` are kept (the limit applies per image *and class*, as in
    pycocotools; it never bites when an image has at most `max_detections` detections in
    all, like DETR's 100 queries). At each IoU threshold every detection, in score order,
    is matched greedily to the still unmatched ground-truth box of its class with the
    highest IoU >= the threshold (ties go to the later box, as in pycocotools' loop). Over
    all images, a class's detections are ranked by score (ties: earlier image first), its
    precision is made monotone (non-increasing in recall) and sampled at the 101 recalls
    `0, 0.01, ..., 1` (the first rank whose recall reaches each point, precision 0 beyond
    the largest recall reached); the average of those 101 values is the class's AP at that
    threshold. `"map"` averages AP over the thresholds and over the classes that have ground
    truth; classes without any ground-truth object are excluded (false positives of such a
    class count nowhere), as in COCO. The results equal pycocotools' `precision` and
    `recall` arrays (area range `"all"`, last `maxDets`) to rounding.

    IoU is scale-invariant, so boxes may be normalized to `[0, 1]` or in pixels, but
    predictions and ground truth must use the same units (and `area_ranges` are in the
    squared units of the boxes: COCO's are in pixels). Not supported: crowd regions
    (`iscrowd`; every object is a regular one), segmentation masks and keypoints.
    Matching runs vectorized over images and thresholds (a loop over the detection rank
    only); a few thousand images with 100 detections each take seconds.

    This is keras_seq's only mAP, and it does not call pycocotools, for what it adds: no
    dependency (pycocotools is needed only by the tests that compare the two on random
    and edge cases); it takes the padded batches that `predict` and `postprocess` return
    (arrays or tensors, `-1` labels as padding) instead of COCO JSON files or per-image
    dictionaries; and it is vectorized over images and thresholds. It runs in NumPy on the
    host, not in the graph (`keras_seq.metrics.evaluate_detection` runs it over a dataset).

    Args:
        predictions: dict of arrays (or tensors) for N images with K detections each:
            `"boxes"` float `(num_images, num_detections, 4)` in `box_format`, `"scores"`
            float `(num_images, num_detections)` and `"labels"` int
            `(num_images, num_detections)` class ids in `[0, num_classes)`; a label of `-1`
            marks padding, ignored.
        ground_truth: dict of arrays for the same images: `"boxes"` float
            `(num_images, max_objects, 4)` and `"labels"` int `(num_images, max_objects)`,
            `-1` marking padding; optionally `"areas"` float `(num_images, max_objects)`,
            the object areas used by `area_ranges` (COCO's annotations hold mask areas),
            by default the box areas.
        box_format: str. `"xyxy"` (corners), `"xywh"` (top-left corner and size, COCO's
            JSON format) or `"cxcywh"` (centre and size, DETR's), for both inputs.
            Defaults to `"xyxy"`.
        iou_thresholds: `None` or sequence of floats in (0, 1). Thresholds `"map"` and
            `"per_class"` average over. Defaults to `None`: COCO's `0.5, 0.55, ..., 0.95`.
            `"map_50"` and `"map_75"` are always at IoU 0.5 and 0.75.
        max_detections: int. Detections kept per image and class (highest scores first).
            Defaults to `100`.
        num_classes: `None` or int. Number of classes; every label must be below it.
            Defaults to `None`: one more than the largest label in either input.
        area_ranges: `None`, `"coco"` or dict of name to `(min_area, max_area)`. Extra
            evaluations restricted to objects whose area lies in the range (inclusive):
            other ground truth, and unmatched detections whose box area lies outside, are
            ignored. `"coco"` is COCO's `{"small": (0, 32**2), "medium": (32**2, 96**2),
            "large": (96**2, 1e5**2)}`, for boxes in pixels. Names must be identifiers.
            Defaults to `None` (none).

    Returns:
        dict: `"map"` float, AP averaged over `iou_thresholds` and classes with ground
        truth; `"map_50"`, `"map_75"` floats, the same at one threshold;
        `"mar_{max_detections}"` (e.g. `"mar_100"`) float, the recall reached, averaged the
        same way; `"per_class"` float64 array `(num_classes,)`, each class's AP averaged
        over `iou_thresholds`; with `area_ranges`, `"map_{name}"` and `"mar_{name}"` for
        each range. Every value is `-1` where no ground truth exists (COCO's convention).

    Example:
    ```python
    ground_truth = {
        "boxes": np.array([[[10, 10, 50, 50], [60, 60, 90, 90]]], "float32"),
        "labels": np.array([[0, 1]]),
    }
    predictions = {  # a false positive of class 0 ranked above the true one
        "boxes": np.array([[[0, 60, 20, 90], [12, 12, 50, 52], [60, 60, 90, 90]]], "float32"),
        "scores": np.array([[0.9, 0.8, 0.7]]),
        "labels": np.array([[0, 0, 1]]),
    }
    result = keras_seq.metrics.mean_average_precision(predictions, ground_truth)
    # Class 0: precision 1/2 at recall 1, so AP 0.5 (IoU 0.86: missed at 0.9 and 0.95).
    np.testing.assert_allclose(result["per_class"], [0.5 * 8 / 10, 1.0])
    np.testing.assert_allclose(result["map_50"], (0.5 + 1.0) / 2)
    np.testing.assert_allclose(result["mar_100"], (8 / 10 + 1.0) / 2)
    ```

    References:
        - [Lin et al., 2014. Microsoft COCO: Common Objects in Context](https://arxiv.org/abs/1405.0312)
        - pycocotools `COCOeval`: https://github.com/cocodataset/cocoapi
    """
    box_format = validate_choice("box_format", box_format, _BOX_FORMATS)
    max_detections = validate_positive_int("max_detections", max_detections)
    if num_classes is not None:
        num_classes = validate_positive_int("num_classes", num_classes)
    thresholds = _check_iou_thresholds(iou_thresholds)
    ranges = _check_area_ranges(area_ranges)
    pred_boxes, scores, pred_labels = _check_inputs(
        "predictions", predictions, ("boxes", "scores", "labels")
    )
    gt_boxes, gt_labels, gt_areas = _check_inputs(
        "ground_truth", ground_truth, ("boxes", "labels"), optional="areas"
    )
    if pred_boxes.shape[0] != gt_boxes.shape[0]:
        raise ValueError(
            "`predictions` and `ground_truth` must hold the same number of images. Received: "
            f"{pred_boxes.shape[0]} and {gt_boxes.shape[0]} images"
        )
    pred_boxes = _to_corners_and_sizes("predictions", pred_boxes, pred_labels, box_format)
    gt_boxes = _to_corners_and_sizes("ground_truth", gt_boxes, gt_labels, box_format)
    largest_label = max(pred_labels.max(initial=-1), gt_labels.max(initial=-1))
    if num_classes is None:
        num_classes = int(largest_label) + 1
    elif largest_label >= num_classes:
        raise ValueError(
            "Every label must be below `num_classes`. Received: num_classes="
            f"{num_classes} and a label {largest_label}"
        )
    if gt_areas is None:
        gt_areas = gt_boxes[..., 4] * gt_boxes[..., 5]

    # All thresholds evaluated: the requested ones and COCO's 0.5 and 0.75.
    eval_thresholds = np.unique(np.concatenate([thresholds, [0.5, 0.75]]))  # (T,)
    mean_index = np.searchsorted(eval_thresholds, thresholds)
    index_50, index_75 = np.searchsorted(eval_thresholds, [0.5, 0.75])

    detections = _prepare(pred_boxes, scores, pred_labels, max_detections)
    gt_boxes, gt_labels, gt_areas = _compact(gt_boxes, gt_labels, gt_areas)
    all_ranges = {"all": _ALL_AREAS, **ranges}
    matches = {name: [] for name in all_ranges}  # per range, (B, K, T) per chunk of images
    num_images, num_kept, num_objects = (*detections["labels"].shape, gt_labels.shape[1])
    chunk = max(1, _MAX_CHUNK_ELEMENTS // max(1, num_kept * num_objects))
    for start in range(0, num_images, chunk):
        part = slice(start, start + chunk)
        iou = _same_class_iou(
            detections["boxes"][part], detections["labels"][part], gt_boxes[part], gt_labels[part]
        )  # (B, K, M)
        for name, (low, high) in all_ranges.items():
            ignore = (gt_areas[part] < low) | (gt_areas[part] > high)
            matches[name].append(_match(iou, detections["active"][part], ignore, eval_thresholds))

    result = {}
    for name, (low, high) in all_ranges.items():
        matched_gt = (
            np.concatenate(matches[name])
            if matches[name]
            else np.zeros((0, num_kept, eval_thresholds.size), "int64")
        )  # (N, K, T)
        ignore = (gt_areas < low) | (gt_areas > high) | (gt_labels < 0)
        precision, recall = _accumulate(
            detections, matched_gt, ignore, gt_labels, (low, high), num_classes
        )  # (T, R, C), (T, C)
        if name != "all":
            result[f"map_{name}"] = _mean_of_valid(precision[mean_index])
            result[f"mar_{name}"] = _mean_of_valid(recall[mean_index])
        else:
            result["map"] = _mean_of_valid(precision[mean_index])
            result["map_50"] = _mean_of_valid(precision[index_50])
            result["map_75"] = _mean_of_valid(precision[index_75])
            per_class = precision[mean_index].mean(axis=(0, 1))
            result["per_class"] = np.where(recall[0] > -1, per_class, -1.0)
            result[f"mar_{max_detections}"] = _mean_of_valid(recall[mean_index])
    return result


def _mean_of_valid(values):
    """COCO's summary: the mean of the entries that are not -1 (absent classes), else -1."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def _check_iou_thresholds(iou_thresholds):
    if iou_thresholds is None:
        return _COCO_IOU_THRESHOLDS
    expected = "None or a non-empty sequence of floats in (0, 1)"
    try:
        thresholds = np.asarray(iou_thresholds, dtype="float64")
    except (TypeError, ValueError):
        thresholds = None
    if thresholds is None or thresholds.ndim != 1:
        raise TypeError(
            f"`iou_thresholds` must be {expected}. Received: iou_thresholds={iou_thresholds!r} "
            f"of type {type(iou_thresholds).__name__}"
        )
    if thresholds.size == 0 or not np.all((thresholds > 0) & (thresholds < 1)):
        raise ValueError(
            f"`iou_thresholds` must be {expected}. Received: iou_thresholds={iou_thresholds!r}"
        )
    return thresholds


def _check_area_ranges(area_ranges):
    if area_ranges is None:
        return {}
    if isinstance(area_ranges, str):
        area_ranges = validate_choice("area_ranges", area_ranges, ("coco",))
        return dict(_COCO_AREA_RANGES)
    ranges = {}
    if isinstance(area_ranges, Mapping) and area_ranges:
        for name, bounds in area_ranges.items():
            try:
                low, high = (float(bound) for bound in bounds)
            except (TypeError, ValueError):
                break
            if not (isinstance(name, str) and name.isidentifier() and name != "all"):
                break
            if not 0 <= low <= high:
                break
            ranges[name] = (low, high)
    if not ranges or len(ranges) != len(area_ranges):
        raise ValueError(
            '`area_ranges` must be None, "coco" or a non-empty dict of identifier names '
            '(not "all") to (min_area, max_area) with 0 <= min_area <= max_area. '
            f"Received: area_ranges={area_ranges!r}"
        )
    return ranges


def _check_inputs(argument, inputs, keys, optional=None):
    """The arrays of `inputs[key]` for `keys` (+ `optional` or None), checked for shape."""
    if not isinstance(inputs, Mapping):
        raise TypeError(
            f"`{argument}` must be a dict with keys {list(keys)}. Received: {argument} of "
            f"type {type(inputs).__name__}"
        )
    if not all(key in inputs for key in keys):
        raise ValueError(
            f"`{argument}` must be a dict with keys {list(keys)}. Received: {sorted(inputs)}"
        )
    names = list(keys) + ([optional] if optional else [])
    arrays = []
    for name in names:
        try:
            arrays.append(np.asarray(inputs[name]) if name in inputs else None)
        except ValueError as error:  # ragged nested lists
            raise ValueError(
                f"`{argument}['{name}']` must be a padded array (pad with label -1). "
                f"Received an object NumPy cannot convert: {error}"
            ) from None
    boxes = arrays[0]
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(
            f"`{argument}['boxes']` must have shape (num_images, num_boxes, 4). "
            f"Received: shape={boxes.shape}"
        )
    for name, array in zip(names[1:], arrays[1:]):
        if array is not None and array.shape != boxes.shape[:2]:
            raise ValueError(
                f"`{argument}['{name}']` must have shape {boxes.shape[:2]} (that of "
                f"`{argument}['boxes']` without its last axis). Received: shape={array.shape}"
            )
    labels = arrays[names.index("labels")]
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"`{argument}['labels']` must hold integer class ids >= 0, or -1 for padding. "
            f"Received: dtype={labels.dtype}"
        )
    if (labels < -1).any():
        raise ValueError(
            f"`{argument}['labels']` must hold integer class ids >= 0, or -1 for padding. "
            f"Received: smallest label {labels.min()}"
        )
    if not np.issubdtype(boxes.dtype, np.number):
        raise TypeError(f"`{argument}['boxes']` must hold numbers. Received: dtype={boxes.dtype}")
    checked = [boxes.astype("float64")]
    for name, array in zip(names[1:], arrays[1:]):
        if array is None or name == "labels":
            checked.append(array if array is None else array.astype("int64"))
            continue
        if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array[labels >= 0]).all():
            raise ValueError(
                f"`{argument}['{name}']` must hold finite numbers where the label is not -1. "
                f"Received: dtype={array.dtype}"
            )
        checked.append(array.astype("float64"))
    return checked


def _to_corners_and_sizes(argument, boxes, labels, box_format):
    """`(..., 4)` boxes in `box_format` -> `(..., 6)`: x1, y1, x2, y2, width, height.

    The corners come from `keras.utils.bounding_boxes.convert_format` (in float64); the sizes
    are the given ones where the format has them, as pycocotools takes a box's area from its
    width and height rather than from its corners.
    """
    corners = keras.ops.convert_to_numpy(
        keras.utils.bounding_boxes.convert_format(
            boxes, _BOX_FORMATS[box_format], "xyxy", dtype="float64"
        )
    )
    sizes = corners[..., 2:] - corners[..., :2] if box_format == "xyxy" else boxes[..., 2:]
    real = labels >= 0
    bad = ~np.isfinite(boxes).all(axis=-1) | (sizes < 0).any(axis=-1)  # NaN sizes: not < 0
    if (bad & real).any():
        example = boxes[bad & real][0].tolist()
        raise ValueError(
            f"`{argument}['boxes']` must hold finite {box_format} boxes of non-negative width "
            f"and height where the label is not -1; check `box_format`. Received: "
            f"box_format={box_format!r} and the box {example}"
        )
    return np.concatenate([corners, sizes], axis=-1)


def _prepare(boxes, scores, labels, max_detections):
    """Sort each image's detections by score and mark the top `max_detections` per class.

    Returns a dict of `(N, K)` arrays (`(N, K, 6)` boxes) with K cut to the most real
    detections of any image, real ones first in stable descending score order.
    """
    real = labels >= 0
    # lexsort: last key first; stable, so score ties keep their order in `predictions`.
    order = np.lexsort((-scores, ~real), axis=-1)[:, : int(real.sum(axis=1).max(initial=0))]
    labels = np.take_along_axis(labels, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    boxes = np.take_along_axis(boxes, order[..., None], axis=1)
    num_images, num_kept = labels.shape
    # Rank of each detection among those of its image and class, in score order.
    image = np.repeat(np.arange(num_images), num_kept)
    position = np.tile(np.arange(num_kept), num_images)
    flat = np.lexsort((position, labels.ravel(), image))  # groups of (image, label)
    sorted_image, sorted_label = image[flat], labels.ravel()[flat]
    new_group = np.ones(flat.size, bool)
    new_group[1:] = (sorted_image[1:] != sorted_image[:-1]) | (
        sorted_label[1:] != sorted_label[:-1]
    )
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(flat.size), 0))
    rank = np.empty(flat.size, "int64")
    rank[flat] = np.arange(flat.size) - group_start
    active = (labels >= 0) & (rank.reshape(labels.shape) < max_detections)
    return {"boxes": boxes, "scores": scores, "labels": labels, "active": active}


def _compact(boxes, labels, areas):
    """Ground truth with real objects first (in their order), cut to the most of any image."""
    real = labels >= 0
    order = np.argsort(~real, axis=1, kind="stable")[:, : int(real.sum(axis=1).max(initial=0))]
    return (
        np.take_along_axis(boxes, order[..., None], axis=1),  # (N, M, 6)
        np.take_along_axis(labels, order, axis=1),  # (N, M)
        np.take_along_axis(areas, order, axis=1),  # (N, M)
    )


def _same_class_iou(boxes, labels, gt_boxes, gt_labels):
    """`(B, K, M)` IoU of each detection with each ground truth, 0 across classes.

    Computed as pycocotools' `bbIou` (no +1 on sizes; 0 unless the overlap has positive
    width and height).
    """
    d, g = boxes[:, :, None, :], gt_boxes[:, None, :, :]  # (B, K, 1, 6), (B, 1, M, 6)
    width = np.minimum(d[..., 2], g[..., 2]) - np.maximum(d[..., 0], g[..., 0])
    height = np.minimum(d[..., 3], g[..., 3]) - np.maximum(d[..., 1], g[..., 1])
    overlap = (width > 0) & (height > 0) & (labels[:, :, None] == gt_labels[:, None, :])
    intersection = np.where(overlap, width * height, 0.0)
    union = d[..., 4] * d[..., 5] + g[..., 4] * g[..., 5] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=overlap)


def _match(iou, active, gt_ignore, thresholds):
    """Greedy COCO matching; `(B, K, T)` index of the matched ground truth, or -1.

    Detections (already in score order) take, one rank at a time for all images and
    thresholds at once, the unmatched ground truth with the highest IoU >= the threshold,
    the last one among ties; regular objects before ignored ones (pycocotools' loop over
    ground truth sorted with ignored objects last, which stops at the first ignored one once
    a regular object matched).
    """
    num_images, num_kept, num_objects = iou.shape
    thresholds = np.minimum(thresholds, 1 - 1e-10)  # pycocotools' min([t, 1 - 1e-10])
    taken = np.zeros((num_images, thresholds.size, num_objects), bool)  # (B, T, M)
    matched = np.full((num_images, num_kept, thresholds.size), -1, "int64")  # (B, K, T)
    if num_objects == 0:
        return matched
    can_match = active & (iou.max(axis=-1) >= thresholds.min())  # (B, K)
    has_ignored = bool(gt_ignore.any())
    for rank in range(num_kept):
        rows = np.flatnonzero(can_match[:, rank])
        if rows.size == 0:
            continue
        ious = iou[rows, rank][:, None, :]  # (b, 1, M)
        candidate = (ious >= thresholds[:, None]) & ~taken[rows]  # (b, T, M)
        if has_ignored:
            ignored = gt_ignore[rows][:, None, :]
            best = _last_best(ious, candidate & ~ignored)
            best = np.where(best >= 0, best, _last_best(ious, candidate & ignored))
        else:
            best = _last_best(ious, candidate)  # (b, T)
        row, threshold = np.nonzero(best >= 0)
        taken[rows[row], threshold, best[row, threshold]] = True
        matched[rows, rank] = best
    return matched


def _last_best(ious, candidate):
    """`(b, T)` index of the candidate with the highest IoU (the last among ties), or -1."""
    values = np.where(candidate, ious, -1.0)[..., ::-1]
    best = values.shape[-1] - 1 - np.argmax(values, axis=-1)
    return np.where(candidate.any(axis=-1), best, -1)


def _accumulate(detections, matched_gt, gt_ignore, gt_labels, area_range, num_classes):
    """`(T, R, C)` interpolated precision and `(T, C)` recall, -1 for classes without objects."""
    num_thresholds = matched_gt.shape[-1]
    precision = -np.ones((num_thresholds, _RECALL_POINTS.size, num_classes))
    recall = -np.ones((num_thresholds, num_classes))
    num_objects = np.bincount(gt_labels[~gt_ignore], minlength=num_classes)  # (C,)

    image, position = np.nonzero(detections["active"])  # (D,) each, row-major order
    labels = detections["labels"][image, position]
    scores = detections["scores"][image, position]
    boxes = detections["boxes"][image, position]
    matched_gt = matched_gt[image, position].T  # (T, D)
    is_matched = matched_gt >= 0
    if gt_ignore.shape[1]:
        matched_ignored = gt_ignore[image[None, :], np.maximum(matched_gt, 0)] & is_matched
    else:
        matched_ignored = is_matched  # all False: nothing to match
    area = boxes[:, 4] * boxes[:, 5]
    outside = (area < area_range[0]) | (area > area_range[1])
    ignored = matched_ignored | (~is_matched & outside)  # (T, D)
    # By class, then score (descending), then image, then rank in the image: pycocotools'
    # stable sort of the per-image lists concatenated in image order.
    order = np.lexsort((position, image, -scores, labels))
    labels, is_matched, ignored = labels[order], is_matched[:, order], ignored[:, order]
    bounds = np.searchsorted(labels, np.arange(num_classes + 1))
    for label in np.flatnonzero(num_objects):
        segment = slice(bounds[label], bounds[label + 1])
        true_positives = np.cumsum(is_matched[:, segment] & ~ignored[:, segment], axis=1)
        false_positives = np.cumsum(~is_matched[:, segment] & ~ignored[:, segment], axis=1)
        true_positives = true_positives.astype(float)
        false_positives = false_positives.astype(float)
        recalls = true_positives / num_objects[label]  # (T, Dk)
        precisions = true_positives / (false_positives + true_positives + np.spacing(1))
        num_detections = recalls.shape[1]
        if num_detections == 0:
            recall[:, label] = 0.0
            precision[:, :, label] = 0.0
            continue
        recall[:, label] = recalls[:, -1]
        monotone = np.maximum.accumulate(precisions[:, ::-1], axis=1)[:, ::-1]
        for threshold in range(num_thresholds):
            index = np.searchsorted(recalls[threshold], _RECALL_POINTS, side="left")  # (R,)
            sampled = monotone[threshold, np.minimum(index, num_detections - 1)]
            precision[threshold, :, label] = np.where(index < num_detections, sampled, 0.0)
    return precision, recall
