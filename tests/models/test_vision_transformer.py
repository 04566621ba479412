"""VisionTransformer: contract, parameter counts, position resampling at call time and on load."""

import keras
import numpy as np
import pytest

from keras_seq import testing
from keras_seq.models.vit.vision_transformer import VisionTransformer
from keras_seq.ops.interpolation import bicubic_resize

SMALL = {
    "image_shape": (32, 32, 3),
    "patch_size": 8,
    "num_layers": 2,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
    "num_classes": 5,
}
RNG = np.random.default_rng(0)


def images(height=32, width=32, batch_size=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch_size, height, width, 3)).astype("float32")


def vit_parameter_count(image_size, patch_size, num_layers, hidden_dim, intermediate_dim, classes):
    """The original ViT's parameters, from the architecture (Dosovitskiy et al., 2020)."""
    d, f = hidden_dim, intermediate_dim
    patches = (image_size // patch_size) ** 2
    embedding = patch_size * patch_size * 3 * d + d + d + (1 + patches) * d  # conv, cls, pos
    block = 2 * 2 * d + 4 * (d * d + d) + d * f + f + f * d + d  # norms, q/k/v/out, MLP
    return embedding + num_layers * block + 2 * d + d * classes + classes


def test_contract():
    # Weights: patch projection 2, class token + position table 2, per block 16 (two norms
    # 4, attention 8, MLP 4), final norm 2, head 2.
    testing.run_layer_test(
        VisionTransformer,
        {**SMALL, "dropout": 0.1, "drop_path_rate": 0.2},
        images(),
        expected_output_shape=(2, 5),
        expected_num_trainable_weights=2 + 2 + 2 * 16 + 2 + 2,
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
    config = VisionTransformer.presets[name]["config"]
    model = VisionTransformer.from_preset(name)
    expected = vit_parameter_count(
        224,
        patch_size,
        config["num_layers"],
        config["hidden_dim"],
        config["intermediate_dim"],
        1000,
    )
    assert model.count_params() == expected
    assert f"{expected:,} parameters" in VisionTransformer.presets[name]["description"]


@pytest.mark.slow
@pytest.mark.parametrize("patch_size", [16, 32])
def test_large_presets(patch_size):
    name = f"vit_large_patch{patch_size}_224"
    model = VisionTransformer.from_preset(name)
    assert model.count_params() == vit_parameter_count(224, patch_size, 24, 1024, 4096, 1000)


def test_drop_path_rises_linearly_over_the_blocks():
    model = VisionTransformer(**{**SMALL, "num_layers": 5, "drop_path_rate": 0.4})
    rates = [model.get_layer(f"encoder_layer_{i}").drop_path_rate for i in range(5)]
    np.testing.assert_allclose(rates, np.linspace(0.0, 0.4, 5))


def test_pooling():
    features = VisionTransformer(**{**SMALL, "num_classes": None, "pooling": "mean"})
    feature_map = features.feature_extractor()(images())["feature_map"]
    assert feature_map.shape == (2, 4, 4, 16)
    np.testing.assert_allclose(
        features(images()), np.mean(feature_map, axis=(1, 2)), atol=1e-5, rtol=1e-5
    )
    token = VisionTransformer(**{**SMALL, "num_classes": None})
    token.set_weights(features.get_weights())
    assert not np.allclose(token(images()), features(images()))


def test_variable_image_size_resamples_positions_at_call_time():
    dynamic = VisionTransformer(
        **{**SMALL, "image_shape": (None, None, 3)}, position_grid_shape=(4, 4)
    )
    static = VisionTransformer(**SMALL)
    static.set_weights(dynamic.get_weights())
    # At the table's own grid, nothing is resampled: the same outputs as the static model.
    np.testing.assert_allclose(dynamic(images()), static(images()), atol=1e-5)
    # At 48 x 40 (grid 6 x 5) the table is resampled; a static model built for that size
    # resamples the same table in its graph.
    static_other = VisionTransformer(
        **{**SMALL, "image_shape": (48, 40, 3)}, position_grid_shape=(4, 4)
    )
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
    model = VisionTransformer(
        **{**SMALL, "image_shape": (None, None, 3)}, position_grid_shape=(4, 4)
    )
    model.compile(jit_compile=True)
    np.testing.assert_allclose(
        model.predict(images(40, 24), verbose=0), model(images(40, 24)), atol=1e-4
    )


def test_weights_load_into_a_model_built_for_another_size(tmp_path):
    source = VisionTransformer(**SMALL)
    path = str(tmp_path / "vit32.keras")
    source.save(path)
    # Rebuilt for 48 x 48 images (grid 6 x 6): the stored 4 x 4 table is resampled once.
    resized = VisionTransformer(**{**SMALL, "image_shape": (48, 48, 3)})
    resized.load_weights(path)
    table = source.get_layer("position_embedding").position_embeddings.numpy()
    loaded = resized.get_layer("position_embedding").position_embeddings.numpy()
    np.testing.assert_allclose(loaded[0], table[0])
    np.testing.assert_allclose(
        loaded[1:],
        bicubic_resize(table[1:].reshape(4, 4, 16), (6, 6)).numpy().reshape(36, 16),
        atol=1e-6,
    )
    # ... and gives the outputs of the source model run at 48 x 48 through call-time
    # resampling.
    dynamic = VisionTransformer(
        **{**SMALL, "image_shape": (None, None, 3)}, position_grid_shape=(4, 4)
    )
    dynamic.set_weights(source.get_weights())
    np.testing.assert_allclose(resized(images(48, 48)), dynamic(images(48, 48)), atol=1e-5)


def test_reloaded_model_keeps_the_variable_size(tmp_path):
    model = VisionTransformer(
        **{**SMALL, "image_shape": (None, None, 3)}, position_grid_shape=(4, 4)
    )
    path = str(tmp_path / "vit.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded(images(24, 40)), model(images(24, 40)), atol=1e-6)


def test_feature_extractor_needs_a_static_size():
    model = VisionTransformer(
        **{**SMALL, "image_shape": (None, None, 3)}, position_grid_shape=(4, 4)
    )
    with pytest.raises(ValueError, match="image_shape"):
        model.feature_extractor()


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"image_shape": (30, 32, 3)}, "patch_size"),
        ({"image_shape": (32, 32)}, "image_shape"),
        ({"image_shape": (None, 32, 3)}, "position_grid_shape"),
        ({"image_shape": (None, None, 3), "position_grid_shape": (4, 0)}, "position_grid_shape"),
        ({"pooling": "max"}, "pooling"),
        ({"hidden_dim": 15}, "num_heads"),
        ({"num_classes": 0}, "num_classes"),
        ({"drop_path_rate": 1.0}, "drop_path_rate"),
    ],
)
def test_bad_arguments(overrides, match):
    with pytest.raises(ValueError, match=match):
        VisionTransformer(**{**SMALL, **overrides})
