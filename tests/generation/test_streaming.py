"""Streaming: each step's tokens reach the caller as they are chosen, and end on the tokens of
a call without streaming."""

import keras
import numpy as np
import pytest

from keras_seq.generation import generate
from keras_seq.generation import stream_generate
from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM
from tests.generation.toy_model import ToyLanguageModel

# Backend-neutral: also run on JAX in CI (see conftest.py).
pytestmark = pytest.mark.backends

PROMPTS = np.array([[1, 2, 1], [3, 0, 3], [2, 2, 0]])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stop_token_id": 2},
        {"strategy": "top_k", "top_k": 3, "seed": 4},
        {"strategy": "top_p", "top_p": 0.8, "seed": 1, "repetition_penalty": 1.4},
        # Several steps per compiled call, the last call shorter (6 = 1 + 4 + 1).
        {"stream_interval": 4},
        {"stop_token_id": 2, "stream_interval": 2},
    ],
)
def test_streamed_tokens_are_the_tokens_of_a_plain_call(kwargs):
    model = ToyLanguageModel(vocabulary_size=6, seed=3)
    plain = {k: v for k, v in kwargs.items() if k != "stream_interval"}
    expected = np.asarray(generate(model, PROMPTS, 6, jit_compile=False, **plain))
    steps = []
    tokens = generate(model, PROMPTS, 6, jit_compile=False, streamer=steps.append, **kwargs)
    np.testing.assert_array_equal(np.asarray(tokens), expected)
    streamed = np.stack(steps, axis=1)
    np.testing.assert_array_equal(streamed, expected[:, 3 : 3 + streamed.shape[1]])
    iterated = np.stack(list(stream_generate(model, PROMPTS, 6, jit_compile=False, **kwargs)), 1)
    np.testing.assert_array_equal(iterated, streamed)


def test_streaming_ends_when_every_row_has_stopped():
    model = ToyLanguageModel(vocabulary_size=6, seed=3)
    free = np.asarray(generate(model, PROMPTS, 6, jit_compile=False))
    stops = sorted({int(token) for token in free[:, 4]})  # Every row's second new token.
    steps = list(stream_generate(model, PROMPTS, 6, stop_token_ids=stops, jit_compile=False))
    assert len(steps) <= 2


def _tiny_gpt():
    keras.utils.set_random_seed(0)
    return GPTCausalLM(
        GPTBackbone(
            vocabulary_size=30,
            num_layers=1,
            num_heads=2,
            hidden_dim=16,
            intermediate_dim=32,
            sequence_length=32,
        )
    )


def test_a_gpt_streams_prompts_of_different_lengths_under_xla():
    model = _tiny_gpt()
    rows = [[3, 5, 7], [2, 9, 11, 4, 6]]
    for interval in (1, 3):
        steps = []
        outputs = model.generate(rows, 5, streamer=steps.append, stream_interval=interval)
        assert outputs == model.generate(rows, 5)
        streamed = np.stack(steps, axis=1)
        assert [row[len(prompt) :] for row, prompt in zip(outputs, rows)] == streamed.tolist()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"strategy": "beam", "streamer": print}, ValueError, "beam"),
        ({"streamer": "stdout"}, TypeError, "streamer"),
        ({"streamer": print, "stop_token_id": 99}, ValueError, "stop_token_id=99"),
        ({"stream_interval": 2}, ValueError, "stream_interval=2, streamer=None"),
        ({"streamer": print, "stream_interval": 0}, ValueError, "stream_interval=0"),
    ],
)
def test_bad_streaming_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        generate(ToyLanguageModel(), PROMPTS, 3, jit_compile=False, **kwargs)


def test_an_error_while_streaming_reaches_the_consumer():
    with pytest.raises(ValueError, match="top_p"):
        list(stream_generate(ToyLanguageModel(), PROMPTS, 3, strategy="top_p", top_p=2.0))


@pytest.mark.parametrize("run_eagerly", [False, True])
def test_a_streamer_error_stops_decoding_and_is_raised_as_it_is(run_eagerly):
    class Enough(Exception):
        pass

    model = ToyLanguageModel(vocabulary_size=6, seed=3)
    model.run_eagerly = run_eagerly
    received = []

    def streamer(tokens):
        received.append(tokens)
        if len(received) == 3:
            raise Enough("three is enough")

    with pytest.raises(Enough, match="three is enough"):
        generate(model, PROMPTS, 6, jit_compile=False, streamer=streamer)
    assert len(received) == 3
    # Nothing is left behind: the next stream runs to the end, with arrays of its own.
    steps = []
    tokens = generate(model, PROMPTS, 6, jit_compile=False, streamer=steps.append)
    np.testing.assert_array_equal(np.stack(steps, axis=1), np.asarray(tokens)[:, 3:])
    assert all(step.flags.owndata for step in steps)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA bridge")
def test_a_streamed_step_compiles_once_for_every_step_count(monkeypatch):
    # TensorFlow's XLA bridge compiles in a `Slice` offset that derives from an argument,
    # once per value: a streamed step sliced its position row at the step count, and so was
    # compiled again for every token. The step's program must not depend on the count.
    import importlib

    generate_module = importlib.import_module("keras_seq.generation.generate")
    original = generate_module._streaming_decode
    captured = {}

    def capture(functions, max_new_tokens, streamer):
        first, step = functions

        def capturing_first(inputs):
            captured["state"] = first(inputs)
            return captured["state"]

        captured["step"] = step
        return original((capturing_first, step), max_new_tokens, streamer)

    monkeypatch.setattr(generate_module, "_streaming_decode", capture)
    model = _tiny_gpt()
    model.generate([[3, 5, 7]], 4, streamer=lambda tokens: None)
    step = captured["step"]
    state, prefix, prefix_mask = captured["state"]
    later = (state[0] + 1, *state[1:])

    def hlo(step_state):
        return step.experimental_get_compiler_ir(step_state, prefix, prefix_mask)(stage="hlo")

    assert hlo(state) == hlo(later)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA bridge")
def test_stop_string_windows_compile_once_for_every_step():
    import tensorflow as tf

    from keras_seq.generation.stop_strings import StopStringMatcher

    matcher = StopStringMatcher(["ab"], [b"a", b"b", b"c"])
    prefix = tf.constant([[0, 1, 2]], "int32")
    prefix_mask = tf.constant([[False, True, True]])
    tokens = tf.constant([[2, 0, 1, 0]], "int32")
    window = tf.function(matcher.recent_tokens, jit_compile=True)
    history = np.concatenate([[matcher.filler_id] * matcher.window, [matcher.filler_id, 1, 2]])
    history = np.concatenate([history, tokens.numpy()[0]])
    for step in range(4):
        start = 3 + step + 1
        np.testing.assert_array_equal(
            window(prefix, prefix_mask, tokens, tf.constant(step))[0],
            history[start : start + matcher.window],
        )

    def hlo(step):
        return window.experimental_get_compiler_ir(prefix, prefix_mask, tokens, tf.constant(step))(
            stage="hlo"
        )

    assert hlo(0) == hlo(1)
