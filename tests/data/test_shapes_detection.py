"""Shapes detection data: layout, conventions, seeds, counts, and boxes checked on the pixels."""

import inspect
import time

import numpy as np
import pytest
from scipy import ndimage

from keras_seq.data.shapes_detection import MAX_BOX_IOU
from keras_seq.data.shapes_detection import SHAPES_CLASSES
from keras_seq.data.shapes_detection import shapes_detection_data


def pixel_boxes(boxes, height, width):
    """Normalized `(cx, cy, w, h)` -> integer pixel `(x0, y0, x1, y1)`, stops exclusive."""
    cx, cy, w, h = np.moveaxis(np.asarray(boxes, dtype=np.float64), -1, 0)
    corners = np.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                        (cy + h / 2) * height], axis=-1)  # fmt: skip
    rounded = np.round(corners)
    np.testing.assert_allclose(corners, rounded, atol=1e-4)  # boxes lie on the pixel grid
    return rounded.astype(int)


def classify(mask):
    """Name a shape from its pixels alone (a boolean mask cropped to its box)."""
    if ndimage.binary_fill_holes(mask).sum() > mask.sum():
        return "ring"
    if mask.all():
        return "square"
    if mask[0].all() or mask[-1].all() or mask[:, 0].all() or mask[:, -1].all():
        return "triangle"  # a full base
    return "circle" if mask.mean() > 0.67 else "cross"  # fill ratio > 0.75 vs < 0.61


@pytest.mark.parametrize("image_size", [64, (40, 72)])
def test_layout_dtypes_and_ranges(image_size):
    images, targets = shapes_detection_data(60, image_size=image_size, max_objects=5, seed=1)
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    boxes, labels = targets["boxes"], targets["labels"]
    assert set(targets) == {"boxes", "labels"}
    assert images.shape == (60, height, width, 3) and images.dtype == np.float32
    assert boxes.shape == (60, 5, 4) and boxes.dtype == np.float32
    assert labels.shape == (60, 5) and labels.dtype == np.int32
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(images * 255, np.round(images * 255))  # PNG-exact levels
    assert boxes.min() >= 0 and boxes.max() <= 1
    assert labels.min() >= -1 and labels.max() < len(SHAPES_CLASSES)
    real = labels >= 0
    cx, cy, w, h = np.moveaxis(boxes[real], -1, 0)
    assert (w > 0).all() and (h > 0).all()
    assert (cx - w / 2 >= -1e-6).all() and (cx + w / 2 <= 1 + 1e-6).all()
    assert (cy - h / 2 >= -1e-6).all() and (cy + h / 2 <= 1 + 1e-6).all()


def test_padding_convention():
    _, targets = shapes_detection_data(100, max_objects=4, seed=2)
    boxes, labels = targets["boxes"], targets["labels"]
    padding = labels == -1
    np.testing.assert_array_equal(np.all(boxes == 0, axis=-1), padding)
    counts = (~padding).sum(axis=1)
    # Objects fill the first slots: slot k is real exactly when k < count.
    np.testing.assert_array_equal(~padding, np.arange(4)[None, :] < counts[:, None])


def test_seeds_and_prefixes():
    images, targets = shapes_detection_data(12, seed=5)
    again_images, again_targets = shapes_detection_data(12, seed=5)
    np.testing.assert_array_equal(images, again_images)
    np.testing.assert_array_equal(targets["boxes"], again_targets["boxes"])
    np.testing.assert_array_equal(targets["labels"], again_targets["labels"])
    other_images, _ = shapes_detection_data(12, seed=6)
    assert not np.array_equal(images, other_images)
    # Example i depends only on (seed, i): a shorter run is a prefix of a longer one.
    first_images, first_targets = shapes_detection_data(5, seed=5)
    np.testing.assert_array_equal(first_images, images[:5])
    np.testing.assert_array_equal(first_targets["boxes"], targets["boxes"][:5])


def test_object_count_distribution_includes_zero():
    _, targets = shapes_detection_data(1000, image_size=32, min_objects=0, max_objects=4)
    counts = np.bincount((targets["labels"] >= 0).sum(axis=1), minlength=5)
    assert len(counts) == 5 and counts.sum() == 1000
    assert counts.min() > 150 and counts.max() < 250  # uniform: 200 each, sd about 13
    _, targets = shapes_detection_data(50, image_size=32, min_objects=2, max_objects=2)
    assert ((targets["labels"] >= 0).sum(axis=1) == 2).all()
    _, targets = shapes_detection_data(50, image_size=32, min_objects=0, max_objects=1)
    assert set(np.unique((targets["labels"] >= 0).sum(axis=1))) == {0, 1}


def test_class_distribution_and_num_classes():
    _, targets = shapes_detection_data(500, image_size=32, min_objects=2, max_objects=2)
    labels = targets["labels"].ravel()
    counts = np.bincount(labels, minlength=5)
    assert len(counts) == 5 and counts.min() > 150  # 200 each
    _, targets = shapes_detection_data(100, image_size=32, num_classes=2, min_objects=1)
    assert set(np.unique(targets["labels"])) == {-1, 0, 1}
    default = inspect.signature(shapes_detection_data).parameters["num_classes"].default
    assert default == len(SHAPES_CLASSES)


