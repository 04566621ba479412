"""Tests of `GradientNormLogger` and `hidden_state_gradient_norms`.

The reference for dL/dh_t is a hand-written recurrence (Elman, LSTM, GRU) in which a zero
perturbation eps_t is added to h_t, so that dL/deps_t = dL/dh_t (the total derivative); in
float64 it is checked by finite differences of a NumPy recurrence. Weight-gradient norms are
compared with gradients of a hand-written loss. Events are read back with TensorBoard's
`EventAccumulator` (scalars and images arrive under `tensors`).
"""

import inspect
import json
import os
import re
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import keras_seq
from keras_seq.callbacks import gradient_norm_logger as module
from keras_seq.callbacks.gradient_norm_logger import GradientNormLogger
from keras_seq.callbacks.hidden_state_gradients import hidden_state_gradient_norms
from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.layers.recurrent.gru_cell import GRUCell
from keras_seq.layers.recurrent.lstm_cell import LSTMCell
from keras_seq.layers.recurrent.truncated_bptt import TruncatedBPTT
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM

B, T, F, U = 3, 6, 4, 5
rng = np.random.default_rng(7)


# === Hand-written references ===


def elman_step(kernel, recurrent_kernel, bias, activation=tf.tanh):
    return lambda x, s: [activation(x @ kernel + s[0] @ recurrent_kernel + bias)]


