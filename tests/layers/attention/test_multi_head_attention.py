"""MultiHeadAttention: Keras parity, NumPy formula, masks, bias, caches, chunked path, contract."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import layers
from keras_seq import testing

RNG = np.random.default_rng(1)
X = RNG.normal(size=(2, 6, 12)).astype("float32")
MEMORY = RNG.normal(size=(2, 7, 10)).astype("float32")
PADDING = np.array([[True] * 6, [True] * 4 + [False] * 2])
MEMORY_PADDING = np.array([[True] * 7, [True] * 3 + [False] * 4])


def paired(query_dim_layer_kwargs=None, value=None, **kwargs):
    """Our layer and Keras' with identical weights."""
    ours = layers.MultiHeadAttention(num_heads=3, key_dim=4, **kwargs)
    keras_layer = keras.layers.MultiHeadAttention(num_heads=3, key_dim=4)
    ours(X, value)
    keras_layer(X, X if value is None else value)
    ours.set_weights(keras_layer.get_weights())
    return ours, keras_layer


def numpy_mha(layer, query, value, mask=None, bias=None):
    """The formula, from the layer's weights: per head softmax(QK^T/sqrt(d) + bias) V W_o."""
    wq, bq, wk, bk, wv, bv, wo, bo = [w.numpy() for w in layer.weights]
    q = np.einsum("btd,dnh->btnh", query, wq) + bq
    k = np.einsum("bsd,dnh->bsnh", value, wk) + bk
    v = np.einsum("bsd,dnh->bsnh", value, wv) + bv
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
    if bias is not None:
        logits = logits + bias
    if mask is not None:
        logits = np.where(mask, logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights = weights / weights.sum(-1, keepdims=True)
    context = np.einsum("bnts,bsnh->btnh", weights, v)
    return np.einsum("btnh,nhd->btd", context, wo) + bo, weights


@pytest.mark.parametrize("chunked", [False, True])
def test_equals_keras_self_and_cross_attention(chunked):
    kwargs = {"query_chunk_size": 2, "key_chunk_size": 3} if chunked else {}
    ours, keras_layer = paired(**kwargs)
    np.testing.assert_allclose(ours(X), keras_layer(X, X), atol=1e-5)
    np.testing.assert_allclose(
        ours(X, use_causal_mask=True), keras_layer(X, X, use_causal_mask=True), atol=1e-5
    )
    cross, keras_cross = paired(value=MEMORY, **kwargs)
    mask = np.broadcast_to(MEMORY_PADDING[:, None, :], (2, 6, 7))
    np.testing.assert_allclose(
        cross(X, MEMORY, value_mask=MEMORY_PADDING),
        keras_cross(X, MEMORY, attention_mask=mask),
        atol=1e-5,
    )


def test_scores_equal_keras_and_formula():
    ours, keras_layer = paired()
    outputs, scores = ours(X, use_causal_mask=True, return_attention_scores=True)
    keras_outputs, keras_scores = keras_layer(
        X, X, use_causal_mask=True, return_attention_scores=True
    )
    np.testing.assert_allclose(scores, keras_scores, atol=1e-6)
    causal = np.tril(np.ones((6, 6), bool))
    expected, expected_scores = numpy_mha(ours, X, X, mask=causal)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)


@pytest.mark.parametrize("chunked", [False, True])
def test_attention_bias_equals_formula(chunked):
    kwargs = {"query_chunk_size": 4, "key_chunk_size": 4} if chunked else {}
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4, **kwargs)
    layer(X)
    # ALiBi-style: a per-head linear penalty on distance, broadcast over the batch.
    distance = np.abs(np.arange(6)[:, None] - np.arange(6)[None, :])
    bias = (-np.array([0.5, 0.25, 0.125])[:, None, None] * distance).astype("float32")
    expected, _ = numpy_mha(layer, X, X, bias=bias[None])
    np.testing.assert_allclose(layer(X, attention_bias=bias), expected, atol=1e-5)


def test_symbolic_scores_shape_for_cross_attention():
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4)
    query, value = keras.Input((6, 12)), keras.Input((7, 10))
    outputs, scores = layer(query, value, return_attention_scores=True)
    assert outputs.shape == (None, 6, 12)
    assert scores.shape == (None, 3, 6, 7)
    eager = layer(X, MEMORY, return_attention_scores=True)
    assert tuple(eager[1].shape) == (2, 3, 6, 7)


