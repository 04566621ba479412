"""Decoding strategies against independent references on a toy model with a NumPy twin."""

import keras
import numpy as np
import pytest

from keras_seq.generation import beam_search
from keras_seq.generation import generate
from keras_seq.generation import stream_generate
from tests.generation.toy_model import ToyLanguageModel

# Backend-neutral: also run on JAX in CI (see conftest.py).
pytestmark = pytest.mark.backends

PROMPTS = np.array([[1, 2], [3, 0], [2, 2]])


def numpy_greedy(model, prompt, max_new_tokens, stop_token_id=None):
    tokens = []
    for _ in range(max_new_tokens):
        scores = [
            model.log_probabilities(prompt, tokens + [v])[-1] for v in range(model.vocabulary_size)
        ]
        tokens.append(int(np.argmax(scores)))
        if stop_token_id is not None and tokens[-1] == stop_token_id:
            break
    score = model.log_probabilities(prompt, tokens).sum()
    return tokens + [0] * (max_new_tokens - len(tokens)), score


@pytest.mark.parametrize("stop_token_id", [None, 3])
def test_greedy_equals_numpy_argmax_rollout(stop_token_id):
    model = ToyLanguageModel()
    tokens, scores = generate(
        model, PROMPTS, 6, stop_token_id=stop_token_id, return_scores=True, jit_compile=False
    )
    assert tokens.shape == (3, 8)
    for row, prompt in enumerate(PROMPTS):
        expected, expected_score = numpy_greedy(model, list(prompt), 6, stop_token_id)
        np.testing.assert_array_equal(np.asarray(tokens)[row], list(prompt) + expected)
        np.testing.assert_allclose(np.asarray(scores)[row], expected_score, rtol=1e-5)


def test_one_beam_equals_greedy_without_a_stop_token():
    model = ToyLanguageModel(seed=3)
    greedy = generate(model, PROMPTS, 7, return_scores=True, jit_compile=False)
    beam = generate(
        model, PROMPTS, 7, strategy="beam", num_beams=1, return_scores=True, jit_compile=False
    )
    np.testing.assert_array_equal(greedy[0], beam[0])
    np.testing.assert_allclose(greedy[1], beam[1], rtol=1e-6)


def test_one_beam_with_a_stop_token_keeps_a_better_finished_hypothesis():
    # Greedy continues with the most likely token; one beam also keeps the stopped runner-up.
    model, prompts = ToyLanguageModel(seed=0), np.array([[0, 2], [3, 1], [2, 2]])
    kwargs = dict(stop_token_id=1, return_scores=True, jit_compile=False)
    greedy_tokens, greedy_scores = generate(model, prompts, 5, **kwargs)
    beam_tokens, beam_scores = generate(model, prompts, 5, strategy="beam", num_beams=1, **kwargs)
    assert np.all(np.asarray(beam_scores) >= np.asarray(greedy_scores) - 1e-6)
    assert np.any(np.asarray(beam_scores) > np.asarray(greedy_scores) + 1e-3)
    differs = np.any(np.asarray(beam_tokens) != np.asarray(greedy_tokens), axis=1)
    np.testing.assert_array_equal(
        differs, np.asarray(beam_scores) > np.asarray(greedy_scores) + 1e-6
    )


@pytest.mark.parametrize(
    "stop_token_id,length_penalty", [(None, 0.0), (2, 0.0), (2, 1.0), (1, -0.5)]
)
def test_enough_beams_equal_exhaustive_search(stop_token_id, length_penalty):
    model = ToyLanguageModel(vocabulary_size=3, seed=1)
    max_new_tokens = 4
    tokens, scores = generate(
        model,
        PROMPTS % 3,
        max_new_tokens,
        strategy="beam",
        num_beams=3 ** (max_new_tokens - 1),
        length_penalty=length_penalty,
        stop_token_id=stop_token_id,
        return_scores=True,
        jit_compile=False,
    )
    for row, prompt in enumerate(PROMPTS % 3):
        expected, expected_score = model.exhaustive(
            list(prompt), max_new_tokens, stop_token_id, length_penalty
        )
        np.testing.assert_array_equal(np.asarray(tokens)[row, 2:], expected)
        np.testing.assert_allclose(np.asarray(scores)[row], expected_score, rtol=1e-5)


