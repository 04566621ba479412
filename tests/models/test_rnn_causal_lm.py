"""RNNBackbone and RNNCausalLM: the contract harness, cached decoding == full pass, greedy ==
argmax rollout, padding and masks, parity with Keras' LSTM, fit, saving, presets, errors, XLA."""

import io
import os
import zipfile

import h5py
import keras
import numpy as np
import pytest
from keras import ops

from keras_seq import testing
from keras_seq.layers.recurrent.lstm_cell import LSTMCell
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM
from keras_seq.models.rnn_language_model import RNNLanguageModel

V = 11
rng = np.random.default_rng(5)
TOKENS = rng.integers(1, V, size=(3, 7)).astype("int32")
SMALL = {"vocabulary_size": V, "embedding_dim": 6, "hidden_dim": 8}


@keras.saving.register_keras_serializable(package="rnn_language_model_tests")
class ScaledElmanCell(keras.layers.Layer):
    """A user's cell: h_t = tanh(scale (x W + h U))."""

    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale
        self.state_size, self.output_size = units, units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")
        self.u = self.add_weight(shape=(self.units, self.units), name="u")

    def call(self, inputs, states):
        h = ops.tanh(self.scale * (ops.matmul(inputs, self.w) + ops.matmul(states[0], self.u)))
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


