"""Tests of `mean_average_precision`: hand-computed cases, a brute-force reference, pycocotools."""

import contextlib
import io

import keras
import numpy as np
import pytest

from keras_seq.metrics.mean_average_precision import mean_average_precision

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

COCO_THRESHOLDS = np.linspace(0.5, 0.95, 10)
COCO_AREAS = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 1e5**2)}
ALL_AREAS = (0, 1e5**2)


def _inputs(gt_boxes, gt_labels, boxes, scores, labels):
    """One image's lists -> the padded (1, ...) dicts."""
    predictions = {
        "boxes": np.array([boxes], "float64").reshape(1, -1, 4),
        "scores": np.array([scores], "float64").reshape(1, -1),
        "labels": np.array([labels], "int64").reshape(1, -1),
    }
    ground_truth = {
        "boxes": np.array([gt_boxes], "float64").reshape(1, -1, 4),
        "labels": np.array([gt_labels], "int64").reshape(1, -1),
    }
    return predictions, ground_truth


A, B, C = [0, 0, 10, 10], [20, 20, 40, 40], [50, 0, 60, 30]
FAR = [100, 100, 110, 110]  # overlaps nothing
# Precision 1 up to recall 1/2 (51 of the 101 recall points), then 2/3.
AP_TP_FP_TP = (51 + 50 * 2 / 3) / 101


def test_perfect_detections():
    predictions, ground_truth = _inputs([A, B, C], [0, 1, 1], [C, A, B], [0.3, 0.9, 0.5], [1, 0, 1])
    result = mean_average_precision(predictions, ground_truth)
    assert set(result) == {"map", "map_50", "map_75", "mar_100", "per_class"}
    for key in ("map", "map_50", "map_75", "mar_100"):
        assert result[key] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(result["per_class"], [1.0, 1.0], atol=1e-12)


HAND_COMPUTED = [  # objects, detection boxes, scores, AP at IoU 0.5, recall
    ([A], [FAR, A], [0.9, 0.8], 0.5, 1.0),  # a false positive ranked above the true one
    ([A], [A, FAR], [0.9, 0.8], 1.0, 1.0),  # ... below it: no cost
    ([A, B], [A, FAR, B], [0.9, 0.8, 0.7], AP_TP_FP_TP, 1.0),
    ([A, B], [A], [0.9], 51 / 101, 0.5),  # B missed
    ([A, B], [A, A, B], [0.9, 0.8, 0.7], AP_TP_FP_TP, 1.0),  # a duplicate is a false positive
    ([A, B], [], [], 0.0, 0.0),  # no detections at all
]


def test_hand_computed_average_precision():
    for objects, boxes, scores, expected_ap, expected_recall in HAND_COMPUTED:
        labels = [0] * len(boxes)
        predictions, ground_truth = _inputs(objects, [0] * len(objects), boxes, scores, labels)
        result = mean_average_precision(predictions, ground_truth, iou_thresholds=[0.5])
        case = f"objects={objects}, boxes={boxes}"
        assert result["map"] == pytest.approx(expected_ap, abs=1e-12), case
        assert result["map_50"] == pytest.approx(expected_ap, abs=1e-12), case
        assert result["mar_100"] == pytest.approx(expected_recall), case


def test_thresholds_count_a_loose_match_only_below_its_iou():
    # IoU of [0, 0, 10, 8] with A is 0.8: matched at 0.5 ... 0.8 (7 of COCO's 10).
    predictions, ground_truth = _inputs([A], [0], [[0, 0, 10, 8]], [0.9], [0])
    result = mean_average_precision(predictions, ground_truth)
    assert result["map"] == pytest.approx(0.7, abs=1e-12)
    assert result["mar_100"] == pytest.approx(0.7)
    assert result["map_75"] == pytest.approx(1.0, abs=1e-12)
    # At a threshold equal to the IoU it still matches (IoU >= threshold).
    result = mean_average_precision(predictions, ground_truth, iou_thresholds=[0.8, 0.81])
    assert result["map"] == pytest.approx(0.5, abs=1e-12)


