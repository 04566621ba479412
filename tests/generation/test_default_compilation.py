"""What `jit_compile=None` resolves to on TensorFlow: XLA, except for one sequence of a large
model on a machine without a GPU (`keras_seq.generation.compiling.default_jit_compile`)."""

import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.generation import compiling
from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM

# The module, not the function `keras_seq.generation.generate` that shadows it.
generate_module = importlib.import_module("keras_seq.generation.generate")

pytestmark = pytest.mark.skipif(
    bool(tf.config.list_logical_devices("GPU")), reason="the exception is for CPU-only machines"
)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    backbone = GPTBackbone(
        vocabulary_size=30,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        sequence_length=12,
        dropout=0.0,
    )
    return GPTCausalLM(backbone)


@pytest.fixture
def compiled_with(monkeypatch):
    """The `jit_compile` each newly compiled decoding function got."""
    recorded = []
    original = generate_module.compile_decoding

    def recording(function, models, samplers, jit_compile):
        recorded.append(jit_compile)
        return original(function, models, samplers, jit_compile)

    monkeypatch.setattr(generate_module, "compile_decoding", recording)
    return recorded


def _generate(model, batch, **kwargs):
    # A fresh cache of compiled functions, so that each call compiles and is recorded.
    model.__dict__.pop("_keras_seq_generate_functions", None)
    prompt = np.arange(1, 1 + 3 * batch).reshape(batch, 3) % 29 + 1
    return np.asarray(model.generate(prompt, 4, stop_token_id=None, **kwargs))


def test_one_sequence_of_a_large_model_decodes_as_a_plain_graph(model, compiled_with, monkeypatch):
    weights = model.count_params()
    monkeypatch.setattr(compiling, "XLA_CPU_ONE_ROW_WEIGHTS", weights)
    graph = _generate(model, 1)
    assert compiled_with == [False]
    # The same tokens as XLA's, which an explicit `jit_compile=True` still gets.
    xla = _generate(model, 1, jit_compile=True)
    assert compiled_with[1:] == [True]
    np.testing.assert_array_equal(graph, xla)
    # Streaming compiles its steps by the same rule.
    del compiled_with[:]
    streamed = []
    _generate(model, 1, streamer=streamed.append)
    assert compiled_with and set(compiled_with) == {False}
    np.testing.assert_array_equal(np.concatenate(streamed), graph[0, 3:])


@pytest.mark.parametrize(
    "batch, kwargs",
    [
        (2, {}),
        (1, {"strategy": "beam", "num_beams": 2}),
        (1, {"strategy": "top_k", "top_k": 3, "seed": 1, "num_return_sequences": 2}),
    ],
    ids=["batch_2", "two_beams", "two_returned_sequences"],
)
def test_several_sequences_decode_with_xla(model, compiled_with, monkeypatch, batch, kwargs):
    monkeypatch.setattr(compiling, "XLA_CPU_ONE_ROW_WEIGHTS", model.count_params())
    _generate(model, batch, **kwargs)
    assert compiled_with == [True]


def test_a_model_below_the_limit_decodes_with_xla(model, compiled_with, monkeypatch):
    monkeypatch.setattr(compiling, "XLA_CPU_ONE_ROW_WEIGHTS", model.count_params() + 1)
    _generate(model, 1)
    assert compiled_with == [True]
