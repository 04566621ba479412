"""Seq2Seq: the contract harness, cached decoding == teacher-forced pass, beam search over a
batch, source padding, alignments, fit, saving, presets, errors and XLA."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_seq import testing
from keras_seq.data.teacher_forcing import teacher_forcing_inputs
from keras_seq.layers.attention.luong_attention import LuongAttention
from keras_seq.layers.recurrent.gru_cell import GRUCell
from keras_seq.models.seq2seq import Seq2Seq

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


def make_model(**overrides):
    model = Seq2Seq(**{**SMALL, **overrides})
    model.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


# The padding check of the harness (check_masking) does not apply: padding is the token id 0
# of the int "source" (its mask is computed from the ids, not read from a Keras mask), and the
# check's perturbation writes float noise into int ids. The source-padding property is
# tested below instead.
@pytest.mark.parametrize("name", ["no_attention", "bahdanau_bidirectional", "luong_gru_2_layers"])
def test_contract(name):
    testing.run_layer_test(
        Seq2Seq, {**SMALL, **CONFIGS[name]}, INPUTS, expected_output_shape=(3, 5, TARGET_V)
    )


def test_weight_counts():
    # source and target embeddings, encoder and decoder LSTM (3 each), readout (2)
    assert len(Seq2Seq(**SMALL).trainable_weights) == 2 + 3 + 3 + 2
    # + a backward encoder LSTM (3), two bridges (2 each), Bahdanau attention (4)
    model = Seq2Seq(**SMALL, **CONFIGS["bahdanau_bidirectional"])
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
    with pytest.raises(ValueError, match="`attention_weights` needs a model with attention"):
        make_model().attention_weights(SOURCE, INPUTS["target_in"])


def test_instances_are_stored_as_configs():
    model = Seq2Seq(**SMALL, **CONFIGS["instances"])
    config = model.get_config()
    assert config["cell"]["class_name"] == "GRUCell"
    assert config["attention"]["class_name"] == "LuongAttention"
    assert type(config["cell"]) is type(config["attention"]["config"]) is dict  # plain JSON
    cells = [layer.forward_layer.cell for layer in model.encoder_layers]
    cells += [model.decoder_layers[0].cell, model.decoder_layers[1].cell.recurrent_cell]
    assert len({id(cell) for cell in cells}) == 4
    assert all(isinstance(cell, GRUCell) and not cell.reset_after for cell in cells)


def test_fit_one_step():
    model = Seq2Seq(**SMALL, attention="bahdanau", dropout=0.1)
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
    assert type(reloaded) is Seq2Seq
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


def test_from_preset():
    model = Seq2Seq.from_preset(
        "seq2seq_bahdanau_small", source_vocabulary_size=SOURCE_V, target_vocabulary_size=TARGET_V
    )
    assert model.attention == "bahdanau" and model.bidirectional_encoder
    assert tuple(model(INPUTS).shape) == (3, 5, TARGET_V)
    for name, preset in Seq2Seq.presets.items():
        count = Seq2Seq.from_preset(name).count_params()
        assert f"{count:,} parameters" in preset["description"], name
    with pytest.raises(ValueError, match="Unknown `preset`.*seq2seq_small"):
        Seq2Seq.from_preset("seq2seq_transformer")


def test_default_name():
    assert Seq2Seq(**SMALL).name.startswith("seq2seq")


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"source_vocabulary_size": 0}, ValueError, "`source_vocabulary_size` must be a positive"),
        ({"target_vocabulary_size": None}, ValueError, "`target_vocabulary_size` must be a"),
        ({"embedding_dim": 0}, ValueError, "`embedding_dim` must be a positive integer"),
        ({"hidden_dim": 1.5}, ValueError, "`hidden_dim` must be a positive integer"),
        ({"num_layers": 0}, ValueError, "`num_layers` must be a positive integer"),
        ({"dropout": -0.1}, ValueError, r"`dropout` must be a float in \[0, 1\)"),
        ({"bidirectional_encoder": "yes"}, TypeError, "`bidirectional_encoder` must be a bool"),
        ({"start_token_id": 9}, ValueError, "`start_token_id` must be an int in"),
        ({"start_token_id": True}, ValueError, "`start_token_id` must be an int in"),
        ({"start_token_id": 0}, ValueError, r"`start_token_id` must be an int in \[1,"),
        ({"attention_dim": 4}, ValueError, "`attention_dim` only applies with an `attention`"),
        ({"attention": "luong", "attention_dim": 0}, ValueError, "`attention_dim` must be a"),
        ({"attention": 3}, TypeError, "`attention` must be `None`, a name"),
        ({"attention": "nope"}, ValueError, "Unknown `attention`: 'nope'"),
        ({"cell": "nope"}, ValueError, "Unknown `cell`: 'nope'"),
        ({"cell": GRUCell(4)}, ValueError, "must output `hidden_dim` features.*hidden_dim=8"),
    ],
)
def test_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Seq2Seq(**{**SMALL, **kwargs})