def test_classes_without_ground_truth_are_excluded():
    predictions, ground_truth = _inputs([A], [0], [A, B, FAR], [0.9, 0.95, 0.99], [0, 2, 2])
    result = mean_average_precision(predictions, ground_truth, num_classes=4)
    assert result["map"] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(result["per_class"], [1.0, -1.0, -1.0, -1.0], atol=1e-12)
    # No ground truth at all: COCO's -1 everywhere.
    predictions, ground_truth = _inputs([], [], [A], [0.9], [0])
    result = mean_average_precision(predictions, ground_truth)
    assert result["map"] == result["map_50"] == result["mar_100"] == -1.0
    np.testing.assert_array_equal(result["per_class"], [-1.0])


def test_images_without_objects_or_detections_and_padding():
    # Image 0: A (class 0) found; image 1: B (class 0) missed; image 2: nothing;
    # image 3: a false positive of class 0 ranked above everything.
    predictions = {
        "boxes": np.array([[A, FAR], [FAR, FAR], [FAR, FAR], [B, FAR]], "float32"),
        "scores": np.array([[0.8, 0.0], [0.0, 0.0], [0.0, 0.0], [0.9, 0.0]]),
        "labels": np.array([[0, -1], [-1, -1], [-1, -1], [0, -1]]),
    }
    ground_truth = {
        "boxes": np.array([[A, FAR], [B, A], [FAR, FAR], [FAR, FAR]], "float32"),
        "labels": np.array([[0, -1], [0, -1], [-1, -1], [-1, -1]]),
    }
    expected = 0.5 * 51 / 101  # precision 1/2 at recall 1/2
    result = mean_average_precision(predictions, ground_truth, iou_thresholds=[0.5])
    assert result["map"] == pytest.approx(expected, abs=1e-12)
    assert result["mar_100"] == pytest.approx(0.5)
    # Padding is ignored whatever it holds, even NaN or inverted boxes.
    for inputs in (predictions, ground_truth):
        inputs["boxes"] = np.where(inputs["labels"][..., None] < 0, np.nan, inputs["boxes"])
    predictions["scores"][predictions["labels"] < 0] = np.inf
    again = mean_average_precision(predictions, ground_truth, iou_thresholds=[0.5])
    assert again["map"] == result["map"]


def test_equal_iou_goes_to_the_later_ground_truth():
    # The first detection overlaps both objects with IoU 2/3; the second only the first one
    # (IoU 3/7 with the second). pycocotools gives the tie to the later object.
    first, second = [0, 0, 10, 10], [4, 0, 14, 10]
    boxes, scores = [[2, 0, 12, 10], first], [0.9, 0.8]
    predictions, ground_truth = _inputs([first, second], [0, 0], boxes, scores, [0, 0])
    result = mean_average_precision(predictions, ground_truth, iou_thresholds=[0.5])
    assert result["map"] == pytest.approx(1.0, abs=1e-12)
    predictions, ground_truth = _inputs([second, first], [0, 0], boxes, scores, [0, 0])
    result = mean_average_precision(predictions, ground_truth, iou_thresholds=[0.5])
    assert result["map"] == pytest.approx(51 / 101, abs=1e-12)


def test_equal_scores_keep_their_order():
    # Within an image: the earlier detection ranks first.
    for boxes, expected in (([FAR, A], 0.5), ([A, FAR], 1.0)):
        predictions, ground_truth = _inputs([A], [0], boxes, [0.5, 0.5], [0, 0])
        result = mean_average_precision(predictions, ground_truth, iou_thresholds=[0.5])
        assert result["map"] == pytest.approx(expected, abs=1e-12)
    # Across images: the earlier image ranks first.
    predictions = {
        "boxes": np.array([[FAR], [A]], "float64"),
        "scores": np.array([[0.5], [0.5]]),
        "labels": np.array([[0], [0]]),
    }
    ground_truth = {"boxes": np.array([[FAR], [A]], "float64"), "labels": np.array([[-1], [0]])}
    result = mean_average_precision(predictions, ground_truth, iou_thresholds=[0.5])
    assert result["map"] == pytest.approx(0.5, abs=1e-12)
    flipped = {key: value[::-1] for key, value in predictions.items()}
    result = mean_average_precision(
        flipped, {key: value[::-1] for key, value in ground_truth.items()}, iou_thresholds=[0.5]
    )
    assert result["map"] == pytest.approx(1.0, abs=1e-12)


