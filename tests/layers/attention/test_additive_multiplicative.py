"""Bahdanau and Luong attention: NumPy references of the formulas, masks, Keras parity, the
contract harness and argument errors.

The NumPy functions below are written from the score formulas in the docstrings, reading the
weights off the layers' sublayers.
"""

import keras
import numpy as np
import pytest

from keras_seq import testing
from keras_seq.layers.attention.bahdanau_attention import BahdanauAttention
from keras_seq.layers.attention.luong_attention import LuongAttention

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

rng = np.random.default_rng(7)
B, T, S = 2, 3, 5
QUERY3 = rng.normal(size=(B, T, 3)).astype("float32")  # query_dim 3
QUERY4 = rng.normal(size=(B, T, 4)).astype("float32")  # query_dim 4 (= key_dim, for "dot")
KEY = rng.normal(size=(B, S, 4)).astype("float32")
VALUE = rng.normal(size=(B, S, 6)).astype("float32")
QUERY_MASK = np.array([[True, True, False], [True, True, True]])
VALUE_MASK = np.array([[True, True, True, False, False], [True, False, True, True, False]])

CONFIGS = [
    ("bahdanau", BahdanauAttention, {"units": 5}),
    ("bahdanau_no_bias", BahdanauAttention, {"units": 5, "use_bias": False}),
    ("dot", LuongAttention, {"score_mode": "dot"}),
    ("dot_scale", LuongAttention, {"score_mode": "dot", "use_scale": True}),
    ("general", LuongAttention, {"score_mode": "general"}),
    ("concat", LuongAttention, {"score_mode": "concat", "units": 5}),
]
IDS = [c[0] for c in CONFIGS]


def query_for(layer_cls, init_kwargs):
    """Queries of the key's size for "dot" scores, of another size for the rest."""
    dot = layer_cls is LuongAttention and init_kwargs.get("score_mode", "dot") == "dot"
    return QUERY4 if dot else QUERY3


def numpy_scores(layer, query, key):
    if isinstance(layer, BahdanauAttention) or layer.score_mode == "concat":
        bias = np.asarray(layer.key_dense.bias) if layer.key_dense.use_bias else 0.0
        projected_query = query @ np.asarray(layer.query_dense.kernel)
        projected_key = key @ np.asarray(layer.key_dense.kernel) + bias
        hidden = np.tanh(projected_query[:, :, None] + projected_key[:, None])
        scores = hidden @ np.asarray(layer.score_vector)
    elif layer.score_mode == "general":
        scores = query @ np.asarray(layer.query_dense.kernel) @ key.transpose(0, 2, 1)
    else:
        scores = query @ key.transpose(0, 2, 1)
    if getattr(layer, "use_scale", False):
        scores = scores * np.asarray(layer.scale)
    return scores


def numpy_attention(layer, query, value, key=None, query_mask=None, value_mask=None):
    """Masked softmax of the scores, then the weighted sum of the values."""
    key = value if key is None else key
    single_step = query.ndim == 2
    if single_step:
        query = query[:, None]
        query_mask = None if query_mask is None else query_mask[:, None]
    scores = numpy_scores(layer, query, key)
    keep = np.ones(scores.shape, bool)
    if value_mask is not None:
        keep &= value_mask[:, None, :]
    if query_mask is not None:
        keep &= query_mask[:, :, None]
    top = np.max(np.where(keep, scores, -1e30), axis=-1, keepdims=True)
    exp = np.exp(np.where(keep, scores - top, -np.inf))
    weights = exp / np.maximum(exp.sum(-1, keepdims=True), 1e-30)
    context = weights @ value
    if single_step:
        return context[:, 0], weights[:, 0]
    return context, weights


def make_layer(layer_cls, init_kwargs, query, key):
    layer = layer_cls(**init_kwargs)
    layer.build([query.shape, key.shape])
    layer.set_weights(
        [rng.normal(scale=0.7, size=w.shape).astype("float32") for w in layer.get_weights()]
    )
    return layer


CASES = ["3d", "3d_masked", "2d_masked", "3d_key_masked"]

# The clean-Keras-state fixture costs a few tenths of a second per test, so the cheap
# variants below run as loops inside one test per configuration (failures name the case).


@pytest.mark.parametrize("name,layer_cls,init_kwargs", CONFIGS, ids=IDS)
def test_equals_numpy_formula(name, layer_cls, init_kwargs):
    for case in CASES:
        query = query_for(layer_cls, init_kwargs)
        query_mask, value_mask = (None, None) if case == "3d" else (QUERY_MASK, VALUE_MASK)
        if case == "2d_masked":
            query, query_mask = query[:, 0], QUERY_MASK[:, 0]
        inputs = [query, VALUE, KEY] if case == "3d_key_masked" else [query, KEY]
        layer = make_layer(layer_cls, init_kwargs, query, KEY)
        mask = None if query_mask is None else [query_mask, value_mask]
        context, weights = layer(inputs, mask=mask, return_attention_scores=True)
        expected_context, expected_weights = numpy_attention(
            layer, *inputs[:2], inputs[2] if len(inputs) == 3 else None, query_mask, value_mask
        )
        np.testing.assert_allclose(weights, expected_weights, atol=1e-5, err_msg=case)
        np.testing.assert_allclose(context, expected_context, atol=1e-5, err_msg=case)
        np.testing.assert_allclose(layer(inputs, mask=mask), expected_context, atol=1e-5)


