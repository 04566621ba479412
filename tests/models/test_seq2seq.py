"""RNNSeq2SeqBackbone and RNNSeq2SeqLM: the contract harness, cached decoding == teacher-forced
pass, beam search over a batch, source padding, alignments, fit, saving, presets, errors and XLA;
the deprecated 0.1 `Seq2Seq` keeps its layer order (its weight paths)."""

import os
import warnings

import keras
import numpy as np
import pytest
from keras import ops

from keras_seq import testing
from keras_seq.data.teacher_forcing import teacher_forcing_inputs
from keras_seq.layers.attention.luong_attention import LuongAttention
from keras_seq.layers.recurrent.gru_cell import GRUCell
from keras_seq.models import RNNSeq2SeqBackbone
from keras_seq.models import RNNSeq2SeqLM
from keras_seq.models import Seq2Seq

SOURCE_V, TARGET_V, START, END = 13, 9, 1, 2
rng = np.random.default_rng(7)
SOURCE = np.array(
    [[3, 4, 5, 6, 7, 0], [8, 9, 10, 0, 0, 0], [11, 12, 3, 4, 5, 6]], dtype="int32"
)  # (B, S), right-padded
TARGET = np.array([[7, 6, 5, 4, 2], [3, 4, 2, 0, 0], [5, 6, 7, 8, 2]], dtype="int32")  # (B, T)
INPUTS = teacher_forcing_inputs(SOURCE, TARGET, start_token_id=START)
SMALL = {
    "source_vocabulary_size": SOURCE_V,
    "target_vocabulary_size": TARGET_V,
    "embedding_dim": 6,
    "hidden_dim": 8,
}
CONFIGS = {
    "no_attention": {},
    "bahdanau_bidirectional": {"attention": "bahdanau", "bidirectional_encoder": True},
    "luong_gru_2_layers": {
        "attention": "luong",
        "attention_dim": 5,
        "cell": "gru",
        "num_layers": 2,
    },
    "instances": {
        "attention": LuongAttention("concat", units=4),
        "cell": GRUCell(8, reset_after=False),
        "num_layers": 2,
        "bidirectional_encoder": True,
        "dropout": 0.2,
    },
}
# (encoder output width M, decoder feature width O) of the backbone contract configurations
# (test_lm_contract runs the harness on a bidirectional backbone with Bahdanau attention).
WIDTHS = {"no_attention": (8, 8), "luong_gru_2_layers": (8, 5)}


def make_model(**overrides):
    model = RNNSeq2SeqLM(RNNSeq2SeqBackbone(**{**SMALL, **overrides}))
    model.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


# The padding check of the harness (check_masking) does not apply: padding is the token id 0
# of the int "source" (its mask is computed from the ids, not read from a Keras mask), and the
# check's perturbation writes float noise into int ids. The source-padding property is
# tested below instead.
@pytest.mark.parametrize("name", sorted(WIDTHS))
def test_backbone_contract(name):
    encoder_width, decoder_width = WIDTHS[name]
    testing.run_layer_test(
        RNNSeq2SeqBackbone,
        {**SMALL, **CONFIGS[name]},
        INPUTS,
        expected_output_shape={
            "encoder_sequence_output": (3, 6, encoder_width),
            "decoder_sequence_output": (3, 5, decoder_width),
        },
    )


def test_lm_contract():
    testing.run_layer_test(
        RNNSeq2SeqLM,
        {"backbone": RNNSeq2SeqBackbone(**SMALL, **CONFIGS["bahdanau_bidirectional"])},
        INPUTS,
        expected_output_shape=(3, 5, TARGET_V),
        expected_num_trainable_weights=10 + 3 + 4 + 4,  # see test_weight_counts
    )


def test_weight_counts():
    # source and target embeddings, encoder and decoder LSTM (3 each); the readout (2)
    backbone = RNNSeq2SeqBackbone(**SMALL)
    assert len(backbone.trainable_weights) == 2 + 3 + 3
    assert len(RNNSeq2SeqLM(backbone).trainable_weights) == 2 + 3 + 3 + 2
    # + a backward encoder LSTM (3), two bridges (2 each), Bahdanau attention (4)
    model = RNNSeq2SeqLM(RNNSeq2SeqBackbone(**SMALL, **CONFIGS["bahdanau_bidirectional"]))
    assert len(model.trainable_weights) == 10 + 3 + 4 + 4