def test_max_detections_counts_per_image_and_class():
    # Class 0: two false positives ranked above the true one; one class-1 detection.
    boxes, scores, labels = [FAR, FAR, A, B], [0.9, 0.8, 0.7, 0.95], [0, 0, 0, 1]
    predictions, ground_truth = _inputs([A, B], [0, 1], boxes, scores, labels)
    kept = mean_average_precision(predictions, ground_truth, max_detections=3)
    np.testing.assert_allclose(kept["per_class"], [1 / 3, 1.0], atol=1e-12)
    assert set(kept) == {"map", "map_50", "map_75", "mar_3", "per_class"}
    cut = mean_average_precision(predictions, ground_truth, max_detections=2)
    np.testing.assert_allclose(cut["per_class"], [0.0, 1.0], atol=1e-12)
    assert cut["mar_2"] == pytest.approx(0.5)


def test_area_ranges():
    small, large = [0, 0, 10, 10], [0, 0, 200, 200]
    predictions, ground_truth = _inputs([small, large], [0, 0], [small], [0.9], [0])
    result = mean_average_precision(predictions, ground_truth, area_ranges="coco")
    assert result["map_small"] == pytest.approx(1.0, abs=1e-12)
    assert result["map_large"] == pytest.approx(0.0)
    assert result["map_medium"] == result["mar_medium"] == -1.0  # no medium objects
    assert result["mar_small"] == pytest.approx(1.0) and result["mar_large"] == 0.0
    # `areas` replaces the box areas of the ground truth (e.g. COCO's mask areas).
    ground_truth["areas"] = np.array([[50 * 50, 200 * 200]])
    result = mean_average_precision(predictions, ground_truth, area_ranges="coco")
    assert result["map_small"] == -1.0
    # A detection matched to an object outside the range is ignored, not a false positive.
    assert result["map_medium"] == pytest.approx(1.0, abs=1e-12)


def _regular_before_ignored():
    """A small object, and a medium one (by its given area) the detection fits better."""
    regular, medium = [0, 0, 30, 30], [3, 0, 33, 30]  # IoU 0.818
    predictions, ground_truth = _inputs([regular, medium], [0, 0], [medium], [0.9], [0])
    ground_truth["areas"] = np.array([[900.0, 5000.0]])
    return predictions, ground_truth


def test_regular_objects_match_before_ignored_ones():
    predictions, ground_truth = _regular_before_ignored()
    result = mean_average_precision(predictions, ground_truth, area_ranges="coco")
    # Among small objects only (the medium one ignored), the detection takes the regular
    # object up to IoU 0.8 (7 of 10 thresholds); above, it takes the ignored one and is ignored.
    assert result["map_small"] == pytest.approx(0.7, abs=1e-12)
    assert result["mar_small"] == pytest.approx(0.7)
    # Among all objects it takes the better-fitting medium one: recall 1/2.
    assert result["map"] == pytest.approx(51 / 101, abs=1e-12)


def test_box_formats_and_tensor_inputs_agree():
    predictions, ground_truth = _random_inputs(np.random.RandomState(1), num_images=40)
    expected = mean_average_precision(predictions, ground_truth)

    def convert(inputs, box_format):
        x1, y1, x2, y2 = np.moveaxis(inputs["boxes"], -1, 0)
        boxes = {
            "xywh": [x1, y1, x2 - x1, y2 - y1],
            "cxcywh": [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1],
        }[box_format]
        return {**inputs, "boxes": np.stack(boxes, axis=-1)}

    for box_format in ("xywh", "cxcywh"):
        result = mean_average_precision(
            convert(predictions, box_format), convert(ground_truth, box_format), box_format
        )
        _assert_results_close(result, expected, atol=1e-12)
    tensors = [
        {key: keras.ops.convert_to_tensor(value) for key, value in inputs.items()}
        for inputs in (predictions, ground_truth)
    ]
    _assert_results_close(mean_average_precision(*tensors), expected, atol=1e-12)


# --- Random data and an independent brute-force reference. ---


