"""Tests of `TruncatedBPTT`: forward = full pass, gradients cut at chunk boundaries."""

import json
import textwrap
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import layers
from keras_seq import testing
from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.layers.recurrent.gru_cell import GRUCell
from keras_seq.layers.recurrent.lstm_cell import LSTMCell
from keras_seq.layers.recurrent.truncated_bptt import TruncatedBPTT

BATCH, STEPS, FEATURES = 2, 10, 3


def _rnn(kind, **kwargs):
    if kind == "simple_rnn":
        return keras.layers.SimpleRNN(4, **kwargs)
    if kind == "lstm":
        return keras.layers.LSTM(4, **kwargs)
    if kind == "gru":
        return keras.layers.GRU(4, **kwargs)
    if kind == "elman":
        return keras.layers.RNN(ElmanCell(4), **kwargs)
    if kind == "seq_lstm":
        return keras.layers.RNN(LSTMCell(4), **kwargs)
    if kind == "seq_gru":
        return keras.layers.RNN(GRUCell(4), **kwargs)
    if kind == "stacked":
        return keras.layers.RNN([ElmanCell(3), LSTMCell(4)], **kwargs)
    raise ValueError(kind)


KINDS = ["simple_rnn", "lstm", "gru", "elman", "seq_lstm", "seq_gru", "stacked"]


def _inputs(steps=STEPS, seed=0):
    return np.random.RandomState(seed).randn(BATCH, steps, FEATURES).astype("float32")


def _chunked_reference(layer, x, chunk_length, initial_state=None):
    """Runs `layer.cell` chunk by chunk, the entering state detached: TBPTT by hand."""
    runner = keras.layers.RNN(layer.cell, return_sequences=True, return_state=True)
    states = initial_state
    outputs = []
    for start in range(0, x.shape[1], chunk_length):
        if states is not None:
            states = keras.tree.map_structure(tf.stop_gradient, states)
        out, *states = runner(x[:, start : start + chunk_length], initial_state=states)
        outputs.append(out)
    return tf.concat(outputs, axis=1), states


@pytest.mark.parametrize(
    "kind, chunk_length",
    [(kind, 3) for kind in KINDS] + [("elman", 1), ("lstm", 10), ("stacked", 25)],
)
def test_forward_equals_full_pass(kind, chunk_length):
    layer = _rnn(kind, return_sequences=True, return_state=True)
    wrapper = TruncatedBPTT(layer, chunk_length)
    x = _inputs()
    truncated = wrapper(x)
    full = layer(x)
    assert len(truncated) == len(full)
    for a, b in zip(truncated, full):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_equal_hand_chunked_reference(kind):
    chunk_length = 3
    layer = _rnn(kind, return_sequences=True)
    wrapper = TruncatedBPTT(layer, chunk_length)
    x = tf.constant(_inputs())
    weights = np.random.RandomState(1).randn(BATCH, STEPS, 4).astype("float32")
    wrapper.build(x.shape)

    def grads(fn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn() * weights)
        return tape.gradient(loss, [x] + layer.trainable_weights)

    got = grads(lambda: wrapper(x))
    want = grads(lambda: _chunked_reference(layer, x, chunk_length)[0])
    untruncated = grads(lambda: layer(x))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)
    # The reference is not trivially equal to full backpropagation.
    assert np.abs(got[0] - untruncated[0]).max() > 1e-4


@pytest.mark.parametrize("kind", ["lstm", "elman", "stacked"])
def test_chunk_loss_has_zero_gradient_to_previous_chunks(kind):
    chunk_length = 4
    wrapper = TruncatedBPTT(_rnn(kind, return_sequences=True), chunk_length)
    x = tf.constant(_inputs())
    for chunk in range(3):
        start = chunk * chunk_length
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            outputs = wrapper(x)
            loss = tf.reduce_sum(outputs[:, start : start + chunk_length] ** 2)
            full_loss = tf.reduce_sum(wrapper.layer(x)[:, start : start + chunk_length] ** 2)
        per_step = np.abs(tape.gradient(loss, x).numpy()).sum(axis=(0, 2))  # (T,)
        full_per_step = np.abs(tape.gradient(full_loss, x).numpy()).sum(axis=(0, 2))
        assert np.all(per_step[:start] == 0.0)
        assert np.all(per_step[start : start + chunk_length] > 0.0)
        assert np.all(per_step[start + chunk_length :] == 0.0)
        # Without truncation the same loss reaches every earlier step.
        assert np.all(full_per_step[: start + chunk_length] > 0.0)


