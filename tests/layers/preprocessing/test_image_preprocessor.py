"""ImagePreprocessor: the resize policies of the checkpoints' processors, then the affine map."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.layers import ImagePreprocessor

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def _images(height, width, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (2, height, width, 3)).astype("uint8")


def test_without_resize_it_is_the_affine_map():
    images = _images(7, 9)
    layer = ImagePreprocessor(scale=1 / 255, mean=MEAN, std=STD)
    expected = (images.astype("float32") / 255 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(np.asarray(layer(images)), expected, atol=1e-6)


def test_exact_resize_ignores_the_aspect_ratio():
    layer = ImagePreprocessor(image_size=(16, 24), interpolation="bicubic")
    assert layer.resize == "exact"
    outputs = layer(_images(40, 20))
    assert outputs.shape == (2, 16, 24, 3)
    # Already at the size: untouched (no resampling), so the pixels are exact.
    images = _images(16, 24)
    np.testing.assert_allclose(np.asarray(layer(images)), images / 255.0, atol=1e-7)


def test_center_crop_takes_torchvisions_crop():
    # 35 x 35 at crop_fraction 0.9 for 32 x 32: no resize, then the central crop at offset
    # round(1.5) = 2 (torchvision's CenterCrop), not 1.
    images = _images(35, 35)
    layer = ImagePreprocessor(image_size=(32, 32), resize="center_crop", crop_fraction=0.9)
    expected = images[:, 2:34, 2:34].astype("float32") / 255
    np.testing.assert_allclose(np.asarray(layer(images)), expected, atol=1e-7)


def test_center_crop_resizes_the_shorter_side_first():
    images = _images(70, 105)
    layer = ImagePreprocessor(image_size=(32, 32), resize="center_crop", crop_fraction=0.9)
    # Shorter side 70 -> floor(32 / 0.9) = 35, longer 105 -> 52; then the central 32 x 32.
    resized = keras.ops.image.resize(
        images.astype("float32"), (35, 52), interpolation="bilinear", antialias=True
    )
    top, left = int(round(3 / 2)), int(round(20 / 2))
    expected = np.asarray(resized)[:, top : top + 32, left : left + 32] / 255
    np.testing.assert_allclose(np.asarray(layer(images)), expected, atol=1e-5)


@pytest.mark.parametrize(
    "shape, expected",
    [((100, 200), (40, 80)), ((200, 100), (80, 40)), ((30, 40), (50, 66)), ((50, 50), (50, 50))],
)
def test_shortest_edge_keeps_the_aspect_ratio_within_the_longest_edge(shape, expected):
    layer = ImagePreprocessor(resize="shortest_edge", shortest_edge=50, longest_edge=80)
    assert tuple(layer(_images(*shape)).shape[1:3]) == expected
    assert layer.compute_output_shape((2, *shape, 3)) == (2, *expected, 3)


def test_runs_in_a_tf_data_pipeline_and_round_trips_its_config():
    layer = ImagePreprocessor(image_size=(8, 8), mean=MEAN, std=STD, name="preprocessor")
    dataset = tf.data.Dataset.from_tensor_slices(_images(12, 12)).batch(2).map(layer)
    (batch,) = list(dataset)
    clone = ImagePreprocessor.from_config(layer.get_config())
    np.testing.assert_allclose(np.asarray(clone(_images(12, 12))), batch.numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"resize": "crop"}, ValueError, "resize"),
        ({"resize": "exact"}, ValueError, "image_size"),
        ({"image_size": (0, 8)}, ValueError, "image_size"),
        ({"resize": "shortest_edge"}, TypeError, "shortest_edge"),
        ({"interpolation": "area"}, ValueError, "interpolation"),
        ({"crop_fraction": 1.5}, ValueError, "crop_fraction"),
        ({"scale": 0.0}, ValueError, "scale"),
        ({"std": [0.5, 0.0, 0.5]}, ValueError, "std"),
        ({"mean": 0.5}, TypeError, "mean"),
        ({"mean": [0.5, 0.5], "std": [0.5, 0.5, 0.5]}, ValueError, "mean"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        ImagePreprocessor(**kwargs)


def test_resizing_needs_a_static_size():
    layer = ImagePreprocessor(image_size=(8, 8))
    function = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3), "uint8")])
    with pytest.raises(ValueError, match="static size"):
        function.get_concrete_function()