def _random_inputs(rs, num_images, num_classes=3, max_objects=6, num_detections=12):
    """Pixel boxes of every COCO area range, jittered detections, tied scores, padding."""
    gt_boxes = np.zeros((num_images, max_objects, 4))
    gt_labels = -np.ones((num_images, max_objects), "int64")
    boxes = rs.uniform(0, 300, size=(num_images, num_detections, 4))
    boxes[..., 2:] += boxes[..., :2]  # random boxes, mostly false positives
    labels = -np.ones((num_images, num_detections), "int64")
    scores = rs.uniform(size=(num_images, num_detections))
    scores[:, ::2] = np.round(scores[:, ::2], 1)  # many ties
    for image in range(num_images):
        count = rs.randint(0, max_objects + 1)
        slots = rs.choice(max_objects, count, replace=False)  # padding anywhere
        sizes = np.exp(rs.uniform(np.log(8), np.log(250), size=(count, 2)))
        corners = rs.uniform(0, 400, size=(count, 2))
        gt_boxes[image, slots] = np.concatenate([corners, corners + sizes], axis=-1)
        gt_labels[image, slots] = rs.randint(0, num_classes, size=count)
        used = 0
        for slot in slots:
            for _ in range(rs.choice(3, p=[0.2, 0.6, 0.2])):  # missed, found, duplicated
                if used < num_detections:
                    size = gt_boxes[image, slot, 2:] - gt_boxes[image, slot, :2]
                    jitter = rs.normal(scale=0.08, size=4) * np.concatenate([size, size])
                    boxes[image, used] = gt_boxes[image, slot] + jitter
                    boxes[image, used, 2:] = np.maximum(
                        boxes[image, used, 2:], boxes[image, used, :2]
                    )
                    same = rs.uniform() < 0.9
                    labels[image, used] = (
                        gt_labels[image, slot] if same else rs.randint(num_classes)
                    )
                    used += 1
        extra = min(rs.randint(0, 4), num_detections - used)  # false positives
        labels[image, used : used + extra] = rs.randint(0, num_classes, size=extra)
        permutation = rs.permutation(num_detections)  # padding anywhere
        boxes[image], labels[image], scores[image] = (
            boxes[image, permutation],
            labels[image, permutation],
            scores[image, permutation],
        )
    predictions = {"boxes": boxes, "scores": scores, "labels": labels}
    return predictions, {"boxes": gt_boxes, "labels": gt_labels}


def _box_areas(boxes):
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _iou(a, b):
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    intersection = width * height
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return intersection / (area_a + area_b - intersection)


def _area(box):
    return (box[2] - box[0]) * (box[3] - box[1])


def _reference_class(predictions, ground_truth, label, threshold, max_detections, area_range):
    """AP and recall of one class at one threshold, by loops; None without objects."""
    low, high = area_range
    ranked, num_objects = [], 0  # ranked: (score, image, rank, is_true_positive)
    for image in range(len(ground_truth["labels"])):
        objects = [
            (box, not low <= _area(box) <= high)
            for box, object_label in zip(
                ground_truth["boxes"][image], ground_truth["labels"][image]
            )
            if object_label == label
        ]
        num_objects += sum(not ignored for _, ignored in objects)
        found = [
            (score, box)
            for box, score, detection_label in zip(
                predictions["boxes"][image],
                predictions["scores"][image],
                predictions["labels"][image],
            )
            if detection_label == label
        ]
        found = sorted(found, key=lambda item: -item[0])[:max_detections]  # sorted is stable
        taken = [False] * len(objects)
        for rank, (score, box) in enumerate(found):
            match = None
            for want_ignored in (False, True):  # regular objects first
                best = min(threshold, 1 - 1e-10)
                for index, (object_box, ignored) in enumerate(objects):
                    if ignored == want_ignored and not taken[index]:
                        if _iou(box, object_box) >= best:  # ">=": the last of equals wins
                            best, match = _iou(box, object_box), index
                if match is not None:
                    break
            if match is not None:
                taken[match] = True
                if not objects[match][1]:
                    ranked.append((score, image, rank, True))
            elif low <= _area(box) <= high:
                ranked.append((score, image, rank, False))
    if num_objects == 0:
        return None
    ranked.sort(key=lambda item: (-item[0], item[1], item[2]))
    points, true_positives = [], 0
    for count, (_, _, _, is_true) in enumerate(ranked, start=1):
        true_positives += is_true
        points.append((true_positives / num_objects, true_positives / count))
    # Interpolated precision at recall r: the best precision at any recall >= r.
    interpolated = [
        max([p for r, p in points if r >= level], default=0.0) for level in np.linspace(0, 1, 101)
    ]
    return float(np.mean(interpolated)), true_positives / num_objects


