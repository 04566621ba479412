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
    "detr": (models.DETR, models.DETRObjectDetector),
}


@pytest.mark.parametrize("family", sorted(DEPRECATED))
def test_deprecated_class_warns_and_is_its_replacement(family, tmp_path):
    deprecated, replacement = DEPRECATED[family]
    case = make_case(family)
    with pytest.warns(DeprecationWarning, match=replacement.__name__):
        model = case.build_model()
    assert type(model) is deprecated and isinstance(model, replacement)
    assert replacement.__name__ in deprecated.__doc__.splitlines()[0]

    # The replacement on the same backbone (shared weights) and with the same head weights
    # computes the same. Its arguments besides `backbone` (a head's `num_classes`) are
    # attributes of the deprecated model.
    task_arguments = {
        name: getattr(model, name)
        for name in constructor_arguments(replacement)
        if name not in ("backbone",) + BASE_ARGUMENTS
    }
    task = replacement(model.backbone, **task_arguments)
    task.set_weights(model.get_weights())
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
    if config.get("backbone") is not None:
        assert config["backbone"]["class_name"] != replacement.backbone_cls.__name__
    with pytest.warns(DeprecationWarning):
        assert type(deprecated.from_config(config)) is deprecated
    path = tmp_path / f"{family}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is deprecated
    expected_outputs = keras.tree.flatten(model(case.x))
    for expected, actual in zip(expected_outputs, keras.tree.flatten(reloaded(case.x))):
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=1e-6)
