"""DropPath: identity at inference, whole examples dropped or rescaled in training, the keep
rate, seeds, gradients, stochastic depth in the transformer blocks, contract and errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import layers
from keras_seq import testing

RNG = np.random.default_rng(4)
# No zero entries, so that a kept example can never look dropped.
X = (RNG.uniform(0.5, 1.5, size=(64, 3, 5)) * RNG.choice([-1.0, 1.0], (64, 3, 5))).astype("float32")


def kept_examples(outputs, inputs, rate):
    """Per example: True if scaled by 1 / (1 - rate), False if all zero; fail otherwise."""
    outputs = np.asarray(outputs).reshape(len(inputs), -1)
    inputs = np.asarray(inputs).reshape(len(inputs), -1)
    kept = []
    for out, x in zip(outputs, inputs):
        if np.all(out == 0.0):
            kept.append(False)
        else:
            np.testing.assert_allclose(out, x / (1.0 - rate), rtol=1e-6)
            kept.append(True)
    return np.array(kept)


def test_identity_at_inference_and_at_rate_zero():
    layer = layers.DropPath(rate=0.4, seed=3)
    np.testing.assert_array_equal(layer(X), X)
    np.testing.assert_array_equal(layer(X, training=False), X)
    np.testing.assert_array_equal(layers.DropPath()(X, training=True), X)
    np.testing.assert_array_equal(layers.DropPath(rate=0.0, seed=1)(X, training=True), X)


def test_training_drops_or_rescales_whole_examples():
    for shape in [(64, 3, 5), (64, 7), (64, 2, 3, 4), (64,)]:
        x = np.resize(X, shape)  # No zero entries.
        for rate in (0.25, 0.5):
            outputs = layers.DropPath(rate=rate, seed=2)(x, training=True)
            kept = kept_examples(outputs, x, rate)
            assert 0 < kept.sum() < 64, shape  # Both outcomes occur among 64 examples.


def test_keep_fraction_matches_the_rate():
    rate, count = 0.3, 4000
    x = np.ones((count, 1), "float32")
    kept = kept_examples(layers.DropPath(rate=rate, seed=0)(x, training=True), x, rate)
    # Binomial standard deviation sqrt(0.3 * 0.7 / 4000) = 0.0072; allow five of them.
    assert abs(kept.mean() - (1.0 - rate)) < 5 * np.sqrt(rate * (1 - rate) / count)


def test_seed_makes_draws_reproducible():
    first = np.asarray(layers.DropPath(rate=0.5, seed=7)(X, training=True))
    second = np.asarray(layers.DropPath(rate=0.5, seed=7)(X, training=True))
    np.testing.assert_array_equal(first, second)
    other = np.asarray(layers.DropPath(rate=0.5, seed=8)(X, training=True))
    assert not np.array_equal(kept_examples(first, X, 0.5), kept_examples(other, X, 0.5))
    # A layer's successive calls draw afresh.
    layer = layers.DropPath(rate=0.5, seed=7)
    calls = [kept_examples(layer(X, training=True), X, 0.5) for _ in range(2)]
    assert not np.array_equal(calls[0], calls[1])


def test_gradient_is_the_per_example_scale():
    layer = layers.DropPath(rate=0.5, seed=1)
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x, training=True)
        loss = tf.reduce_sum(outputs)
    kept = kept_examples(outputs, X, 0.5)
    expected = np.broadcast_to((kept * 2.0)[:, None, None], X.shape)
    np.testing.assert_allclose(tape.gradient(loss, x), expected, rtol=1e-6)


def test_keras_mask_propagates():
    layer = layers.DropPath(rate=0.5, seed=0)
    inputs = keras.Input((3, 5))
    masked = keras.layers.Masking()(inputs)
    assert layer(masked)._keras_mask is not None
    mask = np.ones((2, 3), bool)
    np.testing.assert_array_equal(layer.compute_mask(X[:2], mask), mask)


def test_contract():
    testing.run_layer_test(
        layers.DropPath,
        {"rate": 0.3, "seed": 1},
        X[:4],
        expected_output_shape=(4, 3, 5),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,  # The seed generator's state is no weight.
    )


def test_bad_rate_raises():
    for rate in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="`rate`"):
            layers.DropPath(rate=rate)
    with pytest.raises(TypeError, match="`rate`"):
        layers.DropPath(rate="0.5")


def encoder_branch_candidates(encoder, x, scale):
    """Pre-norm outputs with each residual branch dropped (0) or kept (scale): 4 per example."""
    candidates = []
    for first in (0.0, scale):
        h = encoder.self_attention_layer_norm(x)
        y = x + first * np.asarray(encoder.self_attention(h, h))
        for second in (0.0, scale):
            z = y + second * np.asarray(encoder.feedforward(encoder.feedforward_layer_norm(y)))
            candidates.append(np.asarray(z))
    return np.stack(candidates)  # (4, B, T, C)


def test_encoder_drop_path_rate():
    x = RNG.normal(size=(32, 5, 8)).astype("float32")
    dropped = layers.TransformerEncoder(
        num_heads=2, intermediate_dim=16, normalize_first=True, drop_path_rate=0.5
    )
    plain = layers.TransformerEncoder(num_heads=2, intermediate_dim=16, normalize_first=True)
    dropped(x)
    plain(x)
    plain.set_weights(dropped.get_weights())
    inference = np.asarray(dropped(x))
    np.testing.assert_allclose(inference, plain(x), atol=1e-6)
    training = np.asarray(dropped(x, training=True))
    assert not np.allclose(training, inference, atol=1e-3)
    # Every example's training output is one of its four keep / drop combinations, and
    # several combinations occur.
    candidates = encoder_branch_candidates(dropped, x, 2.0)
    errors = np.abs(candidates - training[None]).max(axis=(2, 3))  # (4, B)
    assert np.all(errors.min(axis=0) < 1e-4)
    assert len(set(errors.argmin(axis=0))) > 1
    # At rate 0 the training pass has no randomness at all.
    np.testing.assert_allclose(plain(x, training=True), plain(x), atol=1e-6)


def test_decoder_drop_path_rate():
    x = RNG.normal(size=(16, 5, 8)).astype("float32")
    source = RNG.normal(size=(16, 4, 8)).astype("float32")
    dropped = layers.TransformerDecoder(num_heads=2, intermediate_dim=16, drop_path_rate=0.5)
    plain = layers.TransformerDecoder(num_heads=2, intermediate_dim=16)
    dropped(x, source)
    plain(x, source)
    plain.set_weights(dropped.get_weights())
    np.testing.assert_allclose(dropped(x, source), plain(x, source), atol=1e-6)
    assert not np.allclose(dropped(x, source, training=True), dropped(x, source), atol=1e-3)


def test_block_drop_path_rate_is_validated():
    for block in (layers.TransformerEncoder, layers.TransformerDecoder):
        with pytest.raises(ValueError, match="`drop_path_rate`"):
            block(num_heads=2, intermediate_dim=8, drop_path_rate=1.0)
        with pytest.raises(TypeError, match="`drop_path_rate`"):
            block(num_heads=2, intermediate_dim=8, drop_path_rate=None)
        config = block(num_heads=2, intermediate_dim=8, drop_path_rate=0.2).get_config()
        assert block.from_config(config).drop_path_rate == 0.2
