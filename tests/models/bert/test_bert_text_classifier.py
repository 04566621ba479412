"""BERTTextClassifier: contract, parity with keras_hub's BertTextClassifier, fit, saving,
presets, errors."""

import os

import keras
import keras_hub
import numpy as np
import pytest
from keras_hub.src.utils.keras_utils import gelu_approximate

from keras_seq import testing
from keras_seq.models.bert.bert import BERT
from keras_seq.models.bert.bert_backbone import BERTBackbone
from keras_seq.models.bert.bert_text_classifier import BERTTextClassifier
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from tests.models.bert.test_bert_backbone import copy_keras_hub_weights

TINY = {
    "vocabulary_size": 50,
    "num_layers": 1,
    "num_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "max_sequence_length": 8,
}
RNG = np.random.default_rng(0)
PADDING = np.array([[1] * 6, [1] * 4 + [0] * 2], "int32")
INPUTS = {
    "token_ids": (RNG.integers(1, 50, (2, 6)) * PADDING).astype("int32"),
    "segment_ids": np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0]], "int32"),
    "padding_mask": PADDING,
}


def test_contract():
    testing.run_layer_test(
        BERTTextClassifier,
        {"backbone": BERTBackbone(**TINY), "num_classes": 3},
        INPUTS,
        expected_output_shape=(2, 3),
        # Backbone: embeddings 5, one block 16, pooler 2; head: kernel and bias.
        expected_num_trainable_weights=5 + 16 + 2 + 2,
        expected_num_non_trainable_weights=0,
    )


def test_equals_keras_hub_bert_text_classifier_given_its_weights():
    kwargs = {**TINY, "num_layers": 2, "dropout": 0.0}
    # keras_hub's BERT uses the tanh approximation of GELU; ours defaults to the exact one.
    backbone = BERTBackbone(
        **kwargs, activation=keras.saving.serialize_keras_object(gelu_approximate)
    )
    model = BERTTextClassifier(backbone, num_classes=3)
    reference = keras_hub.models.BertTextClassifier(
        keras_hub.models.BertBackbone(**kwargs), num_classes=3, preprocessor=None
    )
    copy_keras_hub_weights(backbone, reference.backbone)
    model.output_dense.set_weights(reference.output_dense.get_weights())
    np.testing.assert_allclose(model(INPUTS), reference(INPUTS), atol=1e-5)


def test_head_is_dropout_then_dense_on_the_pooled_output():
    model = BERTTextClassifier(BERTBackbone(**TINY), num_classes=4, dropout=0.5)
    pooled = model.backbone(INPUTS)["pooled_output"]
    expected = model.output_dense(pooled)
    np.testing.assert_allclose(model(INPUTS), expected, atol=1e-6)
    np.testing.assert_allclose(model.predict(INPUTS, verbose=0), expected, atol=1e-6)
    # In training, dropout changes the logits; padded tokens never do.
    assert not np.allclose(model(INPUTS, training=True), expected)
    changed = dict(INPUTS, token_ids=INPUTS["token_ids"].copy())
    changed["token_ids"][1, 4:] = [7, 9]
    np.testing.assert_allclose(model(changed), model(INPUTS), atol=1e-6)
    kernel = np.asarray(BERTTextClassifier(BERTBackbone(**TINY), 200).output_dense.kernel)
    assert 0.014 < kernel.std() < 0.021 and np.abs(kernel).max() <= 0.04 + 1e-6


def test_fit_lowers_the_loss():
    keras.utils.set_random_seed(3)
    model = BERTTextClassifier(BERTBackbone(**{**TINY, "dropout": 0.0}), num_classes=2)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # The label is whether the sequence contains token 7.
    token_ids = np.random.default_rng(1).integers(8, 50, size=(32, 8)).astype("int32")
    labels = np.arange(32) % 2
    token_ids[labels == 1, 3] = 7
    x = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": np.ones_like(token_ids),
    }
    history = model.fit(x, labels, batch_size=16, epochs=20, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_save_and_reload(tmp_path):
    model = BERTTextClassifier(BERTBackbone(**TINY), num_classes=3, dropout=0.2, name="cls")
    expected = np.asarray(model(INPUTS))
    path = os.path.join(tmp_path, "classifier.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is BERTTextClassifier and type(reloaded.backbone) is BERTBackbone
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_allclose(reloaded(INPUTS), expected, atol=1e-6)


def test_config_is_the_constructor_arguments():
    model = BERTTextClassifier(BERTBackbone(**TINY), num_classes=3)
    config = model.get_config()
    assert set(config) == {
        "name",
        "trainable",
        "dtype",
        "backbone",
        "num_classes",
        "dropout",
        "tokenizer",
    }
    assert config["backbone"]["registered_name"] == "keras_seq>BERTBackbone"
    assert (config["num_classes"], config["dropout"]) == (3, 0.1)
    revived = BERTTextClassifier.from_config(config)
    assert revived.get_config() == config


def test_from_preset_and_the_deprecated_backbone():
    model = BERTTextClassifier.from_preset(
        "bert_tiny", vocabulary_size=50, num_layers=1, num_classes=5, dropout=0.0
    )
    # `dropout` is an argument of both: it goes to the backbone, the head keeps its default.
    assert model.backbone.num_layers == 1 and model.backbone.dropout == 0.0
    assert model.num_classes == 5 and model.dropout == 0.1
    assert model(INPUTS).shape == (2, 5)
    with pytest.warns(DeprecationWarning, match="BERTBackbone"):
        backbone = BERT(**TINY)
    assert BERTTextClassifier(backbone, num_classes=2)(INPUTS).shape == (2, 2)


def test_dtype_reaches_the_head():
    model = BERTTextClassifier(BERTBackbone(**TINY, dtype="mixed_bfloat16"), num_classes=3)
    assert model.output_dense.dtype_policy.name == "mixed_bfloat16"
    assert keras.backend.standardize_dtype(model(INPUTS).dtype) == "bfloat16"


def test_invalid_arguments():
    backbone = BERTBackbone(**TINY)
    with pytest.raises(ValueError, match="num_classes"):
        BERTTextClassifier(backbone, num_classes=0)
    with pytest.raises(ValueError, match="dropout"):
        BERTTextClassifier(backbone, num_classes=2, dropout=1.0)
    with pytest.raises(TypeError, match="backbone"):
        BERTTextClassifier(keras.layers.Dense(3), num_classes=2)
    gpt = GPTBackbone(
        vocabulary_size=10, num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=8
    )
    with pytest.raises(TypeError, match="backbone.*BERTBackbone"):
        BERTTextClassifier(gpt, num_classes=2)