def decode_step_by_step(model, source, target_in):
    """Logits of every target position: prefill (start token), then one step per token."""
    _, logits, cache = model.prefill(ops.convert_to_tensor(source), target_in.shape[1])
    all_logits = [np.asarray(logits)]
    for index in range(1, target_in.shape[1]):
        logits, cache = model.call_with_cache(
            ops.convert_to_tensor(target_in[:, index]), cache, ops.convert_to_tensor(index - 1)
        )
        all_logits.append(np.asarray(logits))
    return np.stack(all_logits, axis=1)  # (B, T, V)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cached_decoding_equals_teacher_forced_pass(name):
    model = make_model(**CONFIGS[name])
    # Arbitrary decoder inputs, padding (0) included: the decoder is causal and unmasked.
    target_in = np.concatenate(
        [np.full((3, 1), START), rng.integers(0, TARGET_V, size=(3, 6))], axis=1
    ).astype("int32")
    full = np.asarray(model({"source": SOURCE, "target_in": target_in}))
    np.testing.assert_allclose(decode_step_by_step(model, SOURCE, target_in), full, atol=1e-5)


def test_backbone_prefill_of_a_longer_prefix_equals_the_full_pass():
    backbone = make_model(**CONFIGS["luong_gru_2_layers"]).backbone
    target_in = INPUTS["target_in"]
    full = np.asarray(backbone(INPUTS)["decoder_sequence_output"])
    features, cache = backbone.prefill(SOURCE, target_in[:, :3])
    np.testing.assert_allclose(np.asarray(features), full[:, :3], atol=1e-5)
    features, _ = backbone.call_with_cache(target_in[:, 3:4], cache, 3)
    np.testing.assert_allclose(np.asarray(features)[:, 0], full[:, 3], atol=1e-5)
    with pytest.raises(ValueError, match="`target_in` must be int token ids"):
        backbone.prefill(SOURCE, target_in[:, :0])


@pytest.mark.parametrize("name", ["no_attention", "bahdanau_bidirectional"])
def test_greedy_generate_equals_teacher_forced_argmax(name):
    model = make_model(**CONFIGS[name])
    generated = np.asarray(model.generate(SOURCE, max_new_tokens=6, jit_compile=False))
    assert generated.shape == (3, 6)  # no prefix: new tokens only
    target_in = np.concatenate([np.full((3, 1), START), generated[:, :-1]], axis=1)
    logits = np.asarray(model({"source": SOURCE, "target_in": target_in}))
    np.testing.assert_array_equal(logits.argmax(-1), generated)


@pytest.mark.parametrize("name", ["bahdanau_bidirectional", "luong_gru_2_layers"])
def test_beam_search_over_a_batch(name):
    model = make_model(**CONFIGS[name])
    eager = {"jit_compile": False}
    # Without a stop token: with one, a single beam still keeps 2 candidates per step and may
    # finish a shorter, more likely hypothesis than greedy decoding (a quirk of
    # keras_seq.generation.beam_search, whose docstring says one beam equals greedy).
    greedy = np.asarray(model.generate(SOURCE, 6, **eager))
    one_beam = np.asarray(model.generate(SOURCE, 6, strategy="beam", num_beams=1, **eager))
    np.testing.assert_array_equal(one_beam, greedy)
    # Encoder outputs are tiled across the beams of each example: a batch gives exactly the
    # per-example results (keras-hub#1047 mixed up the examples there).
    tokens, scores = model.generate(
        SOURCE, 6, strategy="beam", num_beams=3, stop_token_id=END, return_scores=True, **eager
    )
    for index in range(len(SOURCE)):
        alone, alone_score = model.generate(
            SOURCE[index : index + 1],
            6,
            strategy="beam",
            num_beams=3,
            stop_token_id=END,
            return_scores=True,
            **eager,
        )
        np.testing.assert_array_equal(np.asarray(alone)[0], np.asarray(tokens)[index])
        np.testing.assert_allclose(np.asarray(alone_score)[0], np.asarray(scores)[index], 1e-5)


