"""ImageCaptioner, deprecated: its 0.1 arguments (the `decoder` switch, backbones by name, the 0.1
presets and errors) keep working, and its weights move to the replacement tasks. (What every
deprecated class does: tests/models/test_deprecated_models.py; its 0.1 `.keras` files:
tests/models/test_legacy_files.py.)"""

import json
import os

import keras
import numpy as np
import pytest

from keras_seq.models import CaptioningCNNBackbone
from keras_seq.models import ImageCaptioner
from keras_seq.models import RNNImageCaptioner
from keras_seq.models import TransformerImageCaptioner

# Every test here builds the deprecated class; test_deprecated_models.py checks its warning.
pytestmark = pytest.mark.filterwarnings("ignore:keras_seq.models.ImageCaptioner:DeprecationWarning")

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


def small_model(**overrides):
    model = ImageCaptioner(**{**SMALL, **overrides})
    model.run_eagerly = True  # generate() without tracing a tf.function: faster at this size
    return model


@pytest.mark.parametrize(
    "decoder,task,arguments",
    [
        ("rnn", RNNImageCaptioner, {"cell": "gru"}),
        (
            "transformer",
            TransformerImageCaptioner,
            {"num_layers": 2, "num_heads": 2, "intermediate_dim": 32},
        ),
    ],
)
def test_weights_move_to_the_replacement(decoder, task, arguments):
    # The migration path: the default backbone's weights fit a CaptioningCNNBackbone, the
    # rest the task's decoder, in the same order.
    model = small_model(decoder=decoder, **arguments)
    backbone = CaptioningCNNBackbone(IMAGE_SHAPE)
    replacement = task(backbone, VOCABULARY_SIZE, hidden_dim=16, dropout=0.0, **arguments)
    replacement.set_weights(model.get_weights())
    np.testing.assert_allclose(replacement(INPUTS), model(INPUTS), atol=1e-6)
    np.testing.assert_array_equal(
        replacement.generate(IMAGES, 4, jit_compile=False), model.generate(IMAGES, 4)
    )
    np.testing.assert_allclose(
        replacement.attention_maps(INPUTS), model.attention_maps(INPUTS), atol=1e-6
    )


def test_0_1_attributes():
    model = small_model(decoder="transformer")
    assert model.image_encoder is model.backbone and model.image_encoder.name == "image_encoder"
    assert model.decoder == "transformer" and model.cell == "lstm"
    tokens, attention = model.generate_with_attention(IMAGES, 3, stop_token_id=2)
    assert tokens.shape == (2, 3) and attention.shape == (2, 3, 3, 2)


def test_user_backbone_is_saved_with_the_captioner(tmp_path):
    images = keras.Input(IMAGE_SHAPE)
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu")(images)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="user_features")(x)
    backbone = keras.Model(images, x, name="user_backbone")
    model = small_model(decoder="transformer", backbone=backbone, dropout=0.1)
    assert model.get_config()["backbone"]["config"]["name"] == "user_backbone"
    path = os.path.join(tmp_path, "captioner.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is ImageCaptioner
    assert json.dumps(reloaded.get_config()) == json.dumps(model.get_config())
    assert reloaded.image_encoder.get_layer("user_features").filters == 6
    np.testing.assert_allclose(reloaded(INPUTS), model(INPUTS), atol=1e-6)


def test_keras_applications_backbone_by_name():
    model = small_model(
        image_shape=(64, 64, 3), backbone="MobileNetV2", backbone_kwargs={"alpha": 0.35}
    )
    assert model.image_encoder.name == "mobilenetv2_0.35_64"
    images = RNG.uniform(size=(2, 64, 64, 3)).astype("float32")
    tokens, attention = model.generate_with_attention(images, 3)
    assert tokens.shape == (2, 3) and attention.shape == (2, 3, 2, 2)  # 64 / 32 = 2
    config = model.get_config()
    assert config["backbone"] == "MobileNetV2" and config["backbone_kwargs"] == {"alpha": 0.35}


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
    assert model.attention_maps(
        {"images": np.zeros((1, 224, 224, 3), "float32"), "target_in": TARGET_IN[:1]}
    ).shape == (1, 5, 7, 7)


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