@pytest.mark.parametrize("name,layer_cls,init_kwargs", CONFIGS, ids=IDS)
def test_padded_positions_never_leak_and_get_zero_weight(name, layer_cls, init_kwargs):
    query = query_for(layer_cls, init_kwargs)
    layer = make_layer(layer_cls, init_kwargs, query, KEY)
    mask = [QUERY_MASK, VALUE_MASK, VALUE_MASK]
    context, weights = layer([query, VALUE, KEY], mask=mask, return_attention_scores=True)
    padded_keys = ~VALUE_MASK[:, :, None]
    noisy = [
        np.where(~QUERY_MASK[:, :, None], 50.0, query),
        np.where(padded_keys, rng.normal(size=VALUE.shape) * 50, VALUE),
        np.where(padded_keys, rng.normal(size=KEY.shape) * 50, KEY),
    ]
    noisy_context, noisy_weights = layer(noisy, mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(noisy_context, context, atol=1e-6)
    np.testing.assert_allclose(noisy_weights, weights, atol=1e-6)
    weights = np.asarray(weights)
    np.testing.assert_array_equal(weights[np.broadcast_to(~VALUE_MASK[:, None], weights.shape)], 0)
    np.testing.assert_array_equal(weights[~QUERY_MASK], 0.0)  # padded queries: zero rows
    np.testing.assert_array_equal(np.asarray(context)[~QUERY_MASK], 0.0)
    np.testing.assert_allclose(weights[QUERY_MASK].sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name,layer_cls,init_kwargs", CONFIGS, ids=IDS)
def test_fully_masked_row_gives_zeros_not_nan(name, layer_cls, init_kwargs):
    value_mask = VALUE_MASK.copy()
    value_mask[1] = False  # example 1 has no valid key at all
    for dtype in ["float32", "mixed_float16", "mixed_bfloat16"]:
        layer = layer_cls(**init_kwargs, dtype=dtype)
        context, weights = layer(
            [query_for(layer_cls, init_kwargs), KEY],
            mask=[None, value_mask],
            return_attention_scores=True,
        )
        context = np.asarray(keras.ops.cast(context, "float32"))
        weights = np.asarray(keras.ops.cast(weights, "float32"))
        assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights)), dtype
        np.testing.assert_array_equal(context[1], 0.0, err_msg=dtype)
        np.testing.assert_array_equal(weights[1], 0.0, err_msg=dtype)
        np.testing.assert_allclose(weights[0].sum(-1), 1.0, atol=1e-2, err_msg=dtype)


def test_mixed_precision_close_to_float32():
    for name, layer_cls, init_kwargs in CONFIGS:
        query = query_for(layer_cls, init_kwargs)
        reference = make_layer(layer_cls, init_kwargs, query, KEY)
        mixed = layer_cls(**init_kwargs, dtype="mixed_float16")
        mixed.build([query.shape, KEY.shape])
        mixed.set_weights(reference.get_weights())
        mask = [QUERY_MASK, VALUE_MASK]
        expected = reference([query, KEY], mask=mask, return_attention_scores=True)
        actual = mixed([query, KEY], mask=mask, return_attention_scores=True)
        for a, e in zip(actual, expected):
            assert keras.backend.standardize_dtype(a.dtype) == "float16", name
            np.testing.assert_allclose(np.asarray(a, "float32"), e, atol=2e-2, err_msg=name)


def test_mixed_float16_luong_scores_of_large_inputs_do_not_overflow():
    # Dot products of vectors in the hundreds pass float16's maximum (65504): computed in
    # float16 they were inf, and the float32 softmax gave NaN weights.
    for name, layer_cls, init_kwargs in CONFIGS[2:5]:  # dot, dot_scale, general
        query, key = query_for(layer_cls, init_kwargs) * 300.0, KEY * 300.0
        reference = make_layer(layer_cls, init_kwargs, query, key)
        mixed = layer_cls(**init_kwargs, dtype="mixed_float16")
        mixed.build([query.shape, key.shape])
        mixed.set_weights(reference.get_weights())
        _, expected = reference([query, VALUE, key], return_attention_scores=True)
        _, actual = mixed([query, VALUE, key], return_attention_scores=True)
        actual = np.asarray(actual, "float32")
        assert np.isfinite(actual).all(), name
        np.testing.assert_allclose(actual, expected, atol=2e-2, err_msg=name)


