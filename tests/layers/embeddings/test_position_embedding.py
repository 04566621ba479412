"""PositionEmbedding: lookup == table slice, start_index, linear interpolation against
np.interp, length errors, save at one length and reload at another, the keras-hub peer, the
contract harness and argument errors."""

import os

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import testing
from keras_seq.layers.embeddings.position_embedding import PositionEmbedding
from keras_seq.layers.embeddings.position_embedding import resample_positions

rng = np.random.default_rng(5)
X = rng.normal(size=(3, 6, 8)).astype("float32")
MASK = np.ones((3, 6), bool)
MASK[0, 4:] = False
MASK[2, 1:] = False


def numpy_resample(table, length):
    """Linear interpolation per channel, sampling the table at half-pixel coordinates."""
    num_rows = table.shape[0]
    coordinates = (np.arange(length) + 0.5) * num_rows / length - 0.5
    return np.stack(
        [np.interp(coordinates, np.arange(num_rows), table[:, c]) for c in range(table.shape[1])],
        axis=-1,
    )


def built_layer(sequence_length=10, width=8, **kwargs):
    layer = PositionEmbedding(sequence_length, **kwargs)
    layer.build((None, None, width))
    table = rng.normal(size=(sequence_length, layer.hidden_dim or width)).astype("float32")
    layer.embeddings.assign(table)
    return layer, table


def test_add_equals_input_plus_table_slice():
    layer, table = built_layer()
    for length in (1, 6, 10):
        x = rng.normal(size=(2, length, 8)).astype("float32")
        np.testing.assert_allclose(layer(x), x + table[None, :length], atol=1e-6)


def test_concat_appends_table_rows():
    layer, table = built_layer(merge="concat", hidden_dim=3)
    outputs = np.asarray(layer(X))
    assert outputs.shape == (3, 6, 11)
    np.testing.assert_array_equal(outputs[..., :8], X)
    np.testing.assert_array_equal(outputs[..., 8:], np.broadcast_to(table[:6], (3, 6, 3)))


def test_start_index_reads_the_rows_from_there():
    layer, table = built_layer()
    x = rng.normal(size=(2, 3, 8)).astype("float32")
    for make_start in (int, np.int32, tf.constant):
        for start in (0, 4, 7):
            outputs = layer(x, start_index=make_start(start))
            np.testing.assert_allclose(outputs, x + table[None, start : start + 3], atol=1e-6)


def test_decoding_step_by_step_under_xla_equals_full_pass():
    layer, _ = built_layer()
    x = rng.normal(size=(2, 10, 8)).astype("float32")
    full = np.asarray(layer(x))
    step = tf.function(lambda x, s: layer(x, start_index=s), jit_compile=True)
    steps = [step(x[:, t : t + 1], tf.constant(t)) for t in range(10)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-6)


def test_interpolation_equals_numpy_linear_interpolation():
    layer, table = built_layer(interpolate=True)
    for length in (20, 13, 7, 3, 1):
        x = rng.normal(size=(2, length, 8)).astype("float32")
        expected = x + numpy_resample(table, length)[None]
        np.testing.assert_allclose(layer(x), expected, atol=1e-5)


def test_interpolation_is_identity_at_the_trained_length():
    layer, table = built_layer(interpolate=True)
    np.testing.assert_array_equal(layer(np.zeros((1, 10, 8), "float32"))[0], table)
    # The formula itself (used when the length is only known at run time) is exact there too.
    np.testing.assert_array_equal(resample_positions(table, tf.constant(10)), table)


def test_doubling_the_length_keeps_the_ends_and_interleaves_midpoints():
    table = rng.normal(size=(5, 3)).astype("float32")
    doubled = np.asarray(resample_positions(table, 10))
    np.testing.assert_allclose(doubled[[0, -1]], table[[0, -1]])
    # Half-pixel alignment: output 2k + 1 sits a quarter of the way from row k to row k + 1.
    np.testing.assert_allclose(doubled[1:-1:2], 0.75 * table[:-1] + 0.25 * table[1:], atol=1e-6)


