"""Logit processors and several stop tokens in `generate`, against NumPy rollouts written
from Hugging Face's rules (transformers' RepetitionPenaltyLogitsProcessor,
NoRepeatNGramLogitsProcessor, MinNewTokensLengthLogitsProcessor) and an exhaustive search."""

import itertools

import numpy as np
import pytest

from keras_seq.generation import generate
from tests.generation.toy_model import ToyLanguageModel

# Backend-neutral: also run on JAX in CI (see conftest.py).
pytestmark = pytest.mark.backends

PROMPTS = np.array([[1, 2, 1], [3, 0, 3], [2, 2, 0]])


def processed(
    scores,
    history,
    step,
    repetition_penalty=None,
    no_repeat_ngram_size=None,
    min_new_tokens=None,
    stops=(),
):
    """Hugging Face's processors on one row's `scores`, in their order."""
    scores = np.array(scores, dtype="float64")
    if repetition_penalty is not None:
        for token in set(history):
            value = scores[token]
            scores[token] = value * repetition_penalty if value < 0 else value / repetition_penalty
    if no_repeat_ngram_size:
        n = no_repeat_ngram_size
        tail = tuple(history[len(history) - n + 1 :]) if n > 1 else ()
        for start in range(len(history) - n + 1):
            if tuple(history[start : start + n - 1]) == tail:
                scores[history[start + n - 1]] = -np.inf
    if min_new_tokens and step < min_new_tokens:
        for stop in stops:
            scores[stop] = -np.inf
    return scores


def numpy_greedy(model, prompt, max_new_tokens, stops=(), **rules):
    history, new = list(prompt), []
    for step in range(max_new_tokens):
        scores = processed(model.next_logits(history), history, step, stops=stops, **rules)
        token = int(np.argmax(scores))
        history.append(token)
        new.append(token)
        if token in stops:
            break
    return list(prompt) + new + [0] * (max_new_tokens - len(new))


@pytest.mark.parametrize(
    "rules, stops",
    [
        ({"repetition_penalty": 1.8}, ()),
        ({"repetition_penalty": 0.6}, ()),
        ({"no_repeat_ngram_size": 2}, ()),
        ({"no_repeat_ngram_size": 1}, ()),
        ({"min_new_tokens": 4}, (2, 3)),
        ({"repetition_penalty": 1.3, "no_repeat_ngram_size": 3}, (1,)),
    ],
)
def test_greedy_with_processors_equals_a_numpy_rollout(rules, stops):
    model = ToyLanguageModel(vocabulary_size=6, seed=3)
    kwargs = dict(stop_token_ids=list(stops), jit_compile=False)
    tokens = np.asarray(generate(model, PROMPTS, 6, **rules, **kwargs))
    expected = [numpy_greedy(model, list(p), 6, stops, **rules) for p in PROMPTS]
    np.testing.assert_array_equal(tokens, expected)
    plain = np.asarray(generate(model, PROMPTS, 6, **kwargs))
    assert np.any(plain != tokens)  # The rule changes the output here.


def test_several_stop_tokens_end_each_row_at_the_first_of_them():
    model = ToyLanguageModel(vocabulary_size=6, seed=3)
    free = np.asarray(generate(model, PROMPTS, 6, jit_compile=False))
    stops = [int(free[0, 4]), int(free[1, 5])]  # Second / third new token of rows 0 / 1.
    tokens = np.asarray(generate(model, PROMPTS, 6, stop_token_ids=stops, jit_compile=False))
    expected = [numpy_greedy(model, list(p), 6, tuple(stops)) for p in PROMPTS]
    np.testing.assert_array_equal(tokens, expected)
    assert np.all(tokens[0, 5:] == 0)


def test_beam_search_with_processors_equals_an_exhaustive_search():
    # Processed log-probabilities (Hugging Face's beam search processes them), summed; with
    # V ** (N - 1) beams the exact rule finds the best sequence.
    model = ToyLanguageModel(vocabulary_size=3, seed=1)
    rules = {"repetition_penalty": 1.5, "no_repeat_ngram_size": 2}
    max_new_tokens = 4
    tokens, scores = generate(
        model,
        PROMPTS % 3,
        max_new_tokens,
        strategy="beam",
        num_beams=27,
        return_scores=True,
        jit_compile=False,
        **rules,
    )
    for row, prompt in enumerate(PROMPTS % 3):
        best, best_score = None, -np.inf
        for candidate in itertools.product(range(3), repeat=max_new_tokens):
            history, total = list(prompt), 0.0
            for step, token in enumerate(candidate):
                logits = model.next_logits(history)
                log_p = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
                total += processed(log_p, history, step, **rules)[token]
                history.append(token)
            if total > best_score + 1e-6:
                best, best_score = list(candidate), total
        if best_score == -np.inf:
            continue  # every sequence repeats a bigram: nothing to compare
        np.testing.assert_array_equal(np.asarray(tokens)[row, 3:], best)
        np.testing.assert_allclose(np.asarray(scores)[row], best_score, rtol=1e-5)


def test_no_repeat_ngram_output_repeats_no_ngram():
    model = ToyLanguageModel(vocabulary_size=8, seed=5)
    for strategy, options in (("greedy", {}), ("top_k", {"top_k": 4, "seed": 1})):
        tokens = np.asarray(
            generate(
                model,
                PROMPTS,
                8,
                strategy=strategy,
                no_repeat_ngram_size=2,
                jit_compile=False,
                **options,
            )
        )
        for row in tokens:
            bigrams = list(zip(row[:-1], row[1:]))
            assert len(bigrams) == len(set(bigrams)), row


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"min_new_tokens": 2}, ValueError, "min_new_tokens"),
        ({"repetition_penalty": 0.0}, ValueError, "repetition_penalty"),
        ({"repetition_penalty": "high"}, TypeError, "repetition_penalty"),
        ({"no_repeat_ngram_size": 0}, ValueError, "no_repeat_ngram_size"),
        ({"stop_token_ids": 3}, TypeError, "stop_token_ids"),
        ({"stop_token_ids": [1, -2]}, ValueError, "stop_token_ids"),
    ],
)
def test_bad_processor_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        generate(ToyLanguageModel(), PROMPTS, 3, jit_compile=False, **kwargs)
