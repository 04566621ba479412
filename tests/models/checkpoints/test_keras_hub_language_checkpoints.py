"""keras-hub GPT-2 and BERT presets read by `from_preset`: small random keras-hub models
(weights perturbed, so that no norm is the identity and no bias zero) with the language
fixtures' tokenizer files, saved with keras-hub's own `save_to_preset`, loaded by keras_seq
and compared with keras-hub's outputs and tokenizers on the same input."""

import pathlib

import keras_hub
import numpy as np
import pytest

from keras_seq.models import BERTBackbone
from keras_seq.models import BERTTextClassifier
from keras_seq.models import BERTTokenizer
from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "checkpoint_fixtures"
ATOL = 1e-4
TEXTS = ["The cat sat on the mat.", "A dog runs"]


def as_lists(ids):
    """keras-hub tokenizers return lists for Python strings, ragged tensors in graphs."""
    return ids.to_list() if hasattr(ids, "to_list") else [list(map(int, row)) for row in ids]


def perturb(model, seed):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        noise = rng.normal(0.0, 0.2, tuple(variable.shape)).astype("float32")
        variable.assign(np.asarray(variable.numpy()) + noise)


@pytest.fixture(scope="module")
def gpt2_preset(tmp_path_factory):
    tokenizer = keras_hub.models.GPT2Tokenizer(
        vocabulary=str(FIXTURES / "hf_gpt2" / "vocab.json"),
        merges=str(FIXTURES / "hf_gpt2" / "merges.txt"),
    )
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=32,
    )
    perturb(backbone, 0)
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=32)
    task = keras_hub.models.GPT2CausalLM(backbone, preprocessor)
    directory = tmp_path_factory.mktemp("keras_hub_gpt2")
    task.save_to_preset(str(directory))
    return directory, task


@pytest.fixture(scope="module")
def bert_preset(tmp_path_factory):
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=str(FIXTURES / "hf_bert" / "vocab.txt"), lowercase=True
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=32,
    )
    perturb(backbone, 1)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=12)
    task = keras_hub.models.BertTextClassifier(backbone, 3, preprocessor, dropout=0.2)
    perturb(task.get_layer("logits"), 2)
    directory = tmp_path_factory.mktemp("keras_hub_bert")
    task.save_to_preset(str(directory))
    return directory, task


def test_gpt2_logits_tokenizer_and_greedy_continuation_equal_keras_hubs(gpt2_preset):
    directory, theirs = gpt2_preset
    model = GPTCausalLM.from_preset(str(directory))
    assert isinstance(model.tokenizer, keras_hub.models.GPT2Tokenizer)
    ids = as_lists(theirs.preprocessor.tokenizer(TEXTS))
    assert as_lists(model.tokenizer.tokenize(TEXTS)) == ids
    token_ids = np.asarray([ids[0][:6], ids[1][:6]], "int32")
    inputs = {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}
    np.testing.assert_allclose(np.asarray(model(inputs)), np.asarray(theirs(inputs)), atol=ATOL)
    # Greedy decoding, by brute force on keras-hub's model: the argmax of a full forward
    # pass at each step.
    prompt = np.asarray([ids[1]], "int32")
    continuation = prompt
    for _ in range(5):
        logits = theirs(
            {"token_ids": continuation, "padding_mask": np.ones_like(continuation)}
        )
        next_id = np.argmax(np.asarray(logits)[:, -1], axis=-1).astype("int32")[:, None]
        continuation = np.concatenate([continuation, next_id], axis=1)
    generated = model.generate(prompt, 5, strategy="greedy")
    np.testing.assert_array_equal(np.asarray(generated), continuation)
    assert isinstance(GPTBackbone.from_preset(str(directory)), GPTBackbone)


def test_bert_classifier_backbone_and_tokenizer_equal_keras_hubs(bert_preset):
    directory, theirs = bert_preset
    model = BERTTextClassifier.from_preset(str(directory))
    assert model.num_classes == 3 and model.dropout == 0.2
    assert isinstance(model.tokenizer, BERTTokenizer)
    inputs = theirs.preprocessor(TEXTS)  # [CLS] text [SEP], padded to 12.
    np.testing.assert_allclose(np.asarray(model(inputs)), np.asarray(theirs(inputs)), atol=ATOL)
    # Our tokenizer adds [CLS] / [SEP] itself, as Hugging Face's does.
    words = as_lists(theirs.preprocessor.tokenizer(TEXTS))
    cls_id, sep_id = model.tokenizer.cls_token_id, model.tokenizer.sep_token_id
    assert as_lists(model.tokenizer.tokenize(TEXTS)) == [[cls_id, *w, sep_id] for w in words]
    packed = model.tokenizer.pack(TEXTS, sequence_length=12)
    np.testing.assert_array_equal(packed["token_ids"], inputs["token_ids"])

    backbone = BERTBackbone.from_preset(str(directory))
    ours, reference = backbone(inputs), theirs.backbone(inputs)
    real = np.asarray(inputs["padding_mask"]).astype(bool)
    difference = np.abs(np.asarray(ours["sequence_output"]) - reference["sequence_output"])
    assert difference[real].max() <= ATOL
    np.testing.assert_allclose(ours["pooled_output"], reference["pooled_output"], atol=ATOL)

    # A new head for another number of classes: the backbone as above, the head fresh.
    fine_tune = BERTTextClassifier.from_preset(str(directory), num_classes=5)
    assert fine_tune.get_layer("output_dense").kernel.shape == (16, 5)
    np.testing.assert_allclose(
        fine_tune.backbone(inputs)["pooled_output"], reference["pooled_output"], atol=ATOL
    )
