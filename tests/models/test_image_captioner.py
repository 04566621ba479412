"""ImageCaptioner: contract, cached decoding == full pass, attention maps, backbones, saving."""

import json
import os

import keras
import numpy as np
import pytest

from keras_seq import testing
from keras_seq.models.image_captioner import ImageCaptioner

VOCABULARY_SIZE = 19
IMAGE_SHAPE = (24, 16, 3)  # the default backbone's grid: 3 x 2 regions
SMALL = {
    "vocabulary_size": VOCABULARY_SIZE,
    "image_shape": IMAGE_SHAPE,
    "hidden_dim": 16,
    "num_layers": 2,
    "num_heads": 2,
    "intermediate_dim": 32,
    "dropout": 0.0,
}
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(size=(2,) + IMAGE_SHAPE).astype("float32")
TARGET_IN = RNG.integers(3, VOCABULARY_SIZE, size=(2, 5)).astype("int32")
TARGET_IN[:, 0] = 1  # start_token_id
INPUTS = {"images": IMAGES, "target_in": TARGET_IN}
DECODERS = ["rnn", "transformer"]


def small_model(run_eagerly=True, **overrides):
    """A small model; `run_eagerly` makes `generate()` skip tracing a `tf.function` (several
    times faster for these sizes), except in the tests of the compiled path."""
    model = ImageCaptioner(**{**SMALL, **overrides})
    model.run_eagerly = run_eagerly
    return model


def tiny_backbone():
    """A user's backbone: a functional model from images to a 3 x 2 feature map."""
    images = keras.Input(IMAGE_SHAPE)
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu")(images)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="user_features")(x)
    return keras.Model(images, x, name="user_backbone")


# Weights: default backbone 6, region projection 2, token embedding 1, then for "rnn" the
# LSTM's 3, Bahdanau's 4 (W_q, W_k, b, v), the attention projection 1 and the two
# initial-state denses 4; for "transformer" the region positions 1 and 1 decoder block of 26.
NUM_WEIGHTS = {"rnn": 6 + 2 + 1 + 3 + 4 + 1 + 4, "transformer": 6 + 2 + 1 + 1 + 26}


@pytest.mark.parametrize("decoder", DECODERS)
def test_contract(decoder):
    # A functional model is built at construction, so the harness' build check sees an
    # empty build config and the same weights before and after a call. The XLA check
    # compiles the whole model (slow on two busy cores): test_contract_with_xla, marked slow.
    # The mask check does not apply: masks come from padding id 0 of `target_in`.
    testing.run_layer_test(
        ImageCaptioner,
        {**SMALL, "decoder": decoder, "num_layers": 1, "dropout": 0.1},
        INPUTS,
        expected_output_shape=(2, 5, VOCABULARY_SIZE),
        expected_num_trainable_weights=NUM_WEIGHTS[decoder],
        run_jit_check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("decoder", DECODERS)
def test_contract_with_xla(decoder):
    testing.run_layer_test(
        ImageCaptioner,
        {**SMALL, "decoder": decoder, "dropout": 0.1, "cell": "gru"},
        INPUTS,
        expected_output_shape=(2, 5, VOCABULARY_SIZE),
    )


@pytest.mark.parametrize("decoder", DECODERS)
def test_cached_decoding_equals_full_pass(decoder):
    model = small_model(decoder=decoder)
    full = np.asarray(model(INPUTS))
    prefix, logits, cache = model.prefill(IMAGES, max_new_tokens=5)
    assert prefix.shape == (2, 0)
    steps = [np.asarray(logits)]
    for t in range(TARGET_IN.shape[1] - 1):
        logits, cache = model.call_with_cache(TARGET_IN[:, t + 1], cache, np.int32(t))
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.stack(steps, axis=1), full, atol=1e-5)


