"""`evaluate_detection`: predict, post-process and score a detection model on a dataset."""

from collections.abc import Mapping

import keras
import numpy as np

from keras_seq.metrics.mean_average_precision import mean_average_precision
from keras_seq.ops.boxes import box_cxcywh_to_xyxy
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int


def evaluate_detection(model, dataset, batch_size=None, num_classes=None, return_predictions=False):
    """COCO mean average precision of a detection model on a labelled dataset.

    The evaluation loop of DETR-style models, in one place: `model.predict` on the images,
    `model.postprocess(outputs, image_sizes)` into detections in pixels, the targets'
    normalized boxes scaled to the same pixels, then `mean_average_precision` over all the
    images at once. Image sizes are the images' own `(height, width)`, for the detections
    and the ground truth alike.

    Args:
        model: a detection model with `predict` and `postprocess(outputs, image_sizes)`
            returning `{"boxes": (batch_size, num_detections, 4)` pixel `(x_min, y_min,
            x_max, y_max)`, `"scores"`, `"labels"}`, such as `keras_seq.models.DETRObjectDetector`.
        dataset: `(images, targets)`: images `(num_images, height, width, channels)` and a
            dict of `"boxes"` float `(num_images, max_objects, 4)`, normalized `(center_x,
            center_y, width, height)` as DETR is trained on, and `"labels"` int
            `(num_images, max_objects)`, `-1` marking padding (as
            `keras_seq.data.shapes_detection_data` returns them); or an iterable of such
            batches, e.g. a batched `tf.data.Dataset` (`max_objects` may vary by batch).
        batch_size: int or `None`. Batch size of `predict` when `dataset` is one pair of
            arrays; `None` uses Keras' default (32). Defaults to `None`.
        num_classes: int or `None`. Passed to `mean_average_precision`. Defaults to `None`.
        return_predictions: bool. Also return what was scored. Defaults to `False`.

    Returns:
        The dict of `mean_average_precision` (`"map"`, `"map_50"`, `"map_75"`,
        `"mar_100"`, `"per_class"`); with `return_predictions=True`, `(metrics,
        predictions)` where `predictions` holds NumPy arrays over all images, in dataset
        order: `"outputs"` (the model's raw outputs), `"detections"` (`postprocess`'s) and
        `"ground_truth"` (`"boxes"` in pixel corners, `"labels"`).

    Example:
    ```python
    images, targets = keras_seq.data.shapes_detection_data(
        8, image_size=32, max_objects=2, num_classes=3, seed=1
    )
    backbone = keras_seq.models.DETRBackbone(
        image_encoder=keras.Sequential([keras.layers.Conv2D(16, 3, strides=8)]),
        image_shape=(32, 32, 3),
        hidden_dim=16,
        num_queries=4,
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        intermediate_dim=32,
    )
    model = keras_seq.models.DETRObjectDetector(backbone, num_classes=3)
    metrics = keras_seq.metrics.evaluate_detection(model, (images, targets), num_classes=3)
    assert 0.0 <= metrics["map_50"] <= 1.0  # untrained: close to 0
    ```
    """
    if batch_size is not None:
        batch_size = validate_positive_int("batch_size", batch_size)
    validate_bool("return_predictions", return_predictions)
    if isinstance(dataset, tuple) and len(dataset) == 2 and isinstance(dataset[1], Mapping):
        images, targets = dataset
        outputs = model.predict(images, batch_size=batch_size, verbose=0)
        parts = [_evaluation_batch(model, images, targets, outputs)]
    else:
        parts = []
        for batch in dataset:
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                raise ValueError(
                    "`dataset` must be `(images, targets)` or an iterable of such batches. "
                    f"Received a batch of type {type(batch).__name__}"
                )
            images, targets = batch
            outputs = model.predict_on_batch(images)
            parts.append(_evaluation_batch(model, images, targets, outputs))
        if not parts:
            raise ValueError("`dataset` must hold at least one batch. Received: no batch")
    predictions = {
        kind: {
            key: _concatenate([part[kind][key] for part in parts], key) for key in parts[0][kind]
        }
        for kind in parts[0]
    }
    metrics = mean_average_precision(
        predictions["detections"], predictions["ground_truth"], num_classes=num_classes
    )
    return (metrics, predictions) if return_predictions else metrics


def _evaluation_batch(model, images, targets, outputs):
    """One batch's raw outputs, pixel detections and pixel ground truth, as NumPy arrays."""
    images = keras.ops.convert_to_numpy(images)
    if images.ndim != 4:
        raise ValueError(
            "`dataset` images must be `(batch_size, height, width, channels)`. Received: "
            f"images.shape={images.shape}"
        )
    if not (isinstance(targets, Mapping) and {"boxes", "labels"} <= set(targets)):
        raise ValueError(
            '`dataset` targets must be a dict with "boxes" and "labels". Received: '
            f"{sorted(targets) if isinstance(targets, Mapping) else type(targets).__name__}"
        )
    num_images, height, width = images.shape[:3]
    image_sizes = np.tile(np.array([[height, width]], "float32"), (num_images, 1))
    detections = model.postprocess(outputs, image_sizes)
    boxes = keras.ops.convert_to_numpy(box_cxcywh_to_xyxy(targets["boxes"]))
    # (B, K, 4) normalized corners -> pixels, in the boxes' own dtype.
    scale = np.array([width, height, width, height], boxes.dtype)
    return {
        "outputs": {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()},
        "detections": {key: keras.ops.convert_to_numpy(value) for key, value in detections.items()},
        "ground_truth": {
            "boxes": boxes * scale,
            "labels": keras.ops.convert_to_numpy(targets["labels"]),
        },
    }


def _concatenate(arrays, key):
    """Batches along axis 0; the object axis padded to the longest (label -1, boxes 0)."""
    if len(arrays) == 1:
        return arrays[0]
    longest = max(array.shape[1] for array in arrays) if arrays[0].ndim > 1 else None
    fill = -1 if key == "labels" else 0
    padded = [
        np.pad(
            array,
            [(0, 0), (0, longest - array.shape[1])] + [(0, 0)] * (array.ndim - 2),
            constant_values=fill,
        )
        if longest is not None and array.shape[1] != longest
        else array
        for array in arrays
    ]
    return np.concatenate(padded, axis=0)