def test_last_output_gradient_reaches_only_last_chunk():
    wrapper = TruncatedBPTT(keras.layers.LSTM(4), chunk_length=4)
    x = tf.constant(_inputs())
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(wrapper(x))
    per_step = np.abs(tape.gradient(loss, x).numpy()).sum(axis=(0, 2))
    # Steps 8, 9 form the last (partial) chunk.
    assert np.all(per_step[:8] == 0.0) and np.all(per_step[8:] > 0.0)


def test_initial_state_gets_gradient_from_first_chunk_only():
    layer = keras.layers.SimpleRNN(4, return_sequences=True)
    wrapper = TruncatedBPTT(layer, chunk_length=3)
    x = tf.constant(_inputs())
    h0 = tf.constant(np.random.RandomState(2).randn(BATCH, 4).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(h0)
        outputs = wrapper(x, initial_state=[h0])
        first, later = tf.reduce_sum(outputs[:, :3]), tf.reduce_sum(outputs[:, 3:])
    np.testing.assert_allclose(outputs, layer(x, initial_state=[h0]), atol=1e-6)
    assert np.abs(tape.gradient(first, h0)).max() > 0.0
    grad_later = tape.gradient(later, h0)
    assert grad_later is None or np.all(grad_later.numpy() == 0.0)


def test_dynamic_sequence_length_in_functional_model():
    inputs = keras.Input((None, FEATURES))
    wrapper = TruncatedBPTT(keras.layers.GRU(4, return_sequences=True), 3)
    model = keras.Model(inputs, wrapper(inputs))
    for steps in (5, 11):
        x = _inputs(steps)
        np.testing.assert_allclose(model(x), wrapper.layer(x), atol=1e-6)


def test_unroll_equals_full_pass():
    layer = keras.layers.SimpleRNN(4, return_sequences=True, unroll=True)
    wrapper = TruncatedBPTT(layer, 3)
    x = _inputs()
    np.testing.assert_allclose(wrapper(x), layer(x), atol=1e-6)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("return_state", [True, False])
def test_symbolic_call_matches_eager(return_sequences, return_state):
    wrapper = TruncatedBPTT(
        keras.layers.LSTM(4, return_sequences=return_sequences, return_state=return_state),
        3,
    )
    symbolic = wrapper(keras.Input((STEPS, FEATURES), batch_size=BATCH))
    eager = wrapper(_inputs())
    symbolic, eager = keras.tree.flatten(symbolic), keras.tree.flatten(eager)
    assert len(symbolic) == len(eager)
    for s, e in zip(symbolic, eager):
        assert tuple(s.shape) == tuple(e.shape) and s.dtype == e.dtype


def _padded():
    x = _inputs(seed=3)
    lengths = np.array([10, 6])
    mask = np.arange(STEPS)[None, :] < lengths[:, None]  # (B, T)
    x[~mask] = 0.0
    return x, mask, lengths


@pytest.mark.parametrize("kind", ["lstm", "elman", "stacked"])
def test_right_padding_matches_unpadded_sequences(kind):
    x, mask, lengths = _padded()
    layer = _rnn(kind, return_sequences=True, return_state=True)
    wrapper = TruncatedBPTT(layer, 4)
    outputs, *states = wrapper(x, mask=mask)
    for b, length in enumerate(lengths):
        ref_outputs, *ref_states = layer(x[b : b + 1, :length])
        np.testing.assert_allclose(outputs[b, :length], ref_outputs[0], atol=1e-6)
        flat_states, flat_ref = keras.tree.flatten(states), keras.tree.flatten(ref_states)
        assert len(flat_states) == len(flat_ref)
        for s, r in zip(flat_states, flat_ref):
            np.testing.assert_allclose(s[b], r[0], atol=1e-6)
    # Padded values do not leak into the real steps.
    noisy = np.where(mask[..., None], x, 100.0).astype("float32")
    noisy_outputs = wrapper(noisy, mask=mask)[0]
    np.testing.assert_allclose(noisy_outputs[1, :6], outputs[1, :6], atol=1e-6)


def test_keras_mask_path_equals_explicit_masks():
    x, mask, _ = _padded()
    wrapper = TruncatedBPTT(keras.layers.GRU(4, return_sequences=True), 4)
    inputs = keras.Input((STEPS, FEATURES))
    masked = keras.layers.Masking(0.0)(inputs)
    outputs = wrapper(masked)
    model = keras.Model(inputs, outputs)
    implicit = model(x)
    np.testing.assert_allclose(implicit, wrapper(x, mask=mask), atol=1e-6)
    np.testing.assert_allclose(implicit, wrapper(x, padding_mask=mask), atol=1e-6)
    # An explicit padding_mask wins over mask.
    np.testing.assert_allclose(
        wrapper(x, mask=np.ones_like(mask), padding_mask=mask), implicit, atol=1e-6
    )
    # The output mask is the wrapped RNN's.
    assert outputs._keras_mask is not None
    np.testing.assert_array_equal(
        wrapper.compute_mask(x, mask), wrapper.layer.compute_mask(x, mask)
    )
    assert TruncatedBPTT(keras.layers.GRU(4), 4).compute_mask(x, mask) is None


def test_masked_boundary_step_moves_the_cut_to_next_real_step():
    # Chunks of 3; step 3 (a boundary) is masked, so chunk 1 starts at step 4.
    x = tf.constant(_inputs())
    mask = np.ones((BATCH, STEPS), bool)
    mask[:, 3] = False
    wrapper = TruncatedBPTT(keras.layers.SimpleRNN(4, return_sequences=True), 3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(wrapper(x, mask=mask)[:, 5])
    per_step = np.abs(tape.gradient(loss, x).numpy()).sum(axis=(0, 2))
    np.testing.assert_array_equal(per_step[:4], 0.0)
    assert np.all(per_step[4:6] > 0.0)
    np.testing.assert_allclose(wrapper(x, mask=mask), wrapper.layer(x, mask=mask), atol=1e-6)


def test_stateful_calls_continue_and_reset():
    layer = keras.layers.RNN(ElmanCell(4), return_sequences=True, stateful=True)
    wrapper = TruncatedBPTT(layer, 2)
    x = _inputs(12)
    first, second = wrapper(x[:, :6]), wrapper(x[:, 6:])
    reference = keras.layers.RNN(ElmanCell(4), return_sequences=True)
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), reference(x), atol=1e-6)
    np.testing.assert_allclose(layer.states[0], reference(x)[:, -1], atol=1e-6)
    layer.reset_state()
    np.testing.assert_allclose(wrapper(x[:, :6]), first, atol=1e-6)
    with pytest.raises(ValueError, match="`inputs` must have the batch size"):
        wrapper(_inputs(6)[:1])


