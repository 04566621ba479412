"""SwinBackbone and SwinImageClassifier: contract, parameter counts, any image size, feature
pyramid, resized reload, presets; the deprecated SwinTransformer's 0.1 behaviour."""

import keras
import numpy as np
import pytest

from keras_seq import testing
from keras_seq.models import SwinBackbone
from keras_seq.models import SwinImageClassifier
from keras_seq.models import SwinTransformer
from keras_seq.ops.interpolation import bicubic_resize

SMALL = {
    "image_shape": (32, 48, 3),
    "patch_size": 2,
    "hidden_dim": 16,
    "num_layers": (2, 2),
    "num_heads": (2, 4),
    "window_size": 4,
}


def images(shape=(32, 48, 3), batch_size=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch_size,) + tuple(shape)).astype("float32")


def classifier(num_classes=5, **overrides):
    return SwinImageClassifier(SwinBackbone(**{**SMALL, **overrides}), num_classes)


def swin_parameter_count(hidden_dim, num_layers, num_heads, window_size, classes, patch_size=4):
    """The original Swin's parameters, from the architecture (Liu et al., 2021)."""
    count = patch_size * patch_size * 3 * hidden_dim + hidden_dim + 2 * hidden_dim
    table = (2 * window_size - 1) ** 2
    for stage, (depth, heads) in enumerate(zip(num_layers, num_heads)):
        c = hidden_dim * 2**stage
        block = 2 * c + 3 * (c * c + c) + table * heads + c * c + c  # norm1, qkv, bias, proj
        block += 2 * c + c * 4 * c + 4 * c + 4 * c * c + c  # norm2, MLP
        count += depth * block
        if stage < len(num_layers) - 1:
            count += 2 * 4 * c + 4 * c * 2 * c  # patch merging: norm(4C), reduction
    c = hidden_dim * 2 ** (len(num_layers) - 1)
    return count + 2 * c + c * classes + classes


# Weights: patch projection 2 + norm 2; per block 17 (two norms 4, bias table 1, attention 8,
# MLP 4); patch merging 3; final norm 2. The classifier adds its head's 2.
BACKBONE_WEIGHTS = 4 + 2 * 17 + 3 + 2 * 17 + 2
CONFIG = {**SMALL, "dropout": 0.1, "drop_path_rate": 0.2}


def test_contract():
    # XLA compilation of the whole model is the slow part: test_contract_with_xla (slow)
    # runs it on this configuration, test_xla_prediction on a one-stage model by default.
    testing.run_layer_test(
        SwinBackbone,
        CONFIG,
        images(),
        expected_output_shape=(2, 8, 12, 32),
        expected_num_trainable_weights=BACKBONE_WEIGHTS,
        run_jit_check=False,
    )
    testing.run_layer_test(
        SwinImageClassifier,
        {"backbone": SwinBackbone(**CONFIG), "num_classes": 5},
        images(),
        expected_output_shape=(2, 5),
        expected_num_trainable_weights=BACKBONE_WEIGHTS + 2,
        run_jit_check=False,
    )


@pytest.mark.slow
def test_contract_with_xla():
    testing.run_layer_test(
        SwinImageClassifier,
        {"backbone": SwinBackbone(**CONFIG), "num_classes": 5},
        images(),
        expected_output_shape=(2, 5),
        expected_num_trainable_weights=BACKBONE_WEIGHTS + 2,
    )


def test_xla_prediction_and_training_step():
    model = classifier(num_layers=(2,), num_heads=(2,), drop_path_rate=0.1)
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    np.testing.assert_allclose(model.predict(images(), verbose=0), model(images()), atol=1e-4)
    loss = model.train_on_batch(images(), np.zeros((2, 5), "float32"))
    assert np.isfinite(loss)


