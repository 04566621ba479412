"""ViT, Swin and DETR checkpoints written by Hugging Face transformers and timm load exactly.

The fixtures in tests/models/checkpoint_fixtures/ were written by transformers 5.25 and timm
1.0.31 themselves (make_checkpoint_fixtures.py; tiny configurations, every weight perturbed),
with the reference outputs those libraries computed on fixed inputs. No torch here: the
comparison is with the committed outputs.
"""

import json
import logging
import pathlib
import shutil

import keras
import numpy as np
import pytest
from safetensors.numpy import load_file
from safetensors.numpy import save_file

from keras_seq.models import DETRBackbone
from keras_seq.models import DETRObjectDetector
from keras_seq.models import SwinBackbone
from keras_seq.models import SwinImageClassifier
from keras_seq.models import ViTBackbone
from keras_seq.models import ViTImageClassifier

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "checkpoint_fixtures"
ATOL = 1e-4

CLASSIFIERS = {
    "hf_vit_classifier": ViTImageClassifier,
    "hf_vit_classifier_sharded": ViTImageClassifier,
    "timm_vit_token": ViTImageClassifier,
    "timm_vit_avg": ViTImageClassifier,
    "timm_vit_no_class_token": ViTImageClassifier,
    "hf_swin_classifier": SwinImageClassifier,
    "timm_swin": SwinImageClassifier,
}
DETECTORS = ("hf_detr_timm_backbone", "hf_detr_resnet_backbone")


def _reference(name):
    return np.load(FIXTURES / name / "reference.npz")


def _assert_close(actual, expected, atol=ATOL):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    difference = float(np.max(np.abs(actual - expected)))
    assert difference <= atol, f"max abs difference {difference:.3g} > {atol}"


def _backbone_features(name, backbone, pixels):
    """Our backbone's output laid out as the reference's features of fixture `name`."""
    output = np.asarray(backbone(pixels, training=False))
    if "swin" in name and name.startswith("hf_"):  # HF: (B, h * w, C) tokens.
        return output.reshape(output.shape[0], -1, output.shape[-1])
    return output


def _features_key(name):
    return "features" if name.startswith("timm_") else "last_hidden_state"


# === Outputs equal the reference implementation's ===


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_logits_match_reference(name):
    reference = _reference(name)
    model = CLASSIFIERS[name].from_preset(str(FIXTURES / name))
    _assert_close(model(reference["pixel_values"], training=False), reference["logits"])
    if _features_key(name) in reference.files:
        features = _backbone_features(name, model.backbone, reference["pixel_values"])
        _assert_close(features, reference[_features_key(name)])


@pytest.mark.parametrize(
    "name, backbone_cls", [("hf_vit_model", ViTBackbone), ("hf_swin_model", SwinBackbone)]
)
def test_backbone_checkpoint_matches_reference(name, backbone_cls, caplog):
    reference = _reference(name)
    with caplog.at_level(logging.INFO, logger="keras_seq.models.checkpoints.loader"):
        backbone = backbone_cls.from_preset(FIXTURES / name)  # a PathLike works too
    features = _backbone_features(name, backbone, reference["pixel_values"])
    _assert_close(features, reference["last_hidden_state"])
    if name == "hf_vit_model":  # The pooler is left out, and the log line says so.
        assert "pooler.dense.weight" in caplog.text


@pytest.mark.parametrize("name", DETECTORS)
def test_detr_matches_reference(name):
    reference = _reference(name)
    model = DETRObjectDetector.from_preset(str(FIXTURES / name))
    outputs = model(reference["pixel_values"], training=False)
    _assert_close(outputs["logits"], reference["logits"])
    _assert_close(outputs["boxes"], reference["pred_boxes"])
    features = model.backbone(reference["pixel_values"], training=False)
    _assert_close(features["decoder_hidden_states"][:, -1], reference["last_hidden_state"])
    _assert_close(features["encoder_hidden_states"], reference["encoder_last_hidden_state"])


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_uint8_images_through_the_checkpoints_preprocessing(name):
    # The reference fed uint8 images through the library's own processor (HF's image
    # processor, timm's eval transform); our preprocessor must give the same logits.
    reference = _reference(name)
    model = CLASSIFIERS[name].from_preset(str(FIXTURES / name))
    assert model.preprocessor is not None
    logits = model(model.preprocess(reference["images_uint8"]), training=False)
    _assert_close(logits, reference["logits_from_uint8"])


