"""TransformerSeq2SeqBackbone and TransformerSeq2SeqLM: contract, presets, cached decoding ==
full pass, causality, beams; the deprecated 0.1 `TransformerSeq2Seq` keeps its layer order (its
weight paths)."""

import os
import warnings

import keras
import numpy as np
import pytest

from keras_seq import testing
from keras_seq.models import TransformerSeq2Seq
from keras_seq.models import TransformerSeq2SeqBackbone
from keras_seq.models import TransformerSeq2SeqLM

VOCABULARY_SIZE = 23
SMALL = {
    "vocabulary_size": VOCABULARY_SIZE,
    "num_encoder_layers": 2,
    "num_decoder_layers": 2,
    "hidden_dim": 16,
    "num_heads": 4,
    "intermediate_dim": 32,
    "dropout": 0.0,
}
RNG = np.random.default_rng(0)
SOURCE = RNG.integers(3, VOCABULARY_SIZE, size=(3, 7)).astype("int32")
SOURCE[1, 5:] = 0  # padded source positions
SOURCE[2, 3:] = 0
TARGET_IN = RNG.integers(3, VOCABULARY_SIZE, size=(3, 6)).astype("int32")
TARGET_IN[:, 0] = 1  # start_token_id
INPUTS = {"source": SOURCE, "target_in": TARGET_IN}


def small_model(run_eagerly=True, start_token_id=1, **overrides):
    """A small model; `run_eagerly` makes `generate()` skip tracing a `tf.function` (four
    times faster for these sizes), except in the tests of the compiled path."""
    backbone = TransformerSeq2SeqBackbone(**{**SMALL, **overrides})
    model = TransformerSeq2SeqLM(backbone, start_token_id=start_token_id)
    model.run_eagerly = run_eagerly
    return model


def step_by_step_logits(model, source, target_in):
    """Logits of every target position from prefill + call_with_cache, teacher-forced."""
    prefix, logits, cache = model.prefill(source, max_new_tokens=target_in.shape[1])
    assert prefix.shape == (source.shape[0], 0)
    steps = [np.asarray(logits)]
    for t in range(target_in.shape[1] - 1):
        logits, cache = model.call_with_cache(target_in[:, t + 1], cache, np.int32(t))
        steps.append(np.asarray(logits))
    return np.stack(steps, axis=1)  # (B, T, V)


def sequence_log_probabilities(model, source, tokens, start_token_id=1):
    """Sum of log p(tokens) under a teacher-forced full pass, for each sequence."""
    target_in = np.concatenate(
        [np.full((tokens.shape[0], 1), start_token_id, "int32"), tokens[:, :-1]], axis=1
    )
    logits = np.asarray(model({"source": source, "target_in": target_in}), "float64")
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probabilities, tokens[..., None], axis=-1)[..., 0]
    return picked.sum(axis=1)


# A functional model is built at construction, so the harness' build check sees an empty build
# config and the same weights before and after a call; every check applies. The mask check
# does not: the model takes token ids and derives its masks from padding id 0 (see
# test_padded_source_positions_are_ignored).
CONTRACT_KWARGS = {
    **SMALL,
    "num_encoder_layers": 1,
    "num_decoder_layers": 1,
    "dropout": 0.1,
    "normalize_first": True,
}
# Shared embedding 1 + encoder block 16 + decoder block 26 + two final layer norms 4.
CONTRACT_NUM_WEIGHTS = 47


def test_backbone_contract():
    # The XLA check compiles the whole model (over 10 s on two busy cores): it runs in
    # test_contract_with_xla, marked slow; test_xla_generate_equals_eager compiles the
    # decoding loop in the default run.
    testing.run_layer_test(
        TransformerSeq2SeqBackbone,
        CONTRACT_KWARGS,
        INPUTS,
        expected_output_shape={
            "decoder_sequence_output": (3, 6, 16),
            "encoder_sequence_output": (3, 7, 16),
        },
        expected_num_trainable_weights=CONTRACT_NUM_WEIGHTS,
        run_jit_check=False,
    )


