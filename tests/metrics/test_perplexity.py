"""Tests of `Perplexity`: exact accumulation over batches, masks, keras_hub agreement."""

import json

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.metrics.perplexity import Perplexity

VOCAB = 6


def _batch(seed, lengths, time=5):
    rs = np.random.RandomState(seed)
    y = rs.randint(1, VOCAB, size=(len(lengths), time))
    for row, length in enumerate(lengths):
        y[row, length:] = 0
    return y, (2.0 * rs.randn(len(lengths), time, VOCAB)).astype("float32")


def _token_nll(y, logits):
    logits = logits.astype("float64")
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]


def _reference(batches, weights=None):
    """exp(total weighted NLL / total weight) over all batches."""
    weights = weights or [(y != 0).astype("float64") for y, _ in batches]
    total = sum((_token_nll(y, logits) * w).sum() for (y, logits), w in zip(batches, weights))
    return np.exp(total / sum(w.sum() for w in weights))


@pytest.mark.backends
def test_exact_over_two_batches_with_different_padding():
    (y0, logits0), (y1, logits1) = _batch(0, (5, 1, 1)), _batch(1, (5, 5))
    batches = [(y0, logits0), (y1, 0.2 * logits1)]  # 3 vs 10 real tokens, different fits
    metric = Perplexity(ignore_index=0)
    for y, logits in batches:
        metric.update_state(y, logits)
    expected = _reference(batches)
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)
    # The mean of per-batch perplexities is a different number: the test can tell.
    per_batch = np.mean([_reference([b]) for b in batches])
    assert abs(per_batch - expected) > 1e-2 * expected


def test_probabilities_and_float16_logits():
    batches = [_batch(0, (5, 2)), _batch(1, (3, 4))]
    probabilities = Perplexity(from_logits=False, ignore_index=0)
    low_precision = Perplexity(ignore_index=0)
    for y, logits in batches:
        probabilities.update_state(y, keras.ops.softmax(logits).numpy())
        low_precision.update_state(y, logits.astype("float16"))
    rounded = [(y, logits.astype("float16").astype("float32")) for y, logits in batches]
    np.testing.assert_allclose(float(probabilities.result()), _reference(batches), rtol=1e-5)
    np.testing.assert_allclose(float(low_precision.result()), _reference(rounded), rtol=1e-5)


@pytest.mark.backends
def test_keras_mask_and_sample_weights():
    y, logits = _batch(0, (5, 2, 3))
    masked = tf.constant(logits)
    masked._keras_mask = tf.constant(y != 0)
    metric = Perplexity()
    metric.update_state(y, masked)
    np.testing.assert_allclose(float(metric.result()), _reference([(y, logits)]), rtol=1e-5)

    masked16 = tf.constant(logits.astype("float16"))
    masked16._keras_mask = tf.constant(y != 0)
    metric = Perplexity()
    metric.update_state(y, masked16)
    rounded = logits.astype("float16").astype("float32")
    np.testing.assert_allclose(float(metric.result()), _reference([(y, rounded)]), rtol=1e-5)

    weights = np.random.RandomState(3).uniform(0.5, 2.0, size=y.shape) * (y != 0)
    metric = Perplexity()
    metric.update_state(y, logits, sample_weight=weights)
    np.testing.assert_allclose(
        float(metric.result()), _reference([(y, logits)], [weights]), rtol=1e-5
    )

    per_sequence = np.array([1.0, 0.0, 3.0])
    metric = Perplexity(ignore_index=0)
    metric.update_state(y, logits, sample_weight=per_sequence)
    expected = _reference([(y, logits)], [per_sequence[:, None] * (y != 0)])
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)