def test_model_saved_at_one_length_reloads_and_runs_at_another(tmp_path):
    inputs = keras.Input((None, 8))
    layer = PositionEmbedding(6, interpolate=True, name="positions")
    model = keras.Model(inputs, layer(inputs))
    x_trained = rng.normal(size=(2, 6, 8)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(x_trained, np.zeros_like(x_trained), epochs=1, verbose=0)  # trained at length 6
    table = np.asarray(layer.embeddings)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(reloaded.get_layer("positions").embeddings, table)
    x_long = rng.normal(size=(2, 12, 8)).astype("float32")
    np.testing.assert_allclose(reloaded(x_long), x_long + numpy_resample(table, 12), atol=1e-5)
    np.testing.assert_allclose(reloaded(x_trained), x_trained + table, atol=1e-6)


def test_inputs_longer_than_the_table_raise_without_interpolation():
    with pytest.raises(ValueError, match=r"Received: sequence_length=4, input length=6"):
        keras.Model(inputs := keras.Input((6, 8)), PositionEmbedding(4)(inputs))
    layer, _ = built_layer(sequence_length=4)
    layer(np.zeros((1, 4, 8), "float32"))
    with pytest.raises(ValueError, match=r"`sequence_length`.*sequence_length=4, input length=5"):
        layer(np.zeros((1, 5, 8), "float32"))
    with pytest.raises(ValueError, match=r"sequence_length=4, input length=2, start_index=3"):
        layer(np.zeros((1, 2, 8), "float32"), start_index=3)
    with pytest.raises(ValueError, match=r"`start_index` must be >= 0. Received: start_index=-1"):
        layer(np.zeros((1, 2, 8), "float32"), start_index=-1)


def test_start_index_with_interpolation_is_an_error():
    layer, _ = built_layer(interpolate=True)
    for start_index in (2, tf.constant(0)):
        with pytest.raises(ValueError, match=r"`start_index` must be 0 with interpolate=True"):
            layer(X, start_index=start_index)


def test_equals_keras_hub_position_embedding_given_the_same_table():
    layer, table = built_layer()
    peer = keras_hub.layers.PositionEmbedding(10)
    peer.build((None, None, 8))
    peer.set_weights([table])
    np.testing.assert_allclose(np.asarray(layer(X)) - X, peer(X), atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(layer(X[:, :2], start_index=5)) - X[:, :2],
        peer(X[:, :2], start_index=5),
        atol=1e-6,
    )


def test_mixed_precision_keeps_a_float32_table():
    layer = PositionEmbedding(6, dtype="mixed_bfloat16")
    outputs = layer(X)
    assert keras.backend.standardize_dtype(layer.embeddings.dtype) == "float32"
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    expected = X + np.asarray(layer.embeddings)
    np.testing.assert_allclose(np.asarray(outputs, "float32"), expected, atol=3e-2)


def test_output_shapes():
    layer = PositionEmbedding(6, merge="concat", hidden_dim=4)
    assert layer.compute_output_shape((None, None, 8)) == (None, None, 12)
    symbolic = layer(keras.KerasTensor((None, None, 8)), start_index=keras.KerasTensor((), "int32"))
    assert symbolic.shape == (None, None, 12)


# The contract harness ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "init_kwargs,call_kwargs,width",
    [
        ({"sequence_length": 9}, {"start_index": 2}, 8),
        ({"sequence_length": 6, "merge": "concat", "hidden_dim": 3, "initializer": "ones"}, {}, 11),
        ({"sequence_length": 4, "interpolate": True}, {}, 8),
    ],
    ids=["add-start_index", "concat", "interpolate"],
)
def test_contract(init_kwargs, call_kwargs, width):
    testing.run_layer_test(
        PositionEmbedding,
        init_kwargs,
        X,
        call_kwargs=call_kwargs,
        expected_output_shape=(3, 6, width),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
        padding_mask=MASK,
    )


# Validation ---------------------------------------------------------------------------------


ARGUMENT_ERRORS = [
    ({"sequence_length": 0}, ValueError, r"`sequence_length` .* sequence_length=0"),
    ({"sequence_length": None}, TypeError, r"`sequence_length` .* sequence_length=None"),
    ({"sequence_length": 8.0}, TypeError, r"`sequence_length` .* sequence_length=8.0"),
    (
        {"sequence_length": 8, "initializer": "no_such_initializer"},
        ValueError,
        r"`initializer` must be an initializer .* initializer='no_such_initializer'",
    ),
    ({"sequence_length": 8, "merge": "mul"}, ValueError, r"`merge` .* merge='mul'"),
    ({"sequence_length": 8, "merge": "concat"}, ValueError, r"`hidden_dim` is required"),
    ({"sequence_length": 8, "hidden_dim": 4}, ValueError, r"`hidden_dim` only applies"),
    (
        {"sequence_length": 8, "merge": "concat", "hidden_dim": -1},
        ValueError,
        r"`hidden_dim` .* hidden_dim=-1",
    ),
    ({"sequence_length": 8, "interpolate": 1}, TypeError, r"`interpolate` .* interpolate=1"),
]


def test_argument_errors():
    for kwargs, error, pattern in ARGUMENT_ERRORS:
        with pytest.raises(error, match=pattern):
            PositionEmbedding(**kwargs)


def test_shape_and_start_index_errors():
    with pytest.raises(ValueError, match=r"`inputs` of shape .* input_shape=\(2, 8\)"):
        PositionEmbedding(8).build((2, 8))
    with pytest.raises(ValueError, match=r"known last dimension .* input_shape=\(None, 4, None\)"):
        PositionEmbedding(8).build((None, 4, None))
    with pytest.raises(TypeError, match=r"`start_index` must be an int .* start_index=0.5"):
        PositionEmbedding(8)(X, start_index=0.5)
