"""AttentionCell and AttentionRNN: the recurrence stepped by hand from the cell's sublayers,
alignments, decoder and memory masks, saving, XLA training, the contract harness, errors."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_seq import testing
from keras_seq.layers.attention.bahdanau_attention import BahdanauAttention
from keras_seq.layers.attention.luong_attention import LuongAttention
from keras_seq.layers.recurrent.attention_cell import AttentionCell
from keras_seq.layers.recurrent.attention_rnn import AttentionRNN
from keras_seq.layers.recurrent.lstm_cell import LSTMCell

rng = np.random.default_rng(3)
B, T, F, S, M = 2, 4, 3, 5, 6
X = rng.normal(size=(B, T, F)).astype("float32")
MEMORY = rng.normal(size=(B, S, M)).astype("float32")
MEMORY_MASK = np.array([[True, True, True, False, False], [True] * S])
DECODER_MASK = np.array([[True] * T, [True, True, False, False]])


@keras.saving.register_keras_serializable(package="attention_cell_tests")
class LeakyCell(keras.layers.Layer):
    """A user's cell: h_t = (1 - r) h_{t-1} + r tanh(x W + h U), with a fixed leak r."""

    def __init__(self, units, leak=0.5, **kwargs):
        super().__init__(**kwargs)
        self.units, self.leak = units, leak
        self.state_size, self.output_size = units, units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")
        self.u = self.add_weight(shape=(self.units, self.units), name="u")

    def call(self, inputs, states):
        candidate = ops.tanh(ops.matmul(inputs, self.w) + ops.matmul(states[0], self.u))
        h = (1.0 - self.leak) * states[0] + self.leak * candidate
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "leak": self.leak}


CELLS = {
    "lstm_bahdanau": lambda: AttentionCell("lstm", units=4),
    "gru_luong_attentional": lambda: AttentionCell(
        "gru", units=4, attention="luong", attention_dim=5
    ),
    "elman_concat": lambda: AttentionCell(
        "elman", units=4, attention=LuongAttention("concat", units=3)
    ),
    "user_cell": lambda: AttentionCell(LeakyCell(4), attention="bahdanau", attention_dim=3),
    "keras_attention": lambda: AttentionCell(
        "gru", units=M, attention=keras.layers.Attention(use_scale=True)
    ),
}


def randomize(layer):
    layer.set_weights(
        [rng.normal(scale=0.6, size=w.shape).astype("float32") for w in layer.get_weights()]
    )


def reference_step(cell, x, states):
    """One step of the documented recurrence, from the cell's sublayers and NumPy."""
    cell_states, fed = states[:-1], states[-1]
    h, new_cell_states = cell.recurrent_cell(np.concatenate([x, fed], -1), cell_states)
    h = np.asarray(h)
    context, alignment = cell.attention_layer(
        [h[:, None], MEMORY], mask=[None, MEMORY_MASK], return_attention_scores=True
    )
    context, alignment = np.asarray(context)[:, 0], np.asarray(alignment)[:, 0]
    if cell.attention_dim is None:
        fed, output = context, np.concatenate([h, context], -1)
    else:
        kernel = np.asarray(cell.attention_projection.kernel)
        fed = output = np.tanh(np.concatenate([context, h], -1) @ kernel)
    return output, [np.asarray(s) for s in new_cell_states] + [fed], alignment


def run(rnn, inputs=X, memory=MEMORY, **kwargs):
    kwargs.setdefault("memory_mask", MEMORY_MASK)
    kwargs.setdefault("mask", DECODER_MASK)
    return [np.asarray(x) for x in rnn(inputs, memory, return_attention_scores=True, **kwargs)]