@pytest.mark.parametrize("image_size", [64, (48, 80)])
def test_boxes_are_tight_around_visible_objects(image_size):
    """Found from the pixels alone: saturated pixels are objects, their 8-connected
    components are the shapes; each is whole, one colour, inside its box and touching all
    four of its sides, and its outline names its class."""
    images, targets = shapes_detection_data(40, image_size=image_size, max_objects=4, seed=3)
    height, width = images.shape[1:3]
    pixels = np.round(images * 255).astype(int)  # (N, H, W, 3)
    spread = pixels.max(axis=-1) - pixels.min(axis=-1)  # (N, H, W)
    assert (spread <= 48).sum() + (spread >= 85).sum() == spread.size  # muted vs saturated
    for index in range(len(images)):
        real = targets["labels"][index] >= 0
        boxes = pixel_boxes(targets["boxes"][index][real], height, width)
        labels = targets["labels"][index][real]
        components, count = ndimage.label(spread[index] >= 85, structure=np.ones((3, 3)))
        assert count == len(labels)
        found = {}
        for component, box_slice in enumerate(ndimage.find_objects(components), start=1):
            rows, columns = box_slice
            box = (columns.start, rows.start, columns.stop, rows.stop)  # x0, y0, x1, y1
            mask = components[box_slice] == component
            colors = np.unique(pixels[index][box_slice][mask], axis=0)
            assert len(colors) == 1  # flat and whole
            found[box] = (classify(mask), tuple(colors[0]))
        expected = {tuple(box): SHAPES_CLASSES[label] for box, label in zip(boxes, labels)}
        assert {box: name for box, (name, _) in found.items()} == expected
        assert len({color for _, color in found.values()}) == len(labels)  # distinct colours


def test_sizes_and_overlap():
    _, targets = shapes_detection_data(
        200, image_size=64, min_objects=3, max_objects=4, min_object_size=10, max_object_size=20
    )
    for boxes, labels in zip(targets["boxes"], targets["labels"]):
        boxes = pixel_boxes(boxes[labels >= 0], 64, 64)  # (M, 4) x0, y0, x1, y1
        sides = np.concatenate([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])
        assert sides.min() >= 10 and sides.max() <= 20
        for i in range(len(boxes)):
            for j in range(i):
                intersection = np.prod(
                    np.maximum(np.minimum(boxes[i, 2:], boxes[j, 2:]) -
                               np.maximum(boxes[i, :2], boxes[j, :2]), 0)
                )  # fmt: skip
                areas = np.prod(boxes[i, 2:] - boxes[i, :2]) + np.prod(boxes[j, 2:] - boxes[j, :2])
                assert intersection / (areas - intersection) <= MAX_BOX_IOU


def test_default_object_sizes_follow_the_image():
    _, targets = shapes_detection_data(100, image_size=(32, 48), min_objects=1)
    boxes = targets["boxes"][targets["labels"] >= 0]
    sides = np.round(boxes[:, 2] * 48)
    assert sides.min() >= 6 and sides.max() <= 12  # max(6, 32 // 8), 3 * 32 // 8


def test_a_thousand_images_are_fast():
    start = time.perf_counter()
    shapes_detection_data(1000)
    assert time.perf_counter() - start < 15  # about 1 s on 2 shared cores


def test_impossible_placement_is_an_error():
    with pytest.raises(ValueError, match="Could not place .*Reduce `max_objects`"):
        shapes_detection_data(
            2, image_size=16, min_objects=4, max_objects=4, min_object_size=12, max_object_size=12
        )


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"num_examples": 0}, ValueError, "`num_examples` must be a positive integer"),
        ({"image_size": 5}, ValueError, r"`image_size` must be .* Received: image_size=5"),
        (
            {"image_size": (32, 32, 3)},
            ValueError,
            r"`image_size` must be .* image_size=\(32, 32, 3\)",
        ),
        ({"image_size": 32.0}, TypeError, "`image_size` must be"),
        ({"min_objects": -1}, ValueError, "`min_objects` must be a non-negative integer"),
        ({"max_objects": 0}, ValueError, "`max_objects` must be a positive integer"),
        (
            {"min_objects": 5, "max_objects": 4},
            ValueError,
            "`min_objects` must not exceed `max_objects`",
        ),
        ({"num_classes": 0}, ValueError, r"`num_classes` must be an int in \[1, 5\]"),
        ({"num_classes": 6}, ValueError, "Received: num_classes=6"),
        ({"min_object_size": 5}, ValueError, r"`min_object_size` must be an int in \[6, "),
        ({"max_object_size": 65}, ValueError, "Received: max_object_size=65"),
        ({"image_size": (32, 64), "max_object_size": 40}, ValueError, r"\[6, 32\] pixels"),
        (
            {"min_object_size": 20, "max_object_size": 10},
            ValueError,
            "`min_object_size` must not exceed",
        ),
        ({"seed": -1}, ValueError, "`seed` must be a non-negative integer"),
        ({"seed": None}, TypeError, "Received: seed=None"),
    ],
)
def test_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        shapes_detection_data(**{"num_examples": 4, **kwargs})