@pytest.mark.parametrize("decoder", DECODERS)
def test_attention_maps(decoder):
    model = small_model(decoder=decoder)
    tokens = np.asarray(model.generate(IMAGES, 6))
    # Stop on the third token of the first caption, so that it ends early.
    stop_token_id = int(tokens[0, 2])
    tokens, scores, attention = model.generate_with_attention(
        IMAGES, 6, stop_token_id=stop_token_id, return_scores=True
    )
    tokens, attention = np.asarray(tokens), np.asarray(attention)
    assert tokens.shape == (2, 6) and scores.shape == (2,)
    assert attention.shape == (2, 6, 3, 2)  # (batch, steps, grid height, grid width)
    for row in range(2):
        stops = np.flatnonzero(tokens[row] == stop_token_id)
        end = stops[0] + 1 if stops.size else 6
        sums = attention[row].sum(axis=(1, 2))
        np.testing.assert_allclose(sums[:end], 1.0, atol=1e-5)
        np.testing.assert_array_equal(sums[end:], 0.0)  # steps fed padding after the stop
        assert np.all(attention[row] >= 0.0)
    assert np.flatnonzero(tokens[0] == stop_token_id)[0] <= 2
    # The map of a step is that of a teacher-forced pass over the same tokens (padding
    # after the stop token).
    target_in = np.concatenate([np.ones((2, 1), "int32"), tokens[:, :-1]], axis=1)
    for row in range(2):
        stops = np.flatnonzero(tokens[row] == stop_token_id)
        if stops.size:
            target_in[row, stops[0] + 1 :] = 0
    np.testing.assert_allclose(
        model.attention_maps({"images": IMAGES, "target_in": target_in}), attention, atol=1e-6
    )


def test_transformer_attention_map_averages_the_heads():
    model = small_model(decoder="transformer")
    maps = np.asarray(model.attention_maps(INPUTS))
    # Recompute the last block's cross-attention by hand from the layers.
    regions = model._regions(model.image_encoder(IMAGES))
    x = model.token_and_position_embedding(TARGET_IN)
    for block in model.decoder_layers:
        x, scores = block(x, regions, return_attention_scores=True)
    expected = np.asarray(scores["cross_attention"]).mean(axis=1).reshape(2, 5, 3, 2)
    np.testing.assert_allclose(maps, expected, atol=1e-6)