@pytest.mark.parametrize("name", ["hf_vit_classifier", "timm_vit_token", "hf_swin_classifier"])
def test_classify_names_the_most_probable_classes(name):
    reference = _reference(name)
    model = CLASSIFIERS[name].from_preset(str(FIXTURES / name))
    config = json.loads((FIXTURES / name / "config.json").read_text())
    if name.startswith("hf_"):
        expected_names = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    else:
        expected_names = config["label_names"]
    assert model.label_names == expected_names
    results = model.classify(reference["images_uint8"], top_k=2)
    logits = reference["logits_from_uint8"]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    for row, result in zip(probabilities, results):
        top = np.argsort(-row)[:2]
        assert [label for label, _ in result] == [expected_names[i] for i in top]
        np.testing.assert_allclose([p for _, p in result], row[top], atol=1e-5)


def test_detr_label_names_and_preprocessor():
    name = "hf_detr_timm_backbone"
    config = json.loads((FIXTURES / name / "config.json").read_text())
    model = DETRObjectDetector.from_preset(str(FIXTURES / name))
    assert model.label_names == [config["id2label"][str(i)] for i in range(4)]
    processor = json.loads((FIXTURES / name / "preprocessor_config.json").read_text())
    assert model.preprocessor.resize == "shortest_edge"
    assert model.preprocessor.shortest_edge == processor["size"]["shortest_edge"]
    assert model.preprocessor.longest_edge == processor["size"]["longest_edge"]
    np.testing.assert_allclose(model.preprocessor.mean, processor["image_mean"])


# === Backbones from task checkpoints; new heads (the fine-tuning path) ===


def test_backbone_from_a_classifier_checkpoint(caplog):
    reference = _reference("hf_vit_classifier")
    with caplog.at_level(logging.INFO, logger="keras_seq.models.checkpoints.loader"):
        backbone = ViTBackbone.from_preset(str(FIXTURES / "hf_vit_classifier"))
    _assert_close(backbone(reference["pixel_values"]), reference["last_hidden_state"])
    assert "classifier.weight" in caplog.text  # Left out, and said so.


def test_new_head_keeps_everything_else():
    reference = _reference("timm_vit_avg")
    tensors = load_file(str(FIXTURES / "timm_vit_avg" / "model.safetensors"))
    model = ViTImageClassifier.from_preset(str(FIXTURES / "timm_vit_avg"), num_classes=3)
    assert model.num_classes == 3 and model.label_names is None
    assert model.preprocessor is not None  # The checkpoint's preprocessing stays.
    np.testing.assert_array_equal(np.asarray(model.head.kernel), 0.0)  # New: zero-initialized.
    # timm's fc_norm (the pooled-feature norm) is not the head: it is loaded.
    np.testing.assert_array_equal(np.asarray(model.pooled_norm.gamma), tensors["fc_norm.weight"])
    features = _backbone_features("timm_vit_avg", model.backbone, reference["pixel_values"])
    _assert_close(features, reference["features"])


def test_detr_new_class_head_keeps_the_box_head():
    reference = _reference("hf_detr_resnet_backbone")
    model = DETRObjectDetector.from_preset(str(FIXTURES / "hf_detr_resnet_backbone"), num_classes=7)
    outputs = model(reference["pixel_values"], training=False)
    assert outputs["logits"].shape == (2, 5, 8)
    _assert_close(outputs["boxes"], reference["pred_boxes"])


def test_task_from_a_backbone_only_checkpoint_needs_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        ViTImageClassifier.from_preset(str(FIXTURES / "hf_vit_model"))
    model = ViTImageClassifier.from_preset(str(FIXTURES / "hf_vit_model"), num_classes=4)
    reference = _reference("hf_vit_model")
    _assert_close(model.backbone(reference["pixel_values"]), reference["last_hidden_state"])


