"""Property-based fuzzing of public layers, a loss and `generate` (hypothesis).

Each test draws shapes, dtypes, masks, ids and option values, valid or not, and asserts one of
two outcomes: a `ValueError` / `TypeError` whose message names the argument at fault, or
finite outputs equal to an independent reference (NumPy formulas, or the cell stepped by
hand). Invalid draws must raise; nothing is clamped or ignored.

The default run draws a few examples per test, the same ones every run (`derandomize`), in a
few seconds. `KERAS_SEQ_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py` draws that many per
test, randomly (a long run, on demand).
"""

import math
import os
import re

import keras
import numpy as np
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_seq import layers
from keras_seq.generation import generate
from keras_seq.losses import SequenceCrossEntropy
from tests.generation.toy_model import ToyLanguageModel

_REQUESTED = os.environ.get("KERAS_SEQ_FUZZ_EXAMPLES")


def fuzz(default_examples):
    """Hypothesis settings: `default_examples` fixed draws, or `KERAS_SEQ_FUZZ_EXAMPLES`
    random ones."""
    return settings(
        max_examples=int(_REQUESTED) if _REQUESTED else default_examples,
        derandomize=not _REQUESTED,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def names_argument(error, names):
    """Whether the message of `error` names one of `names` in backticks."""
    return any(f"`{name}`" in str(error) for name in names)


# === MultiHeadAttention against a NumPy reference ===


def _mask_strategy(correct_shape):
    """None, a random bool mask of `correct_shape`, or one of a wrong shape."""
    wrong = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)
    shape = st.one_of(st.just(correct_shape), wrong)
    return st.one_of(
        st.none(),
        st.tuples(shape, st.integers(0, 2**31 - 1)).map(
            lambda item: np.random.RandomState(item[1]).rand(*item[0]) > 0.3
        ),
    )


def _numpy_attention(layer, query, value, query_mask, value_mask, attention_mask):
    def project(dense, x):
        kernel, bias = (np.asarray(w, "float64") for w in dense.weights)
        return np.einsum("btd,dnh->btnh", x, kernel) + bias

    q, k, v = (
        project(layer.query_dense, query),
        project(layer.key_dense, value),
        project(layer.value_dense, value),
    )
    logits = np.einsum("btnh,bsnh->bnts", q, k) / math.sqrt(layer.key_dim)
    mask = np.ones(logits.shape, bool)
    if value_mask is not None:
        mask &= value_mask[:, None, None, :]
    if attention_mask is not None:
        extra = attention_mask
        while extra.ndim < 4:
            extra = extra[None] if extra.ndim < 3 else extra[:, None]
        mask &= extra
    logits = np.where(mask, logits, -np.inf)
    top = np.max(np.where(mask, logits, -1e300), axis=-1, keepdims=True)
    weights = np.where(mask, np.exp(logits - top), 0.0)
    total = weights.sum(-1, keepdims=True)
    probabilities = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    context = np.einsum("bnts,bsnh->btnh", probabilities, v)
    if query_mask is not None:
        context = context * query_mask[:, :, None, None]
    kernel, bias = (np.asarray(w, "float64") for w in layer.output_dense.weights)
    return np.einsum("btnh,nhd->btd", context, kernel) + bias


@st.composite
def attention_cases(draw):
    batch, query_length, key_length = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 5)),
        draw(st.integers(1, 5)),
    )
    dim, seed = draw(st.integers(1, 6)), draw(st.integers(0, 2**31 - 1))
    rs = np.random.RandomState(seed)
    dtype = draw(st.sampled_from(["float16", "float32", "float64"]))
    scale = draw(st.sampled_from([1.0, 30.0]))
    return {
        "num_heads": draw(st.integers(1, 3)),
        "key_dim": draw(st.integers(1, 4)),
        "query_chunk_size": draw(st.sampled_from([None, 1, 2])),
        "key_chunk_size": draw(st.integers(1, 3)),
        "query": (scale * rs.randn(batch, query_length, dim)).astype(dtype),
        "value": (scale * rs.randn(batch, key_length, dim)).astype(dtype),
        "query_mask": draw(_mask_strategy((batch, query_length))),
        "value_mask": draw(_mask_strategy((batch, key_length))),
        "attention_mask": draw(
            st.one_of(
                _mask_strategy((batch, query_length, key_length)),
                _mask_strategy((query_length, key_length)),
            )
        ),
    }