@pytest.mark.parametrize(
    "size",
    [
        "tiny",
        pytest.param("small", marks=pytest.mark.slow),
        pytest.param("base", marks=pytest.mark.slow),
    ],
)
def test_presets_are_the_original_architectures(size):
    name = f"swin_{size}_patch4_window7_224"
    config = SwinBackbone.presets[name]["config"]
    model = SwinImageClassifier.from_preset(name)
    expected = swin_parameter_count(
        config["hidden_dim"], config["num_layers"], config["num_heads"], 7, 1000
    )
    channels = config["hidden_dim"] * 8
    assert model.num_classes == 1000
    assert model.count_params() == expected
    assert model.backbone.count_params() == expected - (channels + 1) * 1000
    assert f"{expected:,} parameters" in SwinBackbone.presets[name]["description"]


def test_from_preset_splits_overrides_between_backbone_and_head():
    model = SwinImageClassifier.from_preset(
        "swin_tiny_patch4_window7_224",
        num_classes=3,
        image_shape=(64, 64, 3),
        hidden_dim=8,
        num_heads=(1, 2, 4, 8),
    )
    assert model.num_classes == 3 and model.backbone.hidden_dim == 8
    assert model.backbone.num_layers == (2, 2, 6, 2)
    assert model.backbone.output.shape == (None, 2, 2, 64)
    with pytest.raises(ValueError, match="preset"):
        SwinImageClassifier.from_preset("swin_huge")
    with pytest.raises(TypeError, match="pooling"):
        SwinImageClassifier.from_preset("swin_tiny_patch4_window7_224", pooling="token")
    with pytest.raises(TypeError, match="num_classes"):
        SwinBackbone.from_preset("swin_tiny_patch4_window7_224", num_classes=3)


@pytest.mark.parametrize("image_shape", [(112, 112, 3), (100, 100, 3), (96, 160, 3)])
def test_sizes_where_keras_hub_fails(image_shape):
    # Swin-T's patch size, window and depth of stages, at a small width.
    backbone = SwinBackbone(
        image_shape=image_shape,
        hidden_dim=8,
        num_layers=(2, 2, 2, 2),
        num_heads=(1, 2, 4, 8),
    )
    features = backbone.feature_extractor()(images(image_shape, batch_size=1))
    height, width = -(-image_shape[0] // 4), -(-image_shape[1] // 4)
    for stage in range(4):
        assert features[f"stage_{stage + 1}"].shape == (1, height, width, 8 * 2**stage)
        height, width = -(-height // 2), -(-width // 2)
    logits = SwinImageClassifier(backbone, 3)(images(image_shape, batch_size=1))
    assert logits.shape == (1, 3) and np.all(np.isfinite(logits))


def test_feature_extractor_shares_the_weights():
    model = classifier()
    extractor = model.backbone.feature_extractor()
    assert [variable.path for variable in model.weights[-2:]] == ["head/kernel", "head/bias"]
    assert extractor.count_params() == model.backbone.count_params()
    features = extractor(images())
    assert [features[key].shape for key in sorted(features)] == [(2, 16, 24, 16), (2, 8, 12, 32)]
    # The last stage (after the final norm) is the backbone's output; averaged and classified
    # it is the classifier's.
    np.testing.assert_allclose(features["stage_2"], model.backbone(images()), atol=1e-6)
    np.testing.assert_allclose(
        model.head(np.mean(features["stage_2"], axis=(1, 2))), model(images()), atol=1e-5
    )


def test_blocks_alternate_shifts_and_drop_path_rises():
    backbone = SwinBackbone(**{**SMALL, "drop_path_rate": 0.3})
    blocks = [backbone.get_layer(f"stage_{s}_block_{b}") for s in (1, 2) for b in (0, 1)]
    assert [block.shift for block in blocks] == [False, True, False, True]
    np.testing.assert_allclose([b.drop_path_rate for b in blocks], np.linspace(0, 0.3, 4))


def test_weights_load_into_a_model_built_for_another_size(tmp_path):
    source = classifier()
    path = str(tmp_path / "swin.weights.h5")
    source.save_weights(path)
    # At 12 x 12 the first stage's map is 6 x 6 (window 4 kept, map padded to 8 x 8), the
    # second's 3 x 3: its window clamps to 3, so its 7 x 7 bias tables are resampled to 5 x 5.
    resized = classifier(image_shape=(12, 12, 3))
    resized.load_weights(path)
    for block in ("stage_2_block_0", "stage_2_block_1"):
        source_table = source.backbone.get_layer(block).window_attention
        loaded = resized.backbone.get_layer(block).window_attention.relative_position_bias_table
        expected = bicubic_resize(
            np.reshape(source_table.relative_position_bias_table.numpy(), (7, 7, 4)), (5, 5)
        )
        np.testing.assert_allclose(loaded.numpy(), np.reshape(expected, (25, 4)), atol=1e-6)
    source_stage_1 = source.backbone.get_layer("stage_1_block_1").window_attention
    resized_stage_1 = resized.backbone.get_layer("stage_1_block_1").window_attention
    for ours, theirs in zip(resized_stage_1.weights, source_stage_1.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(resized.head.kernel.numpy(), source.head.kernel.numpy())
    assert np.all(np.isfinite(resized(images((12, 12, 3)))))


def test_save_and_reload_keras_file(tmp_path):
    model = classifier(image_shape=(20, 28, 3))
    path = str(tmp_path / "swin.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded) is SwinImageClassifier and type(reloaded.backbone) is SwinBackbone
    np.testing.assert_allclose(reloaded(images((20, 28, 3))), model(images((20, 28, 3))), atol=1e-6)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"image_shape": (None, None, 3)}, "image_shape"),
        ({"num_layers": (2, 2, 2)}, "num_layers"),
        ({"num_heads": (3, 4)}, "num_heads"),
        ({"num_layers": ()}, "num_layers"),
        ({"window_size": 0}, "window_size"),
        ({"mlp_ratio": -1.0}, "mlp_ratio"),
        ({"drop_path_rate": 1.5}, "drop_path_rate"),
    ],
)
def test_bad_backbone_arguments(overrides, match):
    with pytest.raises(ValueError, match=match):
        SwinBackbone(**{**SMALL, **overrides})