def test_lm_contract():
    # Separate vocabularies: the output projection is the target embedding's own matrix.
    backbone = TransformerSeq2SeqBackbone(
        **{
            **CONTRACT_KWARGS,
            "vocabulary_size": None,
            "source_vocabulary_size": 31,
            "target_vocabulary_size": VOCABULARY_SIZE,
            "share_embeddings": False,
        }
    )
    testing.run_layer_test(
        TransformerSeq2SeqLM,
        {"backbone": backbone},
        INPUTS,
        expected_output_shape=(3, 6, VOCABULARY_SIZE),
        # Source and target tables and the output matrix instead of one shared table.
        expected_num_trainable_weights=CONTRACT_NUM_WEIGHTS + 2,
        run_jit_check=False,
    )


@pytest.mark.slow
def test_contract_with_xla():
    testing.run_layer_test(
        TransformerSeq2SeqLM,
        {
            "backbone": TransformerSeq2SeqBackbone(
                **{**CONTRACT_KWARGS, "num_encoder_layers": 2, "num_decoder_layers": 2}
            )
        },
        INPUTS,
        expected_output_shape=(3, 6, VOCABULARY_SIZE),
        expected_num_trainable_weights=CONTRACT_NUM_WEIGHTS + 16 + 26,
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"normalize_first": True, "position": "learned", "max_sequence_length": 8},
        {
            "vocabulary_size": None,
            "source_vocabulary_size": 31,
            "target_vocabulary_size": VOCABULARY_SIZE,
            "share_embeddings": False,
        },
    ],
    ids=["post_norm_sine_shared", "pre_norm_learned", "separate_vocabularies"],
)
def test_cached_decoding_equals_full_pass(overrides):
    model = small_model(**overrides)
    full = np.asarray(model(INPUTS))
    np.testing.assert_allclose(step_by_step_logits(model, SOURCE, TARGET_IN), full, atol=1e-5)


def test_prefill_caches():
    model = small_model()
    prefix, logits, cache = model.prefill(SOURCE, max_new_tokens=4)
    assert prefix.shape == (3, 0) and logits.shape == (3, VOCABULARY_SIZE)
    # One self-attention cache per decoder layer, sized start token + 4 new tokens; one
    # cross-attention cache per layer over the source.
    assert [tuple(c.shape) for c in cache["self_attention"]] == [(3, 2, 5, 4, 4)] * 2
    assert [tuple(c.shape) for c in cache["cross_attention"]] == [(3, 2, 7, 4, 4)] * 2
    # The same with a dict input.
    _, dict_logits, _ = model.prefill({"source": SOURCE}, max_new_tokens=4)
    np.testing.assert_allclose(dict_logits, logits, atol=1e-6)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_backbone_outputs_and_prefill_of_a_longer_prefix(normalize_first):
    backbone = small_model(normalize_first=normalize_first).backbone
    outputs = backbone(INPUTS)
    encoded, mask = backbone.encode(SOURCE)
    np.testing.assert_allclose(encoded, outputs["encoder_sequence_output"], atol=1e-6)
    np.testing.assert_array_equal(mask, SOURCE != 0)
    full = np.asarray(outputs["decoder_sequence_output"])
    hidden, cache = backbone.prefill(SOURCE, TARGET_IN[:, :3], cache_length=6)
    np.testing.assert_allclose(hidden, full[:, :3], atol=1e-5)
    for index in (3, 4, 5):
        hidden, cache = backbone.call_with_cache(
            TARGET_IN[:, index : index + 1], cache, np.int32(index)
        )
        np.testing.assert_allclose(np.asarray(hidden)[:, 0], full[:, index], atol=1e-5)
    with pytest.raises(ValueError, match=r"prefix_length in \[1, cache_length\]"):
        backbone.prefill(SOURCE, TARGET_IN, cache_length=4)


def test_is_causal():
    model = small_model()
    base = np.asarray(model(INPUTS))
    for t in (1, 3, 5):
        changed = TARGET_IN.copy()
        changed[:, t:] = (changed[:, t:] + 5) % (VOCABULARY_SIZE - 3) + 3
        out = np.asarray(model({"source": SOURCE, "target_in": changed}))
        np.testing.assert_allclose(out[:, :t], base[:, :t], atol=1e-5)
        assert not np.allclose(out[:, t:], base[:, t:])


