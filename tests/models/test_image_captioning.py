"""CaptioningCNNBackbone, RNNImageCaptioner and TransformerImageCaptioner: contract, cached
decoding == full pass, attention maps, feature-map and token backbones, saving, presets."""

import json
import os

import keras
import numpy as np
import pytest

from keras_seq import testing
from keras_seq.models import CaptioningCNNBackbone
from keras_seq.models import RNNImageCaptioner
from keras_seq.models import TransformerImageCaptioner

VOCABULARY_SIZE = 19
IMAGE_SHAPE = (24, 16, 3)  # the CNN backbone's grid: 3 x 2 regions
TASKS = {"rnn": RNNImageCaptioner, "transformer": TransformerImageCaptioner}
# The task arguments of each decoder in these tests.
SMALL = {
    "rnn": {"vocabulary_size": VOCABULARY_SIZE, "hidden_dim": 16, "dropout": 0.0},
    "transformer": {
        "vocabulary_size": VOCABULARY_SIZE,
        "hidden_dim": 16,
        "num_layers": 2,
        "num_heads": 2,
        "intermediate_dim": 32,
        "dropout": 0.0,
    },
}
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(size=(2,) + IMAGE_SHAPE).astype("float32")
TARGET_IN = RNG.integers(3, VOCABULARY_SIZE, size=(2, 5)).astype("int32")
TARGET_IN[:, 0] = 1  # start_token_id
INPUTS = {"images": IMAGES, "target_in": TARGET_IN}
DECODERS = sorted(TASKS)


def small_model(decoder, backbone=None, run_eagerly=True, **overrides):
    """A small captioner on the CNN backbone (or `backbone`); `run_eagerly` makes
    `generate()` skip tracing a `tf.function` (several times faster for these sizes), except
    in the tests of the compiled path."""
    backbone = backbone or CaptioningCNNBackbone(IMAGE_SHAPE)
    model = TASKS[decoder](backbone, **{**SMALL[decoder], **overrides})
    model.run_eagerly = run_eagerly
    return model


def token_backbone():
    """A user's backbone returning region tokens: 8x8 patches, 3 x 2 = 6 tokens of width 8."""
    images = keras.Input(IMAGE_SHAPE)
    patches = keras.layers.Conv2D(8, 8, strides=8, name="patches")(images)  # (B, 3, 2, 8)
    tokens = keras.layers.Reshape((6, 8))(patches)  # (B, 6, 8)
    return keras.Model(images, keras.layers.LayerNormalization()(tokens), name="user_tokens")


def feature_map_backbone():
    """A user's backbone: a functional model from images to a 3 x 2 feature map."""
    images = keras.Input(IMAGE_SHAPE)
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu")(images)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="user_features")(x)
    return keras.Model(images, x, name="user_backbone")


def test_backbone_contract():
    testing.run_layer_test(
        CaptioningCNNBackbone,
        {"image_shape": IMAGE_SHAPE, "num_filters": (4, 8, 12)},
        IMAGES,
        expected_output_shape=(2, 3, 2, 12),
        expected_num_trainable_weights=6,
    )
    backbone = CaptioningCNNBackbone(IMAGE_SHAPE, num_filters=(4,))
    assert backbone(IMAGES).shape == (2, 12, 8, 4)


# Weights: backbone 6, region projection 2, token embedding 1, then for "rnn" the LSTM's 3,
# Bahdanau's 4 (W_q, W_k, b, v), the attention projection 1 and the two initial-state denses
# 4; for "transformer" the region positions 1 and 1 decoder block of 26.
NUM_WEIGHTS = {"rnn": 6 + 2 + 1 + 3 + 4 + 1 + 4, "transformer": 6 + 2 + 1 + 1 + 26}