def test_keras_masks_equal_explicit_masks_and_explicit_wins():
    layer = make_layer(LuongAttention, {"score_mode": "general"}, QUERY3, KEY)
    masking = keras.layers.Masking(mask_value=0.0)
    masked_query = masking(np.where(QUERY_MASK[:, :, None], QUERY3, 0.0))
    masked_key = masking(np.where(VALUE_MASK[:, :, None], KEY, 0.0))
    explicit = [QUERY_MASK, VALUE_MASK]
    implicit_out = layer([masked_query, masked_key], return_attention_scores=True)
    explicit_out = layer([masked_query, masked_key], mask=explicit, return_attention_scores=True)
    for a, e in zip(implicit_out, explicit_out):
        np.testing.assert_allclose(a, e, atol=1e-6)
    # An explicit mask replaces the Keras masks entirely.
    no_mask = layer([masked_query, masked_key], mask=[None, None], return_attention_scores=True)
    plain = layer([np.asarray(masked_query), np.asarray(masked_key)], return_attention_scores=True)
    for a, e in zip(no_mask, plain):
        np.testing.assert_allclose(a, e, atol=1e-6)
    assert not np.allclose(no_mask[1], explicit_out[1])
    np.testing.assert_array_equal(layer.compute_mask([QUERY3, KEY], explicit), QUERY_MASK)
    assert layer.compute_mask([QUERY3, KEY], None) is None


def test_dropout_only_in_training_seeded_and_scores_before_dropout():
    def run(training, seed=3):
        layer = BahdanauAttention(4, dropout=0.5, seed=seed)
        layer.build([QUERY3.shape, KEY.shape])
        layer.set_weights([np.full(w.shape, 0.1, "float32") for w in layer.get_weights()])
        return [np.asarray(x) for x in layer([QUERY3, KEY], training=training, **SCORES)]

    SCORES = {"return_attention_scores": True}
    (eval_context, eval_weights), (train_context, train_weights) = run(False), run(True)
    np.testing.assert_allclose(train_weights, eval_weights, atol=1e-6)
    assert not np.allclose(train_context, eval_context)
    np.testing.assert_allclose(run(True)[0], train_context)
    assert not np.allclose(run(True, seed=4)[0], train_context)


# Parity with Keras' layers given the same weights ------------------------------------------


@pytest.mark.parametrize("use_scale", [False, True])
def test_luong_dot_equals_keras_attention(use_scale):
    ours = make_layer(LuongAttention, {"use_scale": use_scale}, QUERY4, KEY)
    theirs = keras.layers.Attention(use_scale=use_scale)
    theirs.build([QUERY4.shape, KEY.shape])
    theirs.set_weights(ours.get_weights())
    mask = [QUERY_MASK, VALUE_MASK]
    context, weights = ours([QUERY4, VALUE, KEY], mask=mask, return_attention_scores=True)
    keras_context, keras_weights = theirs(
        [QUERY4, VALUE, KEY], mask=mask, return_attention_scores=True
    )
    np.testing.assert_allclose(context, keras_context, atol=1e-5)
    # Keras keeps the weights of padded queries (it zeroes only their outputs).
    np.testing.assert_allclose(
        np.asarray(weights)[QUERY_MASK], np.asarray(keras_weights)[QUERY_MASK], atol=1e-6
    )


def identity_projections(layer, v):
    """Set W_q = W_k = I, b = 0 and the score vector to `v`."""
    layer.query_dense.kernel.assign(np.eye(4, dtype="float32"))
    layer.key_dense.kernel.assign(np.eye(4, dtype="float32"))
    if layer.key_dense.use_bias:
        layer.key_dense.bias.assign(np.zeros(4, "float32"))
    layer.score_vector.assign(v)


def test_bahdanau_with_identity_projections_equals_keras_additive_attention():
    ours = make_layer(BahdanauAttention, {"units": 4}, QUERY4, KEY)
    theirs = keras.layers.AdditiveAttention(use_scale=True)
    theirs([QUERY4, KEY])
    scale = rng.normal(size=4).astype("float32")
    theirs.scale.assign(scale)
    identity_projections(ours, scale)
    mask = [QUERY_MASK, VALUE_MASK]
    np.testing.assert_allclose(
        ours([QUERY4, VALUE, KEY], mask=mask),
        theirs([QUERY4, VALUE, KEY], mask=mask),
        atol=1e-5,
    )


def test_luong_concat_with_identity_projections_equals_keras_concat_attention():
    ours = make_layer(LuongAttention, {"score_mode": "concat", "units": 4}, QUERY4, KEY)
    theirs = keras.layers.Attention(score_mode="concat")
    theirs([QUERY4, KEY])
    theirs.concat_score_weight.assign(1.7)
    identity_projections(ours, np.full(4, 1.7, "float32"))
    np.testing.assert_allclose(ours([QUERY4, VALUE, KEY]), theirs([QUERY4, VALUE, KEY]), atol=1e-5)