def test_classifier_takes_a_users_feature_map_backbone():
    # Any functional model with one (batch_size, height, width, channels) output.
    inputs = keras.Input((16, 16, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(8, 3, strides=4)(inputs))
    model = SwinImageClassifier(backbone, 4)
    x = images((16, 16, 3))
    expected = model.head(np.mean(np.asarray(backbone(x)), axis=(1, 2)))
    np.testing.assert_allclose(model(x), expected, atol=1e-5, rtol=1e-5)


def test_bad_classifier_arguments():
    backbone = SwinBackbone(**SMALL)
    for num_classes, error in ((0, ValueError), (None, TypeError)):
        with pytest.raises(error, match="num_classes"):
            SwinImageClassifier(backbone, num_classes)
    with pytest.raises(TypeError, match="backbone"):
        SwinImageClassifier(backbone.feature_extractor(), 5)  # two outputs
    with pytest.raises(TypeError, match="backbone"):
        SwinImageClassifier(keras.Sequential([keras.layers.Dense(3)]), 5)


# === The deprecated 0.1 class ===


def test_deprecated_class_without_head_returns_the_pooled_features():
    with pytest.warns(DeprecationWarning, match="SwinImageClassifier"):
        model = SwinTransformer(**SMALL, num_classes=None)
    assert model.head is None and model.output.shape == (None, 32)
    feature_map = np.asarray(model.backbone(images()))
    np.testing.assert_allclose(model(images()), feature_map.mean((1, 2)), atol=1e-5, rtol=1e-5)
    # 0.1 attributes and methods, now the backbone's.
    assert len(model.stages) == 2 and model.get_layer("stage_2_block_1") is not None
    assert model.feature_extractor()(images())["stage_1"].shape == (2, 16, 24, 16)
    with pytest.warns(DeprecationWarning):
        model = SwinTransformer.from_preset(
            "swin_tiny_patch4_window7_224",
            num_classes=3,
            hidden_dim=8,
            num_heads=(1, 2, 4, 8),
            image_shape=(64, 64, 3),
        )
    assert type(model) is SwinTransformer and model.output.shape == (None, 3)
