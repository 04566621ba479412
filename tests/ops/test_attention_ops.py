"""keras_seq.ops.attention against a NumPy reference of masked scaled dot-product attention."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from keras_seq import ops as seq_ops

RNG = np.random.default_rng(0)
B, T, S, N, H, V = 2, 13, 17, 3, 4, 5


def numpy_attention(q, k, v, mask=None, bias=None, causal_offset=None):
    """softmax(q k^T / sqrt(H) + bias, masked) v; a row with no key to attend to gives 0."""
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
    if bias is not None:
        logits = logits + bias
    keep = np.ones(logits.shape, bool)
    if mask is not None:
        keep &= np.broadcast_to(mask, logits.shape)
    if causal_offset is not None:
        t = np.arange(logits.shape[2])[:, None] + causal_offset
        keep &= np.arange(logits.shape[3])[None, :] <= t
    out = np.zeros(q.shape[:3] + (v.shape[-1],))
    for b, n, i in np.ndindex(logits.shape[:3]):
        row = keep[b, n, i]
        if not row.any():
            continue
        weights = np.exp(logits[b, n, i][row] - logits[b, n, i][row].max())
        weights /= weights.sum()
        out[b, i, n] = weights @ v[b, row, n]
    return out


def data(t=T, s=S):
    q = RNG.normal(size=(B, t, N, H)).astype("float32")
    k = RNG.normal(size=(B, s, N, H)).astype("float32")
    v = RNG.normal(size=(B, s, N, V)).astype("float32")
    return q, k, v


PADDING = np.ones((B, 1, 1, S), bool)
PADDING[1, ..., 11:] = False
FULL_MASK = RNG.random((B, 1, T, S)) > 0.3
FULL_MASK[0, 0, 4] = False  # A query row with no key at all.
BIAS = RNG.normal(size=(1, N, T, S)).astype("float32")
ROW_BIAS = RNG.normal(size=(1, N, 1, S)).astype("float32")


@pytest.mark.parametrize("mask", [None, PADDING, FULL_MASK], ids=["none", "padding", "full"])
@pytest.mark.parametrize("bias", [None, BIAS, ROW_BIAS], ids=["none", "bias", "row_bias"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("chunks", [(4, 5), (64, 64)])
def test_chunked_equals_reference(mask, bias, causal, chunks):
    q, k, v = data()
    expected = numpy_attention(q, k, v, mask, bias, 0 if causal else None)
    actual = seq_ops.chunked_attention(
        q,
        k,
        v,
        mask=mask,
        bias=bias,
        is_causal=causal,
        query_chunk_size=chunks[0],
        key_chunk_size=chunks[1],
    )
    np.testing.assert_allclose(np.asarray(actual), expected, atol=2e-5)


def test_plain_probabilities_equal_reference():
    q, k, v = data()
    logits = seq_ops.attention_logits(q, k, 1.0 / np.sqrt(H), BIAS)
    probabilities = seq_ops.attention_probabilities(logits, FULL_MASK)
    out = np.einsum("bnts,bsnv->btnv", np.asarray(probabilities), v)
    np.testing.assert_allclose(out, numpy_attention(q, k, v, FULL_MASK, BIAS), atol=2e-5)
    # The fully masked row is exactly zero, not a uniform average.
    assert np.all(np.asarray(probabilities)[0, :, 4] == 0.0)


def test_causal_offset_matches_cache_positions():
    q, k, v = data(t=3)
    expected = numpy_attention(q, k, v, causal_offset=9)
    actual = seq_ops.chunked_attention(
        q, k, v, is_causal=True, causal_offset=9, query_chunk_size=2, key_chunk_size=4
    )
    np.testing.assert_allclose(np.asarray(actual), expected, atol=2e-5)
    mask = np.asarray(seq_ops.causal_mask(3, S, offset=9))[0, 0]
    np.testing.assert_array_equal(mask, np.arange(S)[None, :] <= np.arange(3)[:, None] + 9)


def test_fully_masked_rows_give_zeros_not_nan():
    q, k, v = data()
    mask = np.zeros((B, 1, 1, S), bool)
    out = np.asarray(seq_ops.chunked_attention(q, k, v, mask=mask, query_chunk_size=4))
    assert not np.isnan(out).any()
    assert np.all(out == 0.0)


def test_gradients_equal_plain_attention():
    q, k, v = (tf.Variable(x) for x in data())
    bias = tf.Variable(BIAS)

    def plain():
        mask = np.logical_and(PADDING, np.asarray(seq_ops.causal_mask(T, S)))
        logits = seq_ops.attention_logits(q, k, 1.0 / np.sqrt(H), bias)
        p = seq_ops.attention_probabilities(logits, mask)
        return tf.einsum("bnts,bsnv->btnv", p, v)

    def chunked():
        return seq_ops.chunked_attention(
            q, k, v, PADDING, bias, is_causal=True, query_chunk_size=4, key_chunk_size=6
        )

    grads = []
    for fn in (plain, chunked):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(fn()))
        grads.append(tape.gradient(loss, [q, k, v, bias]))
    for expected, actual in zip(*grads):
        assert actual is not None
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=1e-4)


def test_dynamic_lengths_and_xla():
    q, k, v = data()
    expected = numpy_attention(q, k, v, PADDING, None, 0)

    def run(q, k, v):
        return seq_ops.chunked_attention(
            q, k, v, mask=PADDING, is_causal=True, query_chunk_size=4, key_chunk_size=8
        )

    dynamic = tf.function(
        run,
        input_signature=[
            tf.TensorSpec((None, None, N, H)),
            tf.TensorSpec((None, None, N, H)),
            tf.TensorSpec((None, None, N, V)),
        ],
    )
    np.testing.assert_allclose(dynamic(q, k, v).numpy(), expected, atol=2e-5)
    compiled = tf.function(run, jit_compile=True)
    np.testing.assert_allclose(compiled(q, k, v).numpy(), expected, atol=2e-5)


def test_xla_compiles_the_gradient():
    q, k, v = (tf.Variable(x) for x in data())

    @tf.function(jit_compile=True)
    def grads():
        with tf.GradientTape() as tape:
            out = seq_ops.chunked_attention(q, k, v, is_causal=True, query_chunk_size=4)
            loss = tf.reduce_sum(tf.square(out))
        return tape.gradient(loss, [q, k, v])

    assert all(np.isfinite(g.numpy()).all() for g in grads())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_is_finite_with_large_logits(dtype):
    q, k, v = data()
    q, k, v = (tf.cast(x * 30.0, dtype) for x in (q, k, v))
    out = seq_ops.chunked_attention(q, k, v, mask=PADDING, query_chunk_size=4)
    assert out.dtype == dtype
    assert np.isfinite(np.asarray(tf.cast(out, "float32"))).all()


def test_a_single_key_gets_probability_one_without_a_warning():
    logits = np.random.default_rng(0).normal(size=(2, 3, 4, 1)).astype("float32")
    mask = np.ones((2, 1, 4, 1), bool)
    mask[1] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probabilities = np.asarray(seq_ops.attention_probabilities(logits, mask))
    np.testing.assert_array_equal(probabilities[0], 1.0)
    np.testing.assert_array_equal(probabilities[1], 0.0)