@pytest.mark.parametrize("name", sorted(CELLS))
def test_full_pass_equals_reference_and_hand_stepping(name):
    cell = CELLS[name]()
    rnn = AttentionRNN(cell, return_sequences=True, return_state=True)
    rnn.build(X.shape, MEMORY.shape)
    randomize(rnn)
    outputs, alignments, *final_states = run(rnn)

    reference = [np.asarray(s) for s in cell.get_initial_state(batch_size=B)]
    stepped = cell.get_initial_state(batch_size=B)
    expected_outputs, expected_alignments = [], []
    for t in range(T):
        output, new_states, alignment = reference_step(cell, X[:, t], reference)
        # The cell's own call, as when decoding one token at a time.
        hand_output, new_stepped, hand_alignment = cell(
            X[:, t], stepped, memory=MEMORY, memory_mask=MEMORY_MASK, return_attention_scores=True
        )
        np.testing.assert_allclose(hand_output, output, atol=1e-5)
        np.testing.assert_allclose(hand_alignment, alignment, atol=1e-5)
        keep = DECODER_MASK[:, t, None]  # masked steps keep their states
        reference = [np.where(keep, new, old) for new, old in zip(new_states, reference)]
        stepped = [ops.where(keep, new, old) for new, old in zip(new_stepped, stepped)]
        expected_outputs.append(np.where(keep, output, 0.0))
        expected_alignments.append(np.where(keep, alignment, 0.0))
    np.testing.assert_allclose(outputs, np.stack(expected_outputs, 1), atol=1e-5)
    np.testing.assert_allclose(alignments, np.stack(expected_alignments, 1), atol=1e-5)
    for actual, expected in zip(final_states, reference):
        np.testing.assert_allclose(actual, expected, atol=1e-5)

    # The alignment history: rows sum to 1 over real memory at real steps, 0 elsewhere.
    assert alignments.shape == (B, T, S) and outputs.shape == (B, T, cell.output_size)
    np.testing.assert_allclose(alignments[DECODER_MASK].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(alignments[~DECODER_MASK], 0.0)
    np.testing.assert_array_equal(alignments * ~MEMORY_MASK[:, None], 0.0)


def test_masks_padding_and_truncation():
    rnn = AttentionRNN(AttentionCell("lstm", units=4), return_state=True)
    outputs, alignments, *states = run(rnn)
    # Padded memory does not leak; padded decoder steps do not change the final result.
    noisy_memory = np.where(~MEMORY_MASK[:, :, None], 100.0, MEMORY)
    noisy_inputs = np.where(~DECODER_MASK[:, :, None], 100.0, X)
    for actual, expected in zip(run(rnn, noisy_inputs, noisy_memory), [outputs, alignments]):
        np.testing.assert_allclose(actual, expected, atol=1e-6)
    # Example 1 has two real steps: its last output and states are those of a 2-step pass.
    short = run(rnn, X[1:, :2], MEMORY[1:], memory_mask=MEMORY_MASK[1:], mask=None)
    for actual, expected in zip([outputs, *states], [short[0], *short[2:]]):
        np.testing.assert_allclose(actual[1:], expected, atol=1e-6)
    # Keras masks (from Masking layers) equal the explicit masks.
    masking = keras.layers.Masking(mask_value=100.0)
    implicit = rnn(masking(noisy_inputs), masking(noisy_memory), return_attention_scores=True)
    for actual, expected in zip(implicit, [outputs, alignments, *states]):
        np.testing.assert_allclose(actual, expected, atol=1e-6)
    assert rnn.compute_mask(X, DECODER_MASK) == [None] * 4  # last output and 3 states
    sequences = AttentionRNN(AttentionCell("gru", units=3), return_sequences=True)
    np.testing.assert_array_equal(sequences.compute_mask(X, DECODER_MASK), DECODER_MASK)


def test_initial_state_of_the_wrapped_cell_only():
    cell = AttentionCell("lstm", units=4)
    rnn = AttentionRNN(cell, return_sequences=True)
    default = run(rnn)
    h0, c0 = rng.normal(size=(2, B, 4)).astype("float32")
    fed0 = np.zeros((B, cell.state_size[-1]), "float32")
    expected = run(rnn, initial_state=[h0, c0, fed0])
    np.testing.assert_allclose(run(rnn, initial_state=[h0, c0])[0], expected[0], atol=1e-6)
    assert not np.allclose(default[0], expected[0])
    with pytest.raises(ValueError, match=r"`initial_state` must hold 3 states .* Received: 1"):
        rnn(X, MEMORY, initial_state=[h0])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_everywhere(policy):
    keras.config.set_dtype_policy(policy)  # reset by the conftest fixture
    rnn = AttentionRNN(AttentionCell("lstm", units=4, attention_dim=4), return_sequences=True)
    outputs, alignments = rnn(X, MEMORY, memory_mask=MEMORY_MASK, return_attention_scores=True)
    compute_dtype = keras.DTypePolicy(policy).compute_dtype
    assert {keras.backend.standardize_dtype(x.dtype) for x in (outputs, alignments)} == {
        compute_dtype
    }
    assert {keras.backend.standardize_dtype(w.dtype) for w in rnn.weights} == {"float32"}
    alignments = np.asarray(ops.cast(alignments, "float32"))
    assert np.all(np.isfinite(np.asarray(ops.cast(outputs, "float32"))))
    np.testing.assert_allclose(alignments.sum(-1), 1.0, atol=1e-2)


def seq2seq_model(cell):
    """Embeddings with mask_zero: both masks reach AttentionRNN as Keras masks."""
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    memory = keras.layers.Embedding(9, M, mask_zero=True)(source)  # (B, S, M), masked
    decoded, alignments = AttentionRNN(cell, return_sequences=True)(
        keras.layers.Embedding(9, F, mask_zero=True)(target), memory, return_attention_scores=True
    )
    return keras.Model([source, target], [keras.layers.Dense(9)(decoded), alignments])


SOURCE = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], "int32")
TARGET = np.array([[1, 2, 3, 4], [5, 6, 0, 0]], "int32")