def randomize(model, scale=0.5):
    """Random weights large enough that the logits differ clearly between tokens."""
    model.set_weights(
        [rng.normal(scale=scale, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


def make_model(tie_weights=False, **overrides):
    backbone = RNNBackbone(**{**SMALL, **overrides})
    return randomize(RNNCausalLM(backbone, tie_weights=tie_weights))


# The padding check of the harness (check_masking) does not apply to these models: padding is
# defined by the token id 0 (`mask_zero`), not by a Keras mask on the int input, and the
# check's perturbation writes float noise into the int token ids. The padding property is
# tested below instead (left padding changes nothing).
@pytest.mark.backends
def test_backbone_contract():
    testing.run_layer_test(
        RNNBackbone,
        {**SMALL, "num_layers": 2},
        TOKENS,
        expected_output_shape=(3, 7, 8),
        # embedding, 2 x (kernel, recurrent_kernel, bias)
        expected_num_trainable_weights=1 + 2 * 3,
        expected_num_non_trainable_weights=0,
    )


@pytest.mark.parametrize(
    "backbone_kwargs,tie_weights,num_weights",
    [
        ({"num_layers": 2}, False, 1 + 2 * 3 + 2),
        ({"embedding_dim": 8, "cell": "gru", "mask_zero": False}, True, 1 + 3),
    ],
    ids=["lstm_2_layers", "gru_tied"],
)
def test_causal_lm_contract(backbone_kwargs, tie_weights, num_weights):
    testing.run_layer_test(
        RNNCausalLM,
        {"backbone": RNNBackbone(**{**SMALL, **backbone_kwargs}), "tie_weights": tie_weights},
        TOKENS,
        expected_output_shape=(3, 7, V),
        expected_num_trainable_weights=num_weights,
    )


def test_weight_counts_and_the_tie():
    tied = RNNCausalLM(RNNBackbone(**{**SMALL, "embedding_dim": 8}), tie_weights=True)
    assert tied.count_params() == V * 8 + 4 * 8 * (8 + 8) + 4 * 8
    assert tied.count_params() == tied.backbone.count_params()
    assert tied.output_dense is None
    untied = RNNCausalLM(tied.backbone)  # the same backbone, shared
    assert untied.count_params() == tied.count_params() + 8 * V + V
    table = tied.backbone.token_embedding.embeddings  # (V, H)
    expected = ops.matmul(tied.backbone(TOKENS), ops.transpose(table))
    np.testing.assert_allclose(np.asarray(tied(TOKENS)), np.asarray(expected), atol=1e-6)


def step_logits(model, sequence, prompt_length):
    """Logits of every position from `prompt_length - 1` on, by prefill then one step each."""
    _, logits, cache = model.prefill(ops.convert_to_tensor(sequence[:, :prompt_length]), 3)
    all_logits = [np.asarray(logits)]
    for index in range(prompt_length, sequence.shape[1]):
        logits, cache = model.call_with_cache(
            ops.convert_to_tensor(sequence[:, index]), cache, ops.convert_to_tensor(index)
        )
        all_logits.append(np.asarray(logits))
    return np.stack(all_logits, axis=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_layers": 2},
        {"num_layers": 2, "mask_zero": False},
        {"cell": "gru", "embedding_dim": 8, "tie_weights": True},
        {"cell": "elman", "dropout": 0.3},
        {"cell": ScaledElmanCell(8, scale=1.5), "num_layers": 2},
    ],
    ids=["lstm", "lstm_no_mask", "gru_tied", "elman_dropout", "user_cell"],
)
def test_cached_decoding_equals_full_pass(kwargs):
    model = make_model(**kwargs)
    # Zeros inside the continuation exercise the padding path of `call_with_cache`.
    sequence = np.concatenate([TOKENS, [[4, 0, 2], [0, 0, 5], [3, 9, 0]]], axis=1)
    full = np.asarray(model(sequence))  # (B, T, V)
    stepped = step_logits(model, sequence, prompt_length=4)
    np.testing.assert_allclose(stepped, full[:, 3:], atol=1e-5)


def test_backbone_steps_equal_its_full_pass():
    backbone = randomize(RNNBackbone(**SMALL, num_layers=2))
    sequence = np.concatenate([TOKENS, [[4], [0], [3]]], axis=1)
    full = np.asarray(backbone(sequence))  # (B, T, H)
    outputs, cache = backbone.prefill(TOKENS)
    np.testing.assert_allclose(np.asarray(outputs), full[:, :-1], atol=1e-6)
    output, cache = backbone.call_with_cache(sequence[:, -1], cache)
    np.testing.assert_allclose(np.asarray(output), full[:, -1], atol=1e-5)
    assert len(cache["states"]) == 2 and len(cache["states"][0]) == 2  # LSTM: h and c


def test_greedy_generate_equals_argmax_rollout():
    model = make_model(num_layers=2)
    generated = np.asarray(model.generate(TOKENS[:, :3], max_new_tokens=6))
    assert generated.shape == (3, 9)
    np.testing.assert_array_equal(generated[:, :3], TOKENS[:, :3])
    sequence = TOKENS[:, :3]
    for _ in range(6):
        next_token = np.asarray(model(sequence))[:, -1].argmax(-1)
        sequence = np.concatenate([sequence, next_token[:, None]], axis=1)
    np.testing.assert_array_equal(generated, sequence)


def test_beam_search_with_one_beam_equals_greedy_and_sampling_runs():
    model = make_model()
    prompt, eager = TOKENS[:, :2], {"jit_compile": False}
    greedy = np.asarray(model.generate(prompt, 5, **eager))
    beam = np.asarray(model.generate(prompt, 5, strategy="beam", num_beams=1, **eager))
    np.testing.assert_array_equal(beam, greedy)
    wide = model.generate(prompt, 5, strategy="beam", num_beams=3, **eager)
    assert tuple(wide.shape) == (3, 7)
    first = np.asarray(model.generate(prompt, 5, strategy="top_p", seed=3, **eager))
    again = np.asarray(model.generate(prompt, 5, strategy="top_p", seed=3, **eager))
    np.testing.assert_array_equal(first, again)


def test_left_padding_changes_nothing():
    model = make_model(num_layers=2)
    padded = np.concatenate([np.zeros((3, 3), "int32"), TOKENS], axis=1)
    np.testing.assert_allclose(
        np.asarray(model(padded))[:, 3:], np.asarray(model(TOKENS)), atol=1e-6
    )
    np.testing.assert_array_equal(
        np.asarray(model.generate(padded, max_new_tokens=4))[:, 3:],
        np.asarray(model.generate(TOKENS, max_new_tokens=4)),
    )


def test_without_mask_zero_padding_is_an_ordinary_token():
    model = make_model(mask_zero=False)
    padded = np.concatenate([np.zeros((3, 1), "int32"), TOKENS], axis=1)
    assert not np.allclose(np.asarray(model(padded))[:, 1:], np.asarray(model(TOKENS)))


def test_untied_logits_carry_the_mask_into_the_loss():
    # Right padding; the targets at padded steps are garbage (not 0: no ignore_class needed).
    tokens = TOKENS.copy()
    tokens[1, 4:] = 0
    targets = np.roll(TOKENS, -1, axis=1)
    other_targets = targets.copy()
    other_targets[1, 4:] = (other_targets[1, 4:] + 3) % V
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def evaluate(model, y):
        model.compile(loss=loss)
        return model.evaluate(tokens, y, batch_size=3, verbose=0)

    untied = make_model()
    np.testing.assert_allclose(evaluate(untied, targets), evaluate(untied, other_targets))
    # The tied readout (ReversibleEmbedding in reverse) drops the mask: padded steps count.
    tied = make_model(tie_weights=True, embedding_dim=8)
    assert not np.isclose(evaluate(tied, targets), evaluate(tied, other_targets))


def test_equals_keras_lstm_given_the_same_weights():
    model = make_model(num_layers=2)
    peer = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(V, 6, mask_zero=True),
            keras.layers.LSTM(8, return_sequences=True),
            keras.layers.LSTM(8, return_sequences=True),
            keras.layers.Dense(V),
        ]
    )
    peer.set_weights(model.get_weights())
    tokens = TOKENS.copy()
    tokens[1, 4:] = 0  # right padding
    np.testing.assert_allclose(np.asarray(peer(tokens)), np.asarray(model(tokens)), atol=1e-5)


