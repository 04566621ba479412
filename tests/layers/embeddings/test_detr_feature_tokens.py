"""DETRFeatureTokens: nearest-neighbour mask, encoding and flattening against NumPy; run-time
sizes; contract."""

import keras
import numpy as np
import tensorflow as tf

from keras_seq import layers
from keras_seq import testing

RNG = np.random.default_rng(4)


def test_tokens_mask_and_encoding_equal_numpy():
    features = RNG.normal(size=(2, 3, 5, 8)).astype("float32")
    mask = np.ones((2, 12, 19), bool)  # image 12 x 19 -> map 3 x 5 (strides 4, 3.8)
    mask[1, 6:, :] = False
    mask[1, :, 11:] = False
    tokens, position, token_mask = layers.DETRFeatureTokens()(features, mask)
    np.testing.assert_array_equal(tokens, features.reshape(2, 15, 8))
    rows, columns = np.arange(3) * 12 // 3, np.arange(5) * 19 // 5  # floor(i * H / h)
    expected_mask = mask[:, rows][:, :, columns]
    np.testing.assert_array_equal(token_mask, expected_mask.reshape(2, 15))
    encoding = layers.SinePositionEncoding2D()(features, expected_mask)
    np.testing.assert_allclose(position, np.asarray(encoding).reshape(2, 15, 8), atol=1e-6)
    _, _, all_real = layers.DETRFeatureTokens()(features)
    assert np.all(all_real)


def test_run_time_sizes_in_a_functional_model():
    inputs = keras.Input((None, None, 8))
    mask = keras.Input((None, None), dtype="bool")
    outputs = layers.DETRFeatureTokens()(inputs, mask)
    assert tuple(outputs[0].shape) == (None, None, 8) and tuple(outputs[2].shape) == (None, None)
    model = keras.Model([inputs, mask], outputs)
    features = RNG.normal(size=(1, 4, 6, 8)).astype("float32")
    tokens, _, token_mask = model([features, np.ones((1, 16, 24), bool)])
    assert tokens.shape == (1, 24, 8) and token_mask.shape == (1, 24)
    compiled = tf.function(lambda f, m: model([f, m])[1], jit_compile=True)
    np.testing.assert_allclose(
        compiled(features, np.ones((1, 16, 24), bool)),
        model([features, np.ones((1, 16, 24), bool)])[1],
        atol=1e-5,
    )


def test_contract():
    testing.run_layer_test(
        layers.DETRFeatureTokens,
        {"temperature": 100.0},
        RNG.normal(size=(2, 3, 4, 8)).astype("float32"),
        call_kwargs={"padding_mask": RNG.random((2, 12, 16)) > 0.3},
        expected_num_trainable_weights=0,
    )
