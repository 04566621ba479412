"""SinePositionEncoding: the Vaswani et al. formula computed in NumPy, add / concat,
start_index, unseen lengths, odd widths, the relative-position property, the keras-hub peer,
the contract harness and argument errors."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import testing
from keras_seq.layers.embeddings.sine_position_encoding import SinePositionEncoding

rng = np.random.default_rng(3)
X = rng.normal(size=(3, 6, 8)).astype("float32")
MASK = np.ones((3, 6), bool)
MASK[0, 4:] = False
MASK[2, 1:] = False


def numpy_sine(positions, width, max_wavelength=10000.0):
    """PE[t, 2i] = sin(t / w^(2i/d)), PE[t, 2i+1] = cos(t / w^(2i/d)), written as loops."""
    table = np.zeros((len(positions), width))
    for row, t in enumerate(positions):
        for j in range(width):
            i = j // 2
            angle = t / max_wavelength ** (2 * i / width)
            table[row, j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
    return table


def test_add_equals_numpy_formula():
    for width in (8, 7, 1):
        for max_wavelength in (10000, 50.0):
            x = rng.normal(size=(2, 40, width)).astype("float32")
            outputs = SinePositionEncoding(max_wavelength=max_wavelength)(x)
            expected = x + numpy_sine(range(40), width, max_wavelength)[None]
            np.testing.assert_allclose(outputs, expected, atol=2e-5)


def test_concat_keeps_inputs_and_appends_the_encoding():
    for hidden_dim in (6, 5):
        outputs = np.asarray(SinePositionEncoding(merge="concat", hidden_dim=hidden_dim)(X))
        assert outputs.shape == (3, 6, 8 + hidden_dim)
        np.testing.assert_array_equal(outputs[..., :8], X)
        expected = np.broadcast_to(numpy_sine(range(6), hidden_dim), (3, 6, hidden_dim))
        np.testing.assert_allclose(outputs[..., 8:], expected, atol=1e-6)


def test_odd_width_last_channel_is_a_lone_sine():
    encoding = np.asarray(SinePositionEncoding()(np.zeros((1, 30, 5), "float32")))[0]
    t = np.arange(30)
    np.testing.assert_allclose(encoding[:, 4], np.sin(t / 10000 ** (4 / 5)), atol=1e-6)


def test_start_index_equals_slice_of_full_encoding():
    layer = SinePositionEncoding()
    x = np.zeros((2, 30, 8), "float32")
    full = np.asarray(layer(x))
    for make_start in (int, np.int64, lambda s: tf.constant(s, "int32"), tf.constant):
        for start in (0, 7, 29):
            step = layer(x[:, :1], start_index=make_start(start))
            np.testing.assert_allclose(step, full[:, start : start + 1], atol=1e-6)
        chunk = layer(x[:, :5], start_index=make_start(12))
        np.testing.assert_allclose(chunk, full[:, 12:17], atol=1e-6)


def test_tensor_start_index_under_xla_equals_slice():
    layer = SinePositionEncoding()
    x = np.zeros((2, 20, 6), "float32")
    full = np.asarray(layer(x))
    step = tf.function(lambda x, s: layer(x, start_index=s), jit_compile=True)
    for start in (3, 15):
        expected = full[:, start : start + 4]
        np.testing.assert_allclose(step(x[:, :4], tf.constant(start)), expected, atol=1e-6)


def test_lengths_longer_than_ever_seen_follow_the_formula_and_stay_bounded():
    layer = SinePositionEncoding()
    layer(np.zeros((1, 4, 8), "float32"))  # built and used at length 4
    long = np.asarray(layer(np.zeros((1, 5000, 8), "float32")))[0]
    assert layer.weights == []
    # float32 angles up to 5000 carry an absolute error of a few 1e-4.
    np.testing.assert_allclose(long, numpy_sine(range(5000), 8), atol=1e-3)
    assert np.abs(long).max() <= 1.0


def test_dot_product_depends_only_on_offset():
    """Lecture desideratum: a consistent distance between steps, whatever their position."""
    local = np.random.default_rng(0)
    width = 16
    encoding = np.asarray(SinePositionEncoding()(np.zeros((1, 1200, width), "float32")))[0]
    for offset in local.integers(0, 150, size=10):
        starts = local.integers(0, 1000, size=6)
        dots = [encoding[t] @ encoding[t + offset] for t in starts]
        np.testing.assert_allclose(dots, dots[0], atol=2e-3)
        frequencies = 10000.0 ** (-np.arange(0, width, 2) / width)
        np.testing.assert_allclose(dots[0], np.cos(frequencies * offset).sum(), atol=2e-3)
    # With an odd width the lone sine channel breaks the property.
    odd = np.asarray(SinePositionEncoding(max_wavelength=10)(np.zeros((1, 200, 3), "float32")))
    assert abs(odd[0, 10] @ odd[0, 13] - odd[0, 100] @ odd[0, 103]) > 1e-2


def test_equals_keras_hub_encoding():
    x = rng.normal(size=(2, 50, 12)).astype("float32")
    ours = np.asarray(SinePositionEncoding(max_wavelength=500)(x)) - x
    peer = keras_hub.layers.SinePositionEncoding(max_wavelength=500)(x)
    np.testing.assert_allclose(ours, peer, atol=1e-5)
    ours = np.asarray(SinePositionEncoding()(x[:, :3], start_index=40)) - x[:, :3]
    peer = keras_hub.layers.SinePositionEncoding()(x[:, :3], start_index=40)
    np.testing.assert_allclose(ours, peer, atol=1e-5)


def test_float16_policy_keeps_positions_exact():
    """Angles in float32: at positions above 2048 float16 positions would be off by ~1."""
    layer = SinePositionEncoding(dtype="mixed_float16")
    outputs = layer(np.zeros((1, 8, 8), "float32"), start_index=3001)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float16"
    expected = numpy_sine(range(3001, 3009), 8)
    np.testing.assert_allclose(np.asarray(outputs, "float32")[0], expected, atol=2e-3)


def test_mask_propagates_in_a_functional_model():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 4, mask_zero=True)(inputs)
    outputs = SinePositionEncoding(merge="concat", hidden_dim=2)(x)
    ids = np.array([[3, 4, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(outputs._keras_mask.shape, (None, None))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(outputs))
    per_step = keras.Model(inputs, outputs)(ids)
    expected = [np.asarray(per_step)[b, ids[b] != 0].mean(0) for b in range(2)]
    np.testing.assert_allclose(model(ids), np.stack(expected), atol=1e-6)


def test_output_shapes():
    assert SinePositionEncoding().compute_output_shape((None, None, 8)) == (None, None, 8)
    layer = SinePositionEncoding(merge="concat", hidden_dim=3)
    assert layer.compute_output_shape((2, None, 8)) == (2, None, 11)
    assert layer.compute_output_shape((2, 5, None)) == (2, 5, None)
    symbolic = layer(keras.KerasTensor((None, None, 8)), start_index=keras.KerasTensor((), "int32"))
    assert symbolic.shape == (None, None, 11)


# The contract harness ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "init_kwargs,call_kwargs,width",
    [
        ({}, {"start_index": 5}, 8),
        ({"max_wavelength": 100, "merge": "concat", "hidden_dim": 5}, {}, 13),
    ],
    ids=["add-start_index", "concat-odd"],
)
def test_contract(init_kwargs, call_kwargs, width):
    testing.run_layer_test(
        SinePositionEncoding,
        init_kwargs,
        X,
        call_kwargs=call_kwargs,
        expected_output_shape=(3, 6, width),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        padding_mask=MASK,
        run_training_check=False,  # no weights: nothing to train
    )


# Validation ---------------------------------------------------------------------------------


ARGUMENT_ERRORS = [
    ({"max_wavelength": 0}, ValueError, r"`max_wavelength` .* Received: max_wavelength=0"),
    ({"max_wavelength": -5.0}, ValueError, r"Received: max_wavelength=-5.0"),
    ({"max_wavelength": float("inf")}, ValueError, r"max_wavelength=inf"),
    ({"max_wavelength": "10000"}, TypeError, r"`max_wavelength` .* max_wavelength='10000'"),
    ({"merge": "sum"}, ValueError, r"`merge` must be one of .* Received: merge='sum'"),
    ({"merge": "concat"}, ValueError, r"`hidden_dim` is required .* hidden_dim=None"),
    ({"merge": "concat", "hidden_dim": 0}, ValueError, r"`hidden_dim` .* hidden_dim=0"),
    ({"hidden_dim": 8}, ValueError, r"`hidden_dim` only applies .* hidden_dim=8"),
]


def test_argument_errors():
    for kwargs, error, pattern in ARGUMENT_ERRORS:
        with pytest.raises(error, match=pattern):
            SinePositionEncoding(**kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"`inputs` of shape .* input_shape=\(2, 8\)"):
        SinePositionEncoding()(np.zeros((2, 8), "float32"))
    with pytest.raises(ValueError, match=r"known last dimension .* input_shape=\(None, 4, None\)"):
        SinePositionEncoding().build((None, 4, None))
    SinePositionEncoding(merge="concat", hidden_dim=2).build((None, 4, None))  # no width needed


START_INDEX_ERRORS = [
    (1.5, TypeError, r"`start_index` must be an int .* start_index=1.5"),
    (True, TypeError, r"`start_index` .* start_index=True"),
    (np.array([1, 2]), ValueError, r"`start_index` must be a scalar"),
    (tf.constant(1.0), TypeError, r"`start_index` must be an int"),
]


def test_start_index_errors():
    for start_index, error, pattern in START_INDEX_ERRORS:
        with pytest.raises(error, match=pattern):
            SinePositionEncoding()(X, start_index=start_index)
