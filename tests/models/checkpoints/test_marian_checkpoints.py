"""Marian translation checkpoints (transformers' `MarianMTModel`) and their tokenizer load
exactly into `TransformerSeq2SeqLM`.

Fixture tests/models/checkpoint_fixtures/hf_marian/ (make_language_fixtures.py: written by
transformers 5.25 and sentencepiece, a tiny trained model) with the ids, logits and
generated strings those libraries produced.
"""

import json
import pathlib
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.layers import SinePositionEncoding
from keras_seq.models import MarianTokenizer
from keras_seq.models import TransformerSeq2SeqBackbone
from keras_seq.models import TransformerSeq2SeqLM

MARIAN = pathlib.Path(__file__).resolve().parents[1] / "checkpoint_fixtures" / "hf_marian"
ATOL = 1e-4


@pytest.fixture(scope="module")
def reference():
    return json.loads((MARIAN / "reference.json").read_text()), np.load(MARIAN / "reference.npz")


@pytest.fixture(scope="module")
def marian():
    return TransformerSeq2SeqLM.from_preset(str(MARIAN))


def _real_positions(arrays, pad_token_id):
    return arrays["labels"] != pad_token_id


def test_logits_match_at_real_positions(marian, reference):
    info, arrays = reference
    inputs = {"source": arrays["input_ids"], "target_in": arrays["decoder_input_ids"]}
    logits = np.asarray(marian(inputs))
    real = _real_positions(arrays, info["special_tokens"]["pad_token_id"])
    assert np.max(np.abs(logits - arrays["logits"])[real]) <= ATOL
    outputs = marian.backbone(inputs)
    source_real = arrays["attention_mask"].astype(bool)
    encoded = np.asarray(outputs["encoder_sequence_output"])
    assert np.max(np.abs(encoded - arrays["encoder_last_hidden_state"])[source_real]) <= ATOL
    # The sinusoidal table: sines in the first half of the channels, cosines in the second.
    positions = marian.backbone.source_position_embedding.encoding(64, 32)
    np.testing.assert_allclose(positions, arrays["encoder_positions"], atol=1e-5)


def test_configuration_is_marians(marian):
    backbone = marian.backbone
    assert backbone.padding_token_id == 144
    assert backbone.position == "sine_halves"
    assert backbone.activation == "silu"
    assert not backbone.mask_target_padding
    assert marian.start_token_id == 144
    assert marian.use_logits_bias
    assert marian.suppressed_token_ids == [144]
    assert marian.forced_end_token_id == 0
    assert isinstance(TransformerSeq2SeqBackbone.from_preset(str(MARIAN)), type(backbone))


def test_tokenizer_gives_hugging_faces_ids_and_strings(marian, reference):
    info, _ = reference
    tokenizer = marian.tokenizer
    assert isinstance(tokenizer, MarianTokenizer)
    texts = [entry["text"] for entry in info["source"]]
    ids = tokenizer.tokenize(texts).to_list()
    assert ids == [entry["input_ids"] for entry in info["source"]]
    assert np.asarray(tokenizer.tokenize(texts[1])).tolist() == info["source"][1]["input_ids"]
    targets = [entry["text"] for entry in info["target"]]
    assert tokenizer.tokenize_target(targets).to_list() == [
        entry["input_ids"] for entry in info["target"]
    ]
    for entry in info["target"]:
        decoded = tokenizer.detokenize(np.asarray([entry["input_ids"]]))
        assert decoded.numpy()[0].decode("utf-8") == entry["decoded"]


def test_greedy_translation_equals_hugging_faces(marian, reference):
    info, _ = reference
    greedy = info["generate"]["greedy"]
    # Source ids padded with <pad> (144) as transformers batched them: padding is masked.
    source = np.asarray(greedy["source_input_ids"])
    ids = np.asarray(marian.generate(source, max_new_tokens=10, strategy="greedy"))
    expected = np.asarray(greedy["output_ids"])[:, 1:]  # Without the decoder start token.
    np.testing.assert_array_equal(ids, expected)  # The last one is the forced </s>.
    texts = marian.generate(greedy["sources"], max_new_tokens=10, strategy="greedy")
    assert texts == greedy["texts"]


def test_beam_search_equals_hugging_faces(marian, reference):
    info, _ = reference
    beam = info["generate"]["beam3"]
    ids, scores = marian.generate(
        np.asarray(beam["source_input_ids"]),
        max_new_tokens=10,
        strategy="beam",
        num_beams=3,
        return_scores=True,
    )  # length_penalty 1.0 and early_stopping False: the checkpoint's generation defaults
    # The forced </s> at the last step is part of each beam's score, as in transformers.
    np.testing.assert_array_equal(np.asarray(ids), np.asarray(beam["output_ids"])[:, 1:])
    np.testing.assert_allclose(np.asarray(scores), beam["sequences_scores"], atol=1e-4)


