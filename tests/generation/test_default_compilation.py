"""What `jit_compile=None` resolves to on TensorFlow: XLA, for any number of sequences; and
one sequence decoded under XLA (where `keras_seq.ops.dense_matmul` takes its one-row form on
CPU) gives the plain graph's tokens."""

import importlib

import keras
import numpy as np
import pytest

from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM

# The module, not the function `keras_seq.generation.generate` that shadows it.
generate_module = importlib.import_module("keras_seq.generation.generate")


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


def test_one_sequence_decodes_with_xla_to_the_graph_tokens(model, compiled_with):
    xla = _generate(model, 1)
    assert compiled_with == [True]
    # The same tokens as a plain graph's (`jit_compile=False`), whose products are plain.
    graph = _generate(model, 1, jit_compile=False)
    assert compiled_with[1:] == [False]
    np.testing.assert_array_equal(xla, graph)
    # Streaming compiles its steps the same way.
    del compiled_with[:]
    streamed = []
    _generate(model, 1, streamer=streamed.append)
    assert compiled_with and set(compiled_with) == {True}
    np.testing.assert_array_equal(np.concatenate(streamed), xla[0, 3:])


@pytest.mark.parametrize(
    "batch, kwargs",
    [
        (2, {}),
        (1, {"strategy": "beam", "num_beams": 2}),
        (1, {"strategy": "top_k", "top_k": 3, "seed": 1, "num_return_sequences": 2}),
    ],
    ids=["batch_2", "two_beams", "two_returned_sequences"],
)
def test_several_sequences_decode_with_xla(model, compiled_with, batch, kwargs):
    _generate(model, batch, **kwargs)
    assert compiled_with == [True]
