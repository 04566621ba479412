"""The 0.1 model classes replaced by the backbone / task split: they warn, name their
replacement, are instances of it, compute what it computes and round-trip their 0.1 config.
(Their 0.1 `.keras` files: tests/models/test_legacy_files.py.)"""

import keras
import numpy as np
import pytest

from keras_seq import models
from keras_seq.models.generative_model import GenerativeTask
from keras_seq.models.presets import BASE_ARGUMENTS
from keras_seq.models.presets import constructor_arguments
from keras_seq.models.task import Task
from tests.model_families import make_case

# family in tests/model_families.py -> (deprecated class, replacement task class). A deprecated
# class may stand for several tasks (ImageCaptioner: `decoder="rnn"` or `"transformer"`).
DEPRECATED = {
    "gpt": (models.GPT, models.GPTCausalLM),
    "image_captioner_rnn": (models.ImageCaptioner, models.RNNImageCaptioner),
    "image_captioner_transformer": (models.ImageCaptioner, models.TransformerImageCaptioner),
    "swin": (models.SwinTransformer, models.SwinImageClassifier),
    "vit": (models.VisionTransformer, models.ViTImageClassifier),
    "detr": (models.DETR, models.DETRObjectDetector),
    "rnn_language_model": (models.RNNLanguageModel, models.RNNCausalLM),
    "seq2seq_bahdanau": (models.Seq2Seq, models.RNNSeq2SeqLM),
    "seq2seq_luong": (models.Seq2Seq, models.RNNSeq2SeqLM),
    "transformer_seq2seq": (models.TransformerSeq2Seq, models.TransformerSeq2SeqLM),
}


# Deprecated 0.1 classes that were already backbones: name -> (deprecated class, replacement
# backbone class, constructor arguments, inputs).
_TOKENS = np.array([[2, 7, 9, 3, 0, 0], [4, 5, 6, 7, 8, 9]], "int32")
DEPRECATED_BACKBONES = {
    "bert": (
        models.BERT,
        models.BERTBackbone,
        {
            "vocabulary_size": 10,
            "num_layers": 1,
            "num_heads": 2,
            "hidden_dim": 8,
            "intermediate_dim": 16,
            "max_sequence_length": 6,
        },
        {
            "token_ids": _TOKENS,
            "segment_ids": np.zeros_like(_TOKENS),
            "padding_mask": (_TOKENS > 0).astype("int32"),
        },
    ),
}


def _replacement_on_the_same_backbone(model, replacement):
    """`replacement` on `model.backbone`, with the task arguments of `model` (a classifier's
    `num_classes`, ...) and the weights of `model`'s layers outside the backbone (a head)."""
    names = set(constructor_arguments(replacement)) - {"backbone", *BASE_ARGUMENTS}
    task = replacement(model.backbone, **{name: getattr(model, name) for name in names})
    backbone_variables = {id(variable) for variable in model.backbone.weights}
    variables = {variable.path: variable for variable in model.weights}
    for variable in task.weights:
        if id(variable) not in backbone_variables:
            variable.assign(variables[variable.path])
    return task


@pytest.mark.parametrize("family", sorted(DEPRECATED))
def test_deprecated_class_warns_and_is_its_replacement(family, tmp_path):
    deprecated, replacement = DEPRECATED[family]
    case = make_case(family)
    with pytest.warns(DeprecationWarning, match=replacement.__name__):
        model = case.build_deprecated()
    # An instance of its replacement or, standing for several, of their common base.
    replacements = [task for old, task in DEPRECATED.values() if old is deprecated]
    common = next(c for c in replacement.__mro__ if all(issubclass(r, c) for r in replacements))
    assert common not in (Task, GenerativeTask)
    assert type(model) is deprecated and isinstance(model, common)
    assert replacement.__name__ in deprecated.__doc__.splitlines()[0]

    # The replacement on the same backbone (shared weights; a head with weights of its own
    # gets the deprecated model's), with the task arguments the deprecated model holds,
    # computes the same.
    task = _replacement_on_the_same_backbone(model, replacement)
    expected_outputs = keras.tree.flatten(model(case.x))
    for actual, expected in zip(keras.tree.flatten(task(case.x)), expected_outputs):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(actual), keras.ops.convert_to_numpy(expected), atol=1e-6
        )

    # The 0.1 config (exactly the 0.1 constructor arguments; a 0.1 "backbone" argument, such
    # as DETR's image network, is not the replacement's backbone), and a .keras round trip to
    # the same class and outputs.
    config = model.get_config()
    assert set(config) == set(constructor_arguments(deprecated))
    if isinstance(config.get("backbone"), dict):
        assert config["backbone"]["class_name"] != replacement.backbone_cls.__name__
    with pytest.warns(DeprecationWarning):
        assert type(deprecated.from_config(config)) is deprecated
    path = tmp_path / f"{family}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is deprecated
    for expected, actual in zip(expected_outputs, keras.tree.flatten(reloaded(case.x))):
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=1e-6)


def test_deprecated_gpt_takes_its_0_1_arguments_and_presets():
    with pytest.warns(DeprecationWarning):
        model = models.GPT(30, 1, 16, 2, 32, sequence_length=10, dropout=0.0, name="old")
    assert model.name == "old" and model.sequence_length == 10  # read through the backbone
    assert len(model.decoder_layers) == 1 and model.token_embedding.input_dim == 30
    with pytest.warns(DeprecationWarning):
        tiny = models.GPT.from_preset("gpt_tiny", vocabulary_size=30)
    assert tiny.get_config()["vocabulary_size"] == 30
    with pytest.raises(TypeError, match="num_classes"):
        models.GPT.from_preset("gpt_tiny", num_classes=3)
    with pytest.raises(TypeError):
        models.GPT(30, 1, 16, 2, 32, unknown=1)


@pytest.mark.parametrize("name", sorted(DEPRECATED_BACKBONES))
def test_deprecated_backbone_warns_and_is_its_replacement(name, tmp_path):
    deprecated, replacement, arguments, inputs = DEPRECATED_BACKBONES[name]
    with pytest.warns(DeprecationWarning, match=replacement.__name__):
        model = deprecated(**arguments)
    assert isinstance(model, replacement)
    assert replacement.__name__ in deprecated.__doc__.splitlines()[0]
    assert constructor_arguments(deprecated) == constructor_arguments(replacement)

    # Same config, so the replacement builds from it; given the weights, it computes the same.
    config = model.get_config()
    same = replacement.from_config(config)
    assert same.get_config() == config
    same.set_weights(model.get_weights())
    expected_outputs = keras.tree.flatten(model(inputs))
    for expected, actual in zip(expected_outputs, keras.tree.flatten(same(inputs))):
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=1e-6)

    # A .keras round trip to the same class and outputs; the replacement loads its weights.
    path = tmp_path / f"{name}.keras"
    model.save(path)
    with pytest.warns(DeprecationWarning):
        reloaded = keras.saving.load_model(path)
    assert type(reloaded) is deprecated
    same = replacement.from_config(config)
    same.load_weights(path)
    for expected, actual, loaded in zip(
        expected_outputs,
        keras.tree.flatten(reloaded(inputs)),
        keras.tree.flatten(same(inputs)),
    ):
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=1e-6)
        np.testing.assert_allclose(np.asarray(loaded), np.asarray(expected), atol=1e-6)