@pytest.mark.parametrize("decoder", DECODERS)
def test_task_contract(decoder):
    # A functional model is built at construction, so the harness' build check sees an
    # empty build config and the same weights before and after a call. The XLA check
    # compiles the whole model (slow on two busy cores): test_task_contract_with_xla, marked
    # slow. The mask check does not apply: masks come from padding id 0 of `target_in`.
    arguments = {**SMALL[decoder], "dropout": 0.1}
    if decoder == "transformer":
        arguments["num_layers"] = 1
    testing.run_layer_test(
        TASKS[decoder],
        {"backbone": CaptioningCNNBackbone(IMAGE_SHAPE), **arguments},
        INPUTS,
        expected_output_shape=(2, 5, VOCABULARY_SIZE),
        expected_num_trainable_weights=NUM_WEIGHTS[decoder],
        run_jit_check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("decoder", DECODERS)
def test_task_contract_with_xla(decoder):
    arguments = {**SMALL[decoder], "dropout": 0.1}
    if decoder == "rnn":
        arguments["cell"] = "gru"
    testing.run_layer_test(
        TASKS[decoder],
        {"backbone": token_backbone(), **arguments},
        INPUTS,
        expected_output_shape=(2, 5, VOCABULARY_SIZE),
    )


def test_backbone_is_shared_not_copied():
    backbone = CaptioningCNNBackbone(IMAGE_SHAPE)
    rnn, transformer = small_model("rnn", backbone), small_model("transformer", backbone)
    assert rnn.backbone is backbone and transformer.backbone is backbone
    assert rnn.weights[0] is backbone.weights[0]  # the backbone's weights come first


@pytest.mark.parametrize("backbone", ["cnn", "tokens"])
@pytest.mark.parametrize("decoder", DECODERS)
def test_cached_decoding_equals_full_pass(decoder, backbone):
    model = small_model(decoder, token_backbone() if backbone == "tokens" else None)
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
    model = small_model(decoder)
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


@pytest.mark.parametrize("decoder", DECODERS)
def test_token_backbone_attends_over_its_tokens(decoder):
    model = small_model(decoder, token_backbone())
    assert model(INPUTS).shape == (2, 5, VOCABULARY_SIZE)
    maps = np.asarray(model.attention_maps(INPUTS))
    assert maps.shape == (2, 5, 6)  # (batch, steps, tokens): no grid to reshape to
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, atol=1e-5)
    tokens, attention = model.generate_with_attention(IMAGES, 4)
    assert tokens.shape == (2, 4) and attention.shape == (2, 4, 6)


def test_transformer_attention_map_averages_the_heads():
    model = small_model("transformer")
    maps = np.asarray(model.attention_maps(INPUTS))
    # Recompute the last block's cross-attention by hand from the layers.
    features = np.asarray(model.backbone(IMAGES)).reshape(2, 6, -1)
    regions = model.region_position_embedding(model.region_projection(features))
    x = model.token_and_position_embedding(TARGET_IN)
    for block in model.decoder_layers:
        x, scores = block(x, regions, return_attention_scores=True)
    expected = np.asarray(scores["cross_attention"]).mean(axis=1).reshape(2, 5, 3, 2)
    np.testing.assert_allclose(maps, expected, atol=1e-6)


@pytest.mark.parametrize("decoder", DECODERS)
def test_save_and_reload(tmp_path, decoder):
    # The transformer variant uses a user's backbone model, saved with the captioner.
    backbone = feature_map_backbone() if decoder == "transformer" else None
    model = small_model(decoder, backbone, dropout=0.1)
    expected = np.asarray(model(INPUTS))
    expected_tokens = np.asarray(model.generate(IMAGES, 5, strategy="beam", num_beams=2))
    path = os.path.join(tmp_path, "captioner.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is TASKS[decoder]
    assert json.dumps(reloaded.get_config()) == json.dumps(model.get_config())
    if backbone is None:
        assert type(reloaded.backbone) is CaptioningCNNBackbone
    else:
        assert reloaded.backbone.name == "user_backbone"
        assert reloaded.backbone.get_layer("user_features").filters == 6
    np.testing.assert_allclose(reloaded(INPUTS), expected, atol=1e-6)
    reloaded.run_eagerly = True
    np.testing.assert_array_equal(
        reloaded.generate(IMAGES, 5, strategy="beam", num_beams=2), expected_tokens
    )


def test_keras_applications_backbone():
    backbone = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(64, 64, 3), alpha=0.35
    )
    model = small_model("rnn", backbone)
    images = RNG.uniform(size=(2, 64, 64, 3)).astype("float32")
    logits = model({"images": images, "target_in": TARGET_IN})
    assert logits.shape == (2, 5, VOCABULARY_SIZE)
    tokens, attention = model.generate_with_attention(images, 3)
    assert tokens.shape == (2, 3) and attention.shape == (2, 3, 2, 2)  # 64 / 32 = 2


