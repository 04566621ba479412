"""The 0.1 model classes replaced by the backbone / task split: they warn, name their
replacement, are instances of it, compute what it computes and round-trip their 0.1 config.
(Their 0.1 `.keras` files: tests/models/test_legacy_files.py.)"""

import keras
import numpy as np
import pytest

from keras_seq import models
from tests.model_families import make_case

# family in tests/model_families.py -> (deprecated class, replacement task class)
DEPRECATED = {
    "gpt": (models.GPT, models.GPTCausalLM),
    "seq2seq_bahdanau": (models.Seq2Seq, models.RNNSeq2SeqLM),
    "seq2seq_luong": (models.Seq2Seq, models.RNNSeq2SeqLM),
    "transformer_seq2seq": (models.TransformerSeq2Seq, models.TransformerSeq2SeqLM),
}


@pytest.mark.parametrize("family", sorted(DEPRECATED))
def test_deprecated_class_warns_and_is_its_replacement(family, tmp_path):
    deprecated, replacement = DEPRECATED[family]
    case = make_case(family)
    with pytest.warns(DeprecationWarning, match=replacement.__name__):
        model = case.build_model()
    assert type(model) is deprecated and isinstance(model, replacement)
    assert replacement.__name__ in deprecated.__doc__.splitlines()[0]

    # The replacement on the same backbone (shared weights) computes the same, once the weights
    # of its own head (none for a tied head) are the deprecated model's.
    task = replacement(model.backbone)
    backbone_weights = {id(weight) for weight in model.backbone.weights}
    head_weights = [
        [weight for weight in each.weights if id(weight) not in backbone_weights]
        for each in (model, task)
    ]
    for source, target in zip(*head_weights, strict=True):
        target.assign(source)
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
