"""DETRBackbone and DETRObjectDetector: contracts, the original's parameter count, presets, the
heads on the backbone's features, fit / save / reload, padding masks, post-processing, image
encoders (ResNet50 frozen batch norms, Swin), the loss with additional losses, errors; the
deprecated DETR's 0.1 argument names."""

import keras
import numpy as np
import pytest

from keras_seq import data
from keras_seq import losses
from keras_seq import testing
from keras_seq.models import DETR
from keras_seq.models import DETRBackbone
from keras_seq.models import DETRObjectDetector
from keras_seq.models.swin.swin_transformer import SwinTransformer


def tiny_encoder(kernel_size=3, **conv_kwargs):
    return keras.Sequential(
        [
            keras.layers.Conv2D(
                16, kernel_size, strides=4, padding="same", activation="relu", **conv_kwargs
            ),
            keras.layers.Conv2D(24, 1, activation="relu"),
        ],
        name="tiny_encoder",
    )


SMALL = {
    "image_shape": (32, 32, 3),
    "hidden_dim": 16,
    "num_queries": 4,
    "num_encoder_layers": 1,
    "num_decoder_layers": 2,
    "num_heads": 2,
    "intermediate_dim": 32,
}
NUM_CLASSES = 3


def detector(image_encoder=None, **overrides):
    backbone = DETRBackbone(image_encoder=image_encoder or tiny_encoder(), **{**SMALL, **overrides})
    return DETRObjectDetector(backbone, num_classes=NUM_CLASSES)


def images(shape=(32, 32, 3), batch_size=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch_size,) + tuple(shape)).astype("float32")


def shapes_data(num_examples, max_objects=3):
    return data.shapes_detection_data(
        num_examples,
        image_size=32,
        max_objects=max_objects,
        num_classes=NUM_CLASSES,
        min_object_size=6,
        max_object_size=10,
    )


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


# Weights: image encoder 4, projection 2, encoder layer 16, queries 1, decoder layers 2 x 26,
# decoder norm 2.
BACKBONE_WEIGHTS = 4 + 2 + 16 + 1 + 2 * 26 + 2


def test_backbone_contract():
    testing.run_layer_test(
        DETRBackbone,
        {**SMALL, "image_encoder": tiny_encoder(), "dropout": 0.1},
        images(),
        expected_output_shape={
            "decoder_hidden_states": (2, 2, 4, 16),
            "encoder_hidden_states": (2, 8 * 8, 16),
        },
        expected_num_trainable_weights=BACKBONE_WEIGHTS,
        run_jit_check=False,  # test_fit_with_xla compiles a train step instead
    )


def test_object_detector_contract():
    # Heads: class 2, box 6.
    testing.run_layer_test(
        DETRObjectDetector,
        {
            "backbone": DETRBackbone(image_encoder=tiny_encoder(), **SMALL, dropout=0.1),
            "num_classes": NUM_CLASSES,
        },
        images(),
        expected_num_trainable_weights=BACKBONE_WEIGHTS + 2 + 6,
        run_jit_check=False,  # test_fit_with_xla compiles a train step instead
    )


def test_heads_predict_from_every_decoder_layer_of_the_backbone():
    model = detector(num_decoder_layers=3, dropout=0.0)
    x = images()
    hidden = np.asarray(model.backbone(x)["decoder_hidden_states"])  # (B, L, Q, D)
    outputs = model(x)
    logits = np.stack([np.asarray(model.class_head(hidden[:, i])) for i in range(3)], 1)
    boxes = hidden
    for layer in model.box_head:
        boxes = np.asarray(layer(boxes))
    np.testing.assert_allclose(outputs["logits"], logits[:, -1], atol=1e-6)
    np.testing.assert_allclose(outputs["aux_logits"], logits[:, :-1], atol=1e-6)
    np.testing.assert_allclose(outputs["boxes"], boxes[:, -1], atol=1e-6)
    np.testing.assert_allclose(outputs["aux_boxes"], boxes[:, :-1], atol=1e-6)
    # One decoder layer: no auxiliary outputs.
    assert sorted(detector(num_decoder_layers=1)(x)) == ["boxes", "logits"]


def test_a_user_backbone_with_the_interface_plugs_in():
    backbone = DETRBackbone(image_encoder=tiny_encoder(), **SMALL, dropout=0.0)
    hidden = backbone.output["decoder_hidden_states"]
    user_backbone = keras.Model(backbone.input, {"decoder_hidden_states": hidden * 1.0})
    model = DETRObjectDetector(user_backbone, num_classes=NUM_CLASSES)
    reference = DETRObjectDetector(backbone, num_classes=NUM_CLASSES)
    reference.set_weights(model.get_weights())
    x = images()
    for key, value in reference(x).items():
        np.testing.assert_allclose(model(x)[key], value, atol=1e-6)


