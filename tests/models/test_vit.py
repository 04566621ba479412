"""ViTBackbone and ViTImageClassifier: contract, parameter counts, pooling, position resampling
at call time and on load, presets; the deprecated VisionTransformer's 0.1 behaviour."""

import pathlib
import zipfile

import h5py
import keras
import numpy as np
import pytest

from keras_seq import testing
from keras_seq.models import VisionTransformer
from keras_seq.models import ViTBackbone
from keras_seq.models import ViTImageClassifier
from keras_seq.ops.interpolation import bicubic_resize

SMALL = {
    "image_shape": (32, 32, 3),
    "patch_size": 8,
    "num_layers": 2,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
}
LEGACY_FILE = pathlib.Path(__file__).parent / "legacy_files" / "vit.keras"


def images(height=32, width=32, batch_size=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch_size, height, width, 3)).astype("float32")


def classifier(num_classes=5, pooling="token", **overrides):
    return ViTImageClassifier(ViTBackbone(**{**SMALL, **overrides}), num_classes, pooling)


def vit_parameter_count(image_size, patch_size, num_layers, hidden_dim, intermediate_dim, classes):
    """The original ViT's parameters, from the architecture (Dosovitskiy et al., 2020)."""
    d, f = hidden_dim, intermediate_dim
    patches = (image_size // patch_size) ** 2
    embedding = patch_size * patch_size * 3 * d + d + d + (1 + patches) * d  # conv, cls, pos
    block = 2 * 2 * d + 4 * (d * d + d) + d * f + f + f * d + d  # norms, q/k/v/out, MLP
    return embedding + num_layers * block + 2 * d + d * classes + classes


def test_contract():
    # Weights: patch projection 2, class token + position table 2, per block 16 (two norms
    # 4, attention 8, MLP 4), final norm 2; the classifier adds its head's 2.
    backbone_weights = 2 + 2 + 2 * 16 + 2
    config = {**SMALL, "dropout": 0.1, "drop_path_rate": 0.2}
    testing.run_layer_test(
        ViTBackbone,
        config,
        images(),
        expected_output_shape=(2, 1 + 16, 16),
        expected_num_trainable_weights=backbone_weights,
    )
    testing.run_layer_test(
        ViTImageClassifier,
        {"backbone": ViTBackbone(**config), "num_classes": 5, "pooling": "mean"},
        images(),
        expected_output_shape=(2, 5),
        expected_num_trainable_weights=backbone_weights + 2,
    )


@pytest.mark.parametrize(
    "size",
    [
        "tiny",
        pytest.param("small", marks=pytest.mark.slow),
        pytest.param("base", marks=pytest.mark.slow),
    ],
)
@pytest.mark.parametrize("patch_size", [16, 32])
def test_presets_are_the_original_architectures(size, patch_size):
    name = f"vit_{size}_patch{patch_size}_224"
    config = ViTBackbone.presets[name]["config"]
    model = ViTImageClassifier.from_preset(name)
    expected = vit_parameter_count(
        224,
        patch_size,
        config["num_layers"],
        config["hidden_dim"],
        config["intermediate_dim"],
        1000,
    )
    assert model.num_classes == 1000
    assert model.count_params() == expected
    assert model.backbone.count_params() == expected - (config["hidden_dim"] + 1) * 1000
    assert f"{expected:,} parameters" in ViTBackbone.presets[name]["description"]


@pytest.mark.slow
@pytest.mark.parametrize("patch_size", [16, 32])
def test_large_presets(patch_size):
    name = f"vit_large_patch{patch_size}_224"
    model = ViTImageClassifier.from_preset(name)
    assert model.count_params() == vit_parameter_count(224, patch_size, 24, 1024, 4096, 1000)


def test_from_preset_splits_overrides_between_backbone_and_head():
    model = ViTImageClassifier.from_preset(
        "vit_tiny_patch16_224",
        num_classes=3,
        pooling="mean",
        image_shape=(32, 32, 3),
        num_layers=1,
    )
    assert (model.num_classes, model.pooling) == (3, "mean")
    assert model.backbone.num_layers == 1 and model.backbone.image_shape == (32, 32, 3)
    # The position table follows the image size: a 2 x 2 grid at patch 16.
    table = model.backbone.get_layer("position_embedding").position_embeddings
    assert tuple(table.shape) == (1 + 4, 192)
    backbone = ViTBackbone.from_preset("vit_tiny_patch16_224", num_layers=1)
    assert backbone.hidden_dim == 192 and backbone.output.shape == (None, 1 + 196, 192)
    with pytest.raises(ValueError, match="preset"):
        ViTImageClassifier.from_preset("vit_huge")
    with pytest.raises(TypeError, match="vocabulary_size"):
        ViTImageClassifier.from_preset("vit_tiny_patch16_224", vocabulary_size=3)
    with pytest.raises(TypeError, match="num_classes"):
        ViTBackbone.from_preset("vit_tiny_patch16_224", num_classes=3)


def test_drop_path_rises_linearly_over_the_blocks():
    backbone = ViTBackbone(**{**SMALL, "num_layers": 5, "drop_path_rate": 0.4})
    rates = [backbone.get_layer(f"encoder_layer_{i}").drop_path_rate for i in range(5)]
    np.testing.assert_allclose(rates, np.linspace(0.0, 0.4, 5))


def test_pooling():
    mean = classifier(pooling="mean")
    # The backbone's weights first, then the head's (0.1's order, keras_hub's too).
    assert [variable.path for variable in mean.weights[-2:]] == ["head/kernel", "head/bias"]
    tokens = np.asarray(mean.backbone(images()))
    feature_map = mean.backbone.feature_extractor()(images())["feature_map"]
    assert feature_map.shape == (2, 4, 4, 16)
    np.testing.assert_allclose(
        np.reshape(feature_map, (2, 16, 16)), tokens[:, 1:], atol=1e-6, rtol=1e-6
    )
    head = mean.head
    np.testing.assert_allclose(
        mean(images()), head(np.mean(tokens[:, 1:], axis=1)), atol=1e-5, rtol=1e-5
    )
    # The same backbone and head, pooling the class token instead.
    token = ViTImageClassifier(mean.backbone, 5, pooling="token")
    token.head.set_weights([np.random.default_rng(1).normal(size=(16, 5)), np.zeros(5)])
    head.set_weights(token.head.get_weights())
    np.testing.assert_allclose(token(images()), token.head(tokens[:, 0]), atol=1e-5, rtol=1e-5)
    assert not np.allclose(token(images()), mean(images()))


def test_variable_image_size_resamples_positions_at_call_time():
    dynamic = ViTBackbone(**{**SMALL, "image_shape": (None, None, 3)}, position_grid_shape=(4, 4))
    static = ViTBackbone(**SMALL)
    static.set_weights(dynamic.get_weights())
    # At the table's own grid, nothing is resampled: the same outputs as the static model.
    np.testing.assert_allclose(dynamic(images()), static(images()), atol=1e-5)
    # At 48 x 40 (grid 6 x 5) the table is resampled; a static model built for that size
    # resamples the same table in its graph.
    static_other = ViTBackbone(**{**SMALL, "image_shape": (48, 40, 3)}, position_grid_shape=(4, 4))
    static_other.set_weights(dynamic.get_weights())
    np.testing.assert_allclose(dynamic(images(48, 40)), static_other(images(48, 40)), atol=1e-5)
    # The resampled grid is bicubic_resize of the table's grid part.
    layer = dynamic.get_layer("position_embedding")
    table = layer.position_embeddings.numpy()
    tokens = layer(np.zeros((1, 6, 5, 16), "float32"))
    expected = bicubic_resize(table[1:].reshape(4, 4, 16), (6, 5)).numpy().reshape(30, 16)
    np.testing.assert_allclose(tokens[0, 1:], expected, atol=1e-6)
    np.testing.assert_allclose(tokens[0, 0], table[0] + layer.class_token.numpy()[0, 0], atol=1e-6)


def test_variable_image_size_under_jit():
    model = classifier(image_shape=(None, None, 3), position_grid_shape=(4, 4))
    model.compile(jit_compile=True)
    np.testing.assert_allclose(
        model.predict(images(40, 24), verbose=0), model(images(40, 24)), atol=1e-4
    )


def test_weights_load_into_a_model_built_for_another_size(tmp_path):
    source = classifier()
    path = str(tmp_path / "vit32.keras")
    source.save(path)
    # Rebuilt for 48 x 48 images (grid 6 x 6): the stored 4 x 4 table is resampled once.
    resized = classifier(image_shape=(48, 48, 3))
    resized.load_weights(path)
    table = source.backbone.get_layer("position_embedding").position_embeddings.numpy()
    loaded = resized.backbone.get_layer("position_embedding").position_embeddings.numpy()
    np.testing.assert_allclose(loaded[0], table[0])
    np.testing.assert_allclose(
        loaded[1:],
        bicubic_resize(table[1:].reshape(4, 4, 16), (6, 6)).numpy().reshape(36, 16),
        atol=1e-6,
    )
    # ... and gives the outputs of the source model run at 48 x 48 through call-time
    # resampling.
    dynamic = classifier(image_shape=(None, None, 3), position_grid_shape=(4, 4))
    dynamic.set_weights(source.get_weights())
    np.testing.assert_allclose(resized(images(48, 48)), dynamic(images(48, 48)), atol=1e-5)


def test_save_reload_keeps_classes_and_variable_size(tmp_path):
    model = classifier(image_shape=(None, None, 3), position_grid_shape=(4, 4))
    model.head.set_weights([np.random.default_rng(1).normal(size=(16, 5)), np.ones(5)])
    path = str(tmp_path / "vit.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded) is ViTImageClassifier and type(reloaded.backbone) is ViTBackbone
    np.testing.assert_allclose(reloaded(images(24, 40)), model(images(24, 40)), atol=1e-6)


def test_feature_extractor_needs_a_static_size():
    backbone = ViTBackbone(**{**SMALL, "image_shape": (None, None, 3)}, position_grid_shape=(4, 4))
    with pytest.raises(ValueError, match="image_shape"):
        backbone.feature_extractor()


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"image_shape": (30, 32, 3)}, "patch_size"),
        ({"image_shape": (32, 32)}, "image_shape"),
        ({"image_shape": (None, 32, 3)}, "position_grid_shape"),
        ({"image_shape": (None, None, 3), "position_grid_shape": (4, 0)}, "position_grid_shape"),
        ({"hidden_dim": 15}, "num_heads"),
        ({"num_layers": 0}, "num_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"drop_path_rate": 1.0}, "drop_path_rate"),
        ({"layer_norm_epsilon": 0.0}, "layer_norm_epsilon"),
    ],
)
def test_bad_backbone_arguments(overrides, match):
    with pytest.raises(ValueError, match=match):
        ViTBackbone(**{**SMALL, **overrides})


