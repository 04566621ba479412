"""GPTBackbone and GPTCausalLM: contract, parity with keras_hub given the same weights, decoding."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM
from keras_seq.testing import run_layer_test

TINY = {
    "vocabulary_size": 50,
    "num_layers": 2,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
    "sequence_length": 24,
    "dropout": 0.0,
}


def _model(**overrides):
    return GPTCausalLM(GPTBackbone(**{**TINY, **overrides}))


def _inputs(batch_size=2, length=6, seed=0):
    rs = np.random.RandomState(seed)
    token_ids = rs.randint(0, 50, size=(batch_size, length)).astype("int32")
    return {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}


def _gpt2_parameter_count(vocabulary_size, num_layers, hidden_dim, intermediate_dim, length):
    d, f = hidden_dim, intermediate_dim
    attention = 4 * d * d + 4 * d  # query, key, value and output projections with biases
    feedforward = d * f + f + f * d + d
    layer_norms = 2 * 2 * d
    return (
        vocabulary_size * d
        + length * d
        + num_layers * (attention + feedforward + layer_norms)
        + 2 * d
    )


@pytest.mark.backends
def test_contract():
    run_layer_test(
        GPTBackbone,
        TINY,
        _inputs(),
        expected_output_shape=(2, 6, 16),
        expected_num_trainable_weights=2 + 2 * 16 + 2,
    )
    run_layer_test(
        GPTCausalLM,
        {"backbone": GPTBackbone(**TINY)},
        _inputs(),
        expected_output_shape=(2, 6, 50),
        expected_num_trainable_weights=2 + 2 * 16 + 2,  # the output embedding is the input's
    )


def test_gpt2_small_is_gpt2_small_parameter_for_parameter():
    config = GPTBackbone.presets["gpt2_small"]["config"]
    model = GPTCausalLM.from_preset("gpt2_small")
    assert model.count_params() == 124_439_808 == _gpt2_parameter_count(50257, 12, 768, 3072, 1024)
    reference = keras_hub.models.GPT2Backbone(
        vocabulary_size=config["vocabulary_size"],
        num_layers=config["num_layers"],
        num_heads=config["num_heads"],
        hidden_dim=config["hidden_dim"],
        intermediate_dim=config["intermediate_dim"],
        max_sequence_length=config["sequence_length"],
    )
    assert [w.shape for w in model.weights] == [w.shape for w in reference.weights]


@pytest.mark.parametrize("preset", ["gpt2_medium", "gpt2_large"])
def test_larger_gpt2_presets_match_the_formula(preset):
    config = GPTBackbone.presets[preset]["config"]
    expected = _gpt2_parameter_count(
        config["vocabulary_size"],
        config["num_layers"],
        config["hidden_dim"],
        config["intermediate_dim"],
        config["sequence_length"],
    )
    assert f"{expected:,}" in GPTBackbone.presets[preset]["description"]


def test_equals_keras_hub_gpt2_given_the_same_weights():
    reference = keras_hub.models.GPT2Backbone(
        vocabulary_size=50,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=24,
        dropout=0.0,
    )
    model = _model()
    model.set_weights(reference.get_weights())  # same layout, same order
    inputs = _inputs()
    inputs["padding_mask"][1, 4:] = 0  # right padding: compare real positions
    hidden = reference(inputs)
    expected = keras.ops.convert_to_numpy(reference.token_embedding(hidden, reverse=True))
    actual = keras.ops.convert_to_numpy(model(inputs))
    real = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(actual[real], expected[real], atol=1e-5)


def test_causal_logits_do_not_see_later_tokens():
    model = _model()
    inputs = _inputs()
    changed = {k: v.copy() for k, v in inputs.items()}
    changed["token_ids"][:, 4:] = (changed["token_ids"][:, 4:] + 7) % 50
    np.testing.assert_allclose(
        np.asarray(model(inputs))[:, :4], np.asarray(model(changed))[:, :4], atol=1e-6
    )


@pytest.mark.parametrize("jit_compile", [False, True])
def test_cached_greedy_decoding_equals_full_pass_rollout(jit_compile):
    keras.utils.set_random_seed(1)
    model = _model()
    prompt = _inputs(length=5)["token_ids"]
    tokens, scores = model.generate(
        prompt, max_new_tokens=7, return_scores=True, jit_compile=jit_compile
    )
    sequence, expected_score = prompt, np.zeros(2)
    for _ in range(7):
        logits = np.asarray(model({"token_ids": sequence, "padding_mask": np.ones_like(sequence)}))
        log_p = logits[:, -1] - np.log(np.exp(logits[:, -1]).sum(-1, keepdims=True))
        next_token = np.argmax(logits[:, -1], -1)
        expected_score += log_p[np.arange(2), next_token]
        sequence = np.concatenate([sequence, next_token[:, None]], 1)
    np.testing.assert_array_equal(np.asarray(tokens), sequence)
    np.testing.assert_allclose(np.asarray(scores), expected_score, rtol=1e-4)


def test_beam_search_runs_and_one_beam_is_greedy():
    model = _model()
    prompt = _inputs(batch_size=3, length=4)["token_ids"]
    greedy = model.generate(prompt, max_new_tokens=5, jit_compile=False)
    beam = model.generate(prompt, 5, strategy="beam", num_beams=1, jit_compile=False)
    np.testing.assert_array_equal(greedy, beam)
    wide, wide_scores = model.generate(
        prompt, 5, strategy="beam", num_beams=4, return_scores=True, jit_compile=False
    )
    _, greedy_scores = model.generate(prompt, 5, return_scores=True, jit_compile=False)
    assert np.all(np.asarray(wide_scores) >= np.asarray(greedy_scores) - 1e-5)
    assert wide.shape == (3, 9)


def test_save_reload_keeps_outputs_and_generation(tmp_path):
    model = _model()
    path = str(tmp_path / "gpt.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded, GPTCausalLM)
    assert isinstance(reloaded.backbone, GPTBackbone)
    inputs = _inputs()
    np.testing.assert_allclose(np.asarray(model(inputs)), np.asarray(reloaded(inputs)), atol=1e-6)
    prompt = inputs["token_ids"]
    np.testing.assert_array_equal(
        model.generate(prompt, 4, strategy="top_k", top_k=5, seed=3, jit_compile=False),
        reloaded.generate(prompt, 4, strategy="top_k", top_k=5, seed=3, jit_compile=False),
    )


def test_fit_lowers_the_loss():
    keras.utils.set_random_seed(2)
    model = _model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # A deterministic sequence: token t+1 = token t + 1 (mod 50).
    start = np.random.RandomState(0).randint(0, 50, size=(32, 1))
    sequence = (start + np.arange(13)) % 50
    x = {"token_ids": sequence[:, :-1], "padding_mask": np.ones((32, 12), "int32")}
    history = model.fit(x, sequence[:, 1:], epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_presets_and_errors():
    model = GPTCausalLM.from_preset("gpt_tiny", vocabulary_size=30, num_layers=1)
    assert model.backbone.vocabulary_size == 30 and len(model.backbone.decoder_layers) == 1
    backbone = GPTBackbone.from_preset("gpt_tiny", vocabulary_size=30)
    assert backbone.num_layers == GPTBackbone.presets["gpt_tiny"]["config"]["num_layers"]
    with pytest.raises(ValueError, match="preset"):
        GPTCausalLM.from_preset("gpt5")
    with pytest.raises(TypeError, match="num_classes"):
        GPTCausalLM.from_preset("gpt_tiny", num_classes=3)
    with pytest.raises(TypeError, match="backbone"):
        GPTCausalLM(keras.Sequential([keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="hidden_dim"):
        GPTBackbone(**{**TINY, "hidden_dim": 15})
    with pytest.raises(ValueError, match="num_layers"):
        GPTBackbone(**{**TINY, "num_layers": 0})
    with pytest.raises(ValueError, match="dropout"):
        GPTBackbone(**{**TINY, "dropout": 1.0})
    model = _model()
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(_inputs(length=20)["token_ids"], max_new_tokens=5, jit_compile=False)
    with pytest.raises(ValueError, match="segment_ids"):
        inputs = {"token_ids": _inputs()["token_ids"], "segment_ids": _inputs()["token_ids"]}
        model.generate(inputs, max_new_tokens=2, jit_compile=False)