def test_padded_source_positions_are_ignored():
    model = small_model()
    base = np.asarray(model(INPUTS))
    # More padding at the end of every source changes nothing: pads are never attended to.
    longer = np.concatenate([SOURCE, np.zeros((3, 3), "int32")], axis=1)
    np.testing.assert_allclose(
        np.asarray(model({"source": longer, "target_in": TARGET_IN})), base, atol=1e-5
    )


def test_beam_search_over_a_batch():
    # keras-hub #1047: beam search broke on batches because encoder outputs were not tiled
    # across beams. Here the batch in reverse order must give the same rows reversed, and
    # each returned score must equal the log-probability of the returned tokens under a
    # teacher-forced full pass (so the tiled, reordered cross-attention caches are right).
    model = small_model()
    kwargs = dict(strategy="beam", num_beams=3, return_scores=True)
    tokens, scores = model.generate(SOURCE, 5, **kwargs)
    tokens, scores = np.asarray(tokens), np.asarray(scores)
    assert tokens.shape == (3, 5)
    np.testing.assert_allclose(
        sequence_log_probabilities(model, SOURCE, tokens), scores, rtol=1e-4, atol=1e-4
    )
    reversed_tokens, reversed_scores = model.generate(SOURCE[::-1], 5, **kwargs)
    np.testing.assert_array_equal(np.asarray(reversed_tokens)[::-1], tokens)
    np.testing.assert_allclose(np.asarray(reversed_scores)[::-1], scores, rtol=1e-5)
    greedy, greedy_scores = model.generate(SOURCE, 5, return_scores=True)
    one_beam, one_beam_scores = model.generate(
        SOURCE, 5, strategy="beam", num_beams=1, return_scores=True
    )
    np.testing.assert_array_equal(one_beam, greedy)
    np.testing.assert_allclose(one_beam_scores, greedy_scores, rtol=1e-5)
    # Three beams find sequences at least as likely as greedy's here.
    assert np.all(scores >= np.asarray(greedy_scores) - 1e-5)


@pytest.mark.slow
def test_greedy_with_stop_token_matches_full_pass_argmax():
    model = small_model()
    tokens = np.asarray(model.generate(SOURCE, 6, stop_token_id=2))
    # Re-derive greedy tokens with full passes over the growing target.
    target_in = np.ones((3, 1), "int32")
    for _ in range(6):
        logits = np.asarray(model({"source": SOURCE, "target_in": target_in}))
        target_in = np.concatenate([target_in, logits[:, -1].argmax(-1)[:, None]], axis=1)
    expected = target_in[:, 1:].copy()
    for row in expected:
        stops = np.flatnonzero(row == 2)
        if stops.size:
            row[stops[0] + 1 :] = 0
    np.testing.assert_array_equal(tokens, expected)


def test_xla_generate_equals_eager():
    model = small_model(run_eagerly=False, num_encoder_layers=1, num_decoder_layers=1)
    compiled = model.generate(SOURCE, 5, jit_compile=True, return_scores=True)
    model.run_eagerly = True
    eager = model.generate(SOURCE, 5, return_scores=True)
    np.testing.assert_array_equal(compiled[0], eager[0])
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-5, atol=1e-5)


def test_save_and_reload(tmp_path):
    model = small_model(dropout=0.1)
    expected = np.asarray(model(INPUTS))
    expected_tokens = np.asarray(model.generate(SOURCE, 4, strategy="beam", num_beams=2))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is TransformerSeq2SeqLM
    assert type(reloaded.backbone) is TransformerSeq2SeqBackbone
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_allclose(reloaded(INPUTS), expected, atol=1e-6)
    reloaded.run_eagerly = True
    np.testing.assert_array_equal(
        reloaded.generate(SOURCE, 4, strategy="beam", num_beams=2), expected_tokens
    )


