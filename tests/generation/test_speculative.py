"""Speculative decoding: the target's greedy tokens exactly, whatever the draft proposes."""

import functools
import itertools

import keras
import numpy as np
import pytest
from keras import ops

from keras_seq.generation import generate
from keras_seq.generation import speculative_generate
from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM

VOCABULARY_SIZE = 31
PROMPT_LENGTH = 5
NEW_TOKENS = 12


def _gpt(seed, base=None, noise=0.3, vocabulary_size=VOCABULARY_SIZE, sequence_length=48):
    """A one-layer random GPT, its weights (or `base`'s) plus Gaussian noise: spread-out
    logits, so that greedy choices are not near ties."""
    keras.utils.set_random_seed(seed)
    model = GPTCausalLM(
        GPTBackbone(
            vocabulary_size=vocabulary_size,
            num_layers=1,
            hidden_dim=16,
            num_heads=2,
            intermediate_dim=32,
            sequence_length=sequence_length,
            dropout=0.0,
        )
    )
    rng = np.random.default_rng(seed)
    weights = (base or model).get_weights()
    model.set_weights([w + rng.normal(0.0, noise, w.shape).astype(w.dtype) for w in weights])
    return model


@functools.cache
def models():
    target = _gpt(0)
    return {
        "target": target,
        # A draft that agrees with the target about half the time, and one that never does.
        "near": _gpt(2, base=target, noise=0.03),
        "random": _gpt(1),
    }


PROMPTS = np.random.default_rng(0).integers(1, VOCABULARY_SIZE, (3, PROMPT_LENGTH))


@functools.cache
def greedy(batch_size, with_stop):
    """(prompts, stop_token_id, the target's greedy tokens) for a batch."""
    prompts = PROMPTS[:batch_size]
    target = models()["target"]
    if not with_stop:
        return prompts, None, np.asarray(generate(target, prompts, NEW_TOKENS, jit_compile=False))
    tokens = greedy(batch_size, False)[2]
    # A token the last row produces mid-way: it stops that row (and maybe others) early.
    stop = int(tokens[-1, PROMPT_LENGTH + 4])
    stopped = np.asarray(
        generate(
            target, prompts, NEW_TOKENS, stop_token_id=stop, pad_token_id=30, jit_compile=False
        )
    )
    assert not np.array_equal(stopped, tokens)  # The stop token changes the output.
    return prompts, stop, stopped


def _check_equals_greedy(num_draft_tokens, draft, batch_size, with_stop):
    prompts, stop, expected = greedy(batch_size, with_stop)
    tokens = speculative_generate(
        models()["target"],
        models()[draft],
        prompts,
        NEW_TOKENS,
        num_draft_tokens=num_draft_tokens,
        stop_token_id=stop,
        pad_token_id=30,
        jit_compile=False,
    )
    assert tokens.shape == (batch_size, PROMPT_LENGTH + NEW_TOKENS)
    np.testing.assert_array_equal(np.asarray(tokens), expected)


def test_call_with_cache_tokens_equals_single_token_calls_and_rolls_back():
    model = models()["target"]
    prompts = PROMPTS[:2]
    _, _, cache = model.prefill(prompts, 8)
    tokens = np.array([[3, 7, 1, 9], [4, 4, 2, 8]], "int32")
    logits, several = model.call_with_cache_tokens(tokens, cache, PROMPT_LENGTH)
    assert logits.shape == (2, 4, VOCABULARY_SIZE)
    single = cache
    for step in range(4):
        step_logits, single = model.call_with_cache(
            tokens[:, step], single, ops.convert_to_tensor(PROMPT_LENGTH + step, "int32")
        )
        np.testing.assert_allclose(logits[:, step], step_logits, atol=1e-5)
    for ours, theirs in zip(several, single):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # Keep the first token, replace the others: written at the next index, the stale slots
    # after it are never read.
    replaced = np.array([[5, 6], [1, 2]], "int32")
    logits, _ = model.call_with_cache_tokens(replaced, several, PROMPT_LENGTH + 1)
    fresh, _ = model.call_with_cache_tokens(
        np.concatenate([tokens[:, :1], replaced], axis=1), cache, PROMPT_LENGTH
    )
    np.testing.assert_allclose(logits, fresh[:, 1:], atol=1e-5)