def test_save_reload_and_jit_training_of_a_seq2seq_model(tmp_path):
    cell = AttentionCell(
        LSTMCell(4, dropout=0.2, recurrent_dropout=0.2, seed=1),
        attention=BahdanauAttention(5, dropout=0.1, seed=2),
        attention_dim=4,
    )
    model = seq2seq_model(cell)
    logits, alignments = [np.asarray(x) for x in model([SOURCE, TARGET])]
    np.testing.assert_array_equal(alignments[:, :, 3:][0], 0.0)  # source padding
    np.testing.assert_array_equal(alignments[1, 2:], 0.0)  # target padding
    path = os.path.join(tmp_path, "seq2seq.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    for actual, expected in zip(reloaded([SOURCE, TARGET]), [logits, alignments]):
        np.testing.assert_allclose(actual, expected, atol=1e-6)

    import tensorflow as tf  # gradients need the TensorFlow backend, as the harness

    with tf.GradientTape() as tape:
        loss = ops.mean(ops.square(model([SOURCE, TARGET], training=True)[0]))
    gradients = [tf.convert_to_tensor(g) for g in tape.gradient(loss, cell.trainable_weights)]
    assert all(np.all(np.isfinite(g)) and np.any(g != 0) for g in gradients)
    model.compile(optimizer="sgd", loss=["mse", None], jit_compile=True)
    history = model.fit([SOURCE, TARGET], np.zeros((B, T, 9)), epochs=1, verbose=0)
    assert model.jit_compile is True and np.all(np.isfinite(history.history["loss"]))


HARNESS_CASES = {
    "lstm_bahdanau": (lambda: AttentionCell("lstm", units=4), {"return_sequences": True}, 7),
    "gru_luong_state": (
        lambda: AttentionCell("gru", units=4, attention="luong", attention_dim=5),
        {"return_state": True},
        5,
    ),
}


@pytest.mark.parametrize("name", sorted(HARNESS_CASES))
def test_contract(name):
    make_cell, init_kwargs, num_weights = HARNESS_CASES[name]
    cell = make_cell()
    testing.check_config(cell)
    init_kwargs = {**init_kwargs, "cell": keras.saving.serialize_keras_object(cell)}
    return_sequences = init_kwargs.get("return_sequences", False)
    cell.build((B, F), MEMORY.shape)
    output_shape = (B, T, cell.output_size) if return_sequences else (B, cell.output_size)
    state_shapes = [(B, size) for size in cell.state_size] if "return_state" in init_kwargs else []
    testing.run_layer_test(
        AttentionRNN,
        init_kwargs,
        X,
        call_kwargs={
            "memory": MEMORY,
            "memory_mask": MEMORY_MASK,
            "return_attention_scores": True,
        },
        expected_output_shape=[output_shape, (B, T, S)] + state_shapes,
        expected_num_trainable_weights=num_weights,
        padding_mask=DECODER_MASK,
        expected_output_mask="same" if return_sequences else None,
        # Mixed precision of the cell itself: test_mixed_precision_everywhere.
        run_mixed_precision_check=False,
    )


# Errors ------------------------------------------------------------------------------------


ERROR_CASES = [
    (lambda: AttentionCell("lstm", units=0), ValueError, r"`units` .* Received: units=0"),
    (lambda: AttentionCell("lstm"), ValueError, r"`units` is required .* cell='lstm'"),
    (lambda: AttentionCell("gru", 4, attention_dim=0), ValueError, r"attention_dim=0"),
    (lambda: AttentionCell(LeakyCell(3), units=3), ValueError, r"only apply when `cell`"),
    (lambda: AttentionCell("lsmt", units=3), ValueError, r"Unknown `cell`: 'lsmt'"),
    (lambda: AttentionCell("gru", 3, attention="nope"), ValueError, r"Unknown `attention`"),
    (lambda: AttentionCell("gru", 3, attention=3), TypeError, r"`attention` must resolve"),
    (lambda: AttentionRNN(LSTMCell(3)), TypeError, r"`cell` must be an `AttentionCell`"),
    (
        lambda: AttentionRNN(AttentionCell("gru", 3), return_state=1),
        TypeError,
        r"`return_state` must be a bool. Received: return_state=1",
    ),
    (
        lambda: AttentionCell("gru", 3).get_initial_state(2),
        ValueError,
        r"needs a built cell",
    ),
    (
        lambda: AttentionRNN(AttentionCell("gru", 3)).build((B, F), MEMORY.shape),
        ValueError,
        r"Received shapes: inputs=\(2, 3\)",
    ),
]


def test_errors():
    # One test for all cases: the clean-Keras-state fixture costs time per test.
    for make, error, pattern in ERROR_CASES:
        with pytest.raises(error, match=pattern):
            make()