@pytest.mark.slow
def test_fit_lowers_the_loss_on_a_copy_task():
    model = small_model(run_eagerly=False)
    source = RNG.integers(3, VOCABULARY_SIZE, size=(16, 5)).astype("int32")
    target_in = np.concatenate([np.ones((16, 1), "int32"), source[:, :-1]], axis=1)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(
        {"source": source, "target_in": target_in}, source, epochs=5, batch_size=16, verbose=0
    )
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_presets():
    assert set(TransformerSeq2SeqBackbone.presets) == {
        "transformer_tiny",
        "transformer_base",
        "transformer_big",
    }
    model = TransformerSeq2SeqLM.from_preset(
        "transformer_tiny", vocabulary_size=40, dropout=0.0, start_token_id=3
    )
    backbone = model.backbone
    assert backbone.vocabulary_size == 40 and backbone.dropout == 0.0
    assert backbone.hidden_dim == 64 and backbone.num_encoder_layers == 2
    assert model.start_token_id == 3  # a task argument, next to the backbone's
    assert model(INPUTS).shape == (3, 6, 40)
    backbone = TransformerSeq2SeqBackbone.from_preset("transformer_tiny", num_decoder_layers=1)
    assert len(backbone.decoder_layers) == 1
    with pytest.raises(ValueError, match="preset"):
        TransformerSeq2SeqLM.from_preset("transformer_huge")
    with pytest.raises(TypeError, match="num_layers"):
        TransformerSeq2SeqLM.from_preset("transformer_tiny", num_layers=3)


def transformer_parameter_count(vocabulary_size, d, ff, num_encoder_layers, num_decoder_layers):
    """Parameters of the paper's model with one shared embedding, counted by hand."""
    embedding = vocabulary_size * d  # shared by source, target and the output projection
    attention = 4 * (d * d + d)  # query, key, value and output projections with biases
    feedforward = d * ff + ff + ff * d + d  # two dense layers with biases
    layer_norm = 2 * d  # gamma and beta
    encoder_layer = attention + feedforward + 2 * layer_norm
    decoder_layer = 2 * attention + feedforward + 3 * layer_norm  # self + cross attention
    return embedding + num_encoder_layers * encoder_layer + num_decoder_layers * decoder_layer


def test_base_preset_parameter_count():
    expected = transformer_parameter_count(37000, 512, 2048, 6, 6)
    assert expected == 63_082_496
    model = TransformerSeq2SeqLM.from_preset("transformer_base")
    assert model.count_params() == model.backbone.count_params() == expected
    config = model.backbone.get_config()
    assert (config["hidden_dim"], config["num_heads"], config["intermediate_dim"]) == (
        512,
        8,
        2048,
    )
    assert config["dropout"] == 0.1 and config["position"] == "sine"
    assert config["share_embeddings"] and not config["normalize_first"]


@pytest.mark.slow
def test_big_preset_parameter_count():
    model = TransformerSeq2SeqLM.from_preset("transformer_big")
    assert model.count_params() == transformer_parameter_count(37000, 1024, 4096, 6, 6)
    assert model.backbone.dropout == 0.3 and model.backbone.num_heads == 16


INVALID_ARGUMENTS = [
    ({"vocabulary_size": 0}, "vocabulary_size"),
    ({"vocabulary_size": None}, "vocabulary_size"),
    ({"source_vocabulary_size": 10}, "source_vocabulary_size"),
    (
        {"vocabulary_size": None, "source_vocabulary_size": 10, "target_vocabulary_size": 12},
        "share_embeddings",
    ),
    ({"share_embeddings": 1}, "share_embeddings"),
    ({"num_encoder_layers": 0}, "num_encoder_layers"),
    ({"num_decoder_layers": -1}, "num_decoder_layers"),
    ({"hidden_dim": 18}, "hidden_dim"),
    ({"intermediate_dim": 0}, "intermediate_dim"),
    ({"dropout": 1.0}, "dropout"),
    ({"attention_dropout": -0.1}, "attention_dropout"),
    ({"position": "rotary"}, "position"),
    ({"position": "learned"}, "max_sequence_length"),
    ({"max_sequence_length": 16}, "max_sequence_length"),
    ({"normalize_first": "yes"}, "normalize_first"),
    ({"start_token_id": 0}, "start_token_id"),
    ({"start_token_id": VOCABULARY_SIZE}, "start_token_id"),
]