@fuzz(6)
@given(attention_cases())
def test_multi_head_attention(case):
    query, value = case["query"], case["value"]
    (batch, query_length, _), key_length = query.shape, value.shape[1]
    masks = {name: case[name] for name in ("query_mask", "value_mask", "attention_mask")}
    expected_shapes = {
        "query_mask": [(batch, query_length)],
        "value_mask": [(batch, key_length)],
        "attention_mask": [(batch, query_length, key_length), (query_length, key_length)],
    }
    wrong = [
        name
        for name, mask in masks.items()
        if mask is not None
        and not any(
            len(mask.shape) == len(shape)
            and all(
                size in (want, 1) if name == "attention_mask" else size == want
                for size, want in zip(mask.shape, shape)
            )
            for shape in expected_shapes[name]
        )
    ]
    layer = layers.MultiHeadAttention(
        num_heads=case["num_heads"],
        key_dim=case["key_dim"],
        query_chunk_size=case["query_chunk_size"],
        key_chunk_size=case["key_chunk_size"],
    )
    try:
        outputs = layer(query, value, **masks)
    except (ValueError, TypeError) as error:
        event("refused")
        assert wrong and names_argument(error, wrong), (wrong, error)
        return
    assert not wrong, f"{wrong} of a wrong shape passed"
    event("computed")
    outputs = np.asarray(outputs)
    assert np.all(np.isfinite(outputs))
    broadcast_attention = masks["attention_mask"]
    if broadcast_attention is not None:
        target = (batch, query_length, key_length)
        broadcast_attention = np.broadcast_to(
            broadcast_attention if broadcast_attention.ndim == 3 else broadcast_attention[None],
            target,
        )
    expected = _numpy_attention(
        layer,
        query.astype("float32").astype("float64"),
        value.astype("float32").astype("float64"),
        masks["query_mask"],
        masks["value_mask"],
        broadcast_attention,
    )
    np.testing.assert_allclose(
        outputs, expected, rtol=2e-3, atol=2e-3 * (1 + np.abs(expected).max())
    )


# === Recurrent cells in keras.layers.RNN against the cell stepped by hand ===


@fuzz(10)
@given(
    cell=st.sampled_from(["lstm", "gru", "elman"]),
    units=st.integers(1, 4),
    shape=st.one_of(
        st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
        st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple),
    ),
    seed=st.integers(0, 2**31 - 1),
)
def test_recurrent_cell(cell, units, shape, seed):
    cell = {"lstm": layers.LSTMCell, "gru": layers.GRUCell, "elman": layers.ElmanCell}[cell](units)
    inputs = np.random.RandomState(seed).randn(*shape).astype("float32")
    rnn = keras.layers.RNN(cell, return_sequences=True)
    try:
        outputs = np.asarray(rnn(inputs))
    except (ValueError, TypeError) as error:
        event("refused")
        assert len(shape) != 3 and names_argument(error, ["inputs"]), error
        return
    assert len(shape) == 3
    event("computed")
    states = cell.get_initial_state(batch_size=shape[0])
    for step in range(shape[1]):
        output, states = cell(inputs[:, step], states)
        np.testing.assert_allclose(outputs[:, step], np.asarray(output), rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(outputs))


# === Token and position embedding against a table lookup ===