def test_beam_scores_are_penalised_sums_of_log_probabilities():
    model = ToyLanguageModel(vocabulary_size=6, seed=2)
    tokens, scores = generate(
        model,
        PROMPTS,
        8,
        strategy="beam",
        num_beams=3,
        length_penalty=0.7,
        stop_token_id=5,
        return_scores=True,
        jit_compile=False,
    )
    for row, prompt in enumerate(PROMPTS):
        new = list(np.asarray(tokens)[row, 2:])
        if 5 in new:
            new = new[: new.index(5) + 1]
        expected = model.log_probabilities(list(prompt), new).sum() / len(new) ** 0.7
        np.testing.assert_allclose(np.asarray(scores)[row], expected, rtol=1e-5)


def test_beam_search_is_never_worse_than_greedy_and_batch_equals_single():
    model = ToyLanguageModel(vocabulary_size=8, seed=4)
    _, greedy_scores = generate(model, PROMPTS, 6, return_scores=True, jit_compile=False)
    tokens, scores = generate(
        model, PROMPTS, 6, strategy="beam", num_beams=5, return_scores=True, jit_compile=False
    )
    assert np.all(np.asarray(scores) >= np.asarray(greedy_scores) - 1e-5)
    for row in range(len(PROMPTS)):
        single = generate(
            model, PROMPTS[row : row + 1], 6, strategy="beam", num_beams=5, jit_compile=False
        )
        np.testing.assert_array_equal(np.asarray(single)[0], np.asarray(tokens)[row])


def hf_beam_search(
    model, prompt, max_new_tokens, num_beams, stop_token_id, length_penalty, early_stopping
):
    """Hugging Face's beam search (`GenerationMixin._beam_search`, transformers 5) for one
    prompt, transcribed in plain Python: the `2 * num_beams` best continuations, of which
    only the first `num_beams` ranks may finish; finished scores `sum / length **
    length_penalty`; the `early_stopping` rules of `_check_early_stop_heuristic` (False:
    the best live beam at its current length) and `_beam_search_has_unfinished_sequences`
    (True: also stop once `num_beams` finished); at `max_new_tokens` every top-ranked
    candidate finishes."""
    k, vocabulary_size = num_beams, model.vocabulary_size
    running = [([], 0.0)] + [([], -1e9)] * (k - 1)
    finished = []  # (score, tokens)
    searching = True
    for length in range(1, max_new_tokens + 1):
        candidates = []
        for tokens, score in running:
            log_p = [
                model.log_probabilities(prompt, tokens + [v])[-1] for v in range(vocabulary_size)
            ]
            candidates += [(score + log_p[v], tokens + [v]) for v in range(vocabulary_size)]
        candidates.sort(key=lambda c: -c[0])
        candidates = candidates[: 2 * k]
        full = len(finished) == k and early_stopping is True
        for rank, (score, tokens) in enumerate(candidates):
            ends = tokens[-1] == stop_token_id or length == max_new_tokens
            if ends and rank < k and searching and not full and score > -1e8:
                finished.append((score / length**length_penalty, tokens))
        finished = sorted(finished, key=lambda c: -c[0])[:k]
        running = [(t, s) for s, t in candidates if t[-1] != stop_token_id][:k]
        best_possible = running[0][1] / length**length_penalty
        if len(finished) == k and not best_possible > finished[-1][0]:
            searching = False
        if not searching or (len(finished) == k and early_stopping is True):
            break
    score, tokens = finished[0]
    return tokens + [0] * (max_new_tokens - len(tokens)), score


@pytest.mark.parametrize(
    "early_stopping,length_penalty,cases",
    [
        # (seed, vocabulary_size, num_beams); the first case is one where the rule's
        # output differs from the exact rule's (asserted, so the comparison means something).
        (False, 2.0, ((1, 4, 2), (6, 5, 3), (7, 4, 3))),
        (True, 1.0, ((0, 5, 2), (6, 5, 3), (7, 4, 3))),
    ],
)
def test_hugging_face_stopping_rules_equal_a_transcription_of_theirs(
    early_stopping, length_penalty, cases
):
    differs = 0
    for seed, vocabulary_size, num_beams in cases:
        model = ToyLanguageModel(vocabulary_size=vocabulary_size, seed=seed, scale=1.0)
        prompts = PROMPTS % vocabulary_size
        kwargs = dict(
            strategy="beam",
            num_beams=num_beams,
            length_penalty=length_penalty,
            stop_token_id=1,
            return_scores=True,
            jit_compile=False,
        )
        tokens, scores = generate(model, prompts, 7, early_stopping=early_stopping, **kwargs)
        exact, _ = generate(model, prompts, 7, early_stopping="exact", **kwargs)
        for row, prompt in enumerate(prompts):
            expected, expected_score = hf_beam_search(
                model, list(prompt), 7, num_beams, 1, length_penalty, early_stopping
            )
            np.testing.assert_array_equal(np.asarray(tokens)[row, 2:], expected)
            np.testing.assert_allclose(np.asarray(scores)[row], expected_score, rtol=1e-5)
        differs += int(np.any(np.asarray(exact) != np.asarray(tokens)))
    assert differs > 0


