"""A weights file with more weights than the model built from its config is refused."""

import keras
import numpy as np
import pytest

from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM
from tests.utils.edited_files import TINY_GPT
from tests.utils.edited_files import edit_backbone_config


def _model(**overrides):
    return GPTCausalLM(GPTBackbone(**{**TINY_GPT, **overrides}))


def test_config_with_fewer_layers_than_the_weights_is_refused(tmp_path):
    path = str(tmp_path / "gpt.keras")
    _model().save(path)
    edited = edit_backbone_config(path, str(tmp_path / "edited.keras"), num_layers=1)
    stored = len(GPTBackbone(**TINY_GPT).weights)
    built = len(GPTBackbone(**{**TINY_GPT, "num_layers": 1}).weights)
    with pytest.raises(
        ValueError,
        match=rf"holds {stored} variables for the model `gpt_causal_lm`.*has {built}.*num_layers",
    ):
        keras.saving.load_model(edited)
    # More layers than saved was already an error of Keras' (missing variables).
    edited = edit_backbone_config(path, str(tmp_path / "more.keras"), num_layers=3)
    with pytest.raises(ValueError, match="could not be loaded"):
        keras.saving.load_model(edited)


def test_load_weights_into_a_smaller_model_is_refused(tmp_path):
    path = str(tmp_path / "gpt.weights.h5")
    saved = _model()
    saved.save_weights(path)
    smaller = _model(num_layers=1)
    message = rf"holds {len(saved.weights)} variables .*has {len(smaller.weights)}"
    with pytest.raises(ValueError, match=message):
        smaller.load_weights(path)


def test_trained_model_round_trip_is_accepted(tmp_path):
    # An optimizer's variables sit beside the model's in the file; they are not the model's.
    model = _model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    path = str(tmp_path / "trained.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert len(loaded.weights) == len(model.weights)
    for expected, actual in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(expected), np.asarray(actual))
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
