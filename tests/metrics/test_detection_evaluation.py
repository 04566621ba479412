"""`evaluate_detection` is the predict -> postprocess -> mAP loop written out, for arrays and
for an iterable of batches whose padding differs."""

import numpy as np
import pytest
import tensorflow as tf

from keras_seq.data import shapes_detection_data
from keras_seq.metrics import evaluate_detection
from keras_seq.metrics import mean_average_precision
from keras_seq.ops import box_cxcywh_to_xyxy
from tests.model_families import make_case

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

DATA = {"image_size": 32, "max_objects": 3, "num_classes": 3, "seed": 4}


class OracleDetector:
    """Predicts each image's true boxes: the image's index is stored in its first pixel."""

    def __init__(self, targets):
        self.targets = targets

    def predict(self, images, batch_size=None, verbose=0):
        return self.predict_on_batch(images)

    def predict_on_batch(self, images):
        index = np.asarray(images)[:, 0, 0, 0].astype(int)
        return {key: value[index] for key, value in self.targets.items()}

    def postprocess(self, outputs, image_sizes):
        height, width = np.asarray(image_sizes)[0]
        boxes = np.asarray(box_cxcywh_to_xyxy(outputs["boxes"]))
        scale = np.array([width, height, width, height], "float32")
        scores = np.where(outputs["labels"] >= 0, 0.9, 0.0)
        return {"boxes": boxes * scale, "scores": scores, "labels": outputs["labels"]}


def _indexed(num_images):
    images, targets = shapes_detection_data(num_images, **DATA)
    images = images.copy()
    images[:, 0, 0, 0] = np.arange(num_images)
    return images, targets


def test_a_perfect_detector_scores_one_for_arrays_and_batches():
    images, targets = _indexed(10)
    model = OracleDetector(targets)
    metrics = evaluate_detection(model, (images, targets), batch_size=4, num_classes=3)
    assert metrics["map"] == pytest.approx(1.0) and metrics["mar_100"] == pytest.approx(1.0)
    # Batches with their own padding: each trimmed to its most objects.
    batches = []
    for start in range(0, 10, 4):
        part = {key: value[start : start + 4] for key, value in targets.items()}
        count = int((part["labels"] >= 0).sum(axis=1).max())
        part = {key: value[:, :count] for key, value in part.items()}
        batches.append((images[start : start + 4], part))
    batched, predictions = evaluate_detection(
        model, batches, num_classes=3, return_predictions=True
    )
    assert batched["map"] == pytest.approx(1.0)
    truth = predictions["ground_truth"]
    assert truth["boxes"].shape == (10, 3, 4) and truth["labels"].shape == (10, 3)
    np.testing.assert_array_equal(truth["labels"], targets["labels"])


def test_a_tf_data_dataset():
    images, targets = _indexed(6)
    dataset = tf.data.Dataset.from_tensor_slices((images, targets)).batch(4)
    metrics = evaluate_detection(OracleDetector(targets), dataset, num_classes=3)
    assert metrics["map"] == pytest.approx(1.0)


def test_equals_the_loop_written_out():
    images, targets = shapes_detection_data(6, **DATA)
    model = make_case("detr").build_model()  # a tiny DETR for 32 x 32 images, 3 classes
    metrics, predictions = evaluate_detection(
        model, (images, targets), batch_size=6, num_classes=3, return_predictions=True
    )
    outputs = model.predict(images, batch_size=6, verbose=0)
    detections = {key: np.asarray(value) for key, value in model.postprocess(outputs).items()}
    truth = {
        "boxes": np.asarray(box_cxcywh_to_xyxy(targets["boxes"])) * 32,
        "labels": targets["labels"],
    }
    expected = mean_average_precision(detections, truth, num_classes=3)
    for key in ("map", "map_50", "map_75", "mar_100"):
        assert metrics[key] == expected[key]
    np.testing.assert_array_equal(metrics["per_class"], expected["per_class"])
    for key, value in detections.items():
        np.testing.assert_array_equal(predictions["detections"][key], value)
    np.testing.assert_array_equal(predictions["ground_truth"]["boxes"], truth["boxes"])
    for key, value in outputs.items():
        np.testing.assert_array_equal(predictions["outputs"][key], value)


def test_errors_name_the_argument():
    images, targets = _indexed(2)
    model = OracleDetector(targets)
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        evaluate_detection(model, (images, targets), batch_size=0)
    with pytest.raises(TypeError, match="`return_predictions` must be a bool"):
        evaluate_detection(model, (images, targets), return_predictions=1)
    with pytest.raises(ValueError, match="`dataset` must be `\\(images, targets\\)`"):
        evaluate_detection(model, [images])
    with pytest.raises(ValueError, match="`dataset` must hold at least one batch"):
        evaluate_detection(model, [])
    with pytest.raises(ValueError, match="`dataset` targets must be a dict"):
        evaluate_detection(model, [(images, targets["boxes"])])