@pytest.mark.parametrize("length_penalty", [float("nan"), float("inf")])
def test_beam_search_called_directly_rejects_a_non_finite_length_penalty(length_penalty):
    model = ToyLanguageModel()
    _, logits, cache = model.prefill(PROMPTS, 3)
    with pytest.raises(ValueError, match=f"length_penalty={length_penalty}"):
        beam_search(
            model.call_with_cache, logits, cache, 3, num_beams=2, length_penalty=length_penalty
        )


def test_stop_token_ends_the_loop_early():
    model = ToyLanguageModel(seed=3)
    tokens = np.asarray(generate(model, PROMPTS, 20, jit_compile=False))
    stop = int(tokens[0, 3])  # the second new token of the first row
    # Decode eagerly (the loop runs in Python) to count the model's steps.
    model.run_eagerly = True
    model.calls = 0
    out = np.asarray(generate(model, PROMPTS[:1], 20, stop_token_id=stop))
    assert model.calls <= 2
    assert out[0, 3] == stop and np.all(out[0, 4:] == 0)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_xla_and_graph_decoding_agree(jit_compile):
    model = ToyLanguageModel(seed=5)
    reference = generate(model, PROMPTS, 5, strategy="beam", num_beams=3, jit_compile=False)
    actual = generate(model, PROMPTS, 5, strategy="beam", num_beams=3, jit_compile=jit_compile)
    np.testing.assert_array_equal(reference, actual)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="counts tf.function traces (JAX, PyTorch: slow probes)",
)
def test_compiled_once_per_shape_and_reused():
    model = ToyLanguageModel()
    generate(model, PROMPTS, 4, jit_compile=False)
    generate(model, PROMPTS + 0, 4, jit_compile=False)
    (function, _) = next(iter(model._keras_seq_generate_functions.values()))
    assert function.experimental_get_tracing_count() == 1
    generate(model, np.concatenate([PROMPTS, PROMPTS]), 4, jit_compile=False)
    assert function.experimental_get_tracing_count() == 2


def test_seeded_sampling_is_reproducible_and_top_k_one_is_greedy():
    model = ToyLanguageModel(vocabulary_size=16, seed=6, scale=0.5)
    a = generate(model, PROMPTS, 8, strategy="sample", seed=7, jit_compile=False)
    b = generate(model, PROMPTS, 8, strategy="sample", seed=7, jit_compile=False)
    c = generate(model, PROMPTS, 8, strategy="sample", seed=8, jit_compile=False)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    greedy = generate(model, PROMPTS, 8, jit_compile=False)
    np.testing.assert_array_equal(
        generate(model, PROMPTS, 8, strategy="top_k", top_k=1, seed=1, jit_compile=False), greedy
    )
    np.testing.assert_array_equal(
        generate(model, PROMPTS, 8, strategy="top_p", top_p=1e-6, seed=1, jit_compile=False),
        greedy,
    )


