"""Tests of `SequenceCrossEntropy` against a NumPy reference and Keras' own losses."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.losses.sequence_loss import SequenceCrossEntropy

BATCH, TIME, VOCAB = 3, 5, 7
LENGTHS = (5, 3, 1)  # real tokens per sequence; the rest is padding (id 0)


def _data(seed=0):
    rs = np.random.RandomState(seed)
    y = rs.randint(1, VOCAB, size=(BATCH, TIME))
    for row, length in enumerate(LENGTHS):
        y[row, length:] = 0
    logits = (2.0 * rs.randn(BATCH, TIME, VOCAB)).astype("float32")
    return y, logits


def _log_softmax(logits):
    logits = logits.astype("float64")
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _reference_token_losses(y, log_probs, label_smoothing=0.0):
    """-sum_k q_k log p_k with q = (1 - eps) one_hot + eps / V, per token."""
    one_hot = np.eye(log_probs.shape[-1])[y]
    q = (1.0 - label_smoothing) * one_hot + label_smoothing / log_probs.shape[-1]
    return -(q * log_probs).sum(-1)


def _reference(y, logits, weights=None, label_smoothing=0.0):
    losses = _reference_token_losses(y, _log_softmax(logits), label_smoothing)
    weights = np.ones_like(losses) if weights is None else weights
    return (losses * weights).sum() / weights.sum()


def _padding(y):
    return (y != 0).astype("float64")


@pytest.mark.backends
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.5])
def test_equals_numpy_reference_with_padding(label_smoothing):
    y, logits = _data()
    loss = SequenceCrossEntropy(label_smoothing=label_smoothing, ignore_index=0)
    expected = _reference(y, logits, _padding(y), label_smoothing)
    np.testing.assert_allclose(float(loss(y, logits)), expected, rtol=1e-5)


@pytest.mark.backends
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_equals_numpy_reference_without_padding(label_smoothing):
    y, logits = _data()
    y = np.where(y == 0, 3, y)
    loss = SequenceCrossEntropy(label_smoothing=label_smoothing)
    np.testing.assert_allclose(
        float(loss(y, logits)), _reference(y, logits, None, label_smoothing), rtol=1e-5
    )


def test_probabilities_equal_logits():
    y, logits = _data()
    probabilities = np.exp(_log_softmax(logits)).astype("float32")
    from_logits = SequenceCrossEntropy(label_smoothing=0.1, ignore_index=0)
    from_probabilities = SequenceCrossEntropy(
        from_logits=False, label_smoothing=0.1, ignore_index=0
    )
    np.testing.assert_allclose(
        float(from_probabilities(y, probabilities)), float(from_logits(y, logits)), rtol=1e-5
    )


@pytest.mark.parametrize("from_logits", [True, False])
def test_no_smoothing_equals_keras_sparse_categorical_crossentropy(from_logits):
    y, logits = _data()
    y = np.where(y == 0, 2, y)  # unpadded
    y_pred = logits if from_logits else keras.ops.softmax(logits).numpy()
    ours = SequenceCrossEntropy(from_logits=from_logits)(y, y_pred)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)(y, y_pred)
    np.testing.assert_allclose(float(ours), float(keras_loss), rtol=1e-6)


def test_smoothing_equals_keras_categorical_crossentropy():
    """Keras' `CategoricalCrossentropy(label_smoothing)` uses the same convention."""
    y, logits = _data()
    y = np.where(y == 0, 2, y)
    ours = SequenceCrossEntropy(label_smoothing=0.3)(y, logits)
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.3)(
        np.eye(VOCAB)[y], logits
    )
    np.testing.assert_allclose(float(ours), float(keras_loss), rtol=1e-5)


def test_out_of_vocabulary_ignore_index():
    y, logits = _data()
    y_ignored = np.where(y == 0, -100, y)
    loss = SequenceCrossEntropy(ignore_index=-100)
    np.testing.assert_allclose(
        float(loss(y_ignored, logits)), _reference(y, logits, _padding(y)), rtol=1e-5
    )


