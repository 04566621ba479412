"""Full-size language checkpoints (GPT-2 124M, BERT-base, Marian opus-mt base) against
transformers itself.

Opt-in: runs only where torch and transformers are installed beside keras_seq (never in CI),
and with the slow tests. The fixture script writes each checkpoint at its real architecture
size with transformers (perturbed, untrained weights; the tiny trained tokenizers, since the
real vocabularies cannot be trained here), with its outputs; keras_seq loads it and must
match them at real positions. Greedy tokens are compared only where transformers' smallest
top-1 margin is clear of float32 noise (untrained models have near-ties).
"""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

from keras_seq.models import BERTBackbone
from keras_seq.models import BERTMaskedLM
from keras_seq.models import GPTCausalLM
from keras_seq.models import TransformerSeq2SeqLM

pytest.importorskip("torch")
pytest.importorskip("transformers")

SCRIPT = (
    pathlib.Path(__file__).resolve().parents[1]
    / "checkpoint_fixtures"
    / "make_language_fixtures.py"
)
ATOL = 1e-4
CLEAR_MARGIN = 1e-3


def _make(name, directory):
    spec = importlib.util.spec_from_file_location("make_language_fixtures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = directory / name
    getattr(module, f"make_{name}")(str(folder), full_size=True)
    return (
        json.loads((folder / "reference.json").read_text()),
        np.load(folder / "reference.npz"),
        folder,
    )


def _max_difference_at_real(actual, expected, mask):
    return float(np.max(np.abs(np.asarray(actual) - expected)[mask.astype(bool)]))


@pytest.mark.slow
def test_full_size_gpt2(tmp_path):
    reference, arrays, folder = _make("hf_gpt2", tmp_path)
    model = GPTCausalLM.from_preset(str(folder))
    inputs = {"token_ids": arrays["input_ids"], "padding_mask": arrays["attention_mask"]}
    assert _max_difference_at_real(model(inputs), arrays["logits"], arrays["attention_mask"]) <= (
        ATOL
    )
    settings = reference["generate_settings"]
    for case in reference["generate"]:
        if case["min_top1_margin"] < CLEAR_MARGIN:
            continue
        ids = model.generate(
            np.asarray([case["prompt_ids"]]),
            max_new_tokens=settings["max_new_tokens"],
            stop_token_id=settings["pad_token_id"],
            pad_token_id=settings["pad_token_id"],
        )
        expected = case["output_ids"]
        assert np.asarray(ids)[0, : len(expected)].tolist() == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hf_bert", "hf_bert_model"])
def test_full_size_bert(name, tmp_path):
    _, arrays, folder = _make(name, tmp_path)
    inputs = {
        "token_ids": arrays["input_ids"],
        "segment_ids": arrays["token_type_ids"],
        "padding_mask": arrays["attention_mask"],
    }
    outputs = BERTBackbone.from_preset(str(folder))(inputs)
    mask = arrays["attention_mask"]
    assert (
        _max_difference_at_real(outputs["sequence_output"], arrays["last_hidden_state"], mask)
        <= ATOL
    )
    if "pooler_output" in arrays.files:
        np.testing.assert_allclose(outputs["pooled_output"], arrays["pooler_output"], atol=ATOL)
    if "logits" in arrays.files:
        batch_size, length = arrays["input_ids"].shape
        positions = np.tile(np.arange(length, dtype="int32"), (batch_size, 1))
        logits = BERTMaskedLM.from_preset(str(folder))({**inputs, "mask_positions": positions})
        assert _max_difference_at_real(logits, arrays["logits"], mask) <= ATOL


@pytest.mark.slow
def test_full_size_marian(tmp_path):
    reference, arrays, folder = _make("hf_marian", tmp_path)
    model = TransformerSeq2SeqLM.from_preset(str(folder))
    inputs = {"source": arrays["input_ids"], "target_in": arrays["decoder_input_ids"]}
    real = arrays["labels"] != reference["special_tokens"]["pad_token_id"]
    assert _max_difference_at_real(model(inputs), arrays["logits"], real) <= ATOL
    greedy = reference["generate"]["greedy"]
    if greedy["min_top1_margin"] >= CLEAR_MARGIN:
        ids = model.generate(
            np.asarray(greedy["source_input_ids"]),
            max_new_tokens=greedy["max_new_tokens"],
            strategy="greedy",
        )
        np.testing.assert_array_equal(np.asarray(ids), np.asarray(greedy["output_ids"])[:, 1:])