def test_preset_is_the_original_architecture():
    model = DETRObjectDetector.from_preset("detr_resnet50")
    assert model.num_classes == 91
    expected = detr_parameter_count(256, 100, 6, 6, 2048, 91, 2048)
    assert expected == 18_069_856
    image_encoder = model.backbone.image_encoder
    assert model.count_params() - image_encoder.count_params() == expected
    reference = keras.applications.ResNet50(include_top=False, weights=None)
    assert image_encoder.count_params() == reference.count_params()
    batch_norms = [
        layer
        for layer in image_encoder.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(batch_norms) == 53 and not any(layer.trainable for layer in batch_norms)
    assert model.count_params() - sum(w.numpy().size for w in model.trainable_weights) == (
        sum(w.numpy().size for layer in batch_norms for w in layer.weights)
    )


def test_from_preset_splits_the_overrides():
    small = {key: value for key, value in SMALL.items() if key != "image_shape"}
    model = DETRObjectDetector.from_preset(
        "detr_resnet50", image_encoder=tiny_encoder(), num_classes=5, **small
    )
    assert model.num_classes == 5 and model.backbone.num_queries == SMALL["num_queries"]
    assert model.backbone.dropout == 0.1  # from the preset
    with pytest.warns(DeprecationWarning):
        legacy = DETR.from_preset("detr_resnet50", backbone=tiny_encoder(), **small)
    assert legacy.num_classes == 91 and legacy.hidden_dim == SMALL["hidden_dim"]
    with pytest.raises(ValueError, match="preset"):
        DETRObjectDetector.from_preset("detr_resnet101")
    with pytest.raises(TypeError, match="vocabulary_size"):
        DETRObjectDetector.from_preset("detr_resnet50", vocabulary_size=3)


def test_fit_save_and_reload(tmp_path):
    model = detector()
    x, y = shapes_data(8)
    model.compile(keras.optimizers.Adam(1e-3), loss=losses.DETRLoss())
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "detr.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, DETRObjectDetector) and isinstance(restored.loss, losses.DETRLoss)
    assert isinstance(restored.backbone, DETRBackbone)
    expected, actual = model.predict(x, verbose=0), restored.predict(x, verbose=0)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-6)
    # Training resumes from the restored optimizer state.
    assert np.isfinite(restored.train_on_batch(x[:4], {k: v[:4] for k, v in y.items()}))


@pytest.mark.slow  # over 15 s on 2 cores; the default run stays within its budget
def test_fit_with_xla():
    model = detector(num_decoder_layers=1, dropout=0.0)
    x, y = shapes_data(4, max_objects=2)
    model.compile(keras.optimizers.SGD(1e-3), loss=losses.DETRLoss(), jit_compile=True)
    eager = DETRObjectDetector.from_config(model.get_config())
    eager.set_weights(model.get_weights())
    eager.compile(keras.optimizers.SGD(1e-3), loss=losses.DETRLoss(), jit_compile=False)
    np.testing.assert_allclose(model.train_on_batch(x, y), eager.train_on_batch(x, y), rtol=1e-4)
    for compiled, plain in zip(model.get_weights(), eager.get_weights()):
        np.testing.assert_allclose(compiled, plain, atol=1e-5)


def test_compute_loss_adds_the_additional_losses():
    # An L2 penalty on the image encoder reaches `model.losses`; the total is the set loss
    # plus their sum, as Keras adds them.
    model = detector(
        image_encoder=tiny_encoder(kernel_regularizer=keras.regularizers.L2(0.1)), dropout=0.0
    )
    x, y = shapes_data(2)
    loss = losses.DETRLoss()
    model.compile(keras.optimizers.SGD(0.0), loss=loss)
    y_pred = model(x)
    assert len(model.losses) == 1
    total = model.compute_loss(x, y, y_pred)
    expected = float(loss(y, y_pred)) + float(np.sum(model.losses[0]))
    np.testing.assert_allclose(float(total), expected, rtol=1e-6)
    assert float(model.losses[0]) > 0.0