@pytest.mark.parametrize("chunked", [False, True])
def test_causality(chunked):
    kwargs = {"query_chunk_size": 2, "key_chunk_size": 4} if chunked else {}
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4, **kwargs)
    base = np.asarray(layer(X, use_causal_mask=True))
    for t in range(1, 6):
        changed = X.copy()
        changed[:, t:] = RNG.normal(size=changed[:, t:].shape)
        out = np.asarray(layer(changed, use_causal_mask=True))
        np.testing.assert_allclose(out[:, :t], base[:, :t], atol=1e-5)
        assert not np.allclose(out[:, t:], base[:, t:])


def test_fully_masked_rows_give_zeros_not_nan():
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4, use_bias=False)
    mask = np.ones((2, 6, 6), bool)
    mask[0, 2] = False
    outputs, scores = layer(X, attention_mask=mask, return_attention_scores=True)
    assert not np.isnan(np.asarray(outputs)).any()
    assert np.all(np.asarray(scores)[0, :, 2] == 0.0)
    assert np.all(np.asarray(outputs)[0, 2] == 0.0)  # No bias, so zero context -> zero.
    # Padded query rows: zero attention as well.
    _, scores = layer(X, query_mask=PADDING, return_attention_scores=True)
    assert np.all(np.asarray(scores)[1, :, 4:] == 0.0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_low_precision_softmax_with_large_logits(policy):
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4, dtype=policy)
    x = X * 20.0  # Logits in the thousands: far beyond float16's exp range.
    outputs, scores = layer(x, query_mask=PADDING, return_attention_scores=True)
    assert outputs.dtype == layer.compute_dtype
    assert np.isfinite(np.asarray(tf.cast(outputs, "float32"))).all()
    row_sums = np.asarray(tf.cast(scores, "float32")).sum(-1)
    np.testing.assert_allclose(row_sums[0], 1.0, atol=1e-2)


def _mixed_and_float32(policy, **kwargs):
    """A float32 layer and a `policy` one with the same weights."""
    keras.utils.set_random_seed(0)
    reference = layers.MultiHeadAttention(num_heads=3, key_dim=4, **kwargs)
    mixed = layers.MultiHeadAttention(num_heads=3, key_dim=4, dtype=policy, **kwargs)
    reference(X, MEMORY)
    mixed(X, MEMORY)
    mixed.set_weights(reference.get_weights())
    return mixed, reference


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_float16_query_key_products_do_not_overflow(chunked, scale):
    # At scale 1000 the dot products pass float16's maximum (65504): computed in float16
    # they were inf, and the float32 softmax of inf - inf gave all-NaN outputs.
    kwargs = {"query_chunk_size": 4, "key_chunk_size": 4} if chunked else {}
    mixed, reference = _mixed_and_float32("mixed_float16", **kwargs)
    query, value = X * scale, MEMORY * scale
    expected = np.asarray(reference(query, value, value_mask=MEMORY_PADDING))
    actual = mixed(query, value, value_mask=MEMORY_PADDING)
    assert keras.backend.standardize_dtype(actual.dtype) == "float16"
    actual = np.asarray(tf.cast(actual, "float32"))
    assert np.isfinite(actual).all()
    np.testing.assert_allclose(actual, expected, atol=3e-3 * np.abs(expected).max())


@pytest.mark.parametrize("chunked", [False, True])
def test_cached_decoding_equals_full_pass(chunked):
    kwargs = {"query_chunk_size": 1, "key_chunk_size": 2} if chunked else {}
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4, **kwargs)
    full = np.asarray(layer(X, use_causal_mask=True))
    cache = np.zeros((2, 2, 6, 3, 4), "float32")
    # A two-token prompt, then one token at a time.
    out, cache = layer(X[:, :2], cache=cache, cache_update_index=0, use_causal_mask=True)
    steps = [np.asarray(out)]
    for t in range(2, 6):
        out, cache = layer(X[:, t : t + 1], cache=cache, cache_update_index=t, use_causal_mask=True)
        steps.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_read_only_cache_for_cross_attention():
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4)
    full = np.asarray(layer(X, MEMORY, value_mask=MEMORY_PADDING))
    cache = np.zeros((2, 2, 7, 3, 4), "float32")
    _, cache = layer(X[:, :1], MEMORY, cache=cache, cache_update_index=0)
    for t in range(6):
        out, _ = layer(X[:, t : t + 1], cache=cache, value_mask=MEMORY_PADDING)
        np.testing.assert_allclose(out[:, 0], full[:, t], atol=1e-5)