def _reference(predictions, ground_truth, thresholds, max_detections, num_classes, areas):
    """Result dict like `mean_average_precision`'s, computed with loops."""
    result = {}
    for name, area_range in {"all": ALL_AREAS, **areas}.items():
        table = {}  # (threshold, label) -> (AP, recall)
        for threshold in set(thresholds) | {0.5, 0.75}:
            for label in range(num_classes):
                value = _reference_class(
                    predictions, ground_truth, label, threshold, max_detections, area_range
                )
                if value is not None:
                    table[threshold, label] = value

        def mean(over, item, table=table):
            values = [value[item] for key, value in table.items() if key[0] in over]
            return float(np.mean(values)) if values else -1.0

        suffix = "" if name == "all" else f"_{name}"
        result[f"map{suffix}"] = mean(thresholds, 0)
        result[f"mar{suffix or f'_{max_detections}'}"] = mean(thresholds, 1)
        if name == "all":
            result["map_50"], result["map_75"] = mean([0.5], 0), mean([0.75], 0)
            result["per_class"] = np.array(
                [
                    np.mean([table[t, label][0] for t in thresholds])
                    if (thresholds[0], label) in table
                    else -1.0
                    for label in range(num_classes)
                ]
            )
    return result


def _assert_results_close(result, expected, atol):
    assert set(result) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(result[key], value, rtol=0, atol=atol, err_msg=key)


@pytest.mark.parametrize(
    "seed,max_detections,thresholds,areas",
    [
        (0, 100, None, None),
        (1, 3, None, "coco"),
        (2, 5, [0.3, 0.62, 0.5], {"tiny": (0, 40**2), "big": (40**2, 1e10)}),
    ],
)
def test_matches_brute_force_reference(seed, max_detections, thresholds, areas):
    predictions, ground_truth = _random_inputs(np.random.RandomState(seed), num_images=60)
    result = mean_average_precision(
        predictions,
        ground_truth,
        iou_thresholds=thresholds,
        max_detections=max_detections,
        num_classes=4,
        area_ranges=areas,
    )
    expected = _reference(
        predictions,
        ground_truth,
        list(COCO_THRESHOLDS) if thresholds is None else thresholds,
        max_detections,
        num_classes=4,
        areas=COCO_AREAS if areas == "coco" else areas or {},
    )
    assert expected["per_class"][3] == -1.0  # a class without objects
    _assert_results_close(result, expected, atol=1e-9)


# --- pycocotools (an optional test dependency). ---