def test_call_with_cache_tokens_refuses_padded_caches_and_single_tokens():
    model = models()["target"]
    prompts = {"token_ids": PROMPTS[:2], "padding_mask": np.ones_like(PROMPTS[:2])}
    _, _, cache = model.prefill(prompts, 4)
    with pytest.raises(ValueError, match="call_with_cache_tokens"):
        model.call_with_cache_tokens(PROMPTS[:2, :2], cache, PROMPT_LENGTH)
    _, _, cache = model.prefill(PROMPTS[:2], 4)
    with pytest.raises(ValueError, match="`token_ids` must be .* Received: shape=\\(2,\\)"):
        model.call_with_cache_tokens(PROMPTS[:2, 0], cache, PROMPT_LENGTH)


# Each value of each axis at least once in the default run; every combination when slow.
DEFAULT_CASES = [
    (1, "random", 1, False),
    (1, "near", 3, True),
    (3, "target", 3, False),
    (3, "random", 3, True),
    (3, "near", 3, False),
    (5, "near", 1, True),
    (5, "target", 3, True),
]
ALL_CASES = [
    case
    for case in itertools.product((1, 3, 5), ("target", "near", "random"), (1, 3), (False, True))
    if case not in DEFAULT_CASES
]


@pytest.mark.parametrize("num_draft_tokens,draft,batch_size,with_stop", DEFAULT_CASES)
def test_equals_greedy_decoding_of_the_target(num_draft_tokens, draft, batch_size, with_stop):
    _check_equals_greedy(num_draft_tokens, draft, batch_size, with_stop)


@pytest.mark.slow
@pytest.mark.parametrize("num_draft_tokens,draft,batch_size,with_stop", ALL_CASES)
def test_equals_greedy_decoding_of_the_target_everywhere(
    num_draft_tokens, draft, batch_size, with_stop
):
    _check_equals_greedy(num_draft_tokens, draft, batch_size, with_stop)


def test_the_target_as_its_own_draft_accepts_everything():
    target = models()["target"]
    _, acceptance = speculative_generate(
        target,
        target,
        PROMPTS,
        NEW_TOKENS,
        num_draft_tokens=3,
        return_acceptance=True,
        jit_compile=False,
    )
    assert float(acceptance["acceptance_rate"]) == 1.0
    assert int(acceptance["accepted_tokens"]) == int(acceptance["proposed_tokens"]) == 9
    # The first token comes from the prompt's pass; 11 more at 4 per round take 3 rounds.
    assert int(acceptance["target_calls"]) == 3


def test_one_new_token_needs_no_round():
    target, draft = models()["target"], models()["random"]
    tokens, acceptance = speculative_generate(
        target, draft, PROMPTS, 1, return_acceptance=True, jit_compile=False
    )
    np.testing.assert_array_equal(tokens, greedy(3, False)[2][:, : PROMPT_LENGTH + 1])
    assert int(acceptance["target_calls"]) == 0
    assert float(acceptance["acceptance_rate"]) == 0.0


@pytest.mark.parametrize("draft", ["near", "random"])
def test_acceptance_counts_add_up(draft):
    num_draft_tokens = 3
    _, acceptance = speculative_generate(
        models()["target"],
        models()[draft],
        PROMPTS,
        NEW_TOKENS,
        num_draft_tokens=num_draft_tokens,
        return_acceptance=True,
        jit_compile=False,
    )
    accepted, calls = int(acceptance["accepted_tokens"]), int(acceptance["target_calls"])
    assert int(acceptance["proposed_tokens"]) == num_draft_tokens * calls
    assert float(acceptance["acceptance_rate"]) == pytest.approx(
        accepted / (num_draft_tokens * calls)
    )
    # Each round yields its accepted tokens plus one; the last round may overshoot.
    assert NEW_TOKENS - 1 <= accepted + calls < NEW_TOKENS - 1 + num_draft_tokens + 1
    if draft == "random":
        assert float(acceptance["acceptance_rate"]) < 0.2
    else:
        assert 0.2 < float(acceptance["acceptance_rate"]) < 1.0


def test_compiled_once_per_configuration_and_reused():
    target, draft = models()["target"], models()["near"]
    first = speculative_generate(target, draft, PROMPTS, 7, num_draft_tokens=2, jit_compile=False)
    again = speculative_generate(target, draft, PROMPTS, 7, num_draft_tokens=2, jit_compile=False)
    np.testing.assert_array_equal(first, again)
    functions = [
        function
        for key, function in target._keras_seq_speculative_functions.items()
        if key[1:3] == (7, 2)
    ]
    assert len(functions) == 1
    assert functions[0].experimental_get_tracing_count() == 1