def test_classifier_takes_a_users_token_backbone():
    # Any functional model with one (batch_size, tokens, hidden_dim) output, class token first.
    inputs = keras.Input((5, 3))
    tokens = keras.layers.Dense(8)(inputs)  # (B, T, 8)
    backbone = keras.Model(inputs, tokens)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    for pooling, pooled in (("token", lambda t: t[:, 0]), ("mean", lambda t: t[:, 1:].mean(1))):
        model = ViTImageClassifier(backbone, 4, pooling=pooling)
        model.head.set_weights([np.random.default_rng(1).normal(size=(8, 4)), np.zeros(4)])
        expected = model.head(pooled(np.asarray(backbone(x))))
        np.testing.assert_allclose(model(x), expected, atol=1e-5, rtol=1e-5)


def test_bad_classifier_arguments():
    backbone = ViTBackbone(**SMALL)
    with pytest.raises(ValueError, match="pooling"):
        ViTImageClassifier(backbone, 5, pooling="max")
    for num_classes, error in ((0, ValueError), (None, TypeError), (2.5, TypeError)):
        with pytest.raises(error, match="num_classes"):
            ViTImageClassifier(backbone, num_classes)
    with pytest.raises(TypeError, match="backbone"):
        ViTImageClassifier(backbone.feature_extractor(), 5)  # a 4-D feature map, not tokens
    with pytest.raises(TypeError, match="backbone"):
        ViTImageClassifier("vit_tiny_patch16_224", 5)


