"""PatchPositionEmbedding: exact table rows on the learned grid, bicubic resampling on other
grids (also of sizes known only at run time), tables saved for another grid, contract and
argument errors."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import layers
from keras_seq import ops
from keras_seq import testing

RNG = np.random.default_rng(14)


def randomized_layer(grid, hidden_dim=8, **kwargs):
    layer = layers.PatchPositionEmbedding(grid_shape=grid, **kwargs)
    layer(np.zeros((1, *grid, hidden_dim), "float32"))
    for weight in layer.weights:
        weight.assign(RNG.normal(size=weight.shape).astype("float32"))
    return layer


def test_learned_grid_adds_table_rows_exactly():
    layer = randomized_layer((3, 4))
    x = RNG.normal(size=(2, 3, 4, 8)).astype("float32")
    outputs = np.asarray(layer(x))
    table = layer.position_embeddings.numpy()
    class_token = layer.class_token.numpy()
    assert outputs.shape == (2, 13, 8)
    for b in range(2):
        np.testing.assert_array_equal(outputs[b, 0], class_token[0, 0] + table[0])
        for i in range(3):
            for j in range(4):
                np.testing.assert_array_equal(
                    outputs[b, 1 + i * 4 + j], x[b, i, j] + table[1 + i * 4 + j]
                )


def test_without_class_token():
    layer = randomized_layer((3, 4), use_class_token=False)
    assert len(layer.weights) == 1
    x = RNG.normal(size=(2, 3, 4, 8)).astype("float32")
    np.testing.assert_array_equal(
        layer(x), x.reshape(2, 12, 8) + layer.position_embeddings.numpy()[None]
    )
    grid = layer.position_embeddings.numpy().reshape(3, 4, 8)
    other = RNG.normal(size=(2, 5, 2, 8)).astype("float32")
    expected = other.reshape(2, 10, 8) + np.asarray(ops.bicubic_resize(grid, (5, 2))).reshape(
        1, 10, 8
    )
    np.testing.assert_allclose(layer(other), expected, atol=1e-5)


def test_other_grid_resamples_the_table_bicubically():
    layer = randomized_layer((4, 4))
    for size in [(6, 6), (2, 3), (5, 7), (4, 1)]:
        check_resampled_call(layer, size)


def check_resampled_call(layer, size):
    x = RNG.normal(size=(2, *size, 8)).astype("float32")
    outputs = np.asarray(layer(x))
    table = layer.position_embeddings.numpy()
    tokens = size[0] * size[1]
    assert outputs.shape == (2, 1 + tokens, 8)
    resampled = np.asarray(ops.bicubic_resize(table[1:].reshape(4, 4, 8), size))
    np.testing.assert_allclose(
        outputs[:, 1:], x.reshape(2, tokens, 8) + resampled.reshape(1, tokens, 8), atol=1e-5
    )
    np.testing.assert_allclose(
        outputs[:, 0],
        np.broadcast_to(layer.class_token.numpy()[0, 0] + table[0], (2, 8)),
        atol=1e-6,
    )


def test_sizes_known_only_at_run_time():
    layer = randomized_layer((4, 4))
    graph = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 8), tf.float32)])
    inputs = keras.Input((None, None, 8))
    model = keras.Model(inputs, layer(inputs))
    assert model.output.shape == (None, None, 8)
    for size in [(6, 5), (4, 4), (2, 7)]:
        x = RNG.normal(size=(2, *size, 8)).astype("float32")
        eager = np.asarray(layer(x))
        np.testing.assert_allclose(graph(x), eager, atol=1e-5)
        np.testing.assert_allclose(model.predict(x, verbose=0), eager, atol=1e-5)


def grid_model(grid, hidden_dim=8, **kwargs):
    inputs = keras.Input((*grid, hidden_dim))
    layer = layers.PatchPositionEmbedding(grid_shape=grid, name="position", **kwargs)
    return keras.Model(inputs, layer(inputs)), layer


def test_weights_saved_for_another_grid_are_resampled(tmp_path):
    for use_class_token in (True, False):
        check_resampled_load(tmp_path, use_class_token)


def check_resampled_load(tmp_path, use_class_token):
    path = os.path.join(tmp_path, f"grid4_{use_class_token}.weights.h5")
    model, layer = grid_model((4, 4), use_class_token=use_class_token)
    for weight in layer.weights:
        weight.assign(RNG.normal(size=weight.shape).astype("float32"))
    model.save_weights(path)
    saved = layer.position_embeddings.numpy()
    prefix = int(use_class_token)
    for grid in [(6, 6), (4, 4), (3, 5)]:
        target, target_layer = grid_model(grid, use_class_token=use_class_token)
        target.load_weights(path)
        table = target_layer.position_embeddings.numpy()
        assert table.shape == (prefix + grid[0] * grid[1], 8)
        np.testing.assert_array_equal(table[:prefix], saved[:prefix])  # The class token's row.
        expected = np.asarray(ops.bicubic_resize(saved[prefix:].reshape(4, 4, 8), grid))
        np.testing.assert_allclose(table[prefix:], expected.reshape(-1, 8), atol=1e-6)
        if use_class_token:
            np.testing.assert_array_equal(target_layer.class_token, layer.class_token)
        if grid == (4, 4):
            np.testing.assert_array_equal(table, saved)


# Keras warns about the containers it skips once a layer's loading has failed.
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_incompatible_table_raises(tmp_path):
    path = os.path.join(tmp_path, "grid4x6.weights.h5")
    model, _ = grid_model((4, 6))  # 24 grid rows: not a square grid
    model.save_weights(path)
    target, _ = grid_model((6, 6))
    with pytest.raises(ValueError, match="position table"):
        target.load_weights(path)
    layer = randomized_layer((3, 3))
    class_token = layer.class_token.numpy()
    for table in (np.zeros((17, 6)), np.zeros((18, 8)), np.zeros((17,))):
        with pytest.raises(ValueError, match="position table"):
            layer.load_own_variables({"0": class_token, "1": table})


@pytest.mark.parametrize(
    "init_kwargs,shape,expected_shape,num_weights",
    [
        ({"grid_shape": (2, 3)}, (2, 2, 3, 8), (2, 7, 8), 2),
        ({"grid_shape": (2, 2), "use_class_token": False}, (2, 3, 3, 8), (2, 9, 8), 1),
    ],
    ids=["learned_grid", "resampled_no_class_token"],
)
def test_contract(init_kwargs, shape, expected_shape, num_weights):
    testing.run_layer_test(
        layers.PatchPositionEmbedding,
        init_kwargs,
        RNG.normal(size=shape).astype("float32"),
        expected_output_shape=expected_shape,
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
    )


def test_bad_grid_shape_raises():
    for grid_shape in [(4,), (4, 0), (4, 4, 4)]:
        with pytest.raises(ValueError, match="`grid_shape` must be a pair of integers"):
            layers.PatchPositionEmbedding(grid_shape=grid_shape)
    for grid_shape in [4, (2.0, 2), None]:
        with pytest.raises(TypeError, match="`grid_shape` must be a pair of integers"):
            layers.PatchPositionEmbedding(grid_shape=grid_shape)


def test_other_errors_name_the_argument():
    with pytest.raises(TypeError, match="`use_class_token`"):
        layers.PatchPositionEmbedding(grid_shape=(2, 2), use_class_token=1)
    with pytest.raises(ValueError, match="`inputs`"):
        layers.PatchPositionEmbedding(grid_shape=(2, 2))(np.zeros((1, 4, 8), "float32"))
