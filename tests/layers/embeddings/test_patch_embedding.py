"""PatchEmbedding: flattened patches times the kernel in NumPy, zero padding to a multiple,
run-time image sizes, contract and argument errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import layers
from keras_seq import testing

RNG = np.random.default_rng(13)


def numpy_patch_embedding(images, kernel, bias, patch_size):
    """Cut `(B, H, W, C)` into patches, flatten each (row, column, channel) and project."""
    batch_size, height, width, channels = images.shape
    rows, columns = height // patch_size, width // patch_size
    patches = images.reshape(batch_size, rows, patch_size, columns, patch_size, channels)
    patches = patches.transpose(0, 1, 3, 2, 4, 5).reshape(batch_size, rows, columns, -1)
    return patches @ kernel.reshape(-1, kernel.shape[-1]) + bias


def randomized_layer(images, **kwargs):
    layer = layers.PatchEmbedding(**kwargs)
    layer(images)
    kernel, bias = [RNG.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights([kernel, bias])
    return layer, kernel, bias


def test_equals_numpy_reference():
    for shape, patch_size in [((2, 8, 12, 3), 4), ((1, 6, 4, 2), 2), ((2, 5, 5, 1), 5)]:
        check_against_numpy(shape, patch_size)


def check_against_numpy(shape, patch_size):
    images = RNG.normal(size=shape).astype("float32")
    layer, kernel, bias = randomized_layer(images, hidden_dim=6, patch_size=patch_size)
    outputs = np.asarray(layer(images))
    assert outputs.shape == (shape[0], shape[1] // patch_size, shape[2] // patch_size, 6)
    np.testing.assert_allclose(
        outputs, numpy_patch_embedding(images, kernel, bias, patch_size), atol=1e-4
    )


def test_pad_to_multiple_pads_bottom_and_right_with_zeros():
    for shape in [(2, 10, 13, 3), (1, 9, 8, 3), (1, 8, 8, 3)]:
        check_padding(shape)


def check_padding(shape):
    images = RNG.normal(size=shape).astype("float32")
    layer, kernel, bias = randomized_layer(images, hidden_dim=6, patch_size=4, pad_to_multiple=True)
    padded = np.pad(
        images, ((0, 0), (0, -shape[1] % 4), (0, -shape[2] % 4), (0, 0))
    )  # explicit zero padding
    outputs = np.asarray(layer(images))
    assert outputs.shape == (shape[0], -(-shape[1] // 4), -(-shape[2] // 4), 6)
    np.testing.assert_allclose(outputs, numpy_patch_embedding(padded, kernel, bias, 4), atol=1e-4)
    assert layer.compute_output_shape(shape) == outputs.shape


def test_pad_to_multiple_with_sizes_known_at_run_time():
    images = RNG.normal(size=(2, 10, 13, 3)).astype("float32")
    layer, _, _ = randomized_layer(images, hidden_dim=6, patch_size=4, pad_to_multiple=True)
    graph = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    for shape in [(2, 10, 13, 3), (1, 8, 5, 3)]:
        x = RNG.normal(size=shape).astype("float32")
        np.testing.assert_allclose(graph(x), layer(x), atol=1e-5)
    assert layer.compute_output_shape((None, None, None, 3)) == (None, None, None, 6)


@pytest.mark.parametrize(
    "shape,init_kwargs,expected_shape",
    [
        ((2, 6, 8, 3), {}, (2, 3, 4, 8)),
        ((2, 7, 9, 3), {"pad_to_multiple": True}, (2, 4, 5, 8)),
    ],
    ids=["multiple", "padded"],
)
def test_contract(shape, init_kwargs, expected_shape):
    testing.run_layer_test(
        layers.PatchEmbedding,
        {"hidden_dim": 8, "patch_size": 2, **init_kwargs},
        RNG.normal(size=shape).astype("float32"),
        expected_output_shape=expected_shape,
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`patch_size`"):
        layers.PatchEmbedding(hidden_dim=8, patch_size=4)(np.zeros((1, 10, 12, 3), "float32"))
    with pytest.raises(ValueError, match="`patch_size`"):
        layers.PatchEmbedding(hidden_dim=8, patch_size=4)(keras.Input((8, 6, 3)))
    with pytest.raises(ValueError, match="`patch_size`"):
        layers.PatchEmbedding(hidden_dim=8, patch_size=0)
    with pytest.raises(ValueError, match="`hidden_dim`"):
        layers.PatchEmbedding(hidden_dim=0, patch_size=4)
    with pytest.raises(TypeError, match="`pad_to_multiple`"):
        layers.PatchEmbedding(hidden_dim=8, patch_size=4, pad_to_multiple=1)
    with pytest.raises(ValueError, match="`inputs`"):
        layers.PatchEmbedding(hidden_dim=8, patch_size=4)(np.zeros((1, 8, 3), "float32"))
