"""Several sequences per input (`num_return_sequences`) and per-token log-probabilities
(`return_scores="token"`), against brute-force search and the toy model's NumPy twin."""

import itertools

import numpy as np
import pytest

from keras_seq.generation import generate
from keras_seq.generation import stream_generate
from tests.generation.toy_model import ToyLanguageModel

# Backend-neutral: also run on JAX in CI (see conftest.py).
pytestmark = pytest.mark.backends

PROMPTS = np.array([[1, 2], [3, 0], [2, 2]])


def ranked_hypotheses(model, prompt, max_new_tokens, stop_token_id, length_penalty):
    """Every hypothesis (ends at the stop token or runs to `max_new_tokens`), best first,
    as `(score, tokens, token_log_probabilities)`."""
    hypotheses = []
    for length in range(1, max_new_tokens + 1):
        for tokens in itertools.product(range(model.vocabulary_size), repeat=length):
            stops = [i for i, token in enumerate(tokens) if token == stop_token_id]
            if stops and stops[0] != length - 1:
                continue  # a stop token before the end
            if not stops and length < max_new_tokens:
                continue  # unfinished and short: not a hypothesis
            log_probabilities = model.log_probabilities(prompt, list(tokens))
            score = log_probabilities.sum() / length**length_penalty
            hypotheses.append((score, list(tokens), log_probabilities))
    return sorted(hypotheses, key=lambda h: -h[0])


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_returns_its_best_hypotheses_in_order(length_penalty):
    # 4 ** 3 beams hold every prefix, so beam search's pool is the exhaustive one.
    model, max_new_tokens, returned = ToyLanguageModel(seed=2), 4, 5
    kwargs = dict(strategy="beam", num_beams=64, stop_token_id=1, jit_compile=False)
    kwargs.update(length_penalty=length_penalty, num_return_sequences=returned)
    tokens, scores = generate(model, PROMPTS, max_new_tokens, return_scores=True, **kwargs)
    _, token_scores = generate(model, PROMPTS, max_new_tokens, return_scores="token", **kwargs)
    tokens, scores, token_scores = map(np.asarray, (tokens, scores, token_scores))
    assert tokens.shape == (len(PROMPTS) * returned, 2 + max_new_tokens)
    for b, prompt in enumerate(PROMPTS):
        expected = ranked_hypotheses(model, list(prompt), max_new_tokens, 1, length_penalty)
        for r in range(returned):
            row = b * returned + r
            score, new, log_probabilities = expected[r]
            padded = new + [0] * (max_new_tokens - len(new))
            np.testing.assert_array_equal(tokens[row], list(prompt) + padded)
            np.testing.assert_allclose(scores[row], score, rtol=1e-5)
            expected_token_scores = np.zeros(max_new_tokens)
            expected_token_scores[: len(new)] = log_probabilities
            np.testing.assert_allclose(token_scores[row], expected_token_scores, atol=1e-5)


@pytest.mark.parametrize("strategy", ["greedy", "sample", "top_k"])
def test_token_scores_are_the_models_log_probabilities_of_the_chosen_tokens(strategy):
    model = ToyLanguageModel(seed=4)
    kwargs = dict(strategy=strategy, stop_token_id=3, jit_compile=False)
    if strategy != "greedy":
        kwargs.update(seed=7, temperature=1.5)
    tokens, token_scores = generate(model, PROMPTS, 6, return_scores="token", **kwargs)
    _, scores = generate(model, PROMPTS, 6, return_scores=True, **kwargs)
    tokens, token_scores = np.asarray(tokens), np.asarray(token_scores)
    for row, prompt in enumerate(PROMPTS):
        new = tokens[row, 2:].tolist()
        if 3 in new:
            new = new[: new.index(3) + 1]
        expected = np.zeros(6)
        expected[: len(new)] = model.log_probabilities(list(prompt), new)
        np.testing.assert_allclose(token_scores[row], expected, atol=1e-5)
    np.testing.assert_allclose(token_scores.sum(axis=1), np.asarray(scores), rtol=1e-5)


def test_sampling_draws_independent_sequences_per_input():
    model = ToyLanguageModel(seed=1, scale=0.5)  # flat distributions: draws differ
    kwargs = dict(strategy="sample", seed=3, jit_compile=False, num_return_sequences=4)
    tokens, token_scores = generate(model, PROMPTS, 8, return_scores="token", **kwargs)
    tokens, token_scores = np.asarray(tokens), np.asarray(token_scores)
    assert tokens.shape == (12, 10)
    for row in range(12):
        prompt = PROMPTS[row // 4]
        np.testing.assert_array_equal(tokens[row, :2], prompt)
        np.testing.assert_allclose(
            token_scores[row], model.log_probabilities(list(prompt), tokens[row, 2:]), atol=1e-5
        )
    for b in range(3):
        assert len({tuple(row) for row in tokens[4 * b : 4 * b + 4]}) > 1
    # The same seed gives the same draws; streaming ends on the same tokens.
    np.testing.assert_array_equal(generate(model, PROMPTS, 8, **kwargs), tokens)
    streamed = np.stack(list(stream_generate(model, PROMPTS, 8, **kwargs)), axis=1)
    np.testing.assert_array_equal(streamed, tokens[:, 2:])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_return_sequences": 2}, "num_return_sequences=2, strategy='greedy'"),
        (
            {"strategy": "beam", "num_beams": 2, "num_return_sequences": 3},
            "num_return_sequences=3, num_beams=2",
        ),
        ({"strategy": "beam", "num_return_sequences": 5}, "num_return_sequences=5, num_beams=4"),
        ({"strategy": "sample", "num_return_sequences": 0}, "num_return_sequences=0"),
        ({"return_scores": "tokens"}, "return_scores='tokens'"),
    ],
)
def test_bad_return_options_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(ToyLanguageModel(), PROMPTS, 3, jit_compile=False, **kwargs)


def test_top_k_above_the_vocabulary_is_an_error_and_its_default_fits_small_models():
    model = ToyLanguageModel(seed=5)  # 4 tokens
    with pytest.raises(ValueError, match="vocabulary size 4. Received: top_k=5"):
        generate(model, PROMPTS, 3, strategy="top_k", top_k=5, jit_compile=False)
    # The default of 50 samples among all 4 tokens: the same draws as top_k=4.
    kwargs = dict(strategy="top_k", seed=1, jit_compile=False)
    np.testing.assert_array_equal(
        generate(model, PROMPTS, 5, **kwargs), generate(model, PROMPTS, 5, top_k=4, **kwargs)
    )
