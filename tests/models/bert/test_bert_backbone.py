"""BERTBackbone: parameter counts, keras_hub parity, padding, presets, saving, contract, errors."""

import os

import keras
import keras_hub
import numpy as np
import pytest
from keras_hub.src.utils.keras_utils import gelu_approximate

from keras_seq import testing
from keras_seq.models.bert.bert_backbone import BERTBackbone
from keras_seq.models.bert.bert_presets import BERT_PRESETS

BERT_BASE_PARAMETERS = 109_482_240
TINY = {
    "vocabulary_size": 50,
    "num_layers": 2,
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


def bert_parameter_count(
    vocabulary_size, num_layers, hidden_dim, intermediate_dim, max_sequence_length, num_segments
):
    """BERT's parameter count from its architecture (Devlin et al., 2019)."""
    h, i = hidden_dim, intermediate_dim
    embeddings = (vocabulary_size + max_sequence_length + num_segments) * h + 2 * h
    attention = 4 * (h * h + h)
    feedforward = (h * i + i) + (i * h + h)
    block = attention + feedforward + 2 * (2 * h)  # Two layer norms.
    pooler = h * h + h
    return embeddings + num_layers * block + pooler


def test_bert_base_preset_is_bert_base_exactly():
    assert BERT_PRESETS["bert_base"]["config"] == {
        "vocabulary_size": 30522,
        "num_layers": 12,
        "num_heads": 12,
        "hidden_dim": 768,
        "intermediate_dim": 3072,
        "dropout": 0.1,
        "max_sequence_length": 512,
        "num_segments": 2,
    }
    assert bert_parameter_count(30522, 12, 768, 3072, 512, 2) == BERT_BASE_PARAMETERS


def test_bert_base_parameter_count_from_its_parts():
    # Cheap: one block of full width and tiny tables (7.9M parameters instead of 109M); the
    # full count follows from the parts, which are each checked against the formula.
    model = BERTBackbone.from_preset(
        "bert_base", vocabulary_size=3, max_sequence_length=5, num_layers=1, dropout=0.0
    )
    h, i = 768, 3072
    embeddings = model.token_and_position_embedding
    assert model.token_embedding.count_params() == 3 * h
    assert embeddings.position_embedding.count_params() == 5 * h
    assert model.segment_embedding.count_params() == 2 * h
    block = model.transformer_layers[0].count_params()
    assert block == 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h
    full = model.count_params() + (30522 - 3) * h + (512 - 5) * h + 11 * block
    assert full == BERT_BASE_PARAMETERS


@pytest.mark.slow
def test_bert_base_equals_keras_hub_bert_backbone_in_size():
    ours = BERTBackbone.from_preset("bert_base")
    reference = keras_hub.models.BertBackbone(
        vocabulary_size=30522,
        num_layers=12,
        num_heads=12,
        hidden_dim=768,
        intermediate_dim=3072,
        max_sequence_length=512,
        num_segments=2,
    )
    assert ours.count_params() == reference.count_params() == BERT_BASE_PARAMETERS
    assert sorted(tuple(w.shape) for w in ours.weights) == sorted(
        tuple(w.shape) for w in reference.weights
    )


PRESET_SIZES = {
    "bert_tiny": 4_385_920,
    "bert_mini": 11_170_560,
    "bert_small": 28_763_648,
    "bert_medium": 41_373_184,
    "bert_base": BERT_BASE_PARAMETERS,
    "bert_large": 335_141_888,
}


def test_preset_sizes():
    assert set(BERT_PRESETS) == set(PRESET_SIZES)
    for preset, expected in PRESET_SIZES.items():
        config = BERT_PRESETS[preset]["config"]
        assert config["num_heads"] * 64 == config["hidden_dim"], preset
        assert config["intermediate_dim"] == 4 * config["hidden_dim"], preset
        count = bert_parameter_count(
            config["vocabulary_size"],
            config["num_layers"],
            config["hidden_dim"],
            config["intermediate_dim"],
            config["max_sequence_length"],
            config["num_segments"],
        )
        assert count == expected, preset
        description = BERT_PRESETS[preset]["description"]
        assert f"{expected / 1e6:.2f}M" in description or f"{expected:,}" in description


def test_bert_tiny_preset_builds_with_its_count():
    assert BERTBackbone.from_preset("bert_tiny").count_params() == 4_385_920


def copy_keras_hub_weights(ours, reference):
    """Copy a keras_hub BertBackbone's weights into ours, sublayer by sublayer."""
    pairs = [
        (ours.token_embedding, reference.token_embedding),
        (ours.token_and_position_embedding.position_embedding, reference.position_embedding),
        (ours.segment_embedding, reference.segment_embedding),
        (ours.embeddings_layer_norm, reference.embeddings_layer_norm),
        *zip(ours.transformer_layers, reference.transformer_layers),
        (ours.pooled_dense, reference.pooled_dense),
    ]
    for mine, theirs in pairs:
        assert [tuple(w.shape) for w in mine.weights] == [tuple(w.shape) for w in theirs.weights]
        mine.set_weights(theirs.get_weights())
    assert sum(len(mine.weights) for mine, _ in pairs) == len(ours.weights)


def test_equals_keras_hub_bert_backbone_given_its_weights():
    kwargs = {**TINY, "max_sequence_length": 8, "dropout": 0.0}
    # keras_hub's BERT uses the tanh approximation of GELU; ours defaults to the exact one.
    ours = BERTBackbone(**kwargs, activation=keras.saving.serialize_keras_object(gelu_approximate))
    reference = keras_hub.models.BertBackbone(**kwargs)
    copy_keras_hub_weights(ours, reference)
    actual, expected = ours(INPUTS), reference(INPUTS)
    real = PADDING.astype(bool)
    np.testing.assert_allclose(
        np.asarray(actual["sequence_output"])[real],
        np.asarray(expected["sequence_output"])[real],
        atol=1e-5,
    )
    np.testing.assert_allclose(actual["pooled_output"], expected["pooled_output"], atol=1e-5)
    # The exact GELU (our default) differs, but only slightly.
    exact = BERTBackbone(**kwargs)
    copy_keras_hub_weights(exact, reference)
    difference = np.abs(exact(INPUTS)["pooled_output"] - expected["pooled_output"]).max()
    assert 0.0 < difference < 1e-2


def test_padded_tokens_do_not_change_real_outputs():
    model = BERTBackbone(**TINY)
    changed = dict(INPUTS, token_ids=INPUTS["token_ids"].copy())
    changed["token_ids"][1, 4:] = [7, 9]
    changed["segment_ids"] = INPUTS["segment_ids"].copy()
    changed["segment_ids"][1, 4:] = 1
    real = PADDING.astype(bool)
    base, other = model(INPUTS), model(changed)
    np.testing.assert_allclose(
        np.asarray(other["sequence_output"])[real],
        np.asarray(base["sequence_output"])[real],
        atol=1e-6,
    )
    np.testing.assert_allclose(other["pooled_output"], base["pooled_output"], atol=1e-6)
    # A bool padding mask means the same as an int one.
    as_bool = dict(INPUTS, padding_mask=PADDING.astype(bool))
    np.testing.assert_allclose(model(as_bool)["pooled_output"], base["pooled_output"], atol=1e-6)


def test_every_weight_matrix_starts_distinct_with_stddev_0_02():
    model = BERTBackbone.from_preset("bert_tiny", vocabulary_size=2000)
    matrices = [w for w in model.weights if w.path.endswith(("kernel", "embeddings"))]
    assert len(matrices) == 3 + 2 * 6 + 1
    values = [np.asarray(w).ravel() for w in matrices]
    for index, value in enumerate(values):
        # TruncatedNormal(0.02) truncates at two standard deviations: std ~0.88 * 0.02.
        assert 0.014 < value.std() < 0.021, matrices[index].path
        assert np.abs(value).max() <= 0.04 + 1e-6, matrices[index].path
        for other in values[:index]:
            # Same-seed draws of any shape start with the same values.
            assert not np.allclose(other[:64], value[:64]), matrices[index].path


def test_from_preset_with_overrides_and_unknown_preset():
    model = BERTBackbone.from_preset("bert_tiny", vocabulary_size=100, num_layers=1)
    config = model.get_config()
    assert config["vocabulary_size"] == 100 and config["num_layers"] == 1
    assert config["hidden_dim"] == 128 and config["num_heads"] == 2
    assert len(model.transformer_layers) == 1
    with pytest.raises(ValueError, match="preset"):
        BERTBackbone.from_preset("bert_huge")


def test_config_is_the_constructor_arguments():
    model = BERTBackbone(**TINY, name="encoder")
    config = model.get_config()
    assert set(config) == {
        "name",
        "trainable",
        "dtype",
        *TINY,
        "dropout",
        "num_segments",
        "activation",
        "layer_norm_epsilon",
    }
    revived = BERTBackbone.from_config(config)
    assert revived.get_config() == config
    assert revived.name == "encoder"


def test_dtype_policy_is_kept_in_the_config():
    model = BERTBackbone(**TINY, dtype="mixed_bfloat16")
    outputs = model(INPUTS)
    assert keras.backend.standardize_dtype(outputs["pooled_output"].dtype) == "bfloat16"
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in model.weights)
    revived = BERTBackbone.from_config(model.get_config())
    assert revived.pooled_dense.dtype_policy.name == "mixed_bfloat16"
    assert model.dtype_policy.name == "mixed_bfloat16"


