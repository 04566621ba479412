"""Shapes detection files: the COCO round trip, seeds per split, errors, and `detection_targets`."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from keras_seq.data.shapes_detection import SHAPES_CLASSES
from keras_seq.data.shapes_detection import shapes_detection_data
from keras_seq.data.shapes_detection_files import detection_targets
from keras_seq.data.shapes_detection_files import write_shapes_detection_files


def read_split(annotation_file, image_directory):
    with open(annotation_file) as file:
        coco = json.load(file)
    images = np.stack(
        [
            tf.io.decode_png(tf.io.read_file(os.path.join(image_directory, image["file_name"])))
            for image in coco["images"]
        ]
    )
    return coco, images


def test_coco_round_trip(tmp_path):
    kwargs = {"image_size": (24, 40), "max_objects": 3, "min_object_size": 6}
    annotation_file, image_directory = write_shapes_detection_files(
        tmp_path, 12, split="train", seed=7, **kwargs
    )
    assert annotation_file == os.path.join(tmp_path, "annotations", "instances_train.json")
    assert image_directory == os.path.join(tmp_path, "train")
    coco, images = read_split(annotation_file, image_directory)
    expected_images, targets = shapes_detection_data(12, seed=7, **kwargs)
    # The PNGs hold exactly the generated pixels.
    assert images.dtype == np.uint8 and images.shape == (12, 24, 40, 3)
    np.testing.assert_array_equal(images.astype(np.float32) / 255, expected_images)
    assert [image["id"] for image in coco["images"]] == list(range(1, 13))
    assert all(image["width"] == 40 and image["height"] == 24 for image in coco["images"])
    assert coco["categories"] == [
        {"id": label + 1, "name": name, "supercategory": "shape"}
        for label, name in enumerate(SHAPES_CLASSES)
    ]
    annotations = coco["annotations"]
    assert [a["id"] for a in annotations] == list(range(1, len(annotations) + 1))
    assert all(a["iscrowd"] == 0 for a in annotations)
    for index in range(12):
        objects = [a for a in annotations if a["image_id"] == index + 1]
        labels = targets["labels"][index]
        assert len(objects) == (labels >= 0).sum()
        np.testing.assert_array_equal([a["category_id"] - 1 for a in objects], labels[labels >= 0])
        # The shapes found on the pixels (saturated, 8-connected), by box: their sizes.
        pixels = images[index].astype(int)
        saturated = pixels.max(axis=-1) - pixels.min(axis=-1) >= 85
        components, _ = ndimage.label(saturated, structure=np.ones((3, 3)))
        areas = {
            (columns.start, rows.start, columns.stop - columns.start, rows.stop - rows.start): (
                components[rows, columns] == component
            ).sum()
            for component, (rows, columns) in enumerate(ndimage.find_objects(components), 1)
        }
        for annotation, box in zip(objects, targets["boxes"][index]):
            x, y, width, height = annotation["bbox"]  # pixels
            assert all(isinstance(value, int) for value in annotation["bbox"])
            np.testing.assert_allclose(
                box,
                [(x + width / 2) / 40, (y + height / 2) / 24, width / 40, height / 24],
                atol=1e-7,
            )  # float32
            assert annotation["area"] == areas[(x, y, width, height)]


def test_seeds_per_split_and_arguments(tmp_path):
    train = read_split(*write_shapes_detection_files(tmp_path, 3, image_size=16, max_objects=2))
    test = read_split(*write_shapes_detection_files(tmp_path, 3, "test", image_size=16))
    expected, _ = shapes_detection_data(3, image_size=16, max_objects=2, seed=0)  # train: 0
    np.testing.assert_array_equal(train[1].astype(np.float32) / 255, expected)
    expected, _ = shapes_detection_data(3, image_size=16, seed=2)  # test: 2
    np.testing.assert_array_equal(test[1].astype(np.float32) / 255, expected)
    files = sorted(os.listdir(tmp_path))
    assert files == ["annotations", "test", "train"]
    assert sorted(os.listdir(tmp_path / "train")) == ["000000.png", "000001.png", "000002.png"]
    coco, _ = read_split(*write_shapes_detection_files(tmp_path, 2, "validation", num_classes=2))
    assert [category["name"] for category in coco["categories"]] == ["circle", "square"]


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"split": "val"}, ValueError, "`split` must be one of"),
        ({"num_examples": 0}, ValueError, "`num_examples` must be a positive integer"),
        ({"max_objects": 0}, ValueError, "`max_objects` must be a positive integer"),
        ({"seed": -3}, ValueError, "`seed` must be a non-negative integer"),
        ({"image_shape": 32}, TypeError, "`write_shapes_detection_files` takes the arguments"),
    ],
)
def test_writer_validation_errors(tmp_path, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        write_shapes_detection_files(tmp_path, **{"num_examples": 2, **kwargs})
    assert not os.listdir(tmp_path)  # nothing written


def example(num_objects, size=8):
    ymin = np.linspace(0, 0.5, num_objects, dtype=np.float32)
    bbox = np.stack([ymin, ymin / 2, ymin + 0.25, ymin / 2 + 0.5], axis=-1).reshape(-1, 4)
    image = np.arange(size * size * 3, dtype=np.uint8).reshape(size, size, 3)
    return {
        "image": image,
        "image/id": np.int64(1),
        "objects": {"bbox": bbox, "label": np.arange(num_objects, dtype=np.int64) % 5},
    }


def test_detection_targets_convert_and_pad():
    source = example(2)
    image, targets = detection_targets(source, max_objects=4)
    assert image.dtype == tf.float32 and image.shape == (8, 8, 3)
    np.testing.assert_array_equal(image, source["image"].astype(np.float32) / 255)
    ymin, xmin, ymax, xmax = source["objects"]["bbox"].T
    expected = np.stack([(xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin], -1)
    np.testing.assert_allclose(targets["boxes"][:2], expected, rtol=1e-7)
    assert targets["boxes"].dtype == tf.float32 and targets["labels"].dtype == tf.int32
    np.testing.assert_array_equal(targets["boxes"][2:], 0)
    assert targets["labels"].numpy().tolist() == [0, 1, -1, -1]
    _, empty = detection_targets(example(0), max_objects=3)  # no objects: all padding
    np.testing.assert_array_equal(empty["boxes"], np.zeros((3, 4)))
    assert empty["labels"].numpy().tolist() == [-1, -1, -1]


def test_detection_targets_too_many_objects():
    with pytest.raises(tf.errors.InvalidArgumentError, match="more objects than `max_objects`"):
        detection_targets(example(3), max_objects=2)
    _, targets = detection_targets(example(3), max_objects=2, truncate=True)
    assert targets["labels"].numpy().tolist() == [0, 1]  # the first ones
    _, everything = detection_targets(example(3), max_objects=3)
    np.testing.assert_array_equal(targets["boxes"], everything["boxes"][:2])
    # In a tf.data pipeline the check runs when the offending example is reached.
    dataset = tf.data.Dataset.from_generator(
        lambda: (example(n) for n in (1, 3)),
        output_signature={
            "image": tf.TensorSpec((8, 8, 3), tf.uint8),
            "image/id": tf.TensorSpec((), tf.int64),
            "objects": {
                "bbox": tf.TensorSpec((None, 4), tf.float32),
                "label": tf.TensorSpec((None,), tf.int64),
            },
        },
    )
    batches = dataset.map(lambda e: detection_targets(e, 2)).batch(1)
    assert batches.element_spec[1]["boxes"].shape.as_list() == [None, 2, 4]  # static slots
    iterator = iter(batches)
    next(iterator)
    with pytest.raises(tf.errors.InvalidArgumentError, match="pass `truncate=True`"):
        next(iterator)
    truncated = dataset.map(lambda e: detection_targets(e, 2, truncate=True))
    assert [t["labels"].numpy().tolist() for _, t in truncated] == [[0, -1], [0, 1]]


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"max_objects": 0}, ValueError, "`max_objects` must be a positive integer"),
        ({"truncate": 1}, TypeError, "`truncate` must be a bool"),
        ({"example": {"image": np.zeros((4, 4, 3), np.float32)}}, TypeError, "must be uint8"),
    ],
)
def test_detection_targets_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        detection_targets(**{"example": example(1), "max_objects": 2, **kwargs})
