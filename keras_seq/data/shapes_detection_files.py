"""The shapes detection data on disk: PNG images with COCO annotations, and back.

`write_shapes_detection_files` writes what `shapes_detection_data` generates as a COCO-style
dataset; `keras_seq.data.shapes_detection_builder.ShapesDetection` (a TensorFlow Datasets
builder) reads it, and `detection_targets` turns its examples into the same arrays as
`shapes_detection_data`.

Letter legend for shape comments: H height, W width, M objects in an image, K
`max_objects`.

Needs TensorFlow (`tf.io`, `tf.data`), imported on first use, so that `import keras_seq`
works without it.
"""

import inspect
import json
import os

from keras_seq.data.shapes_detection import SHAPES_CLASSES
from keras_seq.data.shapes_detection import _generate_examples
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_int

SHAPES_DETECTION_SPLITS = ("train", "validation", "test")
_DEFAULT_SEEDS = {"train": 0, "validation": 1, "test": 2}


def shapes_detection_paths(directory, split):
    """`(annotation_file, image_directory)` of a split written by
    `write_shapes_detection_files`: `directory/annotations/instances_{split}.json` and
    `directory/{split}`."""
    annotation_file = os.path.join(directory, "annotations", f"instances_{split}.json")
    return annotation_file, os.path.join(directory, split)


def write_shapes_detection_files(directory, num_examples, split="train", seed=None, **kwargs):
    """Write shapes detection images as PNG files with a COCO annotation file.

    Writes `directory/{split}/000000.png`, `000001.png`, ... (one per example, the same
    images as `shapes_detection_data(num_examples, seed=seed, **kwargs)`, pixel for pixel)
    and `directory/annotations/instances_{split}.json` in the COCO format:

    - `"images"`: `{"id", "file_name", "width", "height"}`; ids `1 .. num_examples` in
      example order, `file_name` relative to `directory/{split}`.
    - `"annotations"`: `{"id", "image_id", "category_id", "bbox", "area", "iscrowd"}`;
      ids from 1, in example order and, within an image, in drawing order. `"bbox"` is
      the tight box `[x, y, width, height]` in (integer) pixels, `"area"` the number of
      pixels of the shape, `"iscrowd"` 0.
    - `"categories"`: `{"id", "name", "supercategory": "shape"}` for the first
      `num_classes` of `SHAPES_CLASSES`; as in COCO, ids start at 1: `category_id` is
      the label plus one.

    Existing files of the same names are overwritten. This is the manual-download
    directory of the TensorFlow Datasets builder in
    `keras_seq.data.shapes_detection_builder`; write one call per split.

    Args:
        directory: str or path-like. Root of the dataset; created if missing. Any file
            system that `tf.io.gfile` supports.
        num_examples: int. Number of images.
        split: `"train"`, `"validation"` or `"test"`. Defaults to `"train"`.
        seed: optional int >= 0. Defaults to a seed per split (train 0, validation 1,
            test 2), so that the splits hold different images.
        **kwargs: the other arguments of `shapes_detection_data` (`image_size`,
            `min_objects`, `max_objects`, `num_classes`, `min_object_size`,
            `max_object_size`).

    Returns:
        `(annotation_file, image_directory)`, two strings.

    Example:
    ```python
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        annotation_file, image_directory = keras_seq.data.write_shapes_detection_files(
            directory, 3, split="validation", image_size=32
        )
        with open(annotation_file) as file:
            coco = json.load(file)
    assert [image["file_name"] for image in coco["images"]] == [
        "000000.png", "000001.png", "000002.png"
    ]
    x, y, width, height = coco["annotations"][0]["bbox"]  # pixels
    ```
    """
    import tensorflow as tf

    split = validate_choice("split", split, SHAPES_DETECTION_SPLITS)
    seed = _DEFAULT_SEEDS[split] if seed is None else seed
    try:  # an unknown keyword; the arguments' own checks raise their errors below
        inspect.signature(_generate_examples).bind(num_examples, seed=seed, **kwargs)
    except TypeError as error:
        raise TypeError(
            "`write_shapes_detection_files` takes the arguments of `shapes_detection_data` "
            f"as keywords; {error}. Received: kwargs={kwargs!r}"
        ) from None
    height, width, examples = _generate_examples(num_examples, seed=seed, **kwargs)
    directory = os.fspath(directory)
    annotation_file, image_directory = shapes_detection_paths(directory, split)
    tf.io.gfile.makedirs(image_directory)
    tf.io.gfile.makedirs(os.path.dirname(annotation_file))
    images, annotations = [], []
    for index, (image, boxes, labels, areas) in enumerate(examples):
        file_name = f"{index:06d}.png"
        with tf.io.gfile.GFile(os.path.join(image_directory, file_name), "wb") as file:
            file.write(tf.io.encode_png(image).numpy())
        images.append({"id": index + 1, "file_name": file_name, "width": width, "height": height})
        for (y0, x0, y1, x1), label, area in zip(boxes.tolist(), labels.tolist(), areas.tolist()):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": label + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": area,
                    "iscrowd": 0,
                }
            )
    num_classes = kwargs.get("num_classes", len(SHAPES_CLASSES))
    coco = {
        "info": {"description": "keras_seq synthetic shapes detection", "split": split},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": label + 1, "name": name, "supercategory": "shape"}
            for label, name in enumerate(SHAPES_CLASSES[:num_classes])
        ],
    }
    with tf.io.gfile.GFile(annotation_file, "w") as file:
        json.dump(coco, file)
    return annotation_file, image_directory