def test_explicit_query_mask_wins_over_keras_mask():
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4)
    keras_masked = keras.layers.Masking(mask_value=0.0)
    x = X.copy()
    x[0, 5] = 0.0  # Keras mask hides position 5 of the first example.
    implicit = np.asarray(layer(keras_masked(x)))
    explicit = np.asarray(layer(keras_masked(x), query_mask=PADDING))
    np.testing.assert_allclose(explicit, layer(x, query_mask=PADDING), atol=1e-6)
    assert not np.allclose(implicit, explicit)


@pytest.mark.parametrize("cross", [False, True], ids=["self_causal", "cross"])
def test_chunked_path_gradients_equal_plain(cross):
    # Chunks that do not divide the lengths (6 queries, 6 or 7 keys); a trainable bias.
    value = MEMORY if cross else None
    plain = layers.MultiHeadAttention(num_heads=3, key_dim=4)
    chunked = layers.MultiHeadAttention(
        num_heads=3, key_dim=4, query_chunk_size=4, key_chunk_size=3
    )
    plain(X, value)
    chunked(X, value)
    chunked.set_weights(plain.get_weights())
    key_length = MEMORY.shape[1] if cross else X.shape[1]
    bias = tf.Variable(RNG.normal(size=(1, 3, X.shape[1], key_length)).astype("float32"))
    if cross:
        kwargs = {"value_mask": MEMORY_PADDING, "query_mask": PADDING}
    else:
        kwargs = {"query_mask": PADDING, "use_causal_mask": True}
    grads = []
    for layer in (plain, chunked):
        with tf.GradientTape() as tape:
            outputs = layer(X, value, attention_bias=bias, **kwargs)
            loss = tf.reduce_sum(tf.square(outputs) * np.linspace(0.5, 1.5, outputs.shape[-1]))
        grads.append(tape.gradient(loss, layer.trainable_weights + [bias]))
    for expected, actual in zip(*grads):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=1e-4)


def spy_on_chunked_path(monkeypatch):
    """A list that gets the query chunk size of every call to `chunked_attention`."""
    from keras_seq.ops import attention

    calls, chunked_attention = [], attention.chunked_attention

    def spy(*args, **kwargs):
        calls.append(kwargs["query_chunk_size"])
        return chunked_attention(*args, **kwargs)

    monkeypatch.setattr(attention, "chunked_attention", spy)
    return calls


def test_memory_efficient_length_picks_the_chunked_path(monkeypatch):
    calls = spy_on_chunked_path(monkeypatch)
    plain = layers.MultiHeadAttention(num_heads=3, key_dim=4, memory_efficient_length=None)
    # 6 queries x 6 keys = 36 >= 6 ** 2 entries: the memory-efficient path.
    automatic = layers.MultiHeadAttention(num_heads=3, key_dim=4, memory_efficient_length=6)
    plain(X)
    automatic(X)
    automatic.set_weights(plain.get_weights())
    assert calls == [6]  # The build call; the query chunk is clamped to the 6 queries.
    expected = plain(X, query_mask=PADDING, use_causal_mask=True)
    np.testing.assert_allclose(
        automatic(X, query_mask=PADDING, use_causal_mask=True), expected, atol=1e-5
    )
    assert len(calls) == 2
    # Not when the scores are asked for, nor for a smaller (query x key) matrix.
    automatic(X, return_attention_scores=True)
    automatic(X[:, :5])
    assert len(calls) == 2
    assert layers.MultiHeadAttention(num_heads=3, key_dim=4).memory_efficient_length == 4096


def test_memory_efficient_length_leaves_dropout_to_the_plain_path(monkeypatch):
    calls = spy_on_chunked_path(monkeypatch)
    layer = layers.MultiHeadAttention(
        num_heads=3, key_dim=4, dropout=0.5, memory_efficient_length=2, seed=1
    )
    layer(X, training=True)
    assert calls == []
    layer(X, training=False)  # Dropout is off at inference: the chunked path is exact.
    assert calls == [6]


def test_config_round_trip_and_configs_without_memory_efficient_length():
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=4, memory_efficient_length=1024)
    config = layer.get_config()
    assert config["memory_efficient_length"] == 1024
    assert layers.MultiHeadAttention.from_config(config).memory_efficient_length == 1024
    del config["memory_efficient_length"]  # A config saved before the argument existed.
    assert layers.MultiHeadAttention.from_config(config).memory_efficient_length == 4096


