"""Stop strings on the GPT-2 fixture: the token bytes against the real tokenizer, the
compiled matcher against a plain search, and `generate` against a cut greedy decode."""

import pathlib

import numpy as np
import pytest
from keras import ops

from keras_seq.generation import generate
from keras_seq.generation.stop_strings import StopStringMatcher
from keras_seq.generation.stop_strings import token_bytes
from keras_seq.models import GPTCausalLM

GPT2 = pathlib.Path(__file__).resolve().parents[1] / "models" / "checkpoint_fixtures" / "hf_gpt2"
PROMPT = "The cat sat on"


@pytest.fixture(scope="module")
def gpt2():
    return GPTCausalLM.from_preset(str(GPT2))


def test_token_bytes_rebuild_the_tokenizers_text(gpt2):
    pieces = token_bytes(gpt2.tokenizer)
    assert pieces[gpt2.tokenizer.end_token_id] == b""
    for text in ["The cat sat", " naïve café, 東京!", "a\nb  c"]:
        ids = gpt2.tokenizer(text)
        assert b"".join(pieces[i] for i in ids).decode("utf-8") == text


def naive_hit(pieces, ids, stop):
    """Whether `stop` ends within the last token's bytes."""
    before = b"".join(pieces[i] for i in ids[:-1])
    text = before + pieces[ids[-1]]
    return any(
        text.startswith(stop, start) and start + len(stop) > len(before)
        for start in range(len(text))
    )


def test_matcher_equals_a_plain_search(gpt2):
    pieces = token_bytes(gpt2.tokenizer)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(pieces) - 1, size=(64, 9))
    stops = []
    for row in ids[:12]:  # stop strings cut out of the rows' own bytes, across tokens
        text = b"".join(pieces[i] for i in row)
        start = int(rng.integers(0, max(1, len(text) - 6)))
        stops.append(text[start : start + int(rng.integers(1, 7))])
    stops = [s.decode("utf-8", "ignore") or "a" for s in stops]
    found = 0
    for stop in stops:
        matcher = StopStringMatcher([stop], pieces)
        padded = np.concatenate([np.full((len(ids), matcher.window), matcher.filler_id), ids], 1)
        for end in range(ids.shape[1]):  # the newest token at `end`
            window = padded[:, end + 1 : end + 1 + matcher.window]
            hits = np.asarray(matcher(ops.convert_to_tensor(window, "int32")))
            expected = [naive_hit(pieces, list(row[: end + 1]), stop.encode()) for row in ids]
            np.testing.assert_array_equal(hits, expected)
            found += sum(expected)
    assert found >= len(stops)


def test_generate_stops_where_the_text_first_contains_the_stop_string(gpt2):
    tokenizer = gpt2.tokenizer
    special = tokenizer.end_token_id  # decoded as nothing
    prompt = [int(i) for i in tokenizer(PROMPT)]
    kwargs = dict(stop_token_id=None)  # no stop token: only the stop string ends a row
    free = np.asarray(gpt2.generate(np.asarray([prompt]), 12, **kwargs))[0, len(prompt) :]
    free = free.tolist()

    def text(ids):
        return tokenizer.detokenize([i for i in ids if i != special])

    free_text = text(free)
    stop = free_text[len(free_text) // 2 : len(free_text) // 2 + 2]
    # The first new token whose decoded text completes the stop string (an occurrence
    # that ends past the prompt).
    after_prompt = len(PROMPT) - len(stop) + 1
    end = next(i for i in range(len(free)) if stop in text(prompt + free[: i + 1])[after_prompt:])
    kwargs["stop_strings"] = [stop]
    tokens = np.asarray(gpt2.generate(np.asarray([prompt]), 12, **kwargs))
    np.testing.assert_array_equal(tokens[0, len(prompt) : len(prompt) + end + 1], free[: end + 1])
    assert np.all(tokens[0, len(prompt) + end + 1 :] == gpt2.generation_defaults["pad_token_id"])
    # Lists and text are cut after that token; the streamed loop ends on the same tokens.
    kwargs["jit_compile"] = False
    assert gpt2.generate([prompt], 12, **kwargs) == [prompt + free[: end + 1]]
    assert gpt2.generate(PROMPT, 12, **kwargs) == text(prompt + free[: end + 1])
    streamed = []
    gpt2.generate(np.asarray([prompt]), 12, streamer=streamed.append, **kwargs)
    assert np.concatenate(streamed).tolist() == free[: end + 1]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"stop_strings": ["x"], "strategy": "beam"}, ValueError, "strategy='beam'"),
        ({"stop_strings": [""]}, ValueError, r"stop_strings=\[''\]"),
        ({"stop_strings": 3}, TypeError, "stop_strings=3"),
    ],
)
def test_bad_stop_strings_are_named(gpt2, kwargs, error, match):
    with pytest.raises(error, match=match):
        gpt2.generate(np.asarray([[5, 6]]), 3, **kwargs)


def test_stop_strings_need_a_tokenizer_with_token_text(gpt2):
    with pytest.raises(ValueError, match="tokenizer=None"):
        generate(gpt2, np.asarray([[5, 6]]), 3, stop_strings=["x"])
    with pytest.raises(TypeError, match="tokenizer of type str"):
        generate(gpt2, np.asarray([[5, 6]]), 3, stop_strings=["x"], tokenizer="gpt2")