@pytest.mark.parametrize(
    "strategy,options",
    [("sample", {"temperature": 0.5}), ("top_k", {"top_k": 3}), ("top_p", {"top_p": 0.6})],
)
def test_sampled_first_token_follows_the_filtered_distribution(strategy, options):
    model = ToyLanguageModel(vocabulary_size=6, seed=7, scale=0.7)
    prompt = np.tile([[1, 2]], (4000, 1))
    tokens = np.asarray(generate(model, prompt, 1, strategy=strategy, seed=0, **options))
    counts = np.bincount(tokens[:, 2], minlength=6) / len(prompt)
    log_p = np.array([model.log_probabilities([1, 2], [v])[0] for v in range(6)])
    p = np.exp(log_p / options.get("temperature", 1.0))
    p /= p.sum()
    order = np.argsort(-p)
    if strategy == "top_k":
        p[order[options["top_k"] :]] = 0
    if strategy == "top_p":
        cumulative = np.cumsum(p[order])
        keep = np.concatenate([[True], cumulative[:-1] < options["top_p"]])
        p[order[~keep]] = 0
    p /= p.sum()
    np.testing.assert_allclose(counts, p, atol=0.03)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"max_new_tokens": 0}, ValueError, "max_new_tokens"),
        ({"strategy": "nucleus"}, ValueError, "strategy"),
        ({"num_beams": 2}, ValueError, "num_beams"),
        ({"strategy": "beam", "num_beams": 0}, ValueError, "num_beams"),
        ({"strategy": "beam", "temperature": 0.5}, ValueError, "temperature"),
        ({"strategy": "sample", "temperature": 0.0}, ValueError, "temperature"),
        ({"strategy": "top_p", "top_p": 1.5}, ValueError, "top_p"),
        ({"strategy": "top_p", "top_p": "all"}, TypeError, "top_p"),
        ({"strategy": "top_k", "top_k": 0}, ValueError, "top_k"),
        ({"strategy": "greedy", "seed": 1}, ValueError, "seed"),
        ({"strategy": "sample", "seed": 1.5}, TypeError, "seed"),
        ({"strategy": "sample", "seed": -1}, ValueError, "seed"),
        ({"strategy": "beam", "length_penalty": "long"}, TypeError, "length_penalty"),
        ({"strategy": "beam", "early_stopping": "never"}, ValueError, "early_stopping"),
        ({"strategy": "beam", "early_stopping": 1}, ValueError, "early_stopping"),
        ({"strategy": "greedy", "early_stopping": True}, ValueError, "early_stopping"),
        ({"strategy": "beam", "length_penalty": float("nan")}, ValueError, "length_penalty=nan"),
        ({"strategy": "beam", "length_penalty": float("inf")}, ValueError, "length_penalty=inf"),
        ({"strategy": "beam", "length_penalty": -np.inf}, ValueError, "length_penalty=-inf"),
        ({"stop_token_id": -1}, ValueError, "stop_token_id"),
        ({"stop_token_id": 1.0}, TypeError, "stop_token_id"),
        ({"stop_token_id": 99}, ValueError, "stop_token_id"),
        ({"jit_compile": "yes"}, TypeError, "jit_compile"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    kwargs = {"max_new_tokens": 3, "jit_compile": False, **kwargs}
    with pytest.raises(error, match=match):
        generate(ToyLanguageModel(), PROMPTS, **kwargs)


def test_a_model_without_the_protocol_is_rejected():
    with pytest.raises(TypeError, match="prefill"):
        generate(keras.Sequential([keras.layers.Dense(2)]), PROMPTS, 3)


def test_xla_on_an_eager_model_is_an_error():
    model = ToyLanguageModel()
    model.run_eagerly = True
    with pytest.raises(ValueError, match="jit_compile"):
        generate(model, PROMPTS, 3, jit_compile=True)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_an_error_raised_while_tracing_reaches_the_caller_unwrapped(jit_compile):
    # A prompt of the wrong rank fails inside `prefill`, while the decoding loop is traced;
    # the caller gets the model's own message, not AutoGraph's "in user code" trace.
    import keras_seq

    model = keras_seq.models.RNNCausalLM(
        keras_seq.models.RNNBackbone(vocabulary_size=10, embedding_dim=4, hidden_dim=8)
    )
    with pytest.raises(ValueError) as error:
        generate(model, np.array([1, 2, 3]), 2, jit_compile=jit_compile)
    message = str(error.value)
    assert message.startswith("`inputs` must be prompt token ids"), message
    assert "in user code" not in message and "inputs.shape=(3,)" in message


def test_top_k_above_the_vocabulary_size_is_refused():
    # keras_hub's samplers failed inside tf.math.top_k ("input must have last dimension >= k").
    model = ToyLanguageModel()  # 4 tokens
    for strategy in ("top_k", "top_p"):
        with pytest.raises(ValueError, match=r"`top_k` must be at most the vocabulary size 4"):
            generate(model, PROMPTS, 2, strategy=strategy, top_k=5, jit_compile=False)
    with pytest.raises(ValueError, match=r"`top_k` must be at most .* Received: top_k=5"):
        list(stream_generate(model, PROMPTS, 2, strategy="top_k", top_k=5, jit_compile=False))
    tokens = np.asarray(
        generate(model, PROMPTS, 2, strategy="top_k", top_k=4, seed=1, jit_compile=False)
    )
    assert tokens.shape == (3, 4) and tokens.min() >= 0 and tokens.max() < 4
