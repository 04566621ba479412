"""Checks run in a process on another Keras backend (JAX, PyTorch) by tests/test_backends.py.

The tests' own process runs TensorFlow (conftest.py), so each check here runs in a fresh
process started with `KERAS_BACKEND` set:

    KERAS_BACKEND=jax python -m tests.backend_probe checks
    KERAS_BACKEND=jax python -m tests.backend_probe load DIRECTORY

    KERAS_BACKEND=jax python -m tests.backend_probe generate DIRECTORY

`checks` runs `CHECKS` and prints, after `RESULTS_PREFIX`, one JSON object `{check name: "ok"
or the error}`. `load` reloads every `<family>.keras` file of DIRECTORY (written on TensorFlow
with its inputs and outputs, `<family>.npz`) and prints likewise `{family: the largest
absolute difference of its outputs, or the error}`. Each check compares with an independent
reference: Keras' own layer given the same weights, a fresh metric, the plain attention path,
the cell stepped in a Python loop. `generate` reloads the generative families of DIRECTORY
(`<family>.keras` and `<family>.generated.npz`, what `generation_outputs` gave on TensorFlow)
and prints `{family: {output: "equal" or the number of differing tokens, or the largest
absolute difference of scores and attention maps}}`.
"""

import json
import os
import sys
import traceback

import keras
import numpy as np
from keras import ops

from keras_seq import layers
from keras_seq.callbacks import hidden_state_gradient_norms
from keras_seq.losses import SequenceCrossEntropy
from keras_seq.metrics import Perplexity

# Starts the line of results on stdout (Keras and TensorFlow may print other lines).
RESULTS_PREFIX = "RESULTS "
rng = np.random.default_rng(5)


def _random_weights(layer):
    return [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]


def check_gru_cell_equals_keras_gru():
    # GRUCell(reset_after=True) splits a (2, 3U) bias variable, which JAX and PyTorch could
    # not unstack.
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    mask = np.ones((3, 5), bool)
    mask[1, 3:] = False
    ours = keras.layers.RNN(layers.GRUCell(6), return_sequences=True)
    theirs = keras.layers.GRU(6, return_sequences=True)
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.set_weights(_random_weights(theirs))
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(
        ops.convert_to_numpy(ours(x, mask=mask)),
        ops.convert_to_numpy(theirs(x, mask=mask)),
        atol=1e-5,
    )


def check_perplexity_reset_state():
    labels = rng.integers(1, 7, size=(2, 4))
    logits = rng.normal(size=(2, 4, 7)).astype("float32")
    metric = Perplexity(ignore_index=0)
    metric.update_state(labels, rng.normal(size=(2, 4, 7)).astype("float32"))
    metric.reset_state()
    assert float(ops.convert_to_numpy(metric.result())) == 0.0
    metric.update_state(labels, logits)
    fresh = Perplexity(ignore_index=0)
    fresh.update_state(labels, logits)
    np.testing.assert_allclose(
        ops.convert_to_numpy(metric.result()), ops.convert_to_numpy(fresh.result()), rtol=1e-6
    )


def _fit_one_step(model, x, y):
    """Weights after one SGD step on the mean squared error (compiled, as `fit` is)."""
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(x, y, batch_size=len(y), epochs=1, verbose=0, shuffle=False)
    return model.get_weights()


def _assert_same_step(make_model, reference_model, x, y):
    """`make_model()` and `reference_model()` (same weights) give the same outputs, and the
    same weights after one training step, which changed them."""
    ours, theirs = make_model(), reference_model()
    theirs.set_weights(ours.get_weights())
    start = ours.get_weights()
    np.testing.assert_allclose(
        ops.convert_to_numpy(ours(x)), ops.convert_to_numpy(theirs(x)), atol=1e-5
    )
    ours_after, theirs_after = _fit_one_step(ours, x, y), _fit_one_step(theirs, x, y)
    assert any(not np.allclose(a, b) for a, b in zip(start, ours_after)), "no weight changed"
    for a, b in zip(ours_after, theirs_after):
        np.testing.assert_allclose(a, b, atol=1e-5)


def check_chunked_attention_trains_like_plain_path():
    # The memory-efficient path loops over chunks, which JAX could not differentiate.
    x = rng.normal(size=(2, 7, 8)).astype("float32")
    y = rng.normal(size=(2, 7, 8)).astype("float32")

    def model(query_chunk_size):
        inputs = keras.Input((7, 8))
        attention = layers.MultiHeadAttention(
            num_heads=2, key_dim=4, query_chunk_size=query_chunk_size, key_chunk_size=3
        )
        return keras.Model(inputs, attention(inputs, inputs, use_causal_mask=True))

    _assert_same_step(lambda: model(2), lambda: model(None), x, y)