def _coco_eval(predictions, ground_truth, num_classes, max_detections, thresholds):
    """pycocotools' COCOeval(iouType="bbox") on the same data: (precision, recall) arrays."""
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")

    def xywh(box):
        return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]

    num_images = len(ground_truth["labels"])
    annotations = [
        {"id": 0, "image_id": image + 1, "category_id": int(label) + 1, "bbox": xywh(box)}
        for image in range(num_images)
        for box, label in zip(ground_truth["boxes"][image], ground_truth["labels"][image])
        if label >= 0
    ]
    areas = [
        float(area)
        for image in range(num_images)
        for area, label in zip(
            ground_truth.get("areas", _box_areas(ground_truth["boxes"]))[image],
            ground_truth["labels"][image],
        )
        if label >= 0
    ]
    for index, (annotation, area) in enumerate(zip(annotations, areas)):
        annotation.update(id=index + 1, area=area, iscrowd=0)
    detections = [
        {"image_id": image + 1, "category_id": int(label) + 1, "bbox": xywh(box), "score": score}
        for image in range(num_images)
        for box, score, label in zip(
            predictions["boxes"][image], predictions["scores"][image], predictions["labels"][image]
        )
        if label >= 0
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = coco.COCO()
        truth.dataset = {
            "images": [{"id": image + 1} for image in range(num_images)],
            "categories": [{"id": label + 1} for label in range(num_classes)],
            "annotations": annotations,
        }
        truth.createIndex()
        evaluation = cocoeval.COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.params.maxDets = [max_detections]
        evaluation.params.iouThrs = np.asarray(thresholds)
        evaluation.evaluate()
        evaluation.accumulate()
    # (T, R, C, A, 1) and (T, C, A, 1); A: all, small, medium, large.
    return evaluation.eval["precision"][..., 0], evaluation.eval["recall"][..., 0]


def _mean_of_valid(values):
    return float(np.mean(values[values > -1])) if (values > -1).any() else -1.0


def _coco_expected(predictions, ground_truth, num_classes, max_detections):
    """Our result dict (COCO thresholds, `area_ranges="coco"`) from pycocotools' arrays."""
    precision, recall = _coco_eval(
        predictions, ground_truth, num_classes, max_detections, COCO_THRESHOLDS
    )
    expected = {
        "map": _mean_of_valid(precision[..., 0]),
        "map_50": _mean_of_valid(precision[0, ..., 0]),
        "map_75": _mean_of_valid(precision[5, ..., 0]),
        f"mar_{max_detections}": _mean_of_valid(recall[..., 0]),
        "per_class": np.where(recall[0, :, 0] > -1, precision[..., 0].mean(axis=(0, 1)), -1.0),
    }
    for index, name in enumerate(("small", "medium", "large"), start=1):
        expected[f"map_{name}"] = _mean_of_valid(precision[..., index])
        expected[f"mar_{name}"] = _mean_of_valid(recall[..., index])
    return expected


@pytest.mark.parametrize("seed,max_detections", [(3, 100), (4, 4)])
def test_matches_pycocotools(seed, max_detections):
    predictions, ground_truth = _random_inputs(
        np.random.RandomState(seed), num_images=300, num_classes=5, num_detections=20
    )
    expected = _coco_expected(predictions, ground_truth, 6, max_detections)
    result = mean_average_precision(
        predictions, ground_truth, max_detections=max_detections, num_classes=6, area_ranges="coco"
    )
    assert expected["per_class"][5] == -1.0 and 0.2 < expected["map"] < 0.8
    _assert_results_close(result, expected, atol=1e-6)
    # Custom thresholds (pycocotools' "map" over them).
    thresholds = [0.35, 0.5, 0.75, 0.9]
    precision, recall = _coco_eval(predictions, ground_truth, 6, max_detections, thresholds)
    result = mean_average_precision(
        predictions, ground_truth, iou_thresholds=thresholds, max_detections=max_detections
    )
    assert result["map"] == pytest.approx(_mean_of_valid(precision[..., 0]), abs=1e-6)
    assert result[f"mar_{max_detections}"] == pytest.approx(
        _mean_of_valid(recall[..., 0]), abs=1e-6
    )


def test_small_cases_match_pycocotools():
    first, second = [0, 0, 10, 10], [4, 0, 14, 10]
    cases = [case[:3] for case in HAND_COMPUTED if case[1]] + [
        ([first, second], [[2, 0, 12, 10], first], [0.9, 0.8]),  # equal IoU
        ([second, first], [[2, 0, 12, 10], first], [0.9, 0.8]),
        ([A], [FAR, A], [0.5, 0.5]),  # equal scores
        ([A], [A, FAR], [0.5, 0.5]),
        ([A], [[0, 0, 10, 8]], [0.9]),  # IoU 0.8
        ([A, B], [FAR, [0, 0, 50, 50], A], [0.9, 0.8, 0.7]),  # unmatched, outside area ranges
    ]
    for objects, boxes, scores in cases:
        labels = [0] * len(boxes)
        predictions, ground_truth = _inputs(objects, [0] * len(objects), boxes, scores, labels)
        expected = _coco_expected(predictions, ground_truth, 1, 100)
        result = mean_average_precision(predictions, ground_truth, area_ranges="coco")
        _assert_results_close(result, expected, atol=1e-12)
    predictions, ground_truth = _regular_before_ignored()
    expected = _coco_expected(predictions, ground_truth, 1, 100)
    result = mean_average_precision(predictions, ground_truth, area_ranges="coco")
    _assert_results_close(result, expected, atol=1e-12)


# --- Argument errors. ---


def _valid_inputs():
    return _inputs([A], [0], [A], [0.9], [0])


ARGUMENT_ERRORS = [
    ({"box_format": "xyhw"}, ValueError, "box_format"),
    ({"iou_thresholds": [0.5, 1.0]}, ValueError, "iou_thresholds"),
    ({"iou_thresholds": []}, ValueError, "iou_thresholds"),
    ({"iou_thresholds": 0.5}, TypeError, "iou_thresholds"),
    ({"iou_thresholds": ["high"]}, TypeError, "iou_thresholds"),
    ({"max_detections": 0}, ValueError, "max_detections"),
    ({"max_detections": 1.5}, TypeError, "max_detections"),
    ({"num_classes": 0}, ValueError, "num_classes"),
    ({"area_ranges": "small"}, ValueError, "area_ranges"),
    ({"area_ranges": {"small": (10, 5)}}, ValueError, "area_ranges"),
    ({"area_ranges": {"all": (0, 5)}}, ValueError, "area_ranges"),
    ({"area_ranges": {"x": 5}}, ValueError, "area_ranges"),
    ({"area_ranges": {}}, ValueError, "area_ranges"),
]


def test_argument_errors():
    for kwargs, error, match in ARGUMENT_ERRORS:
        with pytest.raises(error, match=match):
            mean_average_precision(*_valid_inputs(), **kwargs)
    predictions, ground_truth = _inputs([A], [3], [A], [0.9], [0])
    with pytest.raises(ValueError, match="num_classes=2"):
        mean_average_precision(predictions, ground_truth, num_classes=2)


def _broken(name, key, value):
    """Valid inputs with `inputs[name][key]` (or `inputs[name]` if key is None) replaced."""
    predictions, ground_truth = _valid_inputs()
    inputs = {"predictions": predictions, "ground_truth": ground_truth}
    if key is None:
        inputs[name] = value
    else:
        inputs[name][key] = value
    return inputs


TWO_IMAGES = {"boxes": np.zeros((2, 1, 4)), "labels": np.zeros((2, 1), "int64")}


INPUT_ERRORS = [
    (_broken("predictions", None, [A]), TypeError, r"`predictions` must be a dict"),
    (_broken("ground_truth", None, {"boxes": [[A]]}), ValueError, r"`ground_truth` must be a dict"),
    (_broken("predictions", "boxes", np.zeros((1, 4))), ValueError, r"predictions\['boxes'\]"),
    (
        _broken("predictions", "boxes", np.full((1, 1, 4), "a")),
        TypeError,
        r"predictions\['boxes'\]",
    ),
    (_broken("ground_truth", "boxes", np.zeros((1, 1, 5))), ValueError, r"ground_truth\['boxes'\]"),
    (_broken("predictions", "scores", np.zeros((1, 2))), ValueError, r"predictions\['scores'\]"),
    (
        _broken("ground_truth", "labels", np.zeros((1, 2), int)),
        ValueError,
        r"ground_truth\['labels'\]",
    ),
    (_broken("predictions", "labels", np.array([[0.0]])), TypeError, r"predictions\['labels'\]"),
    (_broken("predictions", "labels", np.array([[-2]])), ValueError, r"predictions\['labels'\]"),
    (_broken("ground_truth", "areas", np.zeros((2, 1))), ValueError, r"ground_truth\['areas'\]"),
    (
        _broken("predictions", "scores", np.array([[np.nan]])),
        ValueError,
        r"predictions\['scores'\]",
    ),
    (
        _broken("predictions", "boxes", np.array([[[5, 0, 0, 5]]])),
        ValueError,
        r"predictions\['boxes'\]",
    ),
    (_broken("ground_truth", "boxes", np.array([[[0, 0, np.inf, 1]]])), ValueError, "ground_truth"),
    (_broken("ground_truth", None, TWO_IMAGES), ValueError, "same number of images"),
    (
        _broken("predictions", "labels", [[0], [0, 1]]),
        ValueError,
        r"predictions\['labels'\].*padded",
    ),
]


def test_input_errors():
    for inputs, error, match in INPUT_ERRORS:
        with pytest.raises(error, match=match):
            mean_average_precision(**inputs)