def test_save_and_reload(tmp_path):
    # One fit step and a round trip inside another model are in the contract test.
    model = BERTBackbone(**TINY)
    expected = model(INPUTS)
    path = os.path.join(tmp_path, "bert.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is BERTBackbone
    assert reloaded.get_config() == model.get_config()
    actual = reloaded(INPUTS)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-6)
    assert reloaded.token_embedding is reloaded.token_and_position_embedding.token_embedding


def test_contract():
    testing.run_layer_test(
        BERTBackbone,
        {**TINY, "num_layers": 1},
        INPUTS,
        expected_output_shape={"pooled_output": (2, 16), "sequence_output": (2, 6, 16)},
        # Embeddings (token, position, segment, layer norm: 5), 16 per block, pooler 2.
        expected_num_trainable_weights=5 + 16 + 2,
        expected_num_non_trainable_weights=0,
    )


INVALID_ARGUMENTS = [
    ({"vocabulary_size": 0}, "vocabulary_size"),
    ({"num_layers": 0}, "num_layers"),
    ({"num_heads": 3}, "hidden_dim"),
    ({"num_heads": 0}, "num_heads"),
    ({"hidden_dim": 1.5}, "hidden_dim"),
    ({"intermediate_dim": 0}, "intermediate_dim"),
    ({"dropout": 1.0}, "dropout"),
    ({"max_sequence_length": 0}, "max_sequence_length"),
    ({"num_segments": 0}, "num_segments"),
    ({"activation": "no_such_activation"}, "activation"),
    ({"activation": gelu_approximate}, "activation"),
    ({"layer_norm_epsilon": 0.0}, "layer_norm_epsilon"),
]


def test_invalid_arguments():
    # One test for all cases: the per-test Keras clean-up costs more than the checks.
    for kwargs, match in INVALID_ARGUMENTS:
        with pytest.raises((ValueError, TypeError), match=match):
            BERTBackbone(**{**TINY, **kwargs})
