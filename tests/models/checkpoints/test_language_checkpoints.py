"""Language-model checkpoints and their tokenizers, written by transformers, load exactly.

Fixtures in tests/models/checkpoint_fixtures/ (make_language_fixtures.py: transformers 5.25,
tokenizers and sentencepiece; tiny configurations, perturbed, tokenizers trained locally),
with the ids, logits and generated strings those libraries produced.
"""

import json
import pathlib
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file
from safetensors.numpy import save_file

from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "checkpoint_fixtures"
GPT2 = FIXTURES / "hf_gpt2"
ATOL = 1e-4


def _reference(directory):
    return json.loads((directory / "reference.json").read_text()), np.load(
        directory / "reference.npz"
    )


@pytest.fixture(scope="module")
def gpt2():
    return GPTCausalLM.from_preset(str(GPT2))


# === GPT-2 ===


def test_gpt2_logits_match_at_real_positions(gpt2):
    _, arrays = _reference(GPT2)
    logits = np.asarray(
        gpt2({"token_ids": arrays["input_ids"], "padding_mask": arrays["attention_mask"]})
    )
    real = arrays["attention_mask"].astype(bool)
    assert np.max(np.abs(logits - arrays["logits"])[real]) <= ATOL


def test_gpt2_backbone_alone_loads(gpt2):
    _, arrays = _reference(GPT2)
    backbone = GPTBackbone.from_preset(str(GPT2))
    inputs = {"token_ids": arrays["input_ids"], "padding_mask": arrays["attention_mask"]}
    np.testing.assert_array_equal(np.asarray(backbone(inputs)), np.asarray(gpt2.backbone(inputs)))


def test_gpt2_tokenizer_gives_hugging_faces_ids(gpt2):
    reference, _ = _reference(GPT2)
    for case in reference["tokenize"]:
        ids = gpt2.tokenizer.tokenize(case["text"])
        assert np.asarray(ids).tolist() == case["input_ids"], case["text"]
        if case["input_ids"]:
            text = np.asarray(gpt2.tokenizer.detokenize(np.asarray([case["input_ids"]])))
            text = text.reshape(-1)[0]
            assert (text.decode() if isinstance(text, bytes) else str(text)) == case["decoded"]


def test_gpt2_greedy_ids_and_text_equal_hugging_faces(gpt2):
    reference, _ = _reference(GPT2)
    settings = reference["generate_settings"]
    for case in reference["generate"]:
        ids = gpt2.generate(
            np.asarray([case["prompt_ids"]]),
            max_new_tokens=settings["max_new_tokens"],
            stop_token_id=settings["pad_token_id"],
            pad_token_id=settings["pad_token_id"],
        )
        expected = case["output_ids"]  # HF stops at the end token; we pad after it.
        assert np.asarray(ids)[0, : len(expected)].tolist() == expected
    prompts = [case["prompt"] for case in reference["generate"]]  # Of different lengths.
    texts = gpt2.generate(prompts, max_new_tokens=settings["max_new_tokens"])
    assert texts == [case["text"] for case in reference["generate"]]
    assert gpt2.generate(prompts[0], max_new_tokens=settings["max_new_tokens"]) == texts[0]


def test_gpt2_tokenizer_from_tokenizer_json_alone(tmp_path):
    # transformers 5 writes only tokenizer.json; the vocabulary and merges are read from it.
    directory = tmp_path / "gpt2"
    shutil.copytree(GPT2, directory)
    (directory / "vocab.json").unlink()
    (directory / "merges.txt").unlink()
    reference, _ = _reference(GPT2)
    model = GPTCausalLM.from_preset(str(directory))
    for case in reference["tokenize"]:
        assert np.asarray(model.tokenizer.tokenize(case["text"])).tolist() == case["input_ids"]


def test_gpt2_without_tokenizer_files_takes_ids_only(tmp_path):
    directory = tmp_path / "gpt2"
    shutil.copytree(GPT2, directory)
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        (directory / name).unlink()
    model = GPTCausalLM.from_preset(str(directory))
    assert model.tokenizer is None
    with pytest.raises(ValueError, match="no tokenizer"):
        model.generate("The cat", max_new_tokens=2)
    assert model.generate(np.array([[274, 266]]), max_new_tokens=2).shape == (1, 4)


def test_empty_text_prompt_is_refused(gpt2):
    with pytest.raises(ValueError, match="empty prompt"):
        gpt2.generate(["The cat", ""], max_new_tokens=2)


def test_tokenizer_saves_with_the_model_and_runs_in_tf_data(gpt2, tmp_path):
    gpt2.save(tmp_path / "gpt2.keras")
    reloaded = keras.saving.load_model(tmp_path / "gpt2.keras")
    gpt2.save_to_preset(tmp_path / "preset")
    assert (tmp_path / "preset" / "tokenizer.json").exists()
    from_preset = GPTCausalLM.from_preset(str(tmp_path / "preset"))
    prompts = ["The cat", "Does Emma really want a cup of"]
    expected = gpt2.generate(prompts, max_new_tokens=8)
    assert reloaded.generate(prompts, max_new_tokens=8) == expected
    assert from_preset.generate(prompts, max_new_tokens=8) == expected
    dataset = tf.data.Dataset.from_tensor_slices(prompts).map(from_preset.tokenizer)
    assert [ids.numpy().tolist() for ids in dataset] == [
        np.asarray(gpt2.tokenizer.tokenize(text)).tolist() for text in prompts
    ]


def test_gpt2_config_the_model_cannot_represent(tmp_path):
    directory = tmp_path / "gpt2"
    shutil.copytree(GPT2, directory)
    config = json.loads((directory / "config.json").read_text())
    config["activation_function"] = "relu"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="activation_function"):
        GPTCausalLM.from_preset(str(directory))


def test_gpt2_untied_head_is_refused(tmp_path):
    directory = tmp_path / "gpt2"
    shutil.copytree(GPT2, directory)
    tensors = load_file(str(directory / "model.safetensors"))
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"] + 1.0
    save_file(tensors, str(directory / "model.safetensors"))
    with pytest.raises(ValueError, match="lm_head.weight"):
        GPTCausalLM.from_preset(str(directory))
    # Stored and equal (tied): accepted.
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"]
    save_file(tensors, str(directory / "model.safetensors"))
    GPTCausalLM.from_preset(str(directory))