def test_generation_defaults_are_the_checkpoints_generation_config(marian):
    # generation_config.json: num_beams 4, max_length 64, eos 0, pad 144; transformers'
    # defaults length_penalty 1.0 and early_stopping False.
    assert marian.generation_defaults == {
        "strategy": "beam",
        "num_beams": 4,
        "length_penalty": 1.0,
        "early_stopping": False,
        "max_new_tokens": 63,
        "stop_token_id": 0,
        "pad_token_id": 144,
    }


@pytest.mark.parametrize(
    "label, options",
    # The exact rule runs to max_new_tokens with length_penalty 1.0: about 12 s.
    [("default", {}), pytest.param("beam4_never", None, marks=pytest.mark.slow)],
)
def test_generate_without_options_translates_as_hugging_faces_generate(
    marian, reference, label, options
):
    # "default": transformers' `generate(**batch)` with the saved generation config (beam
    # search, 4 beams, up to 63 new tokens); "beam4_never": its exact stopping rule.
    run = reference[0]["generate"][label]
    if options is None:
        options = {"early_stopping": "exact", "max_new_tokens": run["max_new_tokens"]}
    options = {**options, "jit_compile": False}  # A graph without XLA: traced faster.
    ids, scores = marian.generate(
        np.asarray(run["source_input_ids"]), return_scores=True, **options
    )
    expected = np.asarray(run["output_ids"])[:, 1:]
    ids = np.asarray(ids)
    np.testing.assert_array_equal(ids[:, : expected.shape[1]], expected)
    assert np.all(ids[:, expected.shape[1] :] == 144)  # Padding up to max_new_tokens.
    np.testing.assert_allclose(np.asarray(scores), run["sequences_scores"], atol=1e-4)
    assert marian.generate(run["sources"], **options) == run["texts"]


def test_tokenizer_saves_with_the_model_and_runs_in_tf_data(marian, reference, tmp_path):
    info, arrays = reference
    inputs = {"source": arrays["input_ids"], "target_in": arrays["decoder_input_ids"]}
    expected = np.asarray(marian(inputs))
    marian.save(tmp_path / "marian.keras")
    reloaded = keras.saving.load_model(tmp_path / "marian.keras")
    marian.save_to_preset(tmp_path / "preset")
    assert (tmp_path / "preset" / "tokenizer.json").exists()
    from_preset = TransformerSeq2SeqLM.from_preset(str(tmp_path / "preset"))
    texts = [entry["text"] for entry in info["source"]]
    for model in (reloaded, from_preset):
        np.testing.assert_allclose(np.asarray(model(inputs)), expected, atol=1e-6)
        assert model.tokenizer.tokenize(texts).to_list() == [
            entry["input_ids"] for entry in info["source"]
        ]
        target = info["target"][0]
        decoded = model.tokenizer.detokenize(np.asarray([target["input_ids"]]))
        assert decoded.numpy()[0].decode("utf-8") == target["decoded"]
        assert model.suppressed_token_ids == [144] and model.forced_end_token_id == 0
        assert model.generation_defaults == marian.generation_defaults
    dataset = tf.data.Dataset.from_tensor_slices(texts).map(from_preset.tokenizer)
    assert [ids.numpy().tolist() for ids in dataset] == [
        entry["input_ids"] for entry in info["source"]
    ]


@pytest.mark.parametrize(
    "field, value",
    [("normalize_before", True), ("activation_function", "gelu_new"), ("decoder_ffn_dim", 32)],
)
def test_config_the_model_cannot_represent(tmp_path, field, value):
    directory = tmp_path / "marian"
    shutil.copytree(MARIAN, directory)
    config = json.loads((directory / "config.json").read_text())
    config[field] = value
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=field):
        TransformerSeq2SeqLM.from_preset(str(directory))


def test_new_arguments_are_validated():
    with pytest.raises(ValueError, match="padding_token_id"):
        TransformerSeq2SeqBackbone(
            vocabulary_size=10, hidden_dim=8, num_heads=2, padding_token_id=10
        )
    with pytest.raises(TypeError, match="mask_target_padding"):
        TransformerSeq2SeqBackbone(
            vocabulary_size=10, hidden_dim=8, num_heads=2, mask_target_padding=1
        )
    with pytest.raises(ValueError, match="layout"):
        SinePositionEncoding(layout="paired")
    backbone = TransformerSeq2SeqBackbone(
        vocabulary_size=10,
        num_encoder_layers=1,
        num_decoder_layers=1,
        hidden_dim=8,
        num_heads=2,
        intermediate_dim=16,
    )
    with pytest.raises(ValueError, match="suppressed_token_ids"):
        TransformerSeq2SeqLM(backbone, suppressed_token_ids=[10])
    with pytest.raises(ValueError, match="forced_end_token_id"):
        TransformerSeq2SeqLM(backbone, forced_end_token_id=-1)
    # Defaults keep the previous behaviour: id 0 is padding, ReLU, interleaved sines.
    assert backbone.padding_token_id == 0 and backbone.activation == "relu"
    assert backbone.source_position_embedding.layout == "interleaved"
