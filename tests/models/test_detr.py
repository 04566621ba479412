"""DETR: contract, the original's parameter count, fit / save / reload, padding masks,
post-processing, backbones (ResNet50 frozen batch norms, Swin), errors."""

import keras
import numpy as np
import pytest

from keras_seq import data
from keras_seq import losses
from keras_seq import testing
from keras_seq.models.detr.detr import DETR
from keras_seq.models.swin.swin_transformer import SwinTransformer


def tiny_backbone(kernel_size=3):
    return keras.Sequential(
        [
            keras.layers.Conv2D(16, kernel_size, strides=4, padding="same", activation="relu"),
            keras.layers.Conv2D(24, 1, activation="relu"),
        ],
        name="tiny_backbone",
    )


SMALL = {
    "num_classes": 3,
    "image_shape": (32, 32, 3),
    "hidden_dim": 16,
    "num_queries": 4,
    "num_encoder_layers": 1,
    "num_decoder_layers": 2,
    "num_heads": 2,
    "intermediate_dim": 32,
}


def images(shape=(32, 32, 3), batch_size=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch_size,) + tuple(shape)).astype("float32")


def detr_parameter_count(hidden, queries, encoders, decoders, feedforward, classes, channels):
    """The original DETR's transformer and heads, from the architecture (Carion et al.)."""
    attention = 4 * (hidden * hidden + hidden)
    ffn = hidden * feedforward + feedforward + feedforward * hidden + hidden
    encoder = attention + ffn + 2 * 2 * hidden
    decoder = 2 * attention + ffn + 3 * 2 * hidden
    projection = channels * hidden + hidden
    heads = hidden * (classes + 1) + classes + 1 + 2 * (hidden * hidden + hidden) + hidden * 4 + 4
    return (
        projection + queries * hidden + encoders * encoder + decoders * decoder + 2 * hidden + heads
    )


def test_contract():
    # Weights: backbone 4, projection 2, encoder layer 16, queries 1, decoder layers 2 x 26,
    # decoder norm 2, class head 2, box head 6.
    testing.run_layer_test(
        DETR,
        {**SMALL, "backbone": tiny_backbone(), "dropout": 0.1},
        images(),
        expected_num_trainable_weights=4 + 2 + 16 + 1 + 2 * 26 + 2 + 2 + 6,
        run_jit_check=False,  # test_fit_with_xla compiles a train step instead
    )


def test_preset_is_the_original_architecture():
    model = DETR.from_preset("detr_resnet50")
    expected = detr_parameter_count(256, 100, 6, 6, 2048, 91, 2048)
    assert expected == 18_069_856
    assert model.count_params() - model.backbone.count_params() == expected
    reference = keras.applications.ResNet50(include_top=False, weights=None)
    assert model.backbone.count_params() == reference.count_params()
    batch_norms = [
        layer
        for layer in model.backbone._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(batch_norms) == 53 and not any(layer.trainable for layer in batch_norms)
    assert model.count_params() - sum(w.numpy().size for w in model.trainable_weights) == (
        sum(w.numpy().size for layer in batch_norms for w in layer.weights)
    )


def test_fit_save_and_reload(tmp_path):
    model = DETR(**SMALL, backbone=tiny_backbone())
    x, y = data.shapes_detection_data(
        8, image_size=32, max_objects=3, num_classes=3, min_object_size=6, max_object_size=10
    )
    model.compile(keras.optimizers.Adam(1e-3), loss=losses.DETRLoss())
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "detr.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, DETR) and isinstance(restored.loss, losses.DETRLoss)
    expected, actual = model.predict(x, verbose=0), restored.predict(x, verbose=0)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-6)
    # Training resumes from the restored optimizer state.
    assert np.isfinite(restored.train_on_batch(x[:4], {k: v[:4] for k, v in y.items()}))


def test_fit_with_xla():
    model = DETR(**{**SMALL, "num_decoder_layers": 1, "dropout": 0.0}, backbone=tiny_backbone())
    x, y = data.shapes_detection_data(
        4, image_size=32, max_objects=2, num_classes=3, min_object_size=6, max_object_size=10
    )
    model.compile(keras.optimizers.SGD(1e-3), loss=losses.DETRLoss(), jit_compile=True)
    eager = DETR.from_config(model.get_config())
    eager.set_weights(model.get_weights())
    eager.compile(keras.optimizers.SGD(1e-3), loss=losses.DETRLoss(), jit_compile=False)
    np.testing.assert_allclose(model.train_on_batch(x, y), eager.train_on_batch(x, y), rtol=1e-4)
    for compiled, plain in zip(model.get_weights(), eager.get_weights()):
        np.testing.assert_allclose(compiled, plain, atol=1e-5)