def check_chunked_attention_gradients_equal_plain_path():
    # The custom gradient of the memory-efficient path (loops inside its forward and
    # backward passes) against autodiff of the plain path: masks, a bias, causal, chunks that
    # do not divide the lengths.
    from keras_seq.ops import attention

    q, k, v = (rng.normal(size=(2, 7, 2, 4)).astype("float32") for _ in range(3))
    mask = rng.random((2, 1, 7, 7)) > 0.3
    mask[0, 0, 3] = False  # A query with no key.
    bias = rng.normal(size=(1, 2, 7, 7)).astype("float32")
    weights = np.linspace(0.5, 1.5, 4).astype("float32")

    def plain(q, k, v, bias):
        causal = attention.causal_mask(7, 7)
        logits = attention.attention_logits(q, k, 0.5, bias)
        probabilities = attention.attention_probabilities(logits, ops.logical_and(mask, causal))
        return ops.einsum("bnts,bsnv->btnv", probabilities, v)

    def chunked(q, k, v, bias):
        return attention.chunked_attention(
            q, k, v, mask, bias, is_causal=True, query_chunk_size=3, key_chunk_size=2
        )

    def loss(fn):
        return lambda *inputs: ops.sum(ops.square(fn(*inputs)) * ops.convert_to_tensor(weights))

    expected = _gradients(loss(plain), [q, k, v, bias])
    actual = _gradients(loss(chunked), [q, k, v, bias])
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, atol=1e-4)
    assert np.all(actual[0][0, 3] == 0.0)


def _gradients(fn, inputs):
    """d fn(*inputs) / d inputs on the current backend, as NumPy arrays."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grads = jax.grad(fn, argnums=tuple(range(len(inputs))))(*inputs)
    elif backend == "torch":
        import torch

        tensors = [torch.tensor(x, requires_grad=True) for x in inputs]
        fn(*tensors).backward()
        grads = [t.grad for t in tensors]
    else:
        import tensorflow as tf

        variables = [tf.Variable(x) for x in inputs]
        with tf.GradientTape() as tape:
            value = fn(*variables)
        grads = tape.gradient(value, variables)
    return [ops.convert_to_numpy(g) for g in grads]


class _UnrolledAttentionRNN(keras.layers.Layer):
    """The reference of `AttentionRNN(cell, return_sequences=True)`: the cell stepped over a
    static number of steps in a Python loop."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell

    def build(self, inputs_shape, memory_shape):
        self.cell.build((inputs_shape[0], inputs_shape[-1]), tuple(memory_shape))

    def call(self, inputs, memory):
        states = self.cell.get_initial_state(batch_size=ops.shape(inputs)[0])
        outputs = []
        for step in range(inputs.shape[1]):
            output, states = self.cell(inputs[:, step], states, memory=memory)
            outputs.append(output)
        return ops.stack(outputs, axis=1)


def check_attention_rnn_trains_like_unrolled_cell():
    # AttentionRNN loops over time steps, which JAX could not differentiate.
    x = [rng.normal(size=(2, 5, 3)).astype("float32"), rng.normal(size=(2, 4, 6)).astype("f4")]
    y = rng.normal(size=(2, 5, 8)).astype("float32")

    def model(unrolled):
        inputs, memory = keras.Input((5, 3)), keras.Input((4, 6))
        cell = layers.AttentionCell("lstm", units=8, attention_dim=8)
        if unrolled:
            outputs = _UnrolledAttentionRNN(cell)(inputs, memory)
        else:
            outputs = layers.AttentionRNN(cell, return_sequences=True)(inputs, memory)
        return keras.Model([inputs, memory], outputs)

    _assert_same_step(lambda: model(False), lambda: model(True), x, y)


def check_hidden_state_gradient_norms_equal_formula():
    # dL/dh_t was taken off a tf.GradientTape only. A linear RNN under a linear head: with
    # y = h_{T-1} V, h_t = x_t W + h_{t-1} U and the mean squared error,
    # dL/dh_{T-1} = dL/dy V^T and dL/dh_t = dL/dh_{t+1} U^T.
    x = rng.normal(size=(3, 6, 2)).astype("float32")
    y = rng.normal(size=(3, 1)).astype("float32")
    rnn = keras.layers.SimpleRNN(4, activation=None, use_bias=False, name="rnn")
    head = keras.layers.Dense(1, use_bias=False)
    model = keras.Sequential([keras.Input((6, 2)), rnn, head])
    model.compile(optimizer="sgd", loss="mse")
    norms = hidden_state_gradient_norms(model, x, y, "rnn", per_example=True)
    w, u = (w.astype("float64") for w in rnn.get_weights())
    (v,) = (w.astype("float64") for w in head.get_weights())
    h = np.zeros((3, 4))
    for t in range(6):
        h = x[:, t].astype("float64") @ w + h @ u
    gradient = 2.0 * (h @ v - y) / len(y) @ v.T  # (B, 4): dL/dh_5
    expected = np.zeros((3, 6))
    for t in reversed(range(6)):
        expected[:, t] = np.linalg.norm(gradient, axis=1)
        gradient = gradient @ u.T
    np.testing.assert_allclose(norms, expected, rtol=1e-4, atol=1e-7)