def test_generate_accepts_the_training_dict():
    model = make_model(attention="bahdanau")
    np.testing.assert_array_equal(
        np.asarray(model.generate(INPUTS, 5, jit_compile=False)),
        np.asarray(model.generate(SOURCE, 5, jit_compile=False)),
    )


@pytest.mark.parametrize("name", ["no_attention", "bahdanau_bidirectional"])
def test_source_padding_changes_nothing(name):
    model = make_model(**CONFIGS[name])
    longer = np.concatenate([SOURCE, np.zeros((3, 4), "int32")], axis=1)
    np.testing.assert_allclose(
        np.asarray(model({"source": longer, "target_in": INPUTS["target_in"]})),
        np.asarray(model(INPUTS)),
        atol=1e-5,
    )


def test_attention_weights():
    model = make_model(attention="bahdanau", bidirectional_encoder=True)
    alignments = np.asarray(model.attention_weights(SOURCE, INPUTS["target_in"]))
    assert alignments.shape == (3, 5, 6)  # (B, T, S)
    np.testing.assert_allclose(alignments.sum(-1), 1.0, atol=1e-5)
    # Padded source positions get no weight: (B, S, T)[padding] -> (num_padded, T).
    np.testing.assert_array_equal(np.swapaxes(alignments, 1, 2)[SOURCE == 0], 0.0)
    np.testing.assert_array_equal(
        np.asarray(model.backbone.attention_weights(SOURCE, INPUTS["target_in"])), alignments
    )
    with pytest.raises(ValueError, match="`attention_weights` needs a model with attention"):
        make_model().attention_weights(SOURCE, INPUTS["target_in"])


def test_instances_are_stored_as_configs():
    backbone = RNNSeq2SeqBackbone(**SMALL, **CONFIGS["instances"])
    config = backbone.get_config()
    assert config["cell"]["class_name"] == "GRUCell"
    assert config["attention"]["class_name"] == "LuongAttention"
    assert type(config["cell"]) is type(config["attention"]["config"]) is dict  # plain JSON
    cells = [layer.forward_layer.cell for layer in backbone.encoder_layers]
    cells += [backbone.decoder_layers[0].cell, backbone.decoder_layers[1].cell.recurrent_cell]
    assert len({id(cell) for cell in cells}) == 4
    assert all(isinstance(cell, GRUCell) and not cell.reset_after for cell in cells)