def test_invalid_arguments():
    # One test for all cases: each failing constructor is cheap, a test's Keras clean-up not.
    for overrides, match in INVALID_ARGUMENTS:
        with pytest.raises((ValueError, TypeError), match=match):
            small_model(**overrides)


def test_invalid_generation_inputs():
    model = small_model(position="learned", max_sequence_length=4)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(SOURCE, 5)
    with pytest.raises(ValueError, match="source"):
        model.generate({"tokens": SOURCE}, 3)
    with pytest.raises(TypeError, match="`backbone` must be a TransformerSeq2SeqBackbone"):
        TransformerSeq2SeqLM(keras.Sequential([keras.layers.Dense(3)]))


def test_default_names():
    one_layer = {**SMALL, "num_encoder_layers": 1, "num_decoder_layers": 1}
    assert TransformerSeq2SeqBackbone(**one_layer).name == "transformer_seq2seq_backbone"
    model = TransformerSeq2SeqLM(TransformerSeq2SeqBackbone(**one_layer))
    assert model.name == "transformer_seq2seq_lm"
    assert model.backbone.name == "transformer_seq2seq_backbone_1"


# === The deprecated 0.1 class (its generic checks: tests/models/test_deprecated_models.py) ===

# `[layer.name for layer in model.layers]` of keras_seq 0.1's `TransformerSeq2Seq` for these
# arguments: Keras saves weights at `layers/<snake_case class name>[_n]` in this order, so the
# deprecated class must list its layers exactly so (the 0.1 .keras file of
# tests/models/test_legacy_files.py covers the shared post-norm sine model).
LEGACY_LAYER_NAMES = [
    (
        {"normalize_first": True, "position": "learned", "max_sequence_length": 8},
        [
            "target_in", "source", "token_embedding", "source_position_embedding",
            "source_embedding_dropout", "encoder_layer_0", "target_position_embedding",
            "encoder_layer_1", "target_embedding_dropout", "encoder_layer_norm",
            "decoder_layer_0", "decoder_layer_1", "decoder_layer_2", "decoder_layer_norm",
        ],
    ),
    (
        {
            "vocabulary_size": None,
            "source_vocabulary_size": 13,
            "target_vocabulary_size": 11,
            "share_embeddings": False,
            "normalize_first": True,
            "position": "learned",
            "max_sequence_length": 8,
        },
        [
            "source", "source_token_embedding", "target_in", "source_position_embedding",
            "target_token_embedding", "source_embedding_dropout", "encoder_layer_0",
            "target_position_embedding", "encoder_layer_1", "target_embedding_dropout",
            "encoder_layer_norm", "decoder_layer_0", "decoder_layer_1", "decoder_layer_2",
            "decoder_layer_norm",
        ],
    ),
]
LEGACY_SIZES = {**SMALL, "num_decoder_layers": 3, "hidden_dim": 8, "num_heads": 2}


@pytest.mark.parametrize("arguments,names", LEGACY_LAYER_NAMES)
def test_deprecated_transformer_seq2seq_lists_its_layers_in_the_0_1_order(arguments, names):
    with pytest.warns(DeprecationWarning, match="TransformerSeq2SeqLM"):
        model = TransformerSeq2Seq(**{**LEGACY_SIZES, **arguments})
    assert [layer.name for layer in model.layers] == names


def test_deprecated_transformer_seq2seq_keeps_the_0_1_interface():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = TransformerSeq2Seq.from_preset("transformer_tiny", vocabulary_size=40)
        assert model.name.startswith("transformer_seq2seq")
        assert model.hidden_dim == 64 and model.start_token_id == 1  # the backbone's, its own
        assert model.token_embedding is model.backbone.token_embedding
        assert list(model.get_config()) == [
            "name", "trainable", "dtype", "vocabulary_size", "num_encoder_layers",
            "num_decoder_layers", "hidden_dim", "num_heads", "intermediate_dim", "dropout",
            "attention_dropout", "max_sequence_length", "position", "share_embeddings",
            "normalize_first", "start_token_id", "source_vocabulary_size",
            "target_vocabulary_size",
        ]
        with pytest.raises(ValueError, match="start_token_id"):
            TransformerSeq2Seq(**SMALL, start_token_id=0)