@fuzz(10)
@given(
    length=st.integers(0, 7),
    start_index=st.integers(0, 4),
    dtype=st.sampled_from(["int32", "int64", "uint8"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_token_and_position_embedding(length, start_index, dtype, seed):
    layer = layers.TokenAndPositionEmbedding(vocabulary_size=9, sequence_length=5, embedding_dim=3)
    ids = np.random.RandomState(seed).randint(0, 9, size=(2, length)).astype(dtype)
    try:
        outputs = np.asarray(layer(ids, start_index=start_index))
    except (ValueError, TypeError) as error:
        event("refused")
        assert length == 0 or length + start_index > 5, error
        assert names_argument(error, ["inputs", "sequence_length"]) or "sequence_length=5" in str(
            error
        ), error
        return
    assert length >= 1 and length + start_index <= 5
    event("computed")
    tokens = np.asarray(layer.token_embedding.embeddings)[ids.astype("int64")]
    positions = np.asarray(layer.position_embedding.embeddings)[start_index : start_index + length]
    np.testing.assert_allclose(outputs, tokens + positions, rtol=1e-6)


# === SequenceCrossEntropy against the NumPy formula ===


@fuzz(15)
@given(
    targets=st.lists(st.integers(-3, 8), min_size=1, max_size=8),
    fractional=st.booleans(),
    ignore_index=st.sampled_from([None, 0, -100, -1]),
    label_smoothing=st.sampled_from([0.0, 0.1]),
    scale=st.sampled_from([1.0, 1e4]),
    seed=st.integers(0, 2**31 - 1),
)
def test_sequence_cross_entropy(targets, fractional, ignore_index, label_smoothing, scale, seed):
    vocabulary_size = 6
    y_true = np.array([targets], "float32")
    if fractional:
        y_true[0, 0] += 0.5
    logits = (scale * np.random.RandomState(seed).randn(1, len(targets), vocabulary_size)).astype(
        "float32"
    )
    loss = SequenceCrossEntropy(ignore_index=ignore_index, label_smoothing=label_smoothing)
    ignored = np.zeros(y_true.shape, bool) if ignore_index is None else y_true == ignore_index
    valid = ignored | ((y_true >= 0) & (y_true < vocabulary_size) & (y_true == np.floor(y_true)))
    try:
        value = float(loss(y_true, logits))
    except (ValueError, TypeError) as error:
        event("refused")
        assert not valid.all() and names_argument(error, ["y_true"]), error
        return
    assert valid.all(), f"targets {y_true} passed"
    event("computed")
    shifted = logits.astype("float64") - logits.max(-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    ids = np.where(ignored, 0, y_true).astype("int64")
    nll = -np.take_along_axis(log_probabilities, ids[..., None], -1)[..., 0]
    smoothed = (1 - label_smoothing) * nll - label_smoothing * log_probabilities.mean(-1)
    kept = ~ignored
    expected = (smoothed * kept).sum() / max(kept.sum(), 1)
    assert math.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-4)


# === generate() options against a NumPy greedy rollout ===

_INVALID = st.sampled_from([0, -1, 1.5, 50, float("nan"), float("inf"), True, "2"])


def _option(*valid, optional=True):
    """An option's value: `None` (if `optional`), a valid one, or one of `_INVALID` (which
    may be valid for some options, e.g. 1.5 as a temperature)."""
    values = [st.sampled_from(valid), st.sampled_from(valid), _INVALID]
    return st.one_of([st.none()] + values if optional else values)


def _clearly_invalid(name, value):
    """Values every option of its kind refuses."""
    if value is None:
        return False
    if isinstance(value, (bool, str)) or (isinstance(value, float) and not math.isfinite(value)):
        return True
    if name in ("max_new_tokens", "top_k") and (not float(value).is_integer() or value < 1):
        return True
    # The toy model has 4 tokens: ids 0 to 3, at most 4 candidates.
    if (name == "top_k" and value > 4) or (name == "stop_token_id" and value >= 4):
        return True
    if name == "temperature" and value <= 0:
        return True
    if name == "top_p" and not 0 < value <= 1:
        return True
    return name == "stop_token_id" and (not float(value).is_integer() or value < 0)


@fuzz(10)
@given(
    strategy=st.sampled_from(["greedy", "top_k", "top_p", "sample"]),
    max_new_tokens=_option(1, 3, optional=False),
    temperature=_option(0.5, 1.0, 2),
    top_k=_option(1, 4),
    top_p=_option(0.3, 1.0),
    stop_token_id=_option(0, 3),
)
def test_generate_options(strategy, max_new_tokens, temperature, top_k, top_p, stop_token_id):
    model, prompts = ToyLanguageModel(), np.array([[1, 2], [3, 0]])
    options = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    options = {name: value for name, value in options.items() if value is not None}
    given_values = {"max_new_tokens": max_new_tokens, "stop_token_id": stop_token_id, **options}
    try:
        tokens = generate(
            model,
            prompts,
            max_new_tokens,
            strategy=strategy,
            stop_token_id=stop_token_id,
            seed=None if strategy == "greedy" else 0,
            jit_compile=False,
            **options,
        )
    except (ValueError, TypeError) as error:
        event("generate: refused")
        message = str(error)
        assert any(
            f"`{name}`" in message or re.search(rf"\b{name}=", message) for name in given_values
        ), message
        return
    event("generate: decoded")
    bad = [name for name, value in given_values.items() if _clearly_invalid(name, value)]
    assert not bad, f"{bad} accepted: {given_values}"
    tokens = np.asarray(tokens)
    assert tokens.shape == (2, 2 + max_new_tokens)
    assert tokens.min() >= 0 and tokens.max() < model.vocabulary_size
    np.testing.assert_array_equal(tokens[:, :2], prompts)
    if strategy != "greedy":
        return
    for row, prompt in enumerate(prompts):
        history = list(prompt)
        for step in range(max_new_tokens):
            token = int(np.argmax(model.next_logits(history)))
            assert tokens[row, 2 + step] == token
            history.append(token)
            if token == stop_token_id:
                assert np.all(tokens[row, 3 + step :] == 0)  # padded after the stop token
                break
