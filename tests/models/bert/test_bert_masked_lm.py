"""BERTMaskedLM: tied head, learning on masked data, saving, config, presets, errors."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import testing
from keras_seq.data.masked_lm import mask_tokens
from keras_seq.models.bert.bert import BERT
from keras_seq.models.bert.bert_backbone import BERTBackbone
from keras_seq.models.bert.bert_masked_lm import BERTMaskedLM
from keras_seq.models.gpt.gpt_backbone import GPTBackbone

VOCABULARY, LENGTH, BATCH, MASK = 40, 12, 32, 4
BACKBONE = {
    "vocabulary_size": VOCABULARY,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 32,
    "intermediate_dim": 64,
    "max_sequence_length": LENGTH,
}


def masked_batch(seed=0):
    # Runs of consecutive ids: a masked token follows from its neighbours.
    start = np.random.default_rng(seed).integers(5, VOCABULARY - LENGTH, size=(BATCH, 1))
    token_ids = (start + np.arange(LENGTH)).astype("int32")
    batch = mask_tokens(
        token_ids, vocabulary_size=VOCABULARY, mask_token_id=MASK, max_predictions=3, seed=seed
    )
    inputs = {
        "token_ids": np.asarray(batch["token_ids"]),
        "segment_ids": np.zeros((BATCH, LENGTH), "int32"),
        "padding_mask": np.ones((BATCH, LENGTH), "int32"),
        "mask_positions": np.asarray(batch["mask_positions"]),
    }
    return inputs, np.asarray(batch["mask_ids"]), np.asarray(batch["mask_weights"])


def test_head_is_tied_to_the_backbone_embedding():
    backbone = BERTBackbone(**BACKBONE)
    model = BERTMaskedLM(backbone)
    assert model.masked_lm_head.token_embedding is backbone.token_embedding
    head_only = (32 * 32 + 32) + 2 * 32 + VOCABULARY  # Transform dense, layer norm, bias.
    assert model.count_params() == backbone.count_params() + head_only
    inputs, _, _ = masked_batch()
    assert model(inputs).shape == (BATCH, 3, VOCABULARY)


# The pooler takes no part in the masked-LM loss, so Keras warns that it gets no gradient.
@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
def test_learns_from_masked_tokens():
    model = BERTMaskedLM(BERTBackbone(**BACKBONE, dropout=0.0))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[],
        run_eagerly=True,  # Tracing the step costs more than these few steps (slow test: XLA).
    )
    inputs, labels, weights = masked_batch()
    history = model.fit(
        inputs, labels, sample_weight=weights, batch_size=BATCH, epochs=6, verbose=0
    )
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert np.all(np.diff(losses) < 0)
    assert losses[-1] < 0.85 * losses[0]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
def test_trains_with_xla_on_a_masking_dataset():
    # The whole pipeline: masking inside Dataset.map (static shapes), an XLA training step.
    start = np.random.default_rng(3).integers(5, VOCABULARY - LENGTH, size=(256, 1))
    token_ids = (start + np.arange(LENGTH)).astype("int32")

    def to_example(ids):
        batch = mask_tokens(ids, vocabulary_size=VOCABULARY, mask_token_id=MASK, max_predictions=3)
        inputs = {
            "token_ids": batch["token_ids"],
            "segment_ids": tf.zeros_like(ids),
            "padding_mask": tf.ones_like(ids),
            "mask_positions": batch["mask_positions"],
        }
        return inputs, batch["mask_ids"], batch["mask_weights"]

    dataset = tf.data.Dataset.from_tensor_slices(token_ids).batch(BATCH).map(to_example)
    model = BERTMaskedLM(BERTBackbone(**BACKBONE, dropout=0.0))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[],
        jit_compile=True,
    )
    history = model.fit(dataset, epochs=4, shuffle=False, verbose=0)
    assert model.jit_compile is True
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_save_and_reload_keeps_outputs_and_tie(tmp_path):
    model = BERTMaskedLM(BERTBackbone(**BACKBONE), name="mlm")
    inputs, _, _ = masked_batch(1)
    expected = np.asarray(model(inputs))
    path = os.path.join(tmp_path, "mlm.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is BERTMaskedLM and type(reloaded.backbone) is BERTBackbone
    assert reloaded.masked_lm_head.token_embedding is reloaded.backbone.token_embedding
    np.testing.assert_allclose(reloaded(inputs), expected, atol=1e-6)


def test_config_is_the_constructor_arguments():
    model = BERTMaskedLM(BERTBackbone(**BACKBONE), name="mlm")
    config = model.get_config()
    assert set(config) == {"name", "trainable", "dtype", "backbone", "tokenizer"}
    assert config["backbone"]["registered_name"] == "keras_seq>BERTBackbone"
    revived = BERTMaskedLM.from_config(config)
    assert revived.get_config() == config
    assert revived.count_params() == model.count_params()


def test_dtype_reaches_the_head():
    model = BERTMaskedLM(BERTBackbone(**BACKBONE, dtype="mixed_bfloat16"))
    assert model.masked_lm_head.dtype_policy.name == "mixed_bfloat16"
    inputs, _, _ = masked_batch()
    assert keras.backend.standardize_dtype(model(inputs).dtype) == "bfloat16"


def test_from_preset_splits_overrides_between_backbone_and_head():
    model = BERTMaskedLM.from_preset("bert_tiny", vocabulary_size=VOCABULARY, num_layers=1)
    assert type(model.backbone) is BERTBackbone
    assert model.backbone.vocabulary_size == VOCABULARY and model.backbone.num_layers == 1
    assert model.masked_lm_head.token_embedding is model.backbone.token_embedding
    inputs, _, _ = masked_batch()
    assert model(inputs).shape == (BATCH, 3, VOCABULARY)
    with pytest.raises(ValueError, match="preset"):
        BERTMaskedLM.from_preset("bert_huge")
    with pytest.raises(TypeError, match="num_classes"):
        BERTMaskedLM.from_preset("bert_tiny", num_classes=3)


def test_takes_the_deprecated_bert_as_its_backbone(tmp_path):
    with pytest.warns(DeprecationWarning, match="BERTBackbone"):
        backbone = BERT(**BACKBONE)
    model = BERTMaskedLM(backbone)
    inputs, _, _ = masked_batch()
    expected = np.asarray(model(inputs))
    path = os.path.join(tmp_path, "mlm.keras")
    model.save(path)
    with pytest.warns(DeprecationWarning):
        reloaded = keras.saving.load_model(path)
    assert type(reloaded.backbone) is BERT
    np.testing.assert_allclose(reloaded(inputs), expected, atol=1e-6)


# The pooler takes no part in the masked-LM loss: it gets no gradient.
@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
def test_contract():
    inputs, _, _ = masked_batch()
    inputs = {key: value[:2] for key, value in inputs.items()}
    testing.run_layer_test(
        BERTMaskedLM,
        {"backbone": BERTBackbone(**{**BACKBONE, "num_layers": 1})},
        inputs,
        expected_output_shape=(2, 3, VOCABULARY),
        # Backbone: embeddings 5, one block 16, pooler 2; head: dense 2, layer norm 2, bias 1.
        expected_num_trainable_weights=5 + 16 + 2 + 5,
        run_training_check=False,  # Every weight must get a gradient; the pooler does not.
    )


def test_invalid_backbone():
    with pytest.raises(TypeError, match="backbone"):
        BERTMaskedLM(keras.layers.Dense(3))
    gpt = GPTBackbone(
        vocabulary_size=10, num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=8
    )
    with pytest.raises(TypeError, match="backbone.*BERTBackbone"):
        BERTMaskedLM(gpt)