@pytest.mark.backends
def test_keras_mask_equals_ignore_index_and_sample_weight():
    y, logits = _data()
    masked_logits = tf.constant(logits)
    masked_logits._keras_mask = tf.constant(y != 0)
    expected = _reference(y, logits, _padding(y))
    np.testing.assert_allclose(float(SequenceCrossEntropy()(y, masked_logits)), expected, 1e-5)
    np.testing.assert_allclose(
        float(SequenceCrossEntropy()(y, logits, sample_weight=_padding(y))), expected, 1e-5
    )
    # Combined, they multiply (the same tokens, so the same result).
    np.testing.assert_allclose(
        float(SequenceCrossEntropy(ignore_index=0)(y, masked_logits, _padding(y))), expected, 1e-5
    )


def test_weighted_mean_of_mask_and_sample_weight():
    y, logits = _data()
    weights = np.random.RandomState(1).uniform(0.5, 2.0, size=y.shape)
    loss = SequenceCrossEntropy(ignore_index=0)
    expected = _reference(y, logits, weights * _padding(y))
    np.testing.assert_allclose(float(loss(y, logits, sample_weight=weights)), expected, 1e-5)


@pytest.mark.backends
@pytest.mark.parametrize("time", [TIME, BATCH])  # BATCH == TIME must not align (B,) with T
def test_per_sequence_sample_weight_is_broadcast_over_time(time):
    y, logits = _data()
    y, logits = y[:, :time], logits[:, :time]
    per_sequence = np.array([1.0, 0.0, 2.0])
    loss = SequenceCrossEntropy(ignore_index=0)
    weights = per_sequence[:, None] * _padding(y)
    np.testing.assert_allclose(
        float(loss(y, logits, sample_weight=per_sequence)),
        _reference(y, logits, weights),
        rtol=1e-5,
    )


@pytest.mark.backends
def test_reductions():
    y, logits = _data()
    token_losses = _reference_token_losses(y, _log_softmax(logits)) * _padding(y)
    num_real = _padding(y).sum()

    none = SequenceCrossEntropy(ignore_index=0, reduction="none")(y, logits)
    assert none.shape == (BATCH, TIME)
    np.testing.assert_allclose(none, token_losses, rtol=1e-5, atol=1e-6)
    total = SequenceCrossEntropy(ignore_index=0, reduction="sum")(y, logits)
    np.testing.assert_allclose(float(total), token_losses.sum(), rtol=1e-5)
    # Masks are excluded from the count under Keras' default reduction too ...
    sobs = SequenceCrossEntropy(ignore_index=0, reduction="sum_over_batch_size")
    np.testing.assert_allclose(float(sobs(y, logits)), token_losses.sum() / num_real, 1e-5)
    # ... but zero sample weights are counted there, unlike with the default reduction.
    sobs = SequenceCrossEntropy(reduction="sum_over_batch_size")
    np.testing.assert_allclose(
        float(sobs(y, logits, sample_weight=_padding(y))), token_losses.sum() / y.size, 1e-5
    )
    np.testing.assert_allclose(
        float(SequenceCrossEntropy()(y, logits, sample_weight=_padding(y))),
        token_losses.sum() / num_real,
        rtol=1e-5,
    )