# === The deprecated 0.1 class ===


def test_deprecated_class_without_head_returns_the_pooled_features():
    with pytest.warns(DeprecationWarning, match="ViTImageClassifier"):
        model = VisionTransformer(**SMALL, num_classes=None, pooling="mean")
    assert model.head is None and model.output.shape == (None, 16)
    tokens = np.asarray(model.backbone(images()))
    np.testing.assert_allclose(model(images()), tokens[:, 1:].mean(1), atol=1e-5, rtol=1e-5)
    # 0.1 attributes and methods, now the backbone's.
    assert len(model.encoder_layers) == 2 and model.get_layer("encoder_layer_1") is not None
    assert model.feature_extractor()(images())["feature_map"].shape == (2, 4, 4, 16)
    assert model.get_config()["num_classes"] is None
    with pytest.warns(DeprecationWarning):
        reloaded = VisionTransformer.from_config(model.get_config())
    assert reloaded.head is None


def test_deprecated_from_preset():
    with pytest.warns(DeprecationWarning):
        model = VisionTransformer.from_preset(
            "vit_tiny_patch16_224", num_classes=3, image_shape=(32, 32, 3), num_layers=1
        )
    assert type(model) is VisionTransformer and model.output.shape == (None, 3)
    with pytest.raises(TypeError, match="vocabulary_size"):
        VisionTransformer.from_preset("vit_tiny_patch16_224", vocabulary_size=3)


def test_legacy_file_weights_land_in_their_variables():
    # The 0.1 file's head is zero (its logits are zero): check where every array landed.
    model = keras.saving.load_model(LEGACY_FILE)
    assert type(model) is VisionTransformer
    with zipfile.ZipFile(LEGACY_FILE) as archive, archive.open("model.weights.h5") as file:
        stored = h5py.File(file, "r")["layers"]
        backbone, block = model.backbone, model.backbone.encoder_layers[0]
        expected = {
            "patch_position_embedding/vars/1": backbone.position_embedding.position_embeddings,
            "transformer_encoder/self_attention/query_dense/vars/0": (
                block.self_attention.query_dense.kernel
            ),
            "transformer_encoder/feedforward/output_dense/vars/0": (
                block.feedforward.output_dense.kernel
            ),
            "layer_normalization/vars/1": backbone.layer_norm.beta,
            "dense/vars/0": model.head.kernel,
        }
        for path, variable in expected.items():
            np.testing.assert_array_equal(np.asarray(variable), stored[path][()])
