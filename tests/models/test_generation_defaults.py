"""`generation_defaults` of the generative tasks, and their mapping from Hugging Face
generation configs."""

import warnings

import keras
import numpy as np
import pytest

from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM
from keras_seq.models.checkpoints.converter import transformers_generation_defaults

TINY = dict(vocabulary_size=12, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
PROMPTS = np.array([[3, 5, 7], [2, 2, 9]])


def _model(generation_defaults=None):
    keras.utils.set_random_seed(0)
    backbone = GPTBackbone(**TINY, sequence_length=16)
    return GPTCausalLM(backbone, generation_defaults=generation_defaults)


def test_defaults_fill_in_what_a_call_leaves_out():
    defaults = {"strategy": "beam", "num_beams": 3, "length_penalty": 0.5, "max_new_tokens": 5}
    model = _model(defaults)
    plain = _model()
    plain.set_weights(model.get_weights())
    graph = {"jit_compile": False}  # A graph without XLA: the same decoding, traced faster.
    expected = plain.generate(PROMPTS, 5, strategy="beam", num_beams=3, length_penalty=0.5, **graph)
    np.testing.assert_array_equal(model.generate(PROMPTS, **graph), expected)
    # A call's own arguments win; options of another strategy are not applied.
    np.testing.assert_array_equal(
        model.generate(PROMPTS, 4, strategy="greedy", **graph), plain.generate(PROMPTS, 4, **graph)
    )
    np.testing.assert_array_equal(
        model.generate(PROMPTS, num_beams=2, **graph),
        plain.generate(PROMPTS, 5, strategy="beam", num_beams=2, length_penalty=0.5, **graph),
    )


def test_a_default_stop_token_is_turned_off_by_passing_none():
    model = _model({"max_new_tokens": 6})
    free = np.asarray(model.generate(PROMPTS, jit_compile=False))
    stop = int(free[0, 4])  # The second new token of the first prompt.
    with_stop = _model({"max_new_tokens": 6, "stop_token_id": stop, "pad_token_id": 0})
    with_stop.set_weights(model.get_weights())
    stopped = np.asarray(with_stop.generate(PROMPTS, jit_compile=False))
    assert stopped[0, 4] == stop and np.all(stopped[0, 5:] == 0)
    unstopped = with_stop.generate(PROMPTS, stop_token_id=None, jit_compile=False)
    np.testing.assert_array_equal(unstopped, free)


def test_without_a_default_max_new_tokens_is_required():
    with pytest.raises(ValueError, match="max_new_tokens"):
        _model().generate(PROMPTS)


def test_defaults_save_and_reload(tmp_path):
    model = _model({"strategy": "top_k", "top_k": 3, "temperature": 0.5, "stop_token_id": 4})
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert reloaded.generation_defaults == model.generation_defaults
    assert reloaded.get_config()["generation_defaults"]["top_k"] == 3


@pytest.mark.parametrize(
    "defaults, error, match",
    [
        ([("strategy", "beam")], TypeError, "generation_defaults"),
        ({"num_beam": 4}, ValueError, "num_beam"),
        ({"strategy": "nucleus"}, ValueError, "strategy"),
        ({"max_new_tokens": 0}, ValueError, "max_new_tokens"),
        ({"num_beams": 2.5}, TypeError, "num_beams"),
        ({"top_p": 1.5}, ValueError, "top_p"),
        ({"early_stopping": "never"}, ValueError, "early_stopping"),
        ({"pad_token_id": -1}, ValueError, "pad_token_id"),
    ],
)
def test_bad_defaults_are_refused_when_the_model_is_built(defaults, error, match):
    with pytest.raises(error, match=match):
        _model(defaults)


@pytest.mark.parametrize(
    "generation, encoder_decoder, expected",
    [
        # Marian's: beam search with transformers' length penalty and stopping rule.
        (
            {"num_beams": 4, "max_length": 512, "eos_token_id": 0, "pad_token_id": 58100},
            True,
            {
                "strategy": "beam",
                "num_beams": 4,
                "length_penalty": 1.0,
                "early_stopping": False,
                "max_new_tokens": 511,
                "stop_token_id": 0,
                "pad_token_id": 58100,
            },
        ),
        # GPT-2's: greedy, stop at <|endoftext|> and pad with it; max_length counts the
        # prompt in a decoder-only model, so it is not a max_new_tokens.
        (
            {"bos_token_id": 50256, "eos_token_id": 50256, "max_length": 20},
            False,
            {"strategy": "greedy", "stop_token_id": 50256, "pad_token_id": 50256},
        ),
        (
            {"do_sample": True, "top_p": 0.9, "temperature": 0.7, "max_new_tokens": 30},
            False,
            {
                "strategy": "top_p",
                "top_p": 0.9,
                "top_k": 50,
                "temperature": 0.7,
                "max_new_tokens": 30,
            },
        ),
        (
            {"do_sample": True, "top_k": 0},
            False,
            {"strategy": "sample", "temperature": 1.0},
        ),
        (
            {"num_beams": 2, "early_stopping": "never", "length_penalty": 0.6},
            True,
            {"strategy": "beam", "num_beams": 2, "length_penalty": 0.6, "early_stopping": "exact"},
        ),
    ],
)
def test_hugging_face_generation_configs_map_to_generate_arguments(
    generation, encoder_decoder, expected
):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert transformers_generation_defaults(generation, "ckpt", encoder_decoder) == expected


def test_generation_fields_without_an_equivalent_are_a_warning_naming_them():
    generation = {"num_beams": 4, "min_length": 5, "diversity_penalty": 0.5}
    with pytest.warns(UserWarning) as record:
        transformers_generation_defaults(generation, "ckpt", True)
    message = str(record[0].message)
    assert "min_length=5" in message and "diversity_penalty=0.5" in message
    # Values that mean "off" are not reported.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transformers_generation_defaults({"min_length": 0, "typical_p": 1.0}, "ckpt", True)


def test_logit_processing_and_several_end_tokens_carry_over():
    generation = {
        "eos_token_id": [2, 3],
        "repetition_penalty": 1.2,
        "no_repeat_ngram_size": 3,
        "min_new_tokens": 2,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        defaults = transformers_generation_defaults(generation, "ckpt", False)
    assert defaults == {
        "strategy": "greedy",
        "stop_token_id": 2,
        "stop_token_ids": [3],
        "pad_token_id": 2,
        "repetition_penalty": 1.2,
        "no_repeat_ngram_size": 3,
        "min_new_tokens": 2,
    }