@pytest.mark.parametrize("from_logits", [True, False])
def test_agrees_with_keras_hub_perplexity(from_logits):
    batches = [_batch(0, (5, 1)), _batch(1, (2, 4, 5))]
    ours, theirs = (
        Perplexity(from_logits, ignore_index=0),
        keras_hub.metrics.Perplexity(from_logits=from_logits, mask_token_id=0),
    )
    ours_weighted, theirs_weighted = (
        Perplexity(from_logits),
        keras_hub.metrics.Perplexity(from_logits=from_logits),
    )
    for y, logits in batches:
        y_pred = logits if from_logits else keras.ops.softmax(logits).numpy()
        ours.update_state(y, y_pred)
        theirs.update_state(y, y_pred)
        weights = (y != 0).astype("float32") * 0.5
        ours_weighted.update_state(y, y_pred, sample_weight=weights)
        theirs_weighted.update_state(y, y_pred, sample_weight=weights)
    np.testing.assert_allclose(float(ours.result()), float(theirs.result()), rtol=1e-5)
    np.testing.assert_allclose(
        float(ours_weighted.result()), float(theirs_weighted.result()), rtol=1e-5
    )


@pytest.mark.backends
def test_reset_state_and_empty_result():
    metric = Perplexity(ignore_index=0)
    assert float(metric.result()) == 0.0
    y, logits = _batch(0, (3, 2))
    metric.update_state(y, logits)
    assert float(metric.result()) > 1.0
    metric.reset_state()
    assert float(metric.result()) == 0.0
    assert [float(v) for v in metric.variables] == [0.0, 0.0]
    metric.update_state(*_batch(1, (4, 1)))
    np.testing.assert_allclose(float(metric.result()), _reference([_batch(1, (4, 1))]), 1e-5)
    metric.update_state(np.zeros((1, 5), "int32"), logits[:1])  # all padding: no change
    np.testing.assert_allclose(float(metric.result()), _reference([_batch(1, (4, 1))]), 1e-5)


def _masked_model():
    return keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 8, mask_zero=True),
            keras.layers.Dense(VOCAB),
        ]
    )


@pytest.mark.parametrize("jit_compile", [False, True])
def test_compiled_metric_in_evaluate_and_fit(jit_compile):
    y = np.concatenate([_batch(0, (5, 1))[0], _batch(1, (2, 4))[0]])
    model = _masked_model()
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[Perplexity()],  # the Keras mask of the Embedding is the padding
        jit_compile=jit_compile,
    )
    logits = model.predict(y, verbose=0)
    expected = _reference([(y, logits)])
    # Two batches of 2 with different padding, accumulated exactly.
    results = model.evaluate(y, y, batch_size=2, return_dict=True, verbose=0)
    np.testing.assert_allclose(results["perplexity"], expected, rtol=1e-5)
    history = model.fit(y, y, batch_size=4, epochs=1, verbose=0)  # one step, before update
    np.testing.assert_allclose(history.history["perplexity"][0], expected, rtol=1e-5)


@pytest.mark.backends
def test_config_and_serialization_round_trip(tmp_path):
    metric = Perplexity(from_logits=False, ignore_index=-100, name="ppl")
    config = metric.get_config()
    assert config == {"name": "ppl", "dtype": "float32", "from_logits": False, "ignore_index": -100}
    assert Perplexity.from_config(config).get_config() == config
    serialized = keras.saving.serialize_keras_object(metric)
    assert serialized["registered_name"] == "keras_seq>Perplexity"
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert isinstance(restored, Perplexity) and restored.get_config() == config

    y = _batch(0, (5, 2, 3))[0]
    model = _masked_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[Perplexity(ignore_index=0)])
    model.fit(y, y, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.evaluate(y, y, return_dict=True, verbose=0)["perplexity"],
        model.evaluate(y, y, return_dict=True, verbose=0)["perplexity"],
        rtol=1e-6,
    )


@pytest.mark.backends
def test_validation_errors():
    cases = [
        ({"from_logits": "yes"}, TypeError, "from_logits"),
        ({"ignore_index": 1.5}, TypeError, "ignore_index"),
        ({"dtype": "int32"}, ValueError, "dtype"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            Perplexity(**kwargs)


def test_targets_outside_the_vocabulary_are_an_error():
    metric = Perplexity(ignore_index=0)
    logits = np.zeros((1, 3, 4), "float32")
    with pytest.raises(ValueError, match=r"`y_true` must hold class ids.*y_true\[0, 2\]=4"):
        metric.update_state(np.array([[1, 2, 4]]), logits)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"y_true.*\[-1\]"):
        tf.function(metric.update_state)(np.array([[1, -1, 0]]), logits)