def lstm_step(kernel, recurrent_kernel, bias):
    def step(x, s):
        h, c = s
        i, f, g, o = tf.split(x @ kernel + h @ recurrent_kernel + bias, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return [tf.sigmoid(o) * tf.tanh(c), c]

    return step


def gru_step(kernel, recurrent_kernel, bias):  # reset_after=True: bias (2, 3U)
    def step(x, s):
        h = s[0]
        x_z, x_r, x_h = tf.split(x @ kernel + bias[0], 3, axis=-1)
        h_z, h_r, h_h = tf.split(h @ recurrent_kernel + bias[1], 3, axis=-1)
        z, r = tf.sigmoid(x_z + h_z), tf.sigmoid(x_r + h_r)
        return [z * h + (1 - z) * tf.tanh(x_h + r * h_h)]

    return step


def unroll(
    step, inputs, eps, num_states=1, mask=None, go_backwards=False, zero_output_for_mask=False
):
    """A recurrence by hand; eps[t] is added to h_t. Outputs in processing order. A masked
    step keeps the states; its output repeats the previous one, or is zero."""
    states = [tf.zeros_like(eps[0])] * num_states
    outputs = []
    steps = range(inputs.shape[1] - 1, -1, -1) if go_backwards else range(inputs.shape[1])
    for t in steps:
        new = list(step(inputs[:, t], states))
        new[0] = new[0] + eps[t]
        output = new[0]
        if mask is not None:
            keep = mask[:, t, None]
            new = [tf.where(keep, n, s) for n, s in zip(new, states)]
            previous = outputs[-1] if outputs and not zero_output_for_mask else 0.0 * output
            output = tf.where(keep, output, previous)
        states = new
        outputs.append(output)
    return outputs


def zeros_eps(batch, steps, units, dtype="float32"):
    return [tf.zeros((batch, units), dtype) for _ in range(steps)]


def per_example_norms(gradients):
    """List over t of (B, U) gradients -> (B, T) norms."""
    return np.stack(
        [np.linalg.norm(g.numpy().astype("float64"), axis=-1) for g in gradients], axis=1
    )


def weights_of(cell):
    return [tf.constant(w.numpy()) for w in (cell.kernel, cell.recurrent_kernel, cell.bias)]


def randomize(model, scale=0.5):
    model.set_weights(
        [rng.normal(scale=scale, size=w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    return model


def sequence_model(layer, dense_units=2):
    inputs = keras.Input((T, F))
    model = keras.Model(inputs, keras.layers.Dense(dense_units, name="dense")(layer(inputs)))
    model.compile("sgd", "mse")
    return randomize(model)


def data(dense_units=2, return_sequences=True):
    x = rng.normal(size=(B, T, F)).astype("float32")
    y_shape = (B, T, dense_units) if return_sequences else (B, dense_units)
    return x, rng.normal(size=y_shape).astype("float32")


def mse_head(model, y):
    kernel, bias = (tf.constant(w.numpy()) for w in model.get_layer("dense").weights)
    return lambda outputs: tf.reduce_mean(tf.square(outputs @ kernel + bias - y))


def read_events(log_dir):
    """`{tag: [(step, array), ...]}` from the summaries of `GradientNormLogger`."""
    accumulator = EventAccumulator(os.path.join(log_dir, "gradients"), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {
        tag: [
            (event.step, tf.make_ndarray(event.tensor_proto)) for event in accumulator.Tensors(tag)
        ]
        for tag in accumulator.Tags()["tensors"]
    }


# === dL/dh_t against hand-written recurrences ===


@pytest.mark.parametrize(
    "return_sequences,go_backwards",
    [(True, False), (False, False), (True, True), (False, True)],
)
def test_elman_equals_hand_written_recurrence(return_sequences, go_backwards):
    rnn = keras.layers.RNN(
        ElmanCell(U), return_sequences=return_sequences, go_backwards=go_backwards, name="rnn"
    )
    model = sequence_model(rnn)
    x, y = data(return_sequences=return_sequences)
    result = hidden_state_gradient_norms(model, x, y, "rnn", per_example=True)

    eps = zeros_eps(B, T, U)
    with tf.GradientTape() as tape:
        tape.watch(eps)
        outputs = unroll(elman_step(*weights_of(rnn.cell)), x, eps, go_backwards=go_backwards)
        loss = mse_head(model, y)(tf.stack(outputs, 1) if return_sequences else outputs[-1])
    expected = per_example_norms(tape.gradient(loss, eps))

    assert result.shape == (B, T)
    np.testing.assert_allclose(result, expected, rtol=2e-5, atol=1e-9)
    np.testing.assert_allclose(
        hidden_state_gradient_norms(model, x, y, rnn), expected.mean(axis=0), rtol=2e-5
    )
    # The total derivative: steps whose output never reaches the loss directly still get
    # their gradient through the recurrence.
    assert np.all(expected > 1e-6)


def test_masked_steps_keep_state_and_get_zero_gradient():
    vocabulary = 9
    token_ids = rng.integers(1, vocabulary, size=(B, T))
    token_ids[0, :2] = 0  # left padding
    token_ids[1, 3] = 0  # a hole
    inputs = keras.Input((T,), dtype="int32")
    embedded = keras.layers.Embedding(vocabulary, F, mask_zero=True, name="embedding")(inputs)
    rnn = keras.layers.RNN(ElmanCell(U), name="rnn")
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(rnn(embedded)))
    model.compile("sgd", "mse")
    randomize(model)
    y = rng.normal(size=(B, 2)).astype("float32")
    result = hidden_state_gradient_norms(model, token_ids, y, "rnn", per_example=True)

    table = model.get_layer("embedding").embeddings.numpy()
    eps = zeros_eps(B, T, U)
    with tf.GradientTape() as tape:
        tape.watch(eps)
        outputs = unroll(
            elman_step(*weights_of(rnn.cell)),
            tf.constant(table[token_ids]),
            eps,
            mask=tf.constant(token_ids != 0),
        )
        loss = mse_head(model, y)(outputs[-1])
    expected = per_example_norms(tape.gradient(loss, eps))

    np.testing.assert_allclose(result, expected, rtol=2e-5, atol=1e-9)
    assert np.all(result[token_ids == 0] == 0.0)
    assert np.all(result[token_ids != 0] > 1e-6)


def test_float64_equals_finite_differences():
    """No autodiff in the reference: central differences of a NumPy Elman recurrence."""
    batch, steps, features, units = 2, 4, 3, 3
    rnn = keras.layers.RNN(ElmanCell(units, dtype="float64"), dtype="float64", name="rnn")
    inputs = keras.Input((steps, features), dtype="float64")
    model = keras.Model(inputs, keras.layers.Dense(2, dtype="float64")(rnn(inputs)))
    model.compile("sgd", keras.losses.MeanSquaredError(dtype="float64"))
    randomize(model)
    x = rng.normal(size=(batch, steps, features))
    y = rng.normal(size=(batch, 2))
    result = hidden_state_gradient_norms(model, x, y, "rnn", per_example=True)

    kernel, recurrent_kernel, bias, dense_kernel, dense_bias = model.get_weights()

    def loss(perturbation):  # perturbation (B, T, U) added to h_t
        h = np.zeros((batch, units))
        for t in range(steps):
            h = np.tanh(x[:, t] @ kernel + h @ recurrent_kernel + bias) + perturbation[:, t]
        return np.mean((h @ dense_kernel + dense_bias - y) ** 2)

    delta = 1e-6
    gradient = np.zeros((batch, steps, units))
    for index in np.ndindex(gradient.shape):
        bump = np.zeros(gradient.shape)
        bump[index] = delta
        gradient[index] = (loss(bump) - loss(-bump)) / (2 * delta)
    np.testing.assert_allclose(result, np.linalg.norm(gradient, axis=-1), rtol=1e-7)


@pytest.mark.parametrize("top_return_sequences", [True, False])
def test_stacked_layers_include_the_path_through_upper_layers(top_return_sequences):
    lower = keras.layers.RNN(ElmanCell(U), return_sequences=True, name="lower")
    upper = keras.layers.RNN(ElmanCell(U), return_sequences=top_return_sequences, name="upper")
    model = sequence_model(lambda inputs: upper(lower(inputs)))
    x, y = data(return_sequences=top_return_sequences)

    eps_lower, eps_upper = zeros_eps(B, T, U), zeros_eps(B, T, U)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([eps_lower, eps_upper])
        hidden = unroll(elman_step(*weights_of(lower.cell)), x, eps_lower)
        outputs = unroll(elman_step(*weights_of(upper.cell)), tf.stack(hidden, 1), eps_upper)
        loss = mse_head(model, y)(tf.stack(outputs, 1) if top_return_sequences else outputs[-1])
    for name, eps in (("lower", eps_lower), ("upper", eps_upper)):
        expected = per_example_norms(tape.gradient(loss, eps))
        np.testing.assert_allclose(
            hidden_state_gradient_norms(model, x, y, name, per_example=True),
            expected,
            rtol=2e-5,
            atol=1e-9,
        )


@pytest.mark.parametrize(
    "make_layer,step,num_states",
    [
        (lambda: keras.layers.LSTM(U, return_sequences=True, name="rnn"), lstm_step, 2),
        (lambda: keras.layers.RNN(LSTMCell(U), return_sequences=True, name="rnn"), lstm_step, 2),
        (lambda: keras.layers.GRU(U, return_sequences=True, name="rnn"), gru_step, 1),
        (lambda: keras.layers.RNN(GRUCell(U), return_sequences=True, name="rnn"), gru_step, 1),
    ],
    ids=["keras_lstm", "keras_seq_lstm_cell", "keras_gru", "keras_seq_gru_cell"],
)
def test_gated_cells_equal_hand_written_recurrence(make_layer, step, num_states):
    rnn = make_layer()
    model = sequence_model(rnn)
    x, y = data()
    eps = zeros_eps(B, T, U)
    with tf.GradientTape() as tape:
        tape.watch(eps)
        outputs = unroll(step(*weights_of(rnn.cell)), x, eps, num_states=num_states)
        loss = mse_head(model, y)(tf.stack(outputs, 1))
    np.testing.assert_allclose(
        hidden_state_gradient_norms(model, x, y, "rnn", per_example=True),
        per_example_norms(tape.gradient(loss, eps)),
        rtol=2e-5,
        atol=1e-9,
    )


def test_bidirectional_layers_are_indexed_by_input_position():
    """Masked (left and right padding): padded steps get no gradient in either direction."""
    bidirectional = keras.layers.Bidirectional(
        keras.layers.RNN(ElmanCell(U), return_sequences=True, name="rnn")
    )
    model = sequence_model(lambda inputs: bidirectional(keras.layers.Masking(0.0)(inputs)))
    x, y = data()
    x[0, :2] = 0.0  # left padding of example 0
    x[1, -1] = 0.0  # right padding of example 1
    mask = tf.constant(np.any(x != 0.0, axis=-1))
    forward, backward = bidirectional.forward_layer, bidirectional.backward_layer

    eps_forward, eps_backward = zeros_eps(B, T, U), zeros_eps(B, T, U)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([eps_forward, eps_backward])
        sequences = []
        for layer, eps in ((forward, eps_forward), (backward, eps_backward)):
            outputs = unroll(
                elman_step(*weights_of(layer.cell)),
                x,
                eps,
                mask=mask,
                go_backwards=layer is backward,
                zero_output_for_mask=True,
            )
            sequences.append(tf.stack(outputs[::-1] if layer is backward else outputs, 1))
        kernel, bias = (tf.constant(w.numpy()) for w in model.get_layer("dense").weights)
        errors = tf.reduce_mean(tf.square(tf.concat(sequences, -1) @ kernel + bias - y), -1)
        weight = tf.cast(mask, errors.dtype)  # the Dense output keeps the mask: real steps
        loss = tf.reduce_sum(errors * weight) / tf.reduce_sum(weight)
    for layer, eps in ((forward, eps_forward), (backward, eps_backward)):
        expected = per_example_norms(tape.gradient(loss, eps))
        assert np.all(expected[~mask.numpy()] == 0.0) and np.all(expected[mask.numpy()] > 0)
        np.testing.assert_allclose(
            hidden_state_gradient_norms(model, x, y, layer.path, per_example=True),
            expected,
            rtol=2e-5,
            atol=1e-9,
        )


@pytest.mark.parametrize("scale", [0.5, 1.5], ids=["vanishing", "exploding"])
def test_linear_recurrence_scales_geometrically(scale):
    """h_t = x_t W + h_{t-1} (s Q) with Q orthogonal and the loss on h_T only:
    dL/dh_t = dL/dh_{t+1} (s Q)^T, so the norm changes by exactly s per step back."""
    rnn = keras.layers.RNN(ElmanCell(U, activation="linear"), name="rnn")
    model = sequence_model(rnn)
    orthogonal = np.linalg.qr(rng.normal(size=(U, U)))[0]
    rnn.cell.recurrent_kernel.assign((scale * orthogonal).astype("float32"))
    x, y = data(return_sequences=False)
    norms = hidden_state_gradient_norms(model, x, y, "rnn", per_example=True)
    np.testing.assert_allclose(norms[:, :-1] / norms[:, 1:], scale, rtol=1e-4)
    curve = hidden_state_gradient_norms(model, x, y, "rnn")
    assert np.all(np.diff(curve) > 0) if scale < 1 else np.all(np.diff(curve) < 0)


def test_truncated_bptt_cuts_the_gradient_at_chunk_boundaries():
    steps, chunk = 9, 3
    inputs = keras.Input((steps, F))
    wrapper = TruncatedBPTT(keras.layers.RNN(ElmanCell(U), name="rnn"), chunk_length=chunk)
    model = keras.Model(inputs, keras.layers.Dense(2)(wrapper(inputs)))
    model.compile("sgd", "mse")
    randomize(model)
    plain_inputs = keras.Input((steps, F))
    plain = keras.Model(
        plain_inputs, keras.layers.Dense(2)(keras.layers.RNN(ElmanCell(U))(plain_inputs))
    )
    plain.compile("sgd", "mse")
    plain.set_weights(model.get_weights())
    x, y = rng.normal(size=(B, steps, F)), rng.normal(size=(B, 2))

    truncated = hidden_state_gradient_norms(model, x, y, "truncated_rnn", per_example=True)
    full = hidden_state_gradient_norms(plain, x, y, plain.layers[1], per_example=True)
    assert np.all(truncated[:, : steps - chunk] == 0.0)
    assert np.all(full[:, : steps - chunk] > 1e-6)
    np.testing.assert_allclose(truncated[:, -chunk:], full[:, -chunk:], rtol=1e-5)
    # The wrapped layer holds the weights but its loop never runs.
    with pytest.raises(ValueError, match="never runs the loop of 'truncated_bptt/rnn'"):
        hidden_state_gradient_norms(model, x, y, "rnn")


def test_stateful_states_are_used_and_restored():
    inputs = keras.Input(batch_shape=(B, T, F))
    rnn = keras.layers.RNN(ElmanCell(U), stateful=True, name="rnn")
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(rnn(inputs)))
    model.compile("sgd", "mse")
    randomize(model)
    state = rng.normal(size=(B, U)).astype("float32")
    rnn.states[0].assign(state)
    x, y = data(return_sequences=False)
    result = hidden_state_gradient_norms(model, x, y, "rnn", per_example=True)
    np.testing.assert_array_equal(rnn.states[0].numpy(), state)

    eps = zeros_eps(B, T, U)
    step = elman_step(*weights_of(rnn.cell))
    with tf.GradientTape() as tape:
        tape.watch(eps)
        h = tf.constant(state)
        for t in range(T):
            h = step(x[:, t], [h])[0] + eps[t]
        loss = mse_head(model, y)(h)
    np.testing.assert_allclose(result, per_example_norms(tape.gradient(loss, eps)), rtol=2e-5)


def test_a_layer_run_twice_is_rejected():
    rnn = keras.layers.RNN(ElmanCell(U), name="rnn")
    first, second = keras.Input((T, F)), keras.Input((T, F))
    model = keras.Model([first, second], keras.layers.Add()([rnn(first), rnn(second)]))
    model.compile("sgd", "mse")
    x = rng.normal(size=(B, T, F))
    with pytest.raises(ValueError, match="'rnn' 2 times"):
        hidden_state_gradient_norms(model, [x, x], np.zeros((B, U)), "rnn")


# === The callback ===


def test_callback_events_equal_direct_gradients(tmp_path):
    """Scalars, images and curves at steps 1 and 3 of 4 epochs; values equal gradients of
    the hand-written loss (sample weights and an L2 regularizer included)."""
    l2 = 0.01
    rnn = keras.layers.RNN(ElmanCell(U), name="rnn")
    inputs = keras.Input((T, F))
    dense = keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(l2), name="dense")
    model = keras.Model(inputs, dense(rnn(inputs)), name="model")
    model.compile(keras.optimizers.SGD(0.05), "mse")
    randomize(model)
    x, y = rng.normal(size=(8, T, F)), rng.normal(size=(8, 1))
    probe_x, probe_y = x[:B].astype("float32"), y[:B].astype("float32")
    probe_weight = np.array([0.5, 1.0, 2.0], "float32")
    default_dir, chosen_dir = str(tmp_path / "default"), str(tmp_path / "chosen")
    loggers = [
        GradientNormLogger(
            default_dir, probe_x, probe_y, sample_weight=probe_weight, every_n_epochs=2
        ),
        GradientNormLogger(
            chosen_dir, probe_x, probe_y, layer_names=["rnn", "dense"], recurrent_layer_names=[]
        ),
    ]
    model.fit(x, y, batch_size=4, epochs=4, callbacks=loggers, verbose=0)

    # Gradients of the final weights (those of the last `on_epoch_end`), by hand.
    kernel, recurrent_kernel, bias = (tf.Variable(w) for w in weights_of(rnn.cell))
    dense_kernel, dense_bias = (tf.Variable(w.numpy()) for w in dense.weights)
    eps = zeros_eps(B, T, U)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(eps)
        h = unroll(elman_step(kernel, recurrent_kernel, bias), probe_x, eps)[-1]
        per_example = tf.reduce_mean(tf.square(h @ dense_kernel + dense_bias - probe_y), -1)
        loss = tf.reduce_mean(per_example * probe_weight) + l2 * tf.reduce_sum(dense_kernel**2)
    squares = {
        name: sum(float(tf.reduce_sum(g**2)) for g in tape.gradient(loss, variables))
        for name, variables in (
            ("rnn/elman_cell", [kernel, recurrent_kernel, bias]),
            ("dense", [dense_kernel, dense_bias]),
        )
    }
    expected_curve = per_example_norms(tape.gradient(loss, eps)).mean(axis=0)

    events = read_events(default_dir)
    assert set(events) == {
        "gradient_norm/global",
        "gradient_norm/rnn/elman_cell",
        "gradient_norm/dense",
        "hidden_state_gradient/rnn",
        "hidden_state_gradient_values/rnn",
    }
    for tag, values in events.items():
        assert [step for step, _ in values] == [1, 3], tag
    for name, square in squares.items():
        np.testing.assert_allclose(
            events[f"gradient_norm/{name}"][-1][1], np.sqrt(square), rtol=2e-5
        )
    np.testing.assert_allclose(
        events["gradient_norm/global"][-1][1], np.sqrt(sum(squares.values())), rtol=2e-5
    )
    curve = events["hidden_state_gradient_values/rnn"][-1][1]
    assert curve.shape == (T,) and curve.dtype == np.float32
    np.testing.assert_allclose(curve, expected_curve, rtol=2e-5)
    # Each curve is its epoch's: the weights moved between steps 1 and 3.
    assert not np.allclose(events["hidden_state_gradient_values/rnn"][0][1], curve)
    width, height, png = events["hidden_state_gradient/rnn"][-1][1]
    image = tf.io.decode_png(png).numpy()
    assert (int(width), int(height)) == (module.IMAGE_WIDTH, module.IMAGE_HEIGHT) == (320, 240)
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    assert len(np.unique(image.reshape(-1, 3), axis=0)) >= 3  # background, grid, line

    chosen = read_events(chosen_dir)
    assert set(chosen) == {"gradient_norm/global", "gradient_norm/rnn", "gradient_norm/dense"}
    assert [step for step, _ in chosen["gradient_norm/rnn"]] == [0, 1, 2, 3]
    np.testing.assert_allclose(  # no sample weights here: only the layer grouping is compared
        chosen["gradient_norm/rnn"][-1][1] ** 2 + chosen["gradient_norm/dense"][-1][1] ** 2,
        chosen["gradient_norm/global"][-1][1] ** 2,
        rtol=1e-5,
    )


def test_rnn_causal_lm_events_equal_hand_written_lstm_stack(tmp_path):
    """Driven through the callback hooks (`fit` is covered above); left padding included."""
    config = {"vocabulary_size": 11, "embedding_dim": 6, "hidden_dim": 8, "num_layers": 2}
    model = RNNCausalLM(RNNBackbone(**config))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tokens = rng.integers(1, 11, size=(B, 8)).astype("int32")  # ids repeat
    tokens[0, :2] = 0  # left padding: masked in the LSTMs and in the loss
    probe_x, probe_y = tokens[:, :-1], tokens[:, 1:]
    logger = GradientNormLogger(str(tmp_path), probe_x, probe_y)
    logger.set_model(model)
    logger.on_train_begin()
    logger.on_epoch_end(0)
    randomize(model)
    logger.on_epoch_end(1)
    logger.on_train_end()

    backbone = model.backbone
    table = tf.Variable(backbone.token_embedding.embeddings.numpy())
    layers = backbone.recurrent_layers
    cells = [[tf.Variable(w) for w in weights_of(layer.cell)] for layer in layers]
    readout = [tf.Variable(w.numpy()) for w in model.output_dense.weights]
    steps, hidden_dim = probe_x.shape[1], config["hidden_dim"]
    eps = [zeros_eps(B, steps, hidden_dim) for _ in cells]
    mask = tf.constant(probe_x != 0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(eps)
        sequence = tf.gather(table, probe_x)
        for weights, layer_eps in zip(cells, eps):
            outputs = unroll(lstm_step(*weights), sequence, layer_eps, 2, mask=mask)
            sequence = tf.stack(outputs, axis=1)
        logits = sequence @ readout[0] + readout[1]
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=probe_y, logits=logits)
        weight = tf.cast(mask, losses.dtype)  # the mean over real steps
        loss = tf.reduce_sum(losses * weight) / tf.reduce_sum(weight)

    def norm(variables):
        # The embedding's gradient is IndexedSlices with repeated ids: densify (sum) first.
        return np.sqrt(
            sum(
                float(tf.reduce_sum(tf.convert_to_tensor(g) ** 2))
                for g in tape.gradient(loss, variables)
            )
        )

    events = read_events(str(tmp_path))
    # Layers are named by their path: the backbone's under "rnn_backbone/".
    expected_scalars = {
        "rnn_backbone/token_embedding": norm([table]),
        "rnn_backbone/recurrent_layer_0/recurrent_layer_0_cell": norm(cells[0]),
        "rnn_backbone/recurrent_layer_1/recurrent_layer_1_cell": norm(cells[1]),
        "output_dense": norm(readout),
        "global": norm([table, *cells[0], *cells[1], *readout]),
    }
    assert {tag for tag in events if tag.startswith("gradient_norm/")} == {
        f"gradient_norm/{name}" for name in expected_scalars
    }
    for name, value in expected_scalars.items():
        [first, (step, logged)] = events[f"gradient_norm/{name}"]
        assert (first[0], step) == (0, 1)
        np.testing.assert_allclose(logged, value, rtol=2e-5)
    for index, layer_eps in enumerate(eps):
        name = f"rnn_backbone/recurrent_layer_{index}"
        [first, (step, curve)] = events[f"hidden_state_gradient_values/{name}"]
        expected = per_example_norms(tape.gradient(loss, layer_eps))
        assert expected[0, 0] == expected[0, 1] == 0.0 and np.all(expected[:, 2:] > 0)
        np.testing.assert_allclose(curve, expected.mean(axis=0), rtol=2e-5)
        assert not np.allclose(first[1], curve)
        assert f"hidden_state_gradient/{name}" in events


def test_callback_default_finds_nested_rnns_that_run(tmp_path):
    """Bidirectional's two layers and TruncatedBPTT's inner loop, not its idle wrapped RNN;
    driven through the callback hooks, without `fit`."""
    inputs = keras.Input((T, F))
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(U, return_sequences=True))(inputs)
    hidden = TruncatedBPTT(keras.layers.RNN(ElmanCell(U), name="rnn"), chunk_length=2)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.compile("sgd", "mse")
    x, y = data(return_sequences=False)
    logger = GradientNormLogger(str(tmp_path), x, y)
    logger.set_model(model)
    logger.on_train_begin()
    logger.on_epoch_end(0)
    logger.on_train_end()
    tags = {
        tag.split("/", 1)[1]
        for tag in read_events(str(tmp_path))
        if tag.startswith("hidden_state_gradient_values/")
    }
    assert tags == {
        "bidirectional/forward_lstm",
        "bidirectional/backward_lstm",
        "truncated_bptt/truncated_rnn",
    }
    # The fused cuDNN switch and the loop are the layers' own again.
    for layer in model.layers[1].forward_layer, model.layers[1].backward_layer:
        assert "inner_loop" not in vars(layer) and layer.use_cudnn == "auto"


def test_tags_do_not_depend_on_automatic_names(tmp_path):
    """The same model built twice in one process: Keras numbers the second one's automatic
    names on (`sequential_1`, `rnn_1`, `elman_cell_1`, `dense_1`); tags stay the same."""
    x, y = data(return_sequences=False)
    names, logged = [], []
    for run in range(2):
        model = keras.Sequential(
            [keras.Input((T, F)), keras.layers.RNN(ElmanCell(U)), keras.layers.Dense(2)]
        )
        model.compile("sgd", "mse")
        if run == 0:
            weights = randomize(model).get_weights()
        model.set_weights(weights)
        rnn, dense = model.layers
        names.append([model.name, rnn.name, rnn.cell.name, dense.name])
        log_dir = str(tmp_path / f"run_{run}")
        logger = GradientNormLogger(log_dir, x, y)
        logger.set_model(model)
        logger.on_train_begin()
        logger.on_epoch_end(0)
        logger.on_train_end()
        logged.append(read_events(log_dir))
    assert names == [
        ["sequential", "rnn", "elman_cell", "dense"],
        ["sequential_1", "rnn_1", "elman_cell_1", "dense_1"],
    ]
    assert (
        set(logged[0])
        == set(logged[1])
        == {
            "gradient_norm/global",
            "gradient_norm/rnn/elman_cell",
            "gradient_norm/dense",
            "hidden_state_gradient/rnn",
            "hidden_state_gradient_values/rnn",
        }
    )
    for tag, [(step, value)] in logged[0].items():  # same weights, same values
        [(other_step, other)] = logged[1][tag]
        assert step == other_step == 0
        if tag.startswith("hidden_state_gradient/"):
            np.testing.assert_array_equal(value, other)  # the same PNG
        else:
            np.testing.assert_allclose(other, value, rtol=1e-6)


def test_curve_images_are_line_charts():
    """The chart: a log-scale line of the positive values, triangles for the rest."""
    for values in (
        2.0 ** np.arange(12.0),  # growing geometrically
        np.array([0.0, 0.0, 1e-3, np.nan, 2e-2, 1.0]),
        np.zeros(4),
        np.array([3.0]),
        np.linspace(1.0, 2.0, 200),  # a line without dots
    ):
        image = module._render_curve(values)
        assert image.shape == (240, 320, 3) and image.dtype == np.uint8
        colours = image.reshape(-1, 3).astype(int)
        blue = np.sum(np.all(np.abs(colours - [31, 119, 180]) < 12, axis=1))  # the line
        red = np.sum(np.all(np.abs(colours - [214, 39, 40]) < 12, axis=1))  # the triangles
        positive = np.isfinite(values) & (values > 0)
        assert (blue > 0) == positive.any() and (red > 0) == (not positive.all())
        assert np.mean(image == 255) > 0.5  # a white background with labels and a grid
    rising, falling = module._render_curve([1e-3, 1e-2, 1e-1]), module._render_curve([1e-1, 1e-3])
    assert not np.array_equal(rising, falling)


# === Arguments and errors ===


def _model_with_rnn():
    inputs = keras.Input((T, F))
    model = keras.Model(
        inputs, keras.layers.Dense(2, name="dense")(keras.layers.SimpleRNN(U, name="rnn")(inputs))
    )
    model.compile("sgd", "mse")
    return model


CONSTRUCTOR_ERRORS = [
    ({"log_dir": 3}, TypeError, "log_dir=3"),
    ({"log_dir": ""}, ValueError, "log_dir=''"),
    ({"x": None}, TypeError, "x=None"),
    ({"y": np.zeros((2, 2))}, ValueError, r"batch size.*y batch sizes \[2\]"),
    ({"sample_weight": np.ones(5)}, ValueError, r"sample_weight batch sizes \[5\]"),
    ({"sample_weight": 1.0}, ValueError, "sample_weight"),
    ({"every_n_epochs": 0}, ValueError, "every_n_epochs=0"),
    ({"every_n_epochs": True}, TypeError, "every_n_epochs=True"),
    ({"layer_names": "dense"}, TypeError, "layer_names='dense'"),
    ({"layer_names": ["dense", 1]}, TypeError, r"layer_names=\['dense', 1\]"),
    ({"recurrent_layer_names": "rnn"}, TypeError, "recurrent_layer_names='rnn'"),
    ({"recurrent_layer_names": [""]}, TypeError, "recurrent_layer_names"),
]


def test_constructor_validation():
    # One test for all cases: each parametrized test would pay the per-test clear_session.
    arguments = {"log_dir": "logs", "x": np.zeros((B, T, F)), "y": np.zeros((B, 2))}
    for kwargs, error, match in CONSTRUCTOR_ERRORS:
        with pytest.raises(error, match=match):
            GradientNormLogger(**{**arguments, **kwargs})


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"layer_names": ["nope"]},
            r"layer_names.*'rnn', 'rnn/simple_rnn_cell' \(simple_rnn_cell\), 'dense'.*'nope'",
        ),
        ({"recurrent_layer_names": ["dense"]}, r"recurrent_layer_names.*RNN layers.*'rnn'"),
    ],
)
def test_unknown_names_list_the_available_layers(tmp_path, kwargs, match):
    logger = GradientNormLogger(str(tmp_path), np.zeros((B, T, F)), np.zeros((B, 2)), **kwargs)
    logger.set_model(_model_with_rnn())
    with pytest.raises(ValueError, match=match):
        logger.on_train_begin()