def test_all_padding_gives_zero_and_finite_gradient():
    y = np.zeros((2, 3), "int32")
    logits = tf.constant(np.random.randn(2, 3, VOCAB).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = SequenceCrossEntropy(ignore_index=0, label_smoothing=0.1)(y, logits)
    assert float(value) == 0.0
    gradient = tape.gradient(value, logits).numpy()
    assert np.all(gradient == 0.0)


def test_gradient_is_finite_and_matches_softmax_minus_target():
    y, logits = _data()
    logits = tf.constant(logits)
    eps = 0.1
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = SequenceCrossEntropy(ignore_index=0, label_smoothing=eps)(y, logits)
    gradient = tape.gradient(value, logits).numpy()
    assert np.all(np.isfinite(gradient))
    q = (1 - eps) * np.eye(VOCAB)[y] + eps / VOCAB
    expected = (np.exp(_log_softmax(logits.numpy())) - q) * _padding(y)[..., None]
    np.testing.assert_allclose(gradient, expected / _padding(y).sum(), atol=1e-6)


@pytest.mark.backends
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_logits_are_computed_in_float32(dtype):
    y, logits = _data()
    low = keras.ops.cast(logits, dtype)
    value = SequenceCrossEntropy(ignore_index=0, label_smoothing=0.1)(y, low)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    rounded = keras.ops.convert_to_numpy(keras.ops.cast(low, "float32"))
    np.testing.assert_allclose(float(value), _reference(y, rounded, _padding(y), 0.1), rtol=1e-5)


def test_large_float16_logits_do_not_overflow():
    y = np.array([[1, 2]])
    logits = np.full((1, 2, 4), -60000.0, "float16")
    logits[0, :, 3] = 60000.0  # exp overflows in float16; not in float32
    value = float(SequenceCrossEntropy()(y, logits))
    np.testing.assert_allclose(value, 120000.0, rtol=1e-6)


def _masked_model():
    return keras.Sequential(
        [
            keras.Input((TIME,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 8, mask_zero=True),
            keras.layers.Dense(VOCAB),
        ]
    )


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_with_keras_masked_output_ignores_padding(jit_compile):
    y, _ = _data()
    x = y  # the Embedding masks the positions where the targets pad
    garbage = np.where(y == 0, np.arange(y.size).reshape(y.shape) % (VOCAB - 1) + 1, y)
    model = _masked_model()
    model.compile(
        keras.optimizers.SGD(0.5),
        # Both paths: the Keras mask covers the garbage targets, `ignore_index` the zeros.
        SequenceCrossEntropy(label_smoothing=0.1, ignore_index=0),
        jit_compile=jit_compile,
    )
    logits = model.predict(x, verbose=0)
    expected = _reference(y, logits, _padding(y), 0.1)
    for targets in (y, garbage):  # padded targets play no role
        loss = model.evaluate(x, targets, batch_size=BATCH, verbose=0)
        np.testing.assert_allclose(loss, expected, rtol=1e-5)

    initial = model.get_weights()
    history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)
    after_y = model.get_weights()
    model.set_weights(initial)
    model.fit(x, garbage, batch_size=BATCH, epochs=1, verbose=0)
    for a, b in zip(after_y, model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        assert np.all(np.isfinite(a))
    assert any(not np.allclose(a, w0) for a, w0 in zip(after_y, initial))


def test_mixed_precision_fit():
    keras.config.set_dtype_policy("mixed_float16")
    y, _ = _data()
    model = _masked_model()
    model.compile("adam", SequenceCrossEntropy(ignore_index=0))
    logits = model.predict(y, verbose=0)
    assert logits.dtype == np.float16
    loss = model.evaluate(y, y, verbose=0)
    np.testing.assert_allclose(loss, _reference(y, logits, _padding(y)), rtol=1e-4)
    history = model.fit(y, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.backends
def test_config_and_serialization_round_trip(tmp_path):
    loss = SequenceCrossEntropy(
        from_logits=False, label_smoothing=0.25, ignore_index=-100, reduction="sum", name="seq"
    )
    config = loss.get_config()
    assert config == {
        "name": "seq",
        "reduction": "sum",
        "from_logits": False,
        "label_smoothing": 0.25,
        "ignore_index": -100,
    }
    assert SequenceCrossEntropy.from_config(config).get_config() == config
    serialized = keras.saving.serialize_keras_object(loss)
    assert serialized["registered_name"] == "keras_seq>SequenceCrossEntropy"
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert isinstance(restored, SequenceCrossEntropy) and restored.get_config() == config

    model = _masked_model()
    model.compile("adam", SequenceCrossEntropy(label_smoothing=0.1, ignore_index=0))
    y, _ = _data()
    model.fit(y, y, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.loss, SequenceCrossEntropy)
    assert reloaded.loss.get_config() == model.loss.get_config()
    np.testing.assert_allclose(
        reloaded.evaluate(y, y, verbose=0), model.evaluate(y, y, verbose=0), rtol=1e-6
    )


@pytest.mark.backends
def test_validation_errors():
    cases = [
        ({"from_logits": 1}, TypeError, "from_logits"),
        ({"label_smoothing": 1.0}, ValueError, "label_smoothing"),
        ({"label_smoothing": -0.1}, ValueError, "label_smoothing"),
        ({"label_smoothing": "0.1"}, TypeError, "label_smoothing"),
        ({"ignore_index": 0.0}, TypeError, "ignore_index"),
        ({"ignore_index": True}, TypeError, "ignore_index"),
        ({"reduction": "mean_over_tokens"}, ValueError, "reduction"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            SequenceCrossEntropy(**kwargs)


def test_rank_mismatch_error():
    with pytest.raises(ValueError, match="y_true"):
        SequenceCrossEntropy()(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))


# === Targets that are not class ids: an error, not a finite wrong loss ===

# (targets, ignore_index, the bad value the message names)
BAD_TARGETS = [
    ([[1, 2, VOCAB]], None, f"y_true[0, 2]={VOCAB}"),  # clamped to VOCAB - 1 under XLA
    ([[1, -1, 2]], None, "y_true[0, 1]=-1"),  # wraps to VOCAB - 1
    ([[1, -1, 2]], -100, "y_true[0, 1]=-1"),  # negative, but not the ignore_index
    ([[1, 2, 3]], 0, None),  # fine: no error
    ([[-100, 2, 3]], -100, None),
    ([[1.5, 2, 3]], None, "y_true[0, 0]=1.5"),
    ([[1, np.nan, 3]], None, "y_true[0, 1]=nan"),
]


@pytest.mark.parametrize("targets,ignore_index,named", BAD_TARGETS)
def test_targets_that_are_not_class_ids_raise_eagerly(targets, ignore_index, named):
    loss = SequenceCrossEntropy(ignore_index=ignore_index)
    logits = np.zeros((1, 3, VOCAB), "float32")
    if named is None:
        assert np.isfinite(float(loss(np.asarray(targets), logits)))
        return
    with pytest.raises(ValueError, match=r"`y_true` must hold class ids") as info:
        loss(np.asarray(targets), logits)
    assert named in str(info.value) and f"vocabulary_size={VOCAB}" in str(info.value)


def test_targets_that_are_not_class_ids_fail_in_a_graph():
    loss = SequenceCrossEntropy(ignore_index=-100)
    compute = tf.function(loss)
    logits = np.zeros((1, 3, VOCAB), "float32")
    for targets, value in (([[1, 2, VOCAB]], str(VOCAB)), ([[1, -1, 2]], "-1")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"`y_true` must hold") as info:
            compute(np.asarray(targets), logits)
        assert f"[{value}]" in str(info.value) and "ignore_index=-100" in str(info.value)
    # Under XLA the check is dropped by the compiler (documented); valid targets still work.
    xla = tf.function(loss, jit_compile=True)
    np.testing.assert_allclose(xla(np.asarray([[1, -100, 2]]), logits), np.log(VOCAB), rtol=1e-6)


def test_fit_on_out_of_vocabulary_targets_fails():
    model = keras.Sequential([keras.layers.Embedding(VOCAB, 4), keras.layers.Dense(VOCAB)])
    x = np.ones((2, 3), "int32")
    y = np.array([[1, 2, 3], [4, 5, VOCAB + 2]])
    model.compile("sgd", SequenceCrossEntropy(), jit_compile=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"y_true.*\\[{VOCAB + 2}\\]"):
        model.fit(x, y, epochs=1, verbose=0)
    model.compile("sgd", SequenceCrossEntropy(), run_eagerly=True)
    with pytest.raises(ValueError, match=rf"y_true\[1, 2\]={VOCAB + 2}"):
        model.fit(x, y, epochs=1, verbose=0)