def test_cells_are_made_per_layer_from_the_config():
    backbone = RNNBackbone(**SMALL, num_layers=3, cell=LSTMCell(8, use_layer_norm=True))
    cells = [layer.cell for layer in backbone.recurrent_layers]
    assert len({id(cell) for cell in cells}) == 3
    assert all(isinstance(cell, LSTMCell) and cell.use_layer_norm for cell in cells)
    config = backbone.get_config()["cell"]
    assert config["class_name"] == "LSTMCell" and config["config"]["use_layer_norm"]
    # An instance is kept as its plain config, not tracked as a (weightless) sublayer.
    assert type(backbone.cell) is dict and type(config["config"]) is dict


def test_fit_one_step_updates_every_weight():
    model = RNNCausalLM(RNNBackbone(**SMALL, num_layers=2, dropout=0.2))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    before = [np.asarray(w) for w in model.trainable_weights]
    history = model.fit(TOKENS[:, :-1], TOKENS[:, 1:], batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [np.asarray(w) for w in model.trainable_weights]
    assert all(not np.array_equal(b, a) for b, a in zip(before, after))


def test_fit_lowers_the_loss():
    keras.utils.set_random_seed(2)
    model = RNNCausalLM(RNNBackbone(vocabulary_size=V, embedding_dim=8, hidden_dim=16))
    model.compile(
        optimizer=keras.optimizers.Adam(2e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # A deterministic sequence: token t+1 = token t + 1 (ids 1..V-1, no padding).
    start = np.random.RandomState(0).randint(0, V - 1, size=(32, 1))
    sequence = (start + np.arange(9)) % (V - 1) + 1
    history = model.fit(sequence[:, :-1], sequence[:, 1:], batch_size=16, epochs=15, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs",
    [{"num_layers": 2}, {"cell": ScaledElmanCell(8), "embedding_dim": 8, "tie_weights": True}],
    ids=["lstm", "user_cell_tied"],
)
def test_save_and_reload(tmp_path, kwargs):
    model = make_model(**kwargs)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is RNNCausalLM and type(reloaded.backbone) is RNNBackbone
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_allclose(np.asarray(reloaded(TOKENS)), np.asarray(model(TOKENS)), atol=1e-6)
    np.testing.assert_array_equal(
        np.asarray(reloaded.generate(TOKENS[:, :3], max_new_tokens=5, jit_compile=False)),
        np.asarray(model.generate(TOKENS[:, :3], max_new_tokens=5, jit_compile=False)),
    )


def test_generate_with_xla_equals_without():
    model = make_model(num_layers=2)
    for strategy, options in (("greedy", {}), ("beam", {"num_beams": 2})):
        compiled = model.generate(
            TOKENS[:, :3], 5, strategy=strategy, jit_compile=True, return_scores=True, **options
        )
        plain = model.generate(
            TOKENS[:, :3], 5, strategy=strategy, jit_compile=False, return_scores=True, **options
        )
        np.testing.assert_array_equal(np.asarray(compiled[0]), np.asarray(plain[0]))
        np.testing.assert_allclose(np.asarray(compiled[1]), np.asarray(plain[1]), atol=1e-5)


def test_from_preset():
    model = RNNCausalLM.from_preset("char_lstm_small", vocabulary_size=40)
    assert model.backbone.hidden_dim == 128 and model.backbone.vocabulary_size == 40
    assert tuple(model(np.ones((1, 5), "int32")).shape) == (1, 5, 40)
    # Overrides go to the constructor that takes them: the backbone's, or the readout's.
    tied = RNNCausalLM.from_preset("char_gru_small", embedding_dim=128, tie_weights=True)
    assert tied.tie_weights and tied.backbone.embedding_dim == 128
    backbone = RNNBackbone.from_preset("char_lstm_medium", num_layers=1)
    assert backbone.num_layers == 1 and backbone.dropout == 0.2
    for name, preset in RNNBackbone.presets.items():
        count = RNNCausalLM.from_preset(name).count_params()
        assert f"{count:,} parameters" in preset["description"], name
    with pytest.raises(ValueError, match="Unknown `preset`.*char_lstm_small"):
        RNNCausalLM.from_preset("char_lstm_huge")
    with pytest.raises(TypeError, match="num_classes"):
        RNNCausalLM.from_preset("char_lstm_small", num_classes=3)


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"vocabulary_size": 0}, ValueError, "`vocabulary_size` must be a positive integer"),
        ({"embedding_dim": 2.5}, TypeError, "`embedding_dim` must be a positive integer"),
        ({"hidden_dim": -1}, ValueError, "`hidden_dim` must be a positive integer"),
        ({"num_layers": 0}, ValueError, "`num_layers` must be a positive integer"),
        ({"dropout": 1.0}, ValueError, r"`dropout` must be a float in \[0, 1\)"),
        ({"mask_zero": 1}, TypeError, "`mask_zero` must be a bool"),
        ({"cell": "transformer"}, ValueError, "Unknown `cell`: 'transformer'"),
        ({"cell": keras.layers.Dense(8)}, TypeError, "`cell` must be a cell name"),
        ({"cell": LSTMCell(5)}, ValueError, "must output `hidden_dim` features.*hidden_dim=8"),
    ],
)
def test_backbone_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        RNNBackbone(**{**SMALL, **kwargs})