def test_image_size_override_resamples_positions():
    model = ViTImageClassifier.from_preset(
        str(FIXTURES / "hf_vit_classifier"), image_shape=(48, 48, 3)
    )
    assert model.backbone.position_embedding.position_embeddings.shape == (1 + 36, 32)
    assert np.all(np.isfinite(np.asarray(model(np.ones((1, 48, 48, 3), "float32")))))


def test_dropout_override_is_free_but_architecture_overrides_must_agree():
    model = ViTImageClassifier.from_preset(str(FIXTURES / "hf_vit_classifier"), dropout=0.2)
    assert model.backbone.dropout == 0.2
    # Equal to the checkpoint's value: accepted.
    ViTBackbone.from_preset(str(FIXTURES / "hf_vit_classifier"), num_layers=2)
    with pytest.raises(ValueError, match="num_layers=1 contradicts"):
        ViTBackbone.from_preset(str(FIXTURES / "hf_vit_classifier"), num_layers=1)


# === Saving what was loaded ===


@pytest.mark.parametrize(
    "name, cls",
    [("hf_vit_classifier", ViTImageClassifier), ("hf_detr_timm_backbone", DETRObjectDetector)],
)
def test_save_to_preset_reads_back_identically(name, cls, tmp_path):
    reference = _reference(name)
    model = cls.from_preset(str(FIXTURES / name))
    model.save_to_preset(tmp_path / "preset")
    for filename in (
        "config.json",
        "model.weights.h5",
        "task.json",
        "task.weights.h5",
        "metadata.json",
    ):
        assert (tmp_path / "preset" / filename).exists()
    reloaded = cls.from_preset(str(tmp_path / "preset"))
    expected = model(reference["pixel_values"], training=False)
    actual = reloaded(reference["pixel_values"], training=False)
    keras.tree.map_structure(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), actual, expected
    )
    assert reloaded.label_names == model.label_names
    assert reloaded.preprocessor.get_config() == model.preprocessor.get_config()
    # The backbone alone reads back from the same directory.
    backbone = cls.backbone_cls.from_preset(str(tmp_path / "preset"))
    keras.tree.map_structure(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
        backbone(reference["pixel_values"], training=False),
        model.backbone(reference["pixel_values"], training=False),
    )
    # And with a new head, the fine-tuning path from a saved preset.
    retargeted = cls.from_preset(str(tmp_path / "preset"), num_classes=2)
    assert retargeted.num_classes == 2 and retargeted.label_names is None


def test_loaded_detr_saves_to_a_keras_file(tmp_path):
    # The image encoder is keras-hub's ResNetBackbone: it serializes inside our config.
    name = "hf_detr_resnet_backbone"
    reference = _reference(name)
    model = DETRObjectDetector.from_preset(str(FIXTURES / name))
    model.save(tmp_path / "detr.keras")
    reloaded = keras.saving.load_model(tmp_path / "detr.keras")
    np.testing.assert_array_equal(
        np.asarray(reloaded(reference["pixel_values"])["boxes"]),
        np.asarray(model(reference["pixel_values"])["boxes"]),
    )
    assert reloaded.label_names == model.label_names


# === Bad checkpoints: clear errors naming what is wrong ===


def _copy(name, tmp_path):
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def _rewrite_tensors(directory, change):
    path = directory / "model.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def _rewrite_config(directory, change, filename="config.json"):
    path = directory / filename
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def test_missing_tensor_is_named(tmp_path):
    directory = _copy("hf_vit_classifier", tmp_path)
    _rewrite_tensors(directory, lambda t: t.pop("vit.layernorm.weight"))
    with pytest.raises(ValueError, match="vit.layernorm.weight"):
        ViTImageClassifier.from_preset(str(directory))


def test_unexpected_tensor_is_named(tmp_path):
    directory = _copy("hf_swin_classifier", tmp_path)
    _rewrite_tensors(directory, lambda t: t.update(extra_adapter=np.ones((2, 2), "float32")))
    with pytest.raises(ValueError, match="extra_adapter"):
        SwinImageClassifier.from_preset(str(directory))
    with pytest.raises(ValueError, match="extra_adapter"):
        SwinBackbone.from_preset(str(directory))


def test_shape_mismatch_is_named(tmp_path):
    directory = _copy("hf_vit_classifier", tmp_path)
    _rewrite_config(directory, lambda c: c.update(intermediate_size=48))
    with pytest.raises(ValueError, match="Shape mismatch.*intermediate.dense"):
        ViTImageClassifier.from_preset(str(directory))


