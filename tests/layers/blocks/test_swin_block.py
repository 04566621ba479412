"""SwinBlock: a NumPy reference written in the map's own coordinates (no roll, no partition),
shifted-window scores, padding, window clamping, translation by whole windows, contract and
argument errors."""

import keras
import numpy as np
import pytest
from scipy.special import erf

from keras_seq import layers
from keras_seq import ops
from keras_seq import testing

RNG = np.random.default_rng(12)


def numpy_layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def numpy_swin_block(block, x, window_size, shift):
    """The pre-norm Swin block on the real tokens only, in original coordinates.

    The map is conceptually padded to window multiples and cut into windows after a cyclic
    shift by -s; in original coordinates token y lands at shifted position (y - s) mod Hp,
    and was wrapped around iff y < s. Two real tokens attend to each other iff they fall in
    the same shifted window and were both wrapped or both not (on each axis); padded tokens
    are never attended to, so they are left out. The bias is the table row of their offset
    inside the window. Window axes longer than the map are clamped to it, with no shift.
    """
    batch_size, height, width, channels = x.shape
    attention = block.window_attention
    wq, bq, wk, bk, wv, bv, wo, bo = [
        np.asarray(w, "float64") for w in attention.self_attention.get_weights()
    ]
    table = np.asarray(attention.relative_position_bias_table, "float64")
    gamma1, beta1 = block.attention_layer_norm.get_weights()
    gamma2, beta2 = block.feedforward_layer_norm.get_weights()
    w1, b1, w2, b2 = block.feedforward.get_weights()
    epsilon = block.layer_norm_epsilon

    window = (min(window_size, height), min(window_size, width))
    shifts = tuple(
        window_size // 2 if shift and size > window_size else 0 for size in (height, width)
    )
    padded = tuple(-(-size // m) * m for size, m in zip((height, width), window))
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    coordinates = np.stack([ys.ravel(), xs.ravel()], axis=1)  # (P, 2), row-major
    shifted = (coordinates - np.array(shifts)) % np.array(padded)
    window_id = shifted // np.array(window)
    inside = shifted % np.array(window)
    wrapped = coordinates < np.array(shifts)
    allowed = np.all(window_id[:, None] == window_id[None], -1) & np.all(
        wrapped[:, None] == wrapped[None], -1
    )  # (P, P)
    offsets = inside[:, None] - inside[None]  # (P, P, 2)
    rows = (offsets[..., 0] + window[0] - 1) * (2 * window[1] - 1) + offsets[..., 1] + window[1] - 1
    bias = np.moveaxis(table[rows], -1, 0)  # (N, P, P)

    tokens = x.reshape(batch_size, -1, channels).astype("float64")
    h = numpy_layer_norm(tokens, gamma1, beta1, epsilon)
    q = np.einsum("bpc,cnh->bpnh", h, wq) + bq
    k = np.einsum("bpc,cnh->bpnh", h, wk) + bk
    v = np.einsum("bpc,cnh->bpnh", h, wv) + bv
    logits = np.einsum("bpnh,bqnh->bnpq", q, k) / np.sqrt(q.shape[-1]) + bias
    logits = np.where(allowed, logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    context = np.einsum("bnpq,bqnh->bpnh", weights, v)
    tokens = tokens + np.einsum("bpnh,nhc->bpc", context, wo) + bo
    h = numpy_layer_norm(tokens, gamma2, beta2, epsilon) @ w1 + b1
    h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))  # exact GELU
    tokens = tokens + h @ w2 + b2
    return tokens.reshape(x.shape)


def randomized_block(x, **kwargs):
    """A built block whose norms, biases and bias table are far from their initial values."""
    block = layers.SwinBlock(num_heads=2, intermediate_dim=16, **kwargs)
    block(x)
    block.set_weights(
        [
            RNG.normal(scale=0.5 if w.ndim > 1 else 1.0, size=w.shape).astype("float32")
            for w in block.get_weights()
        ]
    )
    return block


REFERENCE_CASES = [  # input shape, window_size, shift
    ((2, 4, 4, 8), 4, False),  # one window: plain attention with a bias
    ((2, 8, 8, 8), 4, False),
    ((2, 8, 8, 8), 4, True),
    ((2, 6, 10, 8), 4, False),  # padding
    ((2, 6, 10, 8), 4, True),  # padding and shift
    ((1, 8, 12, 8), 4, True),  # three windows across
    ((2, 3, 5, 8), 4, True),  # height clamped (no shift), width shifted and padded
    ((2, 4, 6, 8), 4, True),  # height exactly one window: no shift on that axis
    ((2, 3, 3, 8), 7, True),  # window larger than the map on both axes
]


def test_equals_numpy_reference():
    for shape, window_size, shift in REFERENCE_CASES:
        x = RNG.normal(size=shape).astype("float32")
        block = randomized_block(x, window_size=window_size, shift=shift)
        np.testing.assert_allclose(
            block(x),
            numpy_swin_block(block, x, window_size, shift),
            atol=1e-4,
            rtol=1e-4,
            err_msg=f"shape={shape}, window_size={window_size}, shift={shift}",
        )


def test_shift_changes_the_output():
    x = RNG.normal(size=(1, 8, 8, 8)).astype("float32")
    plain = randomized_block(x, window_size=4)
    shifted = layers.SwinBlock(num_heads=2, intermediate_dim=16, window_size=4, shift=True)
    shifted(x)
    shifted.set_weights(plain.get_weights())
    assert not np.allclose(plain(x), shifted(x), atol=1e-3)


def test_scores_are_zero_exactly_where_the_window_mask_is_false():
    for shape, shift in [((2, 8, 8, 8), True), ((2, 6, 10, 8), True), ((2, 6, 10, 8), False)]:
        check_scores(shape, shift)


def check_scores(shape, shift):
    _, height, width, _ = shape
    x = RNG.normal(size=shape).astype("float32")
    block = randomized_block(x, window_size=4, shift=shift)
    _, scores = block(x, return_attention_scores=True)
    scores = np.asarray(scores)
    padded = (-(-height // 4) * 4, -(-width // 4) * 4)
    mask = ops.shifted_window_mask(*padded, 4, 2 if shift else 0, height, width)
    num_windows = mask.shape[0]
    assert scores.shape == (2 * num_windows, 2, 16, 16)
    allowed = np.broadcast_to(np.tile(mask, (2, 1, 1))[:, None], scores.shape)
    assert np.all(scores[~allowed] == 0.0)
    assert np.all(scores[allowed] > 0.0)
    # Rows sum to one, except those of padded queries with no real key in their region.
    np.testing.assert_allclose(scores.sum(-1), allowed.any(-1).astype("float32"), atol=1e-5)


def test_real_outputs_do_not_depend_on_padded_values():
    # The block pads with zeros itself; what the padded tokens hold must not matter, which
    # is checked on its window attention with the block's mask and arbitrary padding.
    x = RNG.normal(size=(2, 6, 10, 8)).astype("float32")
    block = randomized_block(x, window_size=4, shift=True)
    mask = ops.shifted_window_mask(8, 12, 4, 2, 6, 10)
    outputs = []
    for padding in (np.zeros, lambda shape: RNG.normal(scale=10.0, size=shape)):
        padded = padding((2, 8, 12, 8)).astype("float32")
        padded[:, :6, :10] = x
        rolled = np.roll(padded, (-2, -2), axis=(1, 2))
        windows = ops.window_partition(rolled, 4)
        attended = block.window_attention(windows, attention_mask=mask)
        back = np.roll(np.asarray(ops.window_reverse(attended, 4, 8, 12)), (2, 2), axis=(1, 2))
        outputs.append(back[:, :6, :10])
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)


def test_window_larger_than_the_map_is_clamped_without_shift_or_mask():
    x = RNG.normal(size=(2, 3, 5, 8)).astype("float32")
    block = randomized_block(x, window_size=7, shift=True)
    assert block.window_attention.window_size == (3, 5)
    assert block.window_attention.relative_position_bias_table.shape == (5 * 9, 2)
    _, scores = block(x, return_attention_scores=True)
    assert scores.shape == (2, 2, 15, 15)
    assert np.all(np.asarray(scores) > 0.0)  # one window per image, nothing masked


def test_unshifted_block_commutes_with_rolls_by_whole_windows():
    x = RNG.normal(size=(2, 8, 12, 8)).astype("float32")
    block = randomized_block(x, window_size=4)
    rolled = np.roll(x, (4, -8), axis=(1, 2))
    np.testing.assert_allclose(
        block(rolled), np.roll(np.asarray(block(x)), (4, -8), axis=(1, 2)), atol=1e-5
    )


def test_batch_equals_per_image():
    x = RNG.normal(size=(3, 6, 10, 8)).astype("float32")
    block = randomized_block(x, window_size=4, shift=True)
    outputs = np.asarray(block(x))
    for index in range(3):
        np.testing.assert_allclose(
            outputs[index : index + 1], block(x[index : index + 1]), atol=1e-5
        )


def test_drop_path_in_training_only():
    x = RNG.normal(size=(8, 4, 4, 8)).astype("float32")
    block = randomized_block(x, window_size=4, drop_path_rate=0.5)
    np.testing.assert_allclose(block(x), numpy_swin_block(block, x, 4, False), atol=1e-4, rtol=1e-4)
    assert not np.allclose(block(x, training=True), block(x), atol=1e-3)


@pytest.mark.parametrize(
    "shape,init_kwargs",
    [
        ((2, 8, 8, 8), {"window_size": 4}),
        ((2, 8, 8, 8), {"window_size": 4, "shift": True, "drop_path_rate": 0.1}),
        ((2, 6, 10, 8), {"window_size": 4, "shift": True}),
        ((2, 3, 3, 8), {"window_size": 4, "shift": True}),
    ],
    ids=["unshifted", "shifted", "padded", "smaller_than_window"],
)
def test_contract(shape, init_kwargs):
    testing.run_layer_test(
        layers.SwinBlock,
        {"num_heads": 2, "intermediate_dim": 16, **init_kwargs},
        RNG.normal(size=shape).astype("float32"),
        expected_output_shape=shape,
        # Two layer norms (2 + 2), the bias table, four projections (8), the MLP (4).
        expected_num_trainable_weights=17,
        expected_num_non_trainable_weights=0,
    )


def test_symbolic_call_returns_scores_like_the_eager_call():
    # 6 x 10 padded to 8 x 12: six windows of 16 tokens per image.
    x = RNG.normal(size=(2, 6, 10, 8)).astype("float32")
    block = layers.SwinBlock(num_heads=2, intermediate_dim=16, window_size=4, shift=True)
    eager = block(x, return_attention_scores=True)
    for batch_size, windows in ((2, 12), (None, None)):
        symbolic = block(
            keras.Input((6, 10, 8), batch_size=batch_size), return_attention_scores=True
        )
        assert isinstance(symbolic, tuple) and len(symbolic) == 2
        assert symbolic[0].shape == (batch_size, 6, 10, 8)
        assert symbolic[1].shape == (windows, 2, 16, 16)
    assert eager[0].shape == (2, 6, 10, 8) and eager[1].shape == (12, 2, 16, 16)
    assert block(keras.Input((6, 10, 8))).shape == (None, 6, 10, 8)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`inputs`"):
        layers.SwinBlock(num_heads=2, intermediate_dim=8)(np.zeros((2, 16, 8), "float32"))
    with pytest.raises(ValueError, match="`inputs`"):
        layers.SwinBlock(num_heads=2, intermediate_dim=8)(keras.Input((None, 8, 8)))
    with pytest.raises(ValueError, match="`window_size`"):
        layers.SwinBlock(num_heads=2, intermediate_dim=8, window_size=0)
    with pytest.raises(TypeError, match="`window_size`"):
        layers.SwinBlock(num_heads=2, intermediate_dim=8, window_size=(4, 4))
    with pytest.raises(TypeError, match="`shift`"):
        layers.SwinBlock(num_heads=2, intermediate_dim=8, shift=1)
    with pytest.raises(ValueError, match="`num_heads`"):
        layers.SwinBlock(num_heads=0, intermediate_dim=8)
    with pytest.raises(ValueError, match="`drop_path_rate`"):
        layers.SwinBlock(num_heads=2, intermediate_dim=8, drop_path_rate=1.0)
    with pytest.raises(ValueError, match="`num_heads`"):
        layers.SwinBlock(num_heads=3, intermediate_dim=8)(np.zeros((1, 4, 4, 8), "float32"))
