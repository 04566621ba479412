"""RNNLanguageModel: the contract harness, cached decoding == full pass, greedy == argmax
rollout, padding, parity with Keras' LSTM, fit, saving, presets, errors and XLA."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_seq import testing
from keras_seq.layers.recurrent.lstm_cell import LSTMCell
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


def make_model(**overrides):
    return randomize(RNNLanguageModel(**{**SMALL, **overrides}))


# The padding check of the harness (check_masking) does not apply to this model: padding is
# defined by the token id 0 (`mask_zero`), not by a Keras mask on the int input, and the
# check's perturbation writes float noise into the int token ids. The padding property is
# tested below instead (left padding changes nothing).
@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_layers": 2},
        {"embedding_dim": 8, "cell": "gru", "tie_weights": True, "mask_zero": False},
    ],
    ids=["lstm_2_layers", "gru_tied"],
)
def test_contract(kwargs):
    testing.run_layer_test(
        RNNLanguageModel,
        {**SMALL, **kwargs},
        TOKENS,
        expected_output_shape=(3, 7, V),
    )


def test_weight_counts():
    model = RNNLanguageModel(**SMALL, num_layers=2)
    # embedding, 2 x (kernel, recurrent_kernel, bias), output kernel and bias
    assert len(model.trainable_weights) == 1 + 2 * 3 + 2
    tied = RNNLanguageModel(**{**SMALL, "embedding_dim": 8}, tie_weights=True)
    assert len(tied.trainable_weights) == 1 + 3
    assert tied.count_params() == V * 8 + 4 * 8 * (8 + 8) + 4 * 8


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
    model = RNNLanguageModel(**SMALL, num_layers=3, cell=LSTMCell(8, use_layer_norm=True))
    cells = [layer.cell for layer in model.recurrent_layers]
    assert len({id(cell) for cell in cells}) == 3
    assert all(isinstance(cell, LSTMCell) and cell.use_layer_norm for cell in cells)
    config = model.get_config()["cell"]
    assert config["class_name"] == "LSTMCell" and config["config"]["use_layer_norm"]
    # An instance is kept as its plain config, not tracked as a (weightless) sublayer.
    assert type(model.cell) is dict and type(config["config"]) is dict


def test_fit_one_step():
    model = RNNLanguageModel(**SMALL, num_layers=2, dropout=0.2)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    before = [np.asarray(w) for w in model.trainable_weights]
    history = model.fit(TOKENS[:, :-1], TOKENS[:, 1:], batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [np.asarray(w) for w in model.trainable_weights]
    assert all(not np.array_equal(b, a) for b, a in zip(before, after))


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
    assert type(reloaded) is RNNLanguageModel
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
    model = RNNLanguageModel.from_preset("char_lstm_small", vocabulary_size=40)
    assert model.hidden_dim == 128 and model.vocabulary_size == 40
    assert tuple(model(np.ones((1, 5), "int32")).shape) == (1, 5, 40)
    for name, preset in RNNLanguageModel.presets.items():
        count = RNNLanguageModel.from_preset(name).count_params()
        assert f"{count:,} parameters" in preset["description"], name
    with pytest.raises(ValueError, match="Unknown `preset`.*char_lstm_small"):
        RNNLanguageModel.from_preset("char_lstm_huge")


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"vocabulary_size": 0}, ValueError, "`vocabulary_size` must be a positive integer"),
        ({"embedding_dim": 2.5}, ValueError, "`embedding_dim` must be a positive integer"),
        ({"hidden_dim": -1}, ValueError, "`hidden_dim` must be a positive integer"),
        ({"num_layers": 0}, ValueError, "`num_layers` must be a positive integer"),
        ({"dropout": 1.0}, ValueError, r"`dropout` must be a float in \[0, 1\)"),
        ({"mask_zero": 1}, TypeError, "`mask_zero` must be a bool"),
        ({"tie_weights": "yes"}, TypeError, "`tie_weights` must be a bool"),
        ({"tie_weights": True}, ValueError, "`embedding_dim` must equal `hidden_dim`"),
        ({"cell": "transformer"}, ValueError, "Unknown `cell`: 'transformer'"),
        ({"cell": keras.layers.Dense(8)}, TypeError, "`cell` must be a cell name"),
        ({"cell": LSTMCell(5)}, ValueError, "must output `hidden_dim` features.*hidden_dim=8"),
    ],
)
def test_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        RNNLanguageModel(**{**SMALL, **kwargs})


def test_prefill_rejects_an_empty_prompt():
    model = RNNLanguageModel(**SMALL)
    with pytest.raises(ValueError, match="`inputs` must be prompt token ids"):
        model.generate(np.zeros((2, 0), "int32"), max_new_tokens=3, jit_compile=False)
