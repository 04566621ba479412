"""keras-hub presets read by `from_preset`: small random keras-hub ViT and Swin models (weights
perturbed, so that no norm is the identity and no bias zero) saved with keras-hub's own
`save_to_preset`, loaded by keras_seq, and compared with keras-hub's outputs on the same input;
the refusals (another family, an unknown name, a config or head keras_seq cannot represent)."""

import json
import shutil

import keras_hub
import numpy as np
import pytest
from keras_hub.src.utils import preset_utils

from keras_seq.models import SwinBackbone
from keras_seq.models import SwinImageClassifier
from keras_seq.models import ViTBackbone
from keras_seq.models import ViTImageClassifier

ATOL = 1e-4
VIT = {"patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32}
# Feature maps 16, 8 and 4 at window 4: shifted windows (with their mask) in the first two
# stages, one window and no shift in the last (keras-hub's Swin is standard at such sizes).
SWIN = {
    "image_shape": (32, 32, 3),
    "patch_size": 2,
    "embed_dim": 8,
    "depths": (2, 2, 2),
    "num_heads": (2, 2, 4),
    "window_size": 4,
}


def perturb(model, seed):
    """Add noise to every weight: layer norms off 1 / 0, biases off 0, tables random."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        noise = rng.normal(0.0, 0.2, tuple(variable.shape)).astype("float32")
        variable.assign(np.asarray(variable.numpy()) + noise)


def inputs(shape, seed=1):
    return np.random.default_rng(seed).normal(size=(2,) + tuple(shape)).astype("float32")


def uint8_images(shape, seed=2):
    return np.random.default_rng(seed).integers(0, 256, (2,) + tuple(shape)).astype("uint8")


def save_task(task, directory):
    """Save `task` with keras-hub; its backbone's and its own outputs, and its converter's
    pixels, as NumPy references."""
    task.save_to_preset(str(directory))
    shape = task.backbone.input.shape[1:]
    x = inputs(shape)
    reference = {
        "directory": str(directory),
        "x": x,
        "backbone": np.asarray(task.backbone(x)),
        "logits": np.asarray(task(x)),
    }
    if task.preprocessor is not None:
        images = uint8_images(shape)
        reference["images"] = images
        reference["pixels"] = np.asarray(task.preprocessor.image_converter(images))
    return reference


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    """A ViT classifier (class token, token pooling) with a per-channel image converter."""
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), **VIT)
    converter = keras_hub.layers.ViTImageConverter(
        image_size=(32, 32), scale=[1 / (255 * s) for s in (0.5, 0.25, 0.2)], offset=[-1, -2, -3]
    )
    preprocessor = keras_hub.models.ViTImageClassifierPreprocessor(image_converter=converter)
    task = keras_hub.models.ViTImageClassifier(backbone, num_classes=5, preprocessor=preprocessor)
    perturb(task, seed=0)
    reference = save_task(task, tmp_path_factory.mktemp("keras_hub_vit"))
    backbone_directory = tmp_path_factory.mktemp("keras_hub_vit_backbone")
    backbone.save_to_preset(str(backbone_directory))
    reference["backbone_directory"] = str(backbone_directory)
    return reference


@pytest.fixture(scope="module")
def swin(tmp_path_factory):
    """A Swin classifier with a float-scale image converter, and its backbone saved alone."""
    backbone = keras_hub.models.SwinTransformerBackbone(**SWIN)
    converter = keras_hub.layers.SwinTransformerImageConverter(
        image_size=(32, 32), scale=2 / 255, offset=-1.0, crop_to_aspect_ratio=False
    )
    preprocessor = keras_hub.models.SwinTransformerImageClassifierPreprocessor(
        image_converter=converter
    )
    task = keras_hub.models.SwinTransformerImageClassifier(
        backbone, num_classes=3, preprocessor=preprocessor
    )
    perturb(task, seed=3)
    reference = save_task(task, tmp_path_factory.mktemp("keras_hub_swin"))
    backbone_directory = tmp_path_factory.mktemp("keras_hub_swin_backbone")
    backbone.save_to_preset(str(backbone_directory))
    reference["backbone_directory"] = str(backbone_directory)
    return reference


def test_vit_classifier_preset(vit):
    backbone = ViTBackbone.from_preset(vit["directory"])  # The head's variables skipped.
    np.testing.assert_allclose(np.asarray(backbone(vit["x"])), vit["backbone"], atol=ATOL)
    model = ViTImageClassifier.from_preset(vit["directory"])
    assert model.pooling == "token" and model.label_names is None
    np.testing.assert_allclose(np.asarray(model(vit["x"])), vit["logits"], atol=ATOL)
    preprocessor = model.preprocessor
    assert preprocessor.resize == "center_crop" and preprocessor.image_size == (32, 32)
    np.testing.assert_allclose(preprocessor.std, [0.5, 0.25, 0.2], rtol=1e-6)
    np.testing.assert_allclose(preprocessor.mean, [0.5, 0.5, 0.6], rtol=1e-6)
    pixels = np.asarray(preprocessor(vit["images"]))
    np.testing.assert_allclose(pixels, vit["pixels"], atol=1e-5)


def test_vit_without_class_token_and_average_pooling(tmp_path):
    # keras-hub's "gap" averages all tokens: the patch tokens when there is no class token.
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 16, 3), use_class_token=False, **VIT)
    task = keras_hub.models.ViTImageClassifier(backbone, num_classes=4, pooling="gap")
    perturb(task, seed=4)
    reference = save_task(task, tmp_path)
    model = ViTImageClassifier.from_preset(str(tmp_path))
    assert model.pooling == "mean" and not model.backbone.use_class_token
    assert model.preprocessor is None
    np.testing.assert_allclose(np.asarray(model(reference["x"])), reference["logits"], atol=ATOL)


def test_swin_classifier_preset(swin):
    backbone = SwinBackbone.from_preset(swin["directory"])
    feature_map = np.asarray(backbone(swin["x"]))  # keras-hub returns it as tokens.
    assert feature_map.shape == (2, 4, 4, 32)
    np.testing.assert_allclose(feature_map.reshape(2, 16, 32), swin["backbone"], atol=ATOL)
    model = SwinImageClassifier.from_preset(swin["directory"])
    np.testing.assert_allclose(np.asarray(model(swin["x"])), swin["logits"], atol=ATOL)
    preprocessor = model.preprocessor
    assert preprocessor.resize == "exact" and preprocessor.std is None
    assert preprocessor.scale == pytest.approx(2 / 255) and preprocessor.mean == [1.0]
    pixels = np.asarray(preprocessor(swin["images"]))
    np.testing.assert_allclose(pixels, swin["pixels"], atol=1e-5)


def test_swin_backbone_only_preset_with_a_new_head(swin):
    model = SwinImageClassifier.from_preset(swin["backbone_directory"], num_classes=7)
    assert model.num_classes == 7 and model.preprocessor is None
    feature_map = np.asarray(model.backbone(swin["x"])).reshape(2, 16, 32)
    np.testing.assert_allclose(feature_map, swin["backbone"], atol=ATOL)


def test_keras_hub_preset_names(vit, monkeypatch):
    # keras-hub resolves its own preset names: two registered here point at the local
    # presets (no download). The classifier of a name is loaded only for a task.
    for name, directory in (
        ("keras_seq_test_vit", vit["directory"]),
        ("keras_seq_test_vit_backbone", vit["backbone_directory"]),
    ):
        entry = {"metadata": {}, "kaggle_handle": directory}
        monkeypatch.setitem(preset_utils.BUILTIN_PRESETS, name, entry)
        registry = preset_utils.BUILTIN_PRESETS_FOR_BACKBONE[keras_hub.models.ViTBackbone]
        monkeypatch.setitem(registry, name, entry)
    backbone = ViTBackbone.from_preset("keras_seq_test_vit")
    np.testing.assert_allclose(np.asarray(backbone(vit["x"])), vit["backbone"], atol=ATOL)
    model = ViTImageClassifier.from_preset("keras_seq_test_vit")
    np.testing.assert_allclose(np.asarray(model(vit["x"])), vit["logits"], atol=ATOL)
    assert model.preprocessor.std == pytest.approx([0.5, 0.25, 0.2])
    # A backbone-only preset: no classifier, so only a new head.
    with pytest.raises(ValueError, match="no head for.*num_classes"):
        ViTImageClassifier.from_preset("keras_seq_test_vit_backbone")
    model = ViTImageClassifier.from_preset("keras_seq_test_vit_backbone", num_classes=2)
    assert model.num_classes == 2 and model.preprocessor is None
    np.testing.assert_allclose(np.asarray(model.backbone(vit["x"])), vit["backbone"], atol=ATOL)


def test_another_family_is_refused(vit, swin):
    with pytest.raises(ValueError, match="keras_hub>SwinTransformerBackbone"):
        ViTBackbone.from_preset(swin["directory"])
    with pytest.raises(ValueError, match="keras_hub>ViTBackbone"):
        SwinImageClassifier.from_preset(vit["directory"])


def test_unknown_names_are_refused():
    # Neither a name keras-hub lists for ViT (so it is never looked up) nor a local path.
    for name in ("no_such_vit_preset", "swin_tiny_patch4_window7_224", "bert_base_en"):
        with pytest.raises(ValueError, match=f"Unknown `preset` for ViTBackbone: '{name}'") as info:
            ViTBackbone.from_preset(name)
        message = str(info.value)
        assert "vit_tiny_patch16_224" in message and "hf://" in message
        assert "local directories" in message and "vit_base_patch16_224_imagenet" in message


@pytest.mark.parametrize(
    "arguments, field",
    [({"use_mha_bias": False}, "use_mha_bias"), ({"patch_size": (8, 4)}, "patch_size")],
)
def test_unrepresentable_vit_configs(tmp_path, arguments, field):
    model = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), **{**VIT, **arguments})
    model.save_to_preset(str(tmp_path))
    with pytest.raises(ValueError, match=f"`{field}`=.*cannot represent"):
        ViTBackbone.from_preset(str(tmp_path))


@pytest.mark.parametrize(
    "field, value",
    [("patch_norm", False), ("qkv_bias", False), ("window_size", [4, 2])],
)
def test_unrepresentable_swin_configs(swin, tmp_path, field, value):
    # The config keras-hub writes for such a model (refused before keras-hub loads it).
    directory = tmp_path / "preset"
    shutil.copytree(swin["backbone_directory"], directory)
    with open(directory / "config.json") as file:
        config = json.load(file)
    config["config"][field] = value
    with open(directory / "config.json", "w") as file:
        json.dump(config, file)
    with pytest.raises(ValueError, match=f"`{field}`=.*cannot represent"):
        SwinBackbone.from_preset(str(directory))


@pytest.mark.parametrize(
    "arguments, field",
    [
        ({"intermediate_dim": 8}, "intermediate_dim=8"),
        ({"pooling": "gap"}, "pooling='gap'"),  # Over the class token too.
        ({"activation": "sigmoid"}, "activation='sigmoid'"),
    ],
)
def test_unrepresentable_vit_heads(tmp_path, arguments, field):
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), **VIT)
    keras_hub.models.ViTImageClassifier(backbone, num_classes=3, **arguments).save_to_preset(
        str(tmp_path)
    )
    with pytest.raises(ValueError, match=field):
        ViTImageClassifier.from_preset(str(tmp_path))
    # The backbone alone, or a new head, is fine.
    assert ViTBackbone.from_preset(str(tmp_path)).hidden_dim == 16
    if "pooling" not in arguments:
        assert ViTImageClassifier.from_preset(str(tmp_path), num_classes=2).num_classes == 2