def test_padded_pixels_do_not_change_the_outputs():
    # With a 1x1 stride-4 convolution, padded pixels reach only masked tokens.
    model = DETR(
        **{**SMALL, "image_shape": (None, None, 3)},
        backbone=tiny_backbone(kernel_size=1),
        use_padding_mask=True,
        dropout=0.0,
    )
    x = images((32, 48, 3))
    mask = np.ones((2, 32, 48), bool)
    mask[1, 20:, :] = False
    mask[1, :, 28:] = False
    changed = x.copy()
    changed[~mask] = 100.0
    first = model({"images": x, "padding_mask": mask})
    second = model({"images": changed, "padding_mask": mask})
    for key in first:
        np.testing.assert_allclose(first[key], second[key], atol=1e-5)
    unmasked = model({"images": changed, "padding_mask": np.ones_like(mask)})
    assert np.abs(np.asarray(unmasked["logits"][1]) - np.asarray(first["logits"][1])).max() > 1e-3


def test_postprocess_equals_formula():
    model = DETR(**SMALL, backbone=tiny_backbone())
    outputs = model(images())
    sizes = np.array([[32, 32], [20, 30]])
    detections = model.postprocess(outputs, image_sizes=sizes)
    logits, boxes = np.asarray(outputs["logits"]), np.asarray(outputs["boxes"])
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(detections["scores"], probabilities[..., :-1].max(-1), rtol=1e-5)
    np.testing.assert_array_equal(detections["labels"], probabilities[..., :-1].argmax(-1))
    cx, cy, w, h = np.moveaxis(boxes, -1, 0)
    height, width = sizes[:, 0, None], sizes[:, 1, None]
    expected = np.stack(
        [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height],
        -1,
    )
    np.testing.assert_allclose(detections["boxes"], expected, rtol=1e-5, atol=1e-5)
    default = model.postprocess(outputs)  # the static image size
    np.testing.assert_allclose(default["boxes"][0], expected[0], rtol=1e-5, atol=1e-5)


def test_swin_backbone_saves_and_reloads(tmp_path):
    swin = SwinTransformer(
        image_shape=(32, 32, 3),
        patch_size=2,
        hidden_dim=8,
        num_layers=(2, 2),
        num_heads=(2, 2),
        window_size=4,
        num_classes=None,
    )
    features = swin.feature_extractor()
    backbone = keras.Model(features.input, features.output["stage_2"], name="swin_backbone")
    model = DETR(**SMALL, backbone=backbone)
    outputs = model(images())
    assert outputs["boxes"].shape == (2, 4, 4)
    path = tmp_path / "detr_swin.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(images())["logits"], outputs["logits"], atol=1e-5)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"hidden_dim": 18}, "hidden_dim"),
        ({"hidden_dim": 6, "num_heads": 3}, "hidden_dim"),
        ({"num_queries": -1}, "num_queries"),
        ({"dropout": 1.0}, "dropout"),
        ({"use_padding_mask": "yes"}, "use_padding_mask"),
        ({"image_shape": (32, 3)}, "image_shape"),
        ({"backbone": "resnet"}, "backbone"),
    ],
)
def test_bad_arguments(overrides, match):
    kwargs = {**SMALL, "backbone": tiny_backbone(), **overrides}
    with pytest.raises((TypeError, ValueError), match=match):
        DETR(**kwargs)


def test_bad_backbone_output_and_postprocess_sizes():
    flat = keras.Sequential([keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match="backbone"):
        DETR(**SMALL, backbone=flat)
    model = DETR(**{**SMALL, "image_shape": (None, None, 3)}, backbone=tiny_backbone())
    outputs = model(images())
    with pytest.raises(ValueError, match="image_sizes"):
        model.postprocess(outputs)
    with pytest.raises(ValueError, match="image_sizes"):
        model.postprocess(outputs, image_sizes=np.array([32, 32]))


@pytest.mark.slow  # preparing the tfds data set and tracing fit: about 20 s
def test_fit_on_a_tfds_pipeline_of_padded_targets(tmp_path):
    import tensorflow_datasets as tfds

    import keras_seq.data.shapes_detection_builder  # noqa: F401  registers "shapes_detection"

    data.write_shapes_detection_files(
        tmp_path / "manual",
        6,
        split="train",
        image_size=32,
        max_objects=3,
        num_classes=3,
        min_object_size=6,
        max_object_size=10,
    )
    dataset = tfds.load(
        "shapes_detection",
        split="train",
        data_dir=tmp_path / "data",
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
        },
    )
    batches = dataset.map(lambda e: data.detection_targets(e, max_objects=3)).batch(3)
    model = DETR(**SMALL, backbone=tiny_backbone())
    model.compile(keras.optimizers.Adam(1e-3), loss=losses.DETRLoss())
    history = model.fit(batches, epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