@pytest.mark.parametrize("kind", ["lstm", "elman", "stacked"])
def test_dropout_uses_the_wrapped_layers_masks(kind):
    if kind == "lstm":
        layer = keras.layers.LSTM(
            4, dropout=0.3, recurrent_dropout=0.3, return_sequences=True, seed=1
        )
    elif kind == "elman":
        layer = keras.layers.RNN(
            ElmanCell(4, dropout=0.3, recurrent_dropout=0.3, seed=1),
            return_sequences=True,
        )
    else:
        layer = keras.layers.RNN(
            [ElmanCell(3, dropout=0.3, seed=1), LSTMCell(4, recurrent_dropout=0.3, seed=2)],
            return_sequences=True,
        )
    wrapper = TruncatedBPTT(layer, 3)
    x = _inputs()
    wrapper.build(x.shape)
    generators = [v for v in wrapper.non_trainable_variables if "seed_generator" in v.path]
    assert generators
    saved = [v.numpy() for v in generators]

    def seeded(fn):
        for v, value in zip(generators, saved):
            v.assign(value)
        return fn(x, training=True)

    # Same seeds, same variational masks: dropout in the wrapped cell works as in the
    # layer, eagerly and in a graph (where a mask drawn inside the loop would differ).
    for compile_fn in (lambda fn: fn, tf.function):
        truncated = seeded(compile_fn(wrapper))
        np.testing.assert_allclose(truncated, seeded(compile_fn(layer)), atol=1e-6)
    assert np.abs(truncated - wrapper(x, training=False)).max() > 1e-3

    model = keras.Sequential([keras.Input((STEPS, FEATURES)), wrapper])
    model.compile("sgd", "mse")
    history = model.fit(x, np.zeros((BATCH, STEPS, 4)), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_fit_updates_every_weight():
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            TruncatedBPTT(keras.layers.RNN(LSTMCell(4), return_sequences=True), 3),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(_inputs(), np.ones((BATCH, STEPS, 1)), epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    for b, a in zip(before, model.get_weights()):
        assert np.abs(a - b).max() > 0.0


def _functional(wrapper):
    inputs = keras.Input((None, FEATURES))
    outputs = keras.layers.Dense(2)(wrapper(inputs))
    return keras.Model(inputs, outputs)


def test_keras_round_trip(tmp_path):
    wrapper = TruncatedBPTT(keras.layers.RNN([ElmanCell(3), GRUCell(4)], return_sequences=True), 4)
    model = _functional(wrapper)
    x = _inputs()
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    # Weights are restored without a forward pass.
    assert len(restored.weights) == len(model.weights)
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    restored_wrapper = restored.layers[1]
    assert isinstance(restored_wrapper, TruncatedBPTT)
    assert restored_wrapper.chunk_length == 4
    np.testing.assert_allclose(restored.predict(x, verbose=0), expected, atol=1e-6)


def test_config_round_trip():
    wrapper = TruncatedBPTT(keras.layers.LSTM(4, return_sequences=True), 5, name="tbptt")
    config = wrapper.get_config()
    json.dumps(config)
    assert config["chunk_length"] == 5
    assert config["layer"]["class_name"] == "LSTM"
    restored = TruncatedBPTT.from_config(config)
    assert restored.get_config() == config
    serialized = keras.saving.serialize_keras_object(wrapper)
    assert serialized["registered_name"] == "keras_seq>TruncatedBPTT"
    again = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(again, TruncatedBPTT) and again.get_config() == config


def test_build_creates_every_weight():
    wrapper = TruncatedBPTT(keras.layers.RNN([ElmanCell(3), LSTMCell(4)]), 2)
    wrapper.build((None, None, FEATURES))
    # Elman 3: 3*3 + 3*3 + 3; LSTM 4 on 3 inputs: 3*16 + 4*16 + 16. Shared, counted once.
    assert len(wrapper.trainable_weights) == 6
    assert wrapper.count_params() == 21 + 128
    with pytest.raises(ValueError, match="last dimension of `inputs`"):
        TruncatedBPTT(keras.layers.LSTM(4), 2).build((None, None, None))


def test_jit_compile_matches_eager():
    model = _functional(TruncatedBPTT(keras.layers.LSTM(4, return_sequences=True), 3))
    x = _inputs()
    model.compile("sgd", "mse", jit_compile=False)
    eager = model.predict(x, verbose=0)
    model.compile("sgd", "mse", jit_compile=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), eager, atol=1e-6)
    # With a mask (the flags then come from a cumulative sum and a gather over time).
    padded, _, _ = _padded()
    inputs = keras.Input((STEPS, FEATURES))
    masked = keras.layers.Masking(0.0)(inputs)
    masked_model = keras.Model(inputs, TruncatedBPTT(keras.layers.GRU(4), 3)(masked))
    masked_eager = masked_model.predict(padded, verbose=0)
    masked_model.compile(jit_compile=True)
    np.testing.assert_allclose(masked_model.predict(padded, verbose=0), masked_eager, atol=1e-6)
    # A jit-compiled training step gives the eager step's weights.
    y = np.ones((BATCH, STEPS, 2), "float32")
    start = model.get_weights()
    model.train_on_batch(x, y)
    jit_weights = model.get_weights()
    model.set_weights(start)
    model.compile(keras.optimizers.SGD(), "mse", jit_compile=False)
    model.train_on_batch(x, y)
    for a, b in zip(jit_weights, model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        wrapper = TruncatedBPTT(keras.layers.RNN(LSTMCell(4), return_sequences=True), 3)
        x = tf.constant(_inputs())
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = wrapper(x)
            loss = tf.reduce_sum(tf.cast(outputs[:, 3:6], "float32"))
        grads = tape.gradient(loss, [x] + wrapper.trainable_weights)
    finally:
        keras.config.set_dtype_policy(previous)
    compute_dtype = keras.DTypePolicy(policy).compute_dtype
    assert outputs.dtype == compute_dtype
    assert all(w.dtype == "float32" for w in wrapper.weights)
    assert not np.isnan(np.asarray(outputs, "float32")).any()
    per_step = np.abs(np.asarray(grads[0], "float32")).sum(axis=(0, 2))
    assert np.all(per_step[:3] == 0.0) and np.all(per_step[3:6] > 0.0)
    assert all(np.isfinite(np.asarray(g, "float32")).all() for g in grads[1:])


def test_mixed_wrapper_over_float32_layer_with_dropout():
    layer = keras.layers.LSTM(4, dropout=0.3, recurrent_dropout=0.3, return_sequences=True)
    wrapper = TruncatedBPTT(layer, 3, dtype="mixed_float16")
    x = _inputs()
    outputs = wrapper(x, training=True)
    assert outputs.dtype == "float16" and layer.compute_dtype == "float32"
    inference = wrapper(x, training=False)
    np.testing.assert_allclose(inference, layer(x), atol=1e-3)  # float16 outputs
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), wrapper])
    model.compile("sgd", "mse")
    history = model.fit(x, np.zeros((BATCH, STEPS, 4)), verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_validation_errors():
    with pytest.raises(TypeError, match="`layer` must be a `keras.layers.RNN`.*Dense"):
        TruncatedBPTT(keras.layers.Dense(3), 2)
    with pytest.raises(TypeError, match="`layer`.*LSTMCell"):
        TruncatedBPTT(keras.layers.LSTMCell(3), 2)
    with pytest.raises(TypeError, match="`layer` cannot be a `Bidirectional`"):
        TruncatedBPTT(keras.layers.Bidirectional(keras.layers.LSTM(3)), 2)
    with pytest.raises(ValueError, match="`layer`.*go_backwards=True"):
        TruncatedBPTT(keras.layers.LSTM(3, go_backwards=True), 2)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"chunk_length={bad!r}"):
            TruncatedBPTT(keras.layers.LSTM(3), bad)
    for bad in (2.5, True, None, "4"):
        with pytest.raises(TypeError, match=f"chunk_length={bad!r}"):
            TruncatedBPTT(keras.layers.LSTM(3), bad)