def test_fit_one_step():
    model = RNNSeq2SeqLM(RNNSeq2SeqBackbone(**SMALL, attention="bahdanau", dropout=0.1))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    before = [np.asarray(w) for w in model.trainable_weights]
    history = model.fit(INPUTS, TARGET, batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [np.asarray(w) for w in model.trainable_weights]
    assert all(not np.array_equal(b, a) for b, a in zip(before, after))


@pytest.mark.parametrize("name", ["no_attention", "instances"])
def test_save_and_reload(tmp_path, name):
    model = make_model(**CONFIGS[name])
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is RNNSeq2SeqLM
    assert type(reloaded.backbone) is RNNSeq2SeqBackbone
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_allclose(np.asarray(reloaded(INPUTS)), np.asarray(model(INPUTS)), atol=1e-6)
    eager = {"jit_compile": False}  # XLA is tested on its own below.
    for options in ({}, {"strategy": "beam", "num_beams": 2}):
        np.testing.assert_array_equal(
            np.asarray(reloaded.generate(SOURCE, 5, stop_token_id=END, **eager, **options)),
            np.asarray(model.generate(SOURCE, 5, stop_token_id=END, **eager, **options)),
        )


def test_generate_with_xla_equals_without():
    model = make_model(**CONFIGS["bahdanau_bidirectional"])
    for strategy, options in (("greedy", {}), ("beam", {"num_beams": 2})):
        compiled = model.generate(
            SOURCE, 5, strategy=strategy, jit_compile=True, return_scores=True, **options
        )
        plain = model.generate(
            SOURCE, 5, strategy=strategy, jit_compile=False, return_scores=True, **options
        )
        np.testing.assert_array_equal(np.asarray(compiled[0]), np.asarray(plain[0]))
        np.testing.assert_allclose(np.asarray(compiled[1]), np.asarray(plain[1]), atol=1e-5)


def test_presets():
    model = RNNSeq2SeqLM.from_preset(
        "seq2seq_bahdanau_small",
        source_vocabulary_size=SOURCE_V,
        target_vocabulary_size=TARGET_V,
        start_token_id=3,
    )
    assert model.backbone.attention == "bahdanau" and model.backbone.bidirectional_encoder
    assert model.start_token_id == 3  # a task argument, next to the backbone's
    assert tuple(model(INPUTS).shape) == (3, 5, TARGET_V)
    backbone = RNNSeq2SeqBackbone.from_preset("seq2seq_luong_small", hidden_dim=16)
    assert backbone.attention == "luong" and backbone.hidden_dim == 16
    for name, preset in RNNSeq2SeqBackbone.presets.items():
        count = RNNSeq2SeqLM.from_preset(name).count_params()
        assert f"{count:,} parameters" in preset["description"], name
    with pytest.raises(ValueError, match="Unknown `preset`.*seq2seq_small"):
        RNNSeq2SeqLM.from_preset("seq2seq_transformer")
    with pytest.raises(TypeError, match="num_heads"):
        RNNSeq2SeqLM.from_preset("seq2seq_small", num_heads=2)
    with pytest.raises(TypeError, match="start_token_id"):
        RNNSeq2SeqBackbone.from_preset("seq2seq_small", start_token_id=2)


def test_default_names():
    assert RNNSeq2SeqBackbone(**SMALL).name == "rnn_seq2seq_backbone"
    assert RNNSeq2SeqBackbone(**SMALL).name == "rnn_seq2seq_backbone_1"
    assert RNNSeq2SeqLM(RNNSeq2SeqBackbone(**SMALL)).name == "rnn_seq2seq_lm"


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"source_vocabulary_size": 0}, ValueError, "`source_vocabulary_size` must be a positive"),
        ({"target_vocabulary_size": None}, TypeError, "`target_vocabulary_size` must be a"),
        ({"embedding_dim": 0}, ValueError, "`embedding_dim` must be a positive integer"),
        ({"hidden_dim": 1.5}, TypeError, "`hidden_dim` must be a positive integer"),
        ({"num_layers": 0}, ValueError, "`num_layers` must be a positive integer"),
        ({"dropout": -0.1}, ValueError, r"`dropout` must be a float in \[0, 1\)"),
        ({"bidirectional_encoder": "yes"}, TypeError, "`bidirectional_encoder` must be a bool"),
        ({"attention_dim": 4}, ValueError, "`attention_dim` only applies with an `attention`"),
        ({"attention": "luong", "attention_dim": 0}, ValueError, "`attention_dim` must be a"),
        ({"attention": 3}, TypeError, "`attention` must be `None`, a name"),
        ({"attention": "nope"}, ValueError, "Unknown `attention`: 'nope'"),
        ({"cell": "nope"}, ValueError, "Unknown `cell`: 'nope'"),
        ({"cell": GRUCell(4)}, ValueError, "must output `hidden_dim` features.*hidden_dim=8"),
    ],
)
def test_backbone_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        RNNSeq2SeqBackbone(**{**SMALL, **kwargs})


@pytest.mark.parametrize(
    "start_token_id,pattern",
    [
        (9, r"`start_token_id` must be an int in \[1, target_vocabulary_size\).*=9"),
        (True, "`start_token_id` must be an int in"),
        (0, r"`start_token_id` must be an int in \[1,"),
        (1.0, "`start_token_id` must be an int in"),
    ],
)
def test_lm_validation_errors(start_token_id, pattern):
    backbone = RNNSeq2SeqBackbone(**SMALL)
    with pytest.raises(ValueError, match=pattern):
        RNNSeq2SeqLM(backbone, start_token_id=start_token_id)


