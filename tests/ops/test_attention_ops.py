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


def plain_attention(q, k, v, mask=None, bias=None, causal_offset=None):
    """The plain path (attention_logits, attention_probabilities) in TensorFlow."""
    if causal_offset is not None:
        causal = seq_ops.causal_mask(q.shape[1], k.shape[1], causal_offset)
        mask = causal if mask is None else tf.logical_and(mask, causal)
    logits = seq_ops.attention_logits(q, k, 1.0 / np.sqrt(q.shape[-1]), bias)
    probabilities = seq_ops.attention_probabilities(logits, mask)
    return tf.einsum("bnts,bsnv->btnv", probabilities, tf.cast(v, "float32"))


def attention_gradients(path, inputs, mask, bias, causal_offset, **kwargs):
    """d sum(out**2 * weights) / d (q, k, v[, bias]) of the `"plain"` or `"chunked"` path."""
    variables = [tf.Variable(x) for x in inputs] + ([] if bias is None else [tf.Variable(bias)])
    q, k, v = variables[:3]
    with tf.GradientTape() as tape:
        if path == "plain":
            out = plain_attention(q, k, v, mask, *variables[3:4] or [None], causal_offset)
        else:
            out = seq_ops.chunked_attention(
                q,
                k,
                v,
                mask=mask,
                bias=variables[3] if bias is not None else None,
                is_causal=causal_offset is not None,
                causal_offset=causal_offset or 0,
                **kwargs,
            )
        out = tf.cast(out, "float32")
        # Weights that differ per output element, so that no gradient is symmetric by luck.
        loss = tf.reduce_sum(tf.square(out) * np.linspace(0.5, 1.5, out.shape[-1]))
    return [g.numpy().astype("float32") for g in tape.gradient(loss, variables)]


ROW_FREE_BIAS = RNG.normal(size=(B, 1, T, 1)).astype("float32")  # Cut by query, not by key.


@pytest.mark.parametrize(
    "mask,bias,causal_offset,t,chunks",
    [
        (PADDING, BIAS, 0, T, (4, 6)),
        (FULL_MASK, ROW_BIAS, None, T, (5, 4)),
        (None, ROW_FREE_BIAS, None, T, (3, 17)),
        (FULL_MASK, None, 0, T, (13, 5)),
        (None, None, 9, 3, (2, 4)),
    ],
    ids=["padding_bias_causal", "full_mask_row_bias", "query_bias", "one_query_chunk", "offset"],
)
def test_gradients_equal_plain_attention(mask, bias, causal_offset, t, chunks):
    inputs = data(t=t)
    expected = attention_gradients("plain", inputs, mask, bias, causal_offset)
    actual = attention_gradients(
        "chunked",
        inputs,
        mask,
        bias,
        causal_offset,
        query_chunk_size=chunks[0],
        key_chunk_size=chunks[1],
    )
    assert len(actual) == len(expected) == (3 if bias is None else 4)
    for name, a, e in zip(["query", "key", "value", "bias"], actual, expected):
        assert a.shape == e.shape, name
        np.testing.assert_allclose(a, e, atol=2e-4, err_msg=name)


def test_fully_masked_row_passes_no_gradient():
    dq, dk, dv = attention_gradients("chunked", data(), FULL_MASK, None, None, query_chunk_size=4)
    # Query 4 of the first sequence attends to nothing: its output is 0 whatever it is.
    assert np.all(dq[0, 4] == 0.0)
    assert np.abs(dq[0, :4]).max() > 0.0


@pytest.mark.parametrize("dtype,tolerance", [("float16", 1e-2), ("bfloat16", 5e-2)])
def test_low_precision_gradients_equal_float32_plain(dtype, tolerance):
    inputs = data()
    expected = attention_gradients("plain", inputs, PADDING, BIAS, 0)
    low = [tf.cast(x, dtype) for x in inputs]
    variables = [tf.Variable(x) for x in low] + [tf.Variable(tf.cast(BIAS, dtype))]
    with tf.GradientTape() as tape:
        out = seq_ops.chunked_attention(
            *variables[:3],
            PADDING,
            variables[3],
            is_causal=True,
            query_chunk_size=4,
            key_chunk_size=6,
        )
        assert out.dtype == dtype
        out = tf.cast(out, "float32")
        loss = tf.reduce_sum(tf.square(out) * np.linspace(0.5, 1.5, out.shape[-1]))
    actual = tape.gradient(loss, variables)
    for a, e in zip(actual, expected):
        assert a.dtype == dtype
        error = np.abs(tf.cast(a, "float32").numpy() - e).max()
        assert error <= tolerance * np.abs(e).max(), (error, np.abs(e).max())


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


def test_xla_gradient_equals_plain():
    inputs = data()
    expected = attention_gradients("plain", inputs, PADDING, BIAS, 0)
    q, k, v = (tf.Variable(x) for x in inputs)
    bias = tf.Variable(BIAS)

    @tf.function(jit_compile=True)
    def grads():
        with tf.GradientTape() as tape:
            out = seq_ops.chunked_attention(
                q, k, v, PADDING, bias, is_causal=True, query_chunk_size=4, key_chunk_size=6
            )
            loss = tf.reduce_sum(tf.square(out) * np.linspace(0.5, 1.5, out.shape[-1]))
        return tape.gradient(loss, [q, k, v, bias])

    for actual, e in zip(grads(), expected):
        np.testing.assert_allclose(actual.numpy(), e, atol=2e-4)


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