def test_padded_pixels_do_not_change_the_outputs():
    # With a 1x1 stride-4 convolution, padded pixels reach only masked tokens.
    model = detector(
        image_encoder=tiny_encoder(kernel_size=1),
        image_shape=(None, None, 3),
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
    model = detector()
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


def test_swin_image_encoder_saves_and_reloads(tmp_path):
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
    encoder = keras.Model(features.input, features.output["stage_2"], name="swin_encoder")
    model = detector(image_encoder=encoder)
    outputs = model(images())
    assert outputs["boxes"].shape == (2, 4, 4)
    path = tmp_path / "detr_swin.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(images())["logits"], outputs["logits"], atol=1e-5)


@keras.saving.register_keras_serializable(package="test_detr")
class NormalizedConvolution(keras.layers.Layer):
    """A plain layer (not a model) holding a batch norm."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.convolution = keras.layers.Conv2D(8, 3, strides=4, padding="same")
        self.batch_norm = keras.layers.BatchNormalization()

    def build(self, input_shape):
        self.convolution.build(input_shape)
        self.batch_norm.build(self.convolution.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return self.batch_norm(self.convolution(inputs), training=training)


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_batch_norm_reaches_nested_layers(freeze):
    # DETRBackbone finds the batch norms with Keras' private `Layer._flatten_layers`
    # (`Model.layers` lists no sublayers of a plain layer); this fails if Keras changes it.
    block = NormalizedConvolution()
    encoder = keras.Sequential([keras.Input((32, 32, 3)), keras.Sequential([block])])
    DETRBackbone(image_encoder=encoder, **SMALL, freeze_batch_norm=freeze)
    assert block.batch_norm.trainable is not freeze
    assert block.convolution.trainable


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"hidden_dim": 18}, "hidden_dim"),
        ({"hidden_dim": 6, "num_heads": 3}, "hidden_dim"),
        ({"num_queries": -1}, "num_queries"),
        ({"num_encoder_layers": 0}, "num_encoder_layers"),
        ({"num_decoder_layers": 0}, "num_decoder_layers"),
        ({"intermediate_dim": 0}, "intermediate_dim"),
        ({"activation": "no_such_activation"}, "activation"),
        ({"layer_norm_epsilon": 0.0}, "layer_norm_epsilon"),
        ({"dropout": 1.0}, "dropout"),
        ({"use_padding_mask": "yes"}, "use_padding_mask"),
        ({"freeze_batch_norm": 1}, "freeze_batch_norm"),
        ({"image_shape": (32, 3)}, "image_shape"),
        ({"image_encoder": "resnet"}, "image_encoder"),
    ],
)
def test_bad_backbone_arguments(overrides, match):
    kwargs = {**SMALL, "image_encoder": tiny_encoder(), **overrides}
    with pytest.raises((TypeError, ValueError), match=match):
        DETRBackbone(**kwargs)


def test_bad_task_arguments_image_encoder_output_and_postprocess_sizes():
    backbone = DETRBackbone(image_encoder=tiny_encoder(), **SMALL)
    with pytest.raises(ValueError, match="num_classes"):
        DETRObjectDetector(backbone, num_classes=0)
    with pytest.raises(TypeError, match="backbone"):
        DETRObjectDetector(tiny_encoder(), num_classes=NUM_CLASSES)
    flat = keras.Sequential([keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match="image_encoder"):
        DETRBackbone(image_encoder=flat, **SMALL)
    model = detector(image_shape=(None, None, 3))
    outputs = model(images())
    with pytest.raises(ValueError, match="image_sizes"):
        model.postprocess(outputs)
    with pytest.raises(ValueError, match="image_sizes"):
        model.postprocess(outputs, image_sizes=np.array([32, 32]))


def test_deprecated_detr_errors_name_its_backbone_argument():
    with pytest.warns(DeprecationWarning):
        with pytest.raises(TypeError, match="`backbone`.*backbone='resnet'"):
            DETR(num_classes=NUM_CLASSES, backbone="resnet", **SMALL)
        flat = keras.Sequential([keras.layers.GlobalAveragePooling2D()])
        with pytest.raises(ValueError, match="`backbone`"):
            DETR(num_classes=NUM_CLASSES, backbone=flat, **SMALL)
        with pytest.raises(ValueError, match="num_classes"):
            DETR(num_classes=0, backbone=tiny_encoder(), **SMALL)
        model = DETR(num_classes=NUM_CLASSES, backbone=tiny_encoder(), **SMALL)
    assert model.image_encoder is model.backbone.image_encoder
    assert model.get_config()["backbone"]["config"]["name"] == "tiny_encoder"


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
        num_classes=NUM_CLASSES,
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
    model = detector()
    model.compile(keras.optimizers.Adam(1e-3), loss=losses.DETRLoss())
    history = model.fit(batches, epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