def test_lm_rejects_other_backbones_and_inputs():
    with pytest.raises(TypeError, match="`backbone` must be an RNNSeq2SeqBackbone"):
        RNNSeq2SeqLM(keras.Sequential([keras.layers.Dense(3)]))
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    features = keras.layers.Embedding(TARGET_V, 4)(target_in)
    no_decoder_output = keras.Model({"source": source, "target_in": target_in}, features)
    no_decoder_output.target_vocabulary_size = TARGET_V
    with pytest.raises(TypeError, match="`backbone` must be an RNNSeq2SeqBackbone"):
        RNNSeq2SeqLM(no_decoder_output)  # a tensor, not {"decoder_sequence_output": ...}
    model = make_model()
    with pytest.raises(ValueError, match="'source'"):
        model.generate({"tokens": SOURCE}, 3, jit_compile=False)
    with pytest.raises(ValueError, match=r"\(batch_size, source_length\)"):
        model.generate(SOURCE[0], 3, jit_compile=False)


# === The deprecated 0.1 class (its generic checks: tests/models/test_deprecated_models.py) ===

# `[layer.name for layer in model.layers]` of keras_seq 0.1's `Seq2Seq` for these arguments:
# Keras saves weights at `layers/<snake_case class name>[_n]` in this order, so the deprecated
# class must list its layers exactly so (the 0.1 .keras files of
# tests/models/test_legacy_files.py cover one layer; these cover stacks).
LEGACY_LAYER_NAMES = [
    (
        {"num_layers": 2, "cell": "gru", "attention": "luong", "attention_dim": 5},
        [
            "source", "target_in", "source_embedding", "target_embedding", "encoder_dropout_0",
            "decoder_dropout_0", "encoder_layer_0", "decoder_layer_0", "encoder_dropout_1",
            "decoder_dropout_1", "encoder_layer_1", "decoder_layer_1", "output_dropout",
            "output_dense",
        ],
    ),
    (
        {"num_layers": 3, "cell": "elman", "attention": "bahdanau", "bidirectional_encoder": True},
        [
            "source", "source_embedding", "encoder_dropout_0", "target_in", "encoder_layer_0",
            "target_embedding", "encoder_dropout_1", "decoder_dropout_0", "bridge_0_0",
            "encoder_layer_1", "decoder_layer_0", "encoder_dropout_2", "decoder_dropout_1",
            "bridge_1_0", "encoder_layer_2", "decoder_layer_1", "decoder_dropout_2",
            "bridge_2_0", "decoder_layer_2", "output_dropout", "output_dense",
        ],
    ),
]


@pytest.mark.parametrize("arguments,names", LEGACY_LAYER_NAMES)
def test_deprecated_seq2seq_lists_its_layers_in_the_0_1_order(arguments, names):
    with pytest.warns(DeprecationWarning, match="RNNSeq2SeqLM"):
        model = Seq2Seq(**SMALL, **arguments)
    assert [layer.name for layer in model.layers] == names


def test_deprecated_seq2seq_keeps_the_0_1_interface():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = Seq2Seq.from_preset(
            "seq2seq_bahdanau_small",
            source_vocabulary_size=SOURCE_V,
            target_vocabulary_size=TARGET_V,
        )
        assert model.name.startswith("seq2seq")  # Keras would make it "seq2_seq"
        assert model.attention == "bahdanau" and model.bidirectional_encoder  # the backbone's
        assert len(model.encoder_layers) == 1 and model.start_token_id == START
        assert list(model.get_config()) == [
            "name", "trainable", "dtype", "source_vocabulary_size", "target_vocabulary_size",
            "embedding_dim", "hidden_dim", "num_layers", "cell", "attention", "attention_dim",
            "bidirectional_encoder", "dropout", "start_token_id",
        ]
        np.testing.assert_allclose(
            np.asarray(model.attention_weights(SOURCE, INPUTS["target_in"])).sum(-1), 1.0, 1e-5
        )
        with pytest.raises(ValueError, match="`start_token_id` must be an int in"):
            Seq2Seq(**SMALL, start_token_id=0)