@pytest.mark.parametrize(
    "init_kwargs,call_kwargs",
    [
        ({}, {}),
        ({}, {"use_causal_mask": True, "return_attention_scores": True}),
        ({"dropout": 0.1, "seed": 3, "output_dim": 5}, {}),
        ({"query_chunk_size": 2, "key_chunk_size": 4}, {"use_causal_mask": True}),
        (
            {"value_dim": 3, "use_bias": False},
            {"attention_bias": RNG.normal(size=(2, 3, 6, 6)).astype("f")},
        ),
    ],
    ids=["default", "causal_scores", "dropout_output_dim", "chunked", "bias"],
)
def test_contract_self_attention(init_kwargs, call_kwargs):
    testing.run_layer_test(
        layers.MultiHeadAttention,
        {"num_heads": 3, "key_dim": 4, **init_kwargs},
        X,
        call_kwargs=call_kwargs,
        expected_num_trainable_weights=4 if init_kwargs.get("use_bias") is False else 8,
        padding_mask=PADDING,
        mask_argument="query_mask",
    )


def test_contract_cross_attention_with_cache():
    testing.run_layer_test(
        layers.MultiHeadAttention,
        {"num_heads": 3, "key_dim": 4},
        X[:, :2],
        call_kwargs={
            "value": X[:, :2],
            "cache": np.zeros((2, 2, 6, 3, 4), "float32"),
            "cache_update_index": 2,
            "use_causal_mask": True,
            "return_attention_scores": True,
        },
        expected_output_shape=((2, 2, 12), (2, 3, 2, 6), (2, 2, 6, 3, 4)),
        run_mixed_precision_check=False,  # The cache input is float32 by construction.
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_heads": 0, "key_dim": 4}, "num_heads"),
        ({"num_heads": 2, "key_dim": 2.5}, "key_dim"),
        ({"num_heads": 2, "key_dim": 4, "value_dim": -1}, "value_dim"),
        ({"num_heads": 2, "key_dim": 4, "dropout": 1.0}, "dropout"),
        ({"num_heads": 2, "key_dim": 4, "output_dim": 0}, "output_dim"),
        ({"num_heads": 2, "key_dim": 4, "query_chunk_size": 0}, "query_chunk_size"),
        ({"num_heads": 2, "key_dim": 4, "key_chunk_size": None}, "key_chunk_size"),
        ({"num_heads": 2, "key_dim": 4, "query_chunk_size": 8, "dropout": 0.1}, "dropout"),
        ({"num_heads": 2, "key_dim": 4, "use_bias": "yes"}, "use_bias"),
        ({"num_heads": 2, "key_dim": 4, "memory_efficient_length": 0}, "memory_efficient_length"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        layers.MultiHeadAttention(**kwargs)


def test_invalid_shapes():
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=4)
    with pytest.raises(ValueError, match="query"):
        layer(np.zeros((2, 3, 4, 5), "float32"))
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=4)
    with pytest.raises(ValueError, match="attention_bias"):
        layer(X, attention_bias=np.zeros((1, 1, 1, 6, 6), "float32"))


@pytest.mark.parametrize(
    "equation,output_shape,bias_axes,input_shape",
    [
        ("abc,cde->abde", (None, 3, 4), "de", (2, 5, 12)),
        ("abcd,cde->abe", (None, 7), "e", (2, 5, 3, 4)),
    ],
)
@pytest.mark.parametrize("lora", [False, True])
def test_head_projection_equals_einsum_dense(equation, output_shape, bias_axes, input_shape, lora):
    # The projections run as one 2-D matmul instead of Keras' broadcast batch matmul: same
    # outputs and gradients as EinsumDense given the same weights, LoRA included.
    from keras_seq.layers.attention.multi_head_attention import _HeadProjection

    x = RNG.normal(size=input_shape).astype("float32")
    ours = _HeadProjection(equation, output_shape, bias_axes=bias_axes)
    reference = keras.layers.EinsumDense(equation, output_shape, bias_axes=bias_axes)
    ours.build(input_shape)
    reference.build(input_shape)
    if lora:
        ours.enable_lora(2, b_initializer="random_normal")
        reference.enable_lora(2)
    reference.set_weights(ours.get_weights())
    results = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            outputs = layer(x)
            loss = tf.reduce_sum(outputs * np.arange(outputs.shape[-1], dtype="float32"))
        results.append((outputs, tape.gradient(loss, layer.trainable_weights)))
    np.testing.assert_allclose(results[0][0], results[1][0], atol=1e-5)
    assert (
        len(results[0][1]) == len(results[1][1]) == (3 if lora else 2)
    )  # LoRA: bias, lora_a, lora_b
    for ours_gradient, reference_gradient in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(ours_gradient, reference_gradient, atol=1e-4)