def detection_targets(example, max_objects, truncate=False):
    """A tfds shapes-detection example -> `(image, {"boxes", "labels"})` for DETR.

    A `tf.data` map function for the examples of
    `keras_seq.data.shapes_detection_builder.ShapesDetection` (or any tfds detection dataset
    with `"image"` and `"objects"` `{"bbox", "label"}`): the image is scaled to float32 in
    [0, 1] (divided by 255) and the tfds boxes, normalized `(ymin, xmin, ymax, xmax)`,
    become DETR's normalized `(center_x, center_y, width, height)`, padded to
    `max_objects` slots (box zeros, label -1). For the shapes dataset the result equals
    `shapes_detection_data`'s arrays for the same images exactly.

    Nothing is dropped silently: with `truncate=False`, an example with more than
    `max_objects` objects fails a `tf.debugging` assertion (an `InvalidArgumentError` when
    the dataset is iterated); with `truncate=True` its first `max_objects` objects are
    kept.

    Args:
        example: dict with `"image"` uint8 `(H, W, 3)` and `"objects"`: `{"bbox": float
            (M, 4), "label": int (M,)}`; other keys are ignored.
        max_objects: int. Number of target slots K.
        truncate: bool. Whether to keep only the first `max_objects` objects of a fuller
            example instead of failing. Defaults to `False`.

    Returns:
        `(image float32 (H, W, 3), {"boxes": float32 (K, 4), "labels": int32 (K,)})`.

    Example:
    ```python
    example = {
        "image": np.zeros((32, 32, 3), "uint8"),
        "objects": {"bbox": [[0.25, 0.5, 0.75, 1.0]], "label": [2]},  # ymin, xmin, ymax, xmax
    }
    image, targets = keras_seq.data.detection_targets(example, max_objects=3)
    np.testing.assert_allclose(targets["boxes"][0], [0.75, 0.5, 0.5, 0.5])  # cx, cy, w, h
    assert targets["labels"].numpy().tolist() == [2, -1, -1]
    # On a dataset: dataset.map(lambda e: keras_seq.data.detection_targets(e, 4))
    ```
    """
    import tensorflow as tf

    max_objects = validate_positive_int("max_objects", max_objects)
    validate_bool("truncate", truncate)
    image = tf.convert_to_tensor(example["image"])
    if image.dtype != tf.uint8:
        raise TypeError(
            f"`example['image']` must be uint8 (a tfds Image). Received: dtype={image.dtype.name}"
        )
    image = tf.cast(image, tf.float32) / 255.0  # (H, W, 3)
    bbox = tf.reshape(tf.cast(example["objects"]["bbox"], tf.float32), (-1, 4))  # (M, 4)
    labels = tf.reshape(tf.cast(example["objects"]["label"], tf.int32), (-1,))  # (M,)
    if truncate:
        bbox, labels = bbox[:max_objects], labels[:max_objects]
    else:
        check = tf.debugging.assert_less_equal(
            tf.shape(labels)[0],
            max_objects,
            message=(
                f"An example has more objects than `max_objects`={max_objects}; raise "
                "`max_objects` or pass `truncate=True` to keep the first ones"
            ),
        )
        with tf.control_dependencies([check] if check is not None else []):
            labels = tf.identity(labels)
    ymin, xmin, ymax, xmax = tf.unstack(bbox, num=4, axis=-1)  # each (M,)
    boxes = tf.stack([(xmin + xmax) * 0.5, (ymin + ymax) * 0.5, xmax - xmin, ymax - ymin], -1)
    padding = max_objects - tf.shape(labels)[0]
    boxes = tf.pad(boxes, [[0, padding], [0, 0]])  # (K, 4)
    labels = tf.pad(labels, [[0, padding]], constant_values=-1)  # (K,)
    boxes = tf.ensure_shape(boxes, (max_objects, 4))
    labels = tf.ensure_shape(labels, (max_objects,))
    return image, {"boxes": boxes, "labels": labels}