def test_ambiguous_names_and_models_without_rnn(tmp_path):
    bidirectional = keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.Bidirectional(keras.layers.LSTM(U)),
            keras.layers.Dense(2),
        ]
    )
    bidirectional.compile("sgd", "mse")
    x, y = np.zeros((B, T, F)), np.zeros((B, 2))
    logger = GradientNormLogger(str(tmp_path), x, y, layer_names=["lstm_cell"])
    logger.set_model(bidirectional)
    with pytest.raises(ValueError, match="several layers are named 'lstm_cell'.*forward_lstm"):
        logger.on_train_begin()

    dense_only = keras.Sequential([keras.Input((T, F)), keras.layers.Dense(2)])
    dense_only.compile("sgd", "mse")
    logger = GradientNormLogger(
        str(tmp_path), x, np.zeros((B, T, 2)), recurrent_layer_names=["rnn"]
    )
    logger.set_model(dense_only)
    with pytest.raises(ValueError, match=r"no `keras.layers.RNN`.*recurrent_layer_names=\['rnn'\]"):
        logger.on_train_begin()
    # Without an explicit request, a model without RNNs logs weight-gradient norms only.
    logger = GradientNormLogger(str(tmp_path / "dense"), x, np.zeros((B, T, 2)))
    logger.set_model(dense_only)
    logger.on_train_begin()
    logger.on_epoch_end(0)
    logger.on_train_end()
    # Tagged by the layer's path in the model, not by Keras' names and path.
    assert dense_only.layers[0].path == "sequential_1/dense_1"
    assert set(read_events(str(tmp_path / "dense"))) == {
        "gradient_norm/global",
        "gradient_norm/dense",
    }