# The contract harness ----------------------------------------------------------------------

HARNESS_CASES = [
    ("bahdanau", BahdanauAttention, {"units": 5}, 4, "3d"),
    ("bahdanau_dropout", BahdanauAttention, {"units": 5, "dropout": 0.2, "seed": 1}, 4, "key"),
    ("dot", LuongAttention, {}, 0, "3d"),
    ("dot_scale", LuongAttention, {"use_scale": True}, 1, "key"),
    ("general", LuongAttention, {"score_mode": "general"}, 1, "2d"),
    ("concat", LuongAttention, {"score_mode": "concat", "units": 5, "use_scale": True}, 4, "3d"),
]


@pytest.mark.parametrize(
    "name,layer_cls,init_kwargs,num_weights,case", HARNESS_CASES, ids=[c[0] for c in HARNESS_CASES]
)
def test_contract(name, layer_cls, init_kwargs, num_weights, case):
    query = query_for(layer_cls, init_kwargs)
    if case == "2d":
        # Query dim 3 and value dim 4 differ from the key length 5, so the harness compares
        # the 2-D outputs whole.
        inputs, masks, shapes = [query[:, 0], KEY], [None, VALUE_MASK], [(B, 4), (B, S)]
    elif case == "key":
        # One mask per input: the harness pairs inputs and masks with zip().
        inputs, masks = [query, VALUE, KEY], [QUERY_MASK, VALUE_MASK, VALUE_MASK]
        shapes = [(B, T, 6), (B, T, S)]
    else:
        inputs, masks, shapes = [query, KEY], [QUERY_MASK, VALUE_MASK], [(B, T, 4), (B, T, S)]
    testing.run_layer_test(
        layer_cls,
        init_kwargs,
        inputs,
        call_kwargs={"return_attention_scores": True},
        expected_output_shape=shapes,
        expected_num_trainable_weights=num_weights,
        padding_mask=masks,
        expected_output_mask=None if masks[0] is None else "same",
        # A weightless dot attention has nothing to train.
        run_training_check=num_weights > 0,
    )


# Errors ------------------------------------------------------------------------------------


ERROR_CASES = [
    (lambda: BahdanauAttention(0), ValueError, r"`units` .* Received: units=0"),
    (lambda: BahdanauAttention(4.0), TypeError, r"Received: units=4.0"),
    (lambda: BahdanauAttention(4, use_bias="no"), TypeError, r"`use_bias` .* use_bias='no'"),
    (lambda: BahdanauAttention(4, dropout=1.0), ValueError, r"`dropout` .* dropout=1.0"),
    (lambda: LuongAttention(dropout="0.1"), TypeError, r"`dropout` .* dropout='0.1'"),
    (lambda: BahdanauAttention(4, seed="1"), TypeError, r"`seed` .* Received: seed='1'"),
    (lambda: LuongAttention("cosine"), ValueError, r"`score_mode` .* score_mode='cosine'"),
    (lambda: LuongAttention("concat"), ValueError, r"`units` is required .* units=None"),
    (lambda: LuongAttention("concat", units=-1), ValueError, r"`units` .* units=-1"),
    (lambda: LuongAttention("general", units=8), ValueError, r"`units` only applies .*=8"),
    (lambda: LuongAttention(use_scale=1), TypeError, r"`use_scale` .* use_scale=1"),
    (lambda: LuongAttention(kernel_initializer="nope"), ValueError, r"nope"),
]


def test_argument_errors():
    # One test for all cases: the clean-Keras-state fixture costs time per test.
    for make, error, pattern in ERROR_CASES:
        with pytest.raises(error, match=pattern):
            make()


def test_call_and_shape_errors():
    layer = BahdanauAttention(4)
    with pytest.raises(ValueError, match=r"`inputs` must be a list `\[query, value\]`"):
        layer.build(QUERY3.shape)
    with pytest.raises(ValueError, match=r"`mask` must be `None` or a list"):
        layer([QUERY3, KEY], mask=QUERY_MASK)
    with pytest.raises(ValueError, match=r"`value` and `key` must have the same length"):
        BahdanauAttention(4).build([(B, T, 3), (B, S, 6), (B, S + 1, 4)])
    with pytest.raises(ValueError, match=r"Received shapes: query=\(2, 3, 4, 1\)"):
        BahdanauAttention(4).build([(B, T, 4, 1), (B, S, 4)])
    with pytest.raises(ValueError, match=r"score_mode='dot' needs .* query_dim=3, key_dim=4"):
        LuongAttention().build([QUERY3.shape, KEY.shape])