def test_causal_lm_validation_errors():
    backbone = RNNBackbone(**SMALL)
    with pytest.raises(TypeError, match="`tie_weights` must be a bool"):
        RNNCausalLM(backbone, tie_weights="yes")
    with pytest.raises(ValueError, match="`embedding_dim` must equal `hidden_dim`"):
        RNNCausalLM(backbone, tie_weights=True)
    with pytest.raises(TypeError, match="backbone.*RNNBackbone"):
        RNNCausalLM(keras.layers.Dense(3))
    gpt = GPTBackbone(
        vocabulary_size=10, num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=8
    )
    with pytest.raises(TypeError, match="backbone.*RNNBackbone"):
        RNNCausalLM(gpt)
    # The untied deprecated model's backbone embeds with a plain Embedding: no tied readout.
    with pytest.warns(DeprecationWarning):
        legacy = RNNLanguageModel(**{**SMALL, "embedding_dim": 8})
    with pytest.raises(TypeError, match="`token_embedding`.*reverse=True"):
        RNNCausalLM(legacy.backbone, tie_weights=True)


def test_prefill_rejects_an_empty_prompt():
    model = RNNCausalLM(RNNBackbone(**SMALL))
    with pytest.raises(ValueError, match="`inputs` must be prompt token ids"):
        model.generate(np.zeros((2, 0), "int32"), max_new_tokens=3, jit_compile=False)


# The deprecated 0.1 class (generic checks: tests/models/test_deprecated_models.py).


def saved_weight_paths(path):
    with zipfile.ZipFile(path) as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        paths = []
        weights.visit(
            lambda name: paths.append(name)
            if isinstance(weights[name], h5py.Dataset)
            else None
        )
        return paths


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "tie_weights,embedding_path,num_paths",
    [(False, "embedding", 1 + 2 * 3 + 2), (True, "reversible_embedding", 1 + 2 * 3)],
)
def test_rnn_language_model_saves_at_its_0_1_paths(
    tmp_path, tie_weights, embedding_path, num_paths
):
    model = RNNLanguageModel(V, 8, 8, num_layers=2, tie_weights=tie_weights)
    assert isinstance(model, RNNCausalLM) and model.tie_weights is tie_weights
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    paths = saved_weight_paths(path)
    assert f"layers/{embedding_path}/vars/0" in paths and "layers/rnn_1/cell/vars/2" in paths
    assert len(paths) == num_paths
    assert ("layers/dense/vars/1" in paths) is not tie_weights


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_rnn_language_model_keeps_its_0_1_interface():
    model = RNNLanguageModel.from_preset(
        "char_gru_small", vocabulary_size=40, embedding_dim=128, tie_weights=True
    )
    assert type(model) is RNNLanguageModel
    assert model.hidden_dim == 128 and model.cell == "gru" and model.tie_weights
    assert model.token_embedding is model.backbone.token_embedding
    assert len(model.recurrent_layers) == 1 and len(model.dropout_layers) == 2
    assert tuple(model(np.ones((1, 5), "int32")).shape) == (1, 5, 40)
    with pytest.raises(TypeError, match="`tie_weights` must be a bool"):
        RNNLanguageModel(**SMALL, tie_weights="yes")
    with pytest.raises(ValueError, match="`embedding_dim` must equal `hidden_dim`"):
        RNNLanguageModel(**SMALL, tie_weights=True)
    with pytest.raises(ValueError, match="`num_layers` must be a positive integer"):
        RNNLanguageModel(**SMALL, num_layers=0)