def test_function_argument_errors():
    model = _model_with_rnn()
    x, y = np.zeros((B, T, F)), np.zeros((B, 2))
    with pytest.raises(TypeError, match="rnn_layer=3"):
        hidden_state_gradient_norms(model, x, y, 3)
    with pytest.raises(
        ValueError, match=r"among the RNN layers.*: 'rnn'. Received: rnn_layer='other'"
    ):
        hidden_state_gradient_norms(model, x, y, keras.layers.SimpleRNN(2, name="other"))
    with pytest.raises(TypeError, match="per_example=1"):
        hidden_state_gradient_norms(model, x, y, "rnn", per_example=1)
    uncompiled = keras.Sequential([keras.Input((T, F)), keras.layers.SimpleRNN(U, name="rnn")])
    with pytest.raises(ValueError, match="must be compiled"):
        hidden_state_gradient_norms(uncompiled, x, np.zeros((B, U)), "rnn")


def test_get_config_round_trip(tmp_path):
    logger = GradientNormLogger(
        str(tmp_path),
        np.ones((2, 3), "float32"),
        np.zeros((2, 1)),
        every_n_epochs=3,
        recurrent_layer_names=["rnn"],
    )
    config = logger.get_config()
    assert json.loads(json.dumps(config)) == config
    assert set(config) == set(inspect.signature(GradientNormLogger).parameters)
    restored = GradientNormLogger.from_config(config)
    assert restored.get_config() == config
    assert restored.x.dtype == np.float32 and restored.y.dtype == np.float64
    np.testing.assert_array_equal(restored.x, logger.x)
    assert keras.saving.get_registered_name(GradientNormLogger) == "keras_seq>GradientNormLogger"


def test_docstring_examples_run():
    """The examples, with `keras_seq.callbacks` seen through a stand-in until the package
    exports the callback (tests/test_docstring_examples.py then runs them too)."""
    stand_in = types.SimpleNamespace(
        layers=keras_seq.layers,
        callbacks=types.SimpleNamespace(GradientNormLogger=GradientNormLogger),
    )
    for obj in (GradientNormLogger, hidden_state_gradient_norms):
        [code] = re.findall(r"```python\n(.*?)```", inspect.getdoc(obj), re.DOTALL)
        exec(compile(code, obj.__name__, "exec"), {"np": np, "keras": keras, "keras_seq": stand_in})