def test_docstring_example():
    code = TruncatedBPTT.__doc__.split("```python")[1].split("```")[0]
    # The public name, whether or not `keras_seq.layers` re-exports it yet.
    keras_seq = types.SimpleNamespace(layers=types.SimpleNamespace(TruncatedBPTT=TruncatedBPTT))
    namespace = {"keras": keras, "np": np, "keras_seq": keras_seq}
    exec(textwrap.dedent(code), namespace)
    assert tuple(namespace["outputs"].shape) == (2, 10, 16)


HARNESS_X = np.random.default_rng(4).normal(size=(3, 7, 4)).astype("float32")
HARNESS_MASK = np.array([[1] * 7, [1] * 5 + [0] * 2, [1] * 2 + [0] * 5], bool)


@pytest.mark.parametrize(
    "layer,num_weights,output_shape,output_mask",
    [
        (keras.layers.LSTM(5, return_sequences=True), 3, (3, 7, 5), "same"),
        (
            keras.layers.RNN(layers.GRUCell(5), return_sequences=True, return_state=True),
            3,
            [(3, 7, 5), (3, 5)],
            "same",
        ),
        (keras.layers.RNN(layers.LSTMCell(5, use_layer_norm=True)), 9, (3, 5), None),
    ],
    ids=["lstm_sequences", "gru_cell_state", "layer_norm_last"],
)
def test_contract(layer, num_weights, output_shape, output_mask):
    testing.run_layer_test(
        TruncatedBPTT,
        {"layer": keras.saving.serialize_keras_object(layer), "chunk_length": 3},
        HARNESS_X,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
        padding_mask=HARNESS_MASK,
        expected_output_mask=output_mask,
    )