def check_sequence_loss_checks_ids_eagerly_and_compiles():
    # The data checks read values after tf.executing_eagerly(), True on JAX even inside
    # jax.jit, whose tracers cannot be read: `fit` / `evaluate` failed there.
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    try:
        SequenceCrossEntropy()(np.array([[1, 4, 2], [1, 7, 2]]), logits)
    except ValueError as error:
        assert "y_true[1, 1]=7" in str(error), str(error)
    else:
        raise AssertionError("no error for the token id 7 of a vocabulary of 5")
    labels = np.array([[1, 4, 2], [0, 3, 3]])
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    expected = -np.log(np.take_along_axis(probabilities, labels[..., None], axis=-1)).mean()
    model = keras.Sequential([keras.Input((3, 5)), keras.layers.Identity()])
    model.compile(loss=SequenceCrossEntropy())
    loss = model.evaluate(logits, labels, batch_size=2, verbose=0)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


CHECKS = {
    name[len("check_") :]: function
    for name, function in sorted(globals().items())
    if name.startswith("check_") and callable(function)
}


def _error(exception):
    return "".join(traceback.format_exception_only(type(exception), exception)).strip()


def run_checks():
    results = {}
    for name, check in CHECKS.items():
        keras.utils.set_random_seed(0)
        try:
            check()
            results[name] = "ok"
        except Exception as exception:  # reported, one line per check
            results[name] = _error(exception)
    return results


def load_families(directory):
    """{family: largest absolute output difference, or the error} for each saved family."""
    results = {}
    for file_name in sorted(os.listdir(directory)):
        if not file_name.endswith(".keras"):
            continue
        family = file_name[: -len(".keras")]
        try:
            model = keras.saving.load_model(os.path.join(directory, file_name))
            saved = np.load(os.path.join(directory, f"{family}.npz"))
            x = {key[2:]: saved[key] for key in saved.files if key.startswith("x_")}
            x = x[""] if list(x) == [""] else x
            outputs = keras.tree.flatten(model.predict(x, verbose=0))
            expected = [saved[f"y_{index}"] for index in range(len(outputs))]
            results[family] = max(
                float(np.max(np.abs(ops.convert_to_numpy(a) - b))) if b.size else 0.0
                for a, b in zip(outputs, expected)
            )
        except Exception as exception:
            results[family] = _error(exception)
    return results


# The families whose decoding `generation_outputs` runs.
GENERATIVE_FAMILIES = (
    "image_captioner_rnn",
    "image_captioner_transformer",
    "seq2seq_bahdanau",
    "transformer_seq2seq",
)


def generation_outputs(model, case, family):
    """{name: array}: beam search (3 beams) and greedy decoding of 6 tokens with their scores,
    and for captioners the attention map of every generated token."""
    outputs = {}
    if family.startswith("image_captioner"):
        images = case.x["images"]
        tokens, scores, attention = model.generate_with_attention(
            images, 6, strategy="beam", num_beams=3, return_scores=True
        )
        outputs.update(beam_tokens=tokens, beam_scores=scores, beam_attention=attention)
        tokens, attention = model.generate_with_attention(images, 6)
        outputs.update(greedy_tokens=tokens, greedy_attention=attention)
    else:
        source = case.x["source"]
        tokens, scores = model.generate(source, 6, strategy="beam", num_beams=3, return_scores=True)
        outputs.update(beam_tokens=tokens, beam_scores=scores)
        tokens, scores = model.generate(source, 6, return_scores=True)
        outputs.update(greedy_tokens=tokens, greedy_scores=scores)
    return {name: ops.convert_to_numpy(value) for name, value in outputs.items()}


def compare_generations(directory):
    """{family: {output: comparison}} for each family saved with its generations."""
    from tests.model_families import make_case

    results = {}
    for family in GENERATIVE_FAMILIES:
        try:
            model = keras.saving.load_model(os.path.join(directory, f"{family}.keras"))
            expected = np.load(os.path.join(directory, f"{family}.generated.npz"))
            actual = generation_outputs(model, make_case(family), family)
            report = {}
            for name in expected.files:
                a, b = actual[name], expected[name]
                if a.shape != b.shape:
                    report[name] = f"shape {a.shape} against {b.shape}"
                elif name.endswith("tokens"):
                    report[name] = "equal" if np.array_equal(a, b) else int(np.sum(a != b))
                else:
                    report[name] = float(np.max(np.abs(a - b)))
            results[family] = report
        except Exception as exception:
            results[family] = _error(exception)
    return results


if __name__ == "__main__":
    if sys.argv[1] == "checks":
        print(RESULTS_PREFIX + json.dumps(run_checks()))
    elif sys.argv[1] == "generate":
        print(RESULTS_PREFIX + json.dumps(compare_generations(sys.argv[2])))
    else:
        print(RESULTS_PREFIX + json.dumps(load_families(sys.argv[2])))