@pytest.mark.slow  # XLA compilation takes seconds
@pytest.mark.parametrize("with_stop", [False, True])
def test_xla_and_graph_agree(with_stop):
    prompts, stop, expected = greedy(3, with_stop)
    target, draft = models()["target"], models()["near"]
    kwargs = dict(num_draft_tokens=3, stop_token_id=stop, pad_token_id=30)
    xla = speculative_generate(target, draft, prompts, NEW_TOKENS, jit_compile=True, **kwargs)
    graph = speculative_generate(target, draft, prompts, NEW_TOKENS, jit_compile=False, **kwargs)
    np.testing.assert_array_equal(np.asarray(xla), np.asarray(graph))
    np.testing.assert_array_equal(np.asarray(xla), expected)


def test_runs_eagerly_when_the_model_does():
    target, draft = _gpt(0), _gpt(2, noise=0.3)
    target.run_eagerly = True
    expected = np.asarray(generate(target, PROMPTS[:1], 6))
    np.testing.assert_array_equal(
        np.asarray(speculative_generate(target, draft, PROMPTS[:1], 6, num_draft_tokens=2)),
        expected,
    )
    with pytest.raises(ValueError, match="jit_compile"):
        speculative_generate(target, draft, PROMPTS[:1], 6, jit_compile=True)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"max_new_tokens": 0}, ValueError, "max_new_tokens=0"),
        ({"num_draft_tokens": 0}, ValueError, "num_draft_tokens=0"),
        ({"num_draft_tokens": 2.0}, TypeError, "num_draft_tokens"),
        ({"stop_token_id": -1}, ValueError, "stop_token_id=-1"),
        ({"pad_token_id": -1}, ValueError, "pad_token_id=-1"),
        ({"return_acceptance": 1}, TypeError, "return_acceptance"),
        ({"jit_compile": "yes"}, TypeError, "jit_compile"),
        ({"inputs": {"token_ids": PROMPTS}}, ValueError, "`inputs`"),
        ({"inputs": PROMPTS[0]}, ValueError, "`inputs`"),
        ({"inputs": PROMPTS[:, :0]}, ValueError, "`inputs`"),
        # 5 + 40 + 4 - 1 = 48 positions fit; 49 do not.
        ({"max_new_tokens": 41}, ValueError, "`model` has 48 positions.*num_draft_tokens=4"),
        ({"draft_model": "a model"}, TypeError, "`draft_model`"),
        ({"model": object()}, TypeError, "`model`"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    arguments = dict(
        model=models()["target"],
        draft_model=models()["near"],
        inputs=PROMPTS,
        max_new_tokens=4,
        jit_compile=False,
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        speculative_generate(**arguments)


def test_a_shorter_draft_and_another_vocabulary_are_refused():
    target = models()["target"]
    short = _gpt(3, sequence_length=20)
    with pytest.raises(ValueError, match="`draft_model` has 20 positions"):
        speculative_generate(target, short, PROMPTS, 14, num_draft_tokens=3, jit_compile=False)
    other = _gpt(3, vocabulary_size=VOCABULARY_SIZE + 1)
    with pytest.raises(ValueError, match="draft_model.*32 entries and the target's 31"):
        speculative_generate(target, other, PROMPTS, 4, jit_compile=False)
    with pytest.raises(ValueError, match="stop_token_id=31"):
        speculative_generate(
            target, target, PROMPTS, 4, stop_token_id=VOCABULARY_SIZE, jit_compile=False
        )


def test_several_stop_tokens_equal_greedy_decoding():
    tokens = greedy(3, False)[2]
    # Two tokens the rows produce mid-way: each row stops at the first of either.
    stops = sorted({int(tokens[0, PROMPT_LENGTH + 2]), int(tokens[-1, PROMPT_LENGTH + 5])})
    kwargs = dict(stop_token_ids=stops, pad_token_id=30, jit_compile=False)
    expected = np.asarray(generate(models()["target"], PROMPTS, NEW_TOKENS, **kwargs))
    assert not np.array_equal(expected, tokens)
    actual = speculative_generate(
        models()["target"], models()["near"], PROMPTS, NEW_TOKENS, num_draft_tokens=3, **kwargs
    )
    np.testing.assert_array_equal(np.asarray(actual), expected)