@pytest.mark.parametrize(
    "name, field, value",
    [
        ("hf_vit_classifier", "hidden_act", "relu"),
        ("hf_vit_classifier", "qkv_bias", False),
        ("hf_swin_classifier", "use_absolute_embeddings", True),
        ("hf_detr_timm_backbone", "position_embedding_type", "learned"),
    ],
)
def test_config_field_the_model_cannot_represent_is_named(name, field, value, tmp_path):
    directory = _copy(name, tmp_path)
    _rewrite_config(directory, lambda c: c.update({field: value}))
    cls = {"vit": ViTBackbone, "swin": SwinBackbone, "detr": DETRBackbone}[name.split("_")[1]]
    with pytest.raises(ValueError, match=field):
        cls.from_preset(str(directory))


def test_timm_variant_the_model_cannot_represent_is_named(tmp_path):
    directory = _copy("timm_vit_token", tmp_path)
    _rewrite_config(directory, lambda c: c["model_args"].update(reg_tokens=4))
    with pytest.raises(ValueError, match="reg_tokens=4"):
        ViTBackbone.from_preset(str(directory))


def test_checkpoint_of_another_family(tmp_path):
    with pytest.raises(ValueError, match="cannot read the transformers checkpoint.*'vit'"):
        SwinBackbone.from_preset(str(FIXTURES / "hf_vit_classifier"))
    with pytest.raises(ValueError, match="cannot read the timm checkpoint.*swin_tiny"):
        ViTImageClassifier.from_preset(str(FIXTURES / "timm_swin"))


def test_directories_that_are_not_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        ViTBackbone.from_preset(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ValueError, match="Cannot tell the format"):
        ViTBackbone.from_preset(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        ViTBackbone.from_preset(str(tmp_path))
    with pytest.raises(ValueError, match="not a file"):
        ViTBackbone.from_preset(str(tmp_path / "config.json"))


def test_shard_index_naming_a_missing_file(tmp_path):
    directory = _copy("hf_vit_classifier_sharded", tmp_path)
    shard = sorted(directory.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=shard.name):
        ViTImageClassifier.from_preset(str(directory))


def test_unknown_name_of_a_family_without_keras_hub_presets():
    with pytest.raises(ValueError, match="Unknown `preset`.*detr_resnet50"):
        DETRBackbone.from_preset("detr_resnet_5O")


def test_swin_at_a_size_that_needs_padding_matches_the_original():
    # 36 x 44 pixels: maps of 18 x 22 and 9 x 11, no multiples of the window (4). The
    # original lets the padded tokens take part in attention; a loaded model does the same.
    reference = _reference("hf_swin_classifier")
    directory = str(FIXTURES / "hf_swin_classifier")
    model = SwinImageClassifier.from_preset(directory, image_shape=(36, 44, 3))
    assert model.backbone.mask_padding is False
    logits = model(reference["pixel_values_padded"], training=False)
    _assert_close(logits, reference["logits_padded"])
    # keras_seq's default masks the padding out, which changes the outputs there.
    masked = SwinImageClassifier.from_preset(directory, image_shape=(36, 44, 3), mask_padding=True)
    difference = np.max(np.abs(np.asarray(masked(reference["pixel_values_padded"])) - logits))
    assert difference > 1e-4


def test_image_size_override_carries_over_to_the_preprocessor(tmp_path):
    directory = str(FIXTURES / "hf_vit_classifier")
    images = _reference("hf_vit_classifier")["images_uint8"]
    model = ViTImageClassifier.from_preset(directory, image_shape=(48, 48, 3))
    assert model.preprocessor.image_size == (48, 48)
    assert len(model.classify(images)) == 2  # Resized to the model's 48 x 48.
    model.save_to_preset(tmp_path / "preset")
    for overrides in ({}, {"num_classes": 3}):
        reloaded = ViTImageClassifier.from_preset(
            str(tmp_path / "preset"), image_shape=(64, 64, 3), **overrides
        )
        assert tuple(reloaded.preprocessor.image_size) == (64, 64)
        assert len(reloaded.classify(images)) == 2
