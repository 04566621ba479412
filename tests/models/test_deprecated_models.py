"""The 0.1 model classes replaced by the backbone / task split: they warn, name their
replacement, are instances of it, compute what it computes and round-trip their 0.1 config.
(Their 0.1 `.keras` files: tests/models/test_legacy_files.py.)"""

import keras
import numpy as np
import pytest

from keras_seq import models
from keras_seq.models.presets import BASE_ARGUMENTS
from keras_seq.models.presets import constructor_arguments
from tests.model_families import make_case

# family in tests/model_families.py -> (deprecated class, replacement task class)
DEPRECATED = {
    "gpt": (models.GPT, models.GPTCausalLM),
    "rnn_language_model": (models.RNNLanguageModel, models.RNNCausalLM),
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


@pytest.mark.parametrize("family", sorted(DEPRECATED))
def test_deprecated_class_warns_and_is_its_replacement(family, tmp_path):
    deprecated, replacement = DEPRECATED[family]
    case = make_case(family)
    with pytest.warns(DeprecationWarning, match=replacement.__name__):
        model = case.build_model()
    assert type(model) is deprecated and isinstance(model, replacement)
    assert replacement.__name__ in deprecated.__doc__.splitlines()[0]

    # The replacement on the same backbone (shared weights), with the deprecated model's task
    # arguments (a task stores each one on its attribute) and head weights, computes the same.
    task_arguments = {
        name: getattr(model, name)
        for name in constructor_arguments(replacement)
        if name not in ("backbone", *BASE_ARGUMENTS)
    }
    task = replacement(model.backbone, **task_arguments)
    task.set_weights(model.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.tree.flatten(task(case.x))[0]),
        keras.ops.convert_to_numpy(keras.tree.flatten(model(case.x))[0]),
        atol=1e-6,
    )

    # The 0.1 config (no "backbone"), and a .keras round trip to the same class and outputs.
    config = model.get_config()
    assert "backbone" not in config
    with pytest.warns(DeprecationWarning):
        assert type(deprecated.from_config(config)) is deprecated
    path = tmp_path / f"{family}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is deprecated
    expected_outputs = keras.tree.flatten(model(case.x))
    for expected, actual in zip(expected_outputs, keras.tree.flatten(reloaded(case.x))):
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=1e-6)


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