@pytest.mark.parametrize("decoder", DECODERS)
def test_save_and_reload(tmp_path, decoder):
    # The transformer variant uses a user's backbone model, saved with the captioner.
    backbone = tiny_backbone() if decoder == "transformer" else None
    model = small_model(decoder=decoder, backbone=backbone, dropout=0.1)
    expected = np.asarray(model(INPUTS))
    expected_tokens = np.asarray(model.generate(IMAGES, 5, strategy="beam", num_beams=2))
    path = os.path.join(tmp_path, "captioner.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is ImageCaptioner
    assert json.dumps(reloaded.get_config()) == json.dumps(model.get_config())
    if backbone is not None:
        assert reloaded.image_encoder.name == "user_backbone"
        assert reloaded.image_encoder.get_layer("user_features").filters == 6
    np.testing.assert_allclose(reloaded(INPUTS), expected, atol=1e-6)
    reloaded.run_eagerly = True
    np.testing.assert_array_equal(
        reloaded.generate(IMAGES, 5, strategy="beam", num_beams=2), expected_tokens
    )


def test_keras_applications_backbone_by_name():
    model = small_model(
        image_shape=(64, 64, 3), backbone="MobileNetV2", backbone_kwargs={"alpha": 0.35}
    )
    assert model.image_encoder.name == "mobilenetv2_0.35_64"
    images = RNG.uniform(size=(2, 64, 64, 3)).astype("float32")
    logits = model({"images": images, "target_in": TARGET_IN})
    assert logits.shape == (2, 5, VOCABULARY_SIZE)
    tokens, attention = model.generate_with_attention(images, 3)
    assert tokens.shape == (2, 3) and attention.shape == (2, 3, 2, 2)  # 64 / 32 = 2
    config = model.get_config()
    assert config["backbone"] == "MobileNetV2" and config["backbone_kwargs"] == {"alpha": 0.35}


@pytest.mark.parametrize("decoder", DECODERS)
def test_xla_generate_equals_eager(decoder):
    model = small_model(run_eagerly=False, decoder=decoder, num_layers=1)
    compiled = model.generate(IMAGES, 4, jit_compile=True, return_scores=True)
    model.run_eagerly = True
    eager = model.generate(IMAGES, 4, return_scores=True)
    np.testing.assert_array_equal(compiled[0], eager[0])
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("decoder", DECODERS)
def test_fit_lowers_the_loss(decoder):
    model = small_model(run_eagerly=False, decoder=decoder)
    images = RNG.uniform(size=(8,) + IMAGE_SHAPE).astype("float32")
    captions = RNG.integers(3, VOCABULARY_SIZE, size=(8, 4)).astype("int32")
    target_in = np.concatenate([np.ones((8, 1), "int32"), captions[:, :-1]], axis=1)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(
        {"images": images, "target_in": target_in}, captions, epochs=5, batch_size=8, verbose=0
    )
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_presets():
    assert set(ImageCaptioner.presets) == {"captioner_tiny", "show_attend_tell"}
    model = ImageCaptioner.from_preset(
        "captioner_tiny", vocabulary_size=40, decoder="transformer", num_layers=1
    )
    assert model.vocabulary_size == 40 and model.decoder == "transformer"
    assert model.hidden_dim == 64 and tuple(model.image_shape) == (32, 32, 3)
    images = RNG.uniform(size=(1, 32, 32, 3)).astype("float32")
    assert model({"images": images, "target_in": TARGET_IN[:1]}).shape == (1, 5, 40)
    with pytest.raises(ValueError, match="preset"):
        ImageCaptioner.from_preset("show_and_tell")


@pytest.mark.slow
def test_show_attend_tell_preset():
    model = ImageCaptioner.from_preset("show_attend_tell")
    assert model.image_encoder.name == "vgg19"
    assert model._grid_shape == (7, 7)


INVALID_ARGUMENTS = [
    ({"vocabulary_size": 0}, "vocabulary_size"),
    ({"image_shape": (24, 16)}, "image_shape"),
    ({"image_shape": (24, 0, 3)}, "image_shape"),
    ({"decoder": "lstm"}, "decoder"),
    ({"hidden_dim": 0}, "hidden_dim"),
    ({"num_layers": 0}, "num_layers"),
    ({"decoder": "transformer", "num_heads": 3}, "num_heads"),
    ({"intermediate_dim": -1}, "intermediate_dim"),
    ({"cell": keras.layers.LSTMCell(4)}, "cell"),
    ({"cell": "no_such_cell"}, "cell"),
    ({"dropout": 1.5}, "dropout"),
    ({"start_token_id": 0}, "start_token_id"),
    ({"backbone": "NoSuchNet"}, "backbone"),
    ({"backbone": "mobilenet_v2"}, "backbone"),
    ({"backbone": 3}, "backbone"),
    ({"backbone": keras.layers.Flatten()}, "backbone"),
    ({"backbone_kwargs": {"alpha": 0.35}}, "backbone_kwargs"),
    ({"backbone": "MobileNetV2", "backbone_kwargs": ["alpha"]}, "backbone_kwargs"),
    ({"backbone": "MobileNetV2", "backbone_kwargs": {"no_such_argument": 1}}, "backbone"),
]


def test_invalid_arguments():
    # One test for all cases: each failing constructor is cheap, a test's Keras clean-up not.
    for overrides, match in INVALID_ARGUMENTS:
        with pytest.raises((ValueError, TypeError), match=match):
            small_model(**overrides)


def test_invalid_generation_inputs():
    model = small_model()
    with pytest.raises(ValueError, match="images"):
        model.generate({"pixels": IMAGES}, 3)