@pytest.mark.parametrize("decoder", DECODERS)
def test_xla_generate_equals_eager(decoder):
    overrides = {"num_layers": 1} if decoder == "transformer" else {}
    model = small_model(decoder, run_eagerly=False, **overrides)
    compiled = model.generate(IMAGES, 4, jit_compile=True, return_scores=True)
    model.run_eagerly = True
    eager = model.generate(IMAGES, 4, return_scores=True)
    np.testing.assert_array_equal(compiled[0], eager[0])
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("decoder", DECODERS)
def test_fit_lowers_the_loss(decoder):
    model = small_model(decoder, run_eagerly=False)
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
    assert set(CaptioningCNNBackbone.presets) == {"captioner_tiny"}
    rnn = RNNImageCaptioner.from_preset("captioner_tiny", vocabulary_size=40, cell="gru")
    assert rnn.vocabulary_size == 40 and rnn.hidden_dim == 64 and rnn.cell == "gru"
    assert isinstance(rnn.backbone, CaptioningCNNBackbone)
    assert tuple(rnn.backbone.image_shape) == (32, 32, 3)
    transformer = TransformerImageCaptioner.from_preset(
        "captioner_tiny", vocabulary_size=40, num_layers=1, image_shape=(16, 16, 3)
    )
    assert transformer.num_layers == 1 and transformer.hidden_dim == 64
    assert tuple(transformer.backbone.image_shape) == (16, 16, 3)  # a backbone override
    images = RNG.uniform(size=(1, 16, 16, 3)).astype("float32")
    assert transformer({"images": images, "target_in": TARGET_IN[:1]}).shape == (1, 5, 40)
    backbone = CaptioningCNNBackbone.from_preset("captioner_tiny", num_filters=(8, 8))
    assert backbone.output.shape == (None, 8, 8, 8)
    with pytest.raises(ValueError, match="preset"):
        RNNImageCaptioner.from_preset("show_and_tell")
    with pytest.raises(TypeError, match="cell"):
        TransformerImageCaptioner.from_preset("captioner_tiny", cell="gru")


def _two_inputs():
    a, b = keras.Input(IMAGE_SHAPE), keras.Input(IMAGE_SHAPE)
    return keras.Model([a, b], keras.layers.Add()([a, b]))


def _pooled():
    images = keras.Input(IMAGE_SHAPE)
    return keras.Model(images, keras.layers.GlobalAveragePooling2D()(images))


def _any_size():
    return keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3)])


INVALID_ARGUMENTS = [
    ("rnn", {"backbone": keras.layers.Dense(3)}, TypeError, "backbone"),
    ("rnn", {"backbone": 3}, TypeError, "backbone"),
    ("rnn", {"backbone": "MobileNetV2"}, TypeError, "backbone"),
    ("rnn", {"backbone": keras.Sequential([keras.layers.Dense(3)])}, TypeError, "backbone"),
    ("transformer", {"backbone": _two_inputs()}, TypeError, "backbone"),
    ("rnn", {"backbone": _pooled()}, ValueError, "backbone"),
    ("rnn", {"backbone": _any_size()}, ValueError, "backbone"),
    ("rnn", {"vocabulary_size": 0}, ValueError, "vocabulary_size"),
    ("rnn", {"hidden_dim": 0}, ValueError, "hidden_dim"),
    ("rnn", {"cell": keras.layers.LSTMCell(4)}, TypeError, "cell"),
    ("rnn", {"cell": "no_such_cell"}, ValueError, "cell"),
    ("rnn", {"dropout": 1.5}, ValueError, "dropout"),
    ("rnn", {"start_token_id": 0}, ValueError, "start_token_id"),
    ("transformer", {"start_token_id": VOCABULARY_SIZE}, ValueError, "start_token_id"),
    ("transformer", {"num_layers": 0}, ValueError, "num_layers"),
    ("transformer", {"num_heads": 3}, ValueError, "num_heads"),
    ("transformer", {"intermediate_dim": -1}, ValueError, "intermediate_dim"),
]


def test_invalid_arguments():
    # One test for all cases: each failing constructor is cheap, a test's Keras clean-up not.
    for decoder, overrides, error, match in INVALID_ARGUMENTS:
        with pytest.raises(error, match=match):
            small_model(decoder, **overrides)
    with pytest.raises(ValueError, match="image_shape"):
        CaptioningCNNBackbone((24, 16))
    with pytest.raises(ValueError, match="image_shape"):
        CaptioningCNNBackbone((None, None, 3))
    for num_filters in [(), (8, 0), 8, (8, True)]:
        with pytest.raises(ValueError, match="num_filters"):
            CaptioningCNNBackbone(IMAGE_SHAPE, num_filters=num_filters)


def test_invalid_generation_inputs():
    model = small_model("rnn")
    with pytest.raises(ValueError, match="images"):
        model.generate({"pixels": IMAGES}, 3)
