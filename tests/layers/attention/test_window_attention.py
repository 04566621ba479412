"""WindowAttention: MultiHeadAttention plus an independently gathered relative position bias,
per-window masks tiled over images, weights saved for another window size (bias table
resampled), contract and argument errors."""

import os

import keras
import numpy as np
import pytest

from keras_seq import layers
from keras_seq import ops
from keras_seq import testing

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

RNG = np.random.default_rng(9)


def gathered_bias(table, window_height, window_width):
    """`(num_heads, T, T)` bias: row (dy + Mh - 1) * (2Mw - 1) + dx + Mw - 1 of the table for
    the offset (dy, dx) of query i from key j, by loops."""
    tokens = window_height * window_width
    bias = np.zeros((table.shape[1], tokens, tokens), "float32")
    for i in range(tokens):
        for j in range(tokens):
            dy = i // window_width - j // window_width
            dx = i % window_width - j % window_width
            row = (dy + window_height - 1) * (2 * window_width - 1) + dx + window_width - 1
            bias[:, i, j] = table[row]
    return bias


def numpy_attention(attention, x, bias, mask=None):
    """softmax(Q K^T / sqrt(d) + bias) V W_o per head, from the attention layer's weights."""
    wq, bq, wk, bk, wv, bv, wo, bo = [np.asarray(w) for w in attention.get_weights()]
    q = np.einsum("btd,dnh->btnh", x, wq) + bq
    k = np.einsum("bsd,dnh->bsnh", x, wk) + bk
    v = np.einsum("bsd,dnh->bsnh", x, wv) + bv
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1]) + bias
    if mask is not None:
        logits = np.where(mask[:, None], logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights = weights / weights.sum(-1, keepdims=True)
    context = np.einsum("bnts,bsnh->btnh", weights, v)
    return np.einsum("btnh,nhd->btd", context, wo) + bo


def built_layer(num_heads, window_size, windows):
    layer = layers.WindowAttention(num_heads=num_heads, window_size=window_size)
    layer(windows)
    table = layer.relative_position_bias_table
    # Bias values as large as the logits, so that a wrongly gathered bias shows.
    table.assign(RNG.normal(size=table.shape).astype("float32"))
    return layer


def test_equals_multi_head_attention_with_gathered_bias():
    for window_size in [(2, 3), 3, (4, 1)]:
        check_against_multi_head_attention(window_size)


def check_against_multi_head_attention(window_size):
    window_height, window_width = (
        (window_size, window_size) if isinstance(window_size, int) else window_size
    )
    x = RNG.normal(size=(5, window_height * window_width, 8)).astype("float32")
    layer = built_layer(2, window_size, x)
    bias = gathered_bias(layer.relative_position_bias_table.numpy(), window_height, window_width)
    np.testing.assert_allclose(layer.relative_position_bias(), bias)
    reference = layers.MultiHeadAttention(num_heads=2, key_dim=4)
    reference(x)
    reference.set_weights(layer.self_attention.get_weights())
    outputs, scores = layer(x, return_attention_scores=True)
    expected, expected_scores = reference(
        x, attention_bias=bias[None], return_attention_scores=True
    )
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    np.testing.assert_allclose(outputs, numpy_attention(layer.self_attention, x, bias), atol=1e-5)
    assert not np.allclose(outputs, reference(x), atol=1e-3)  # The bias matters.


def test_per_window_mask_is_tiled_over_images():
    num_images, num_windows, tokens = 2, 3, 4
    x = RNG.normal(size=(num_images * num_windows, tokens, 8)).astype("float32")
    layer = built_layer(2, 2, x)
    bias = gathered_bias(layer.relative_position_bias_table.numpy(), 2, 2)
    # A different mask at every window position; every query keeps itself.
    mask = RNG.random((num_windows, tokens, tokens)) < 0.5
    mask |= np.eye(tokens, dtype=bool)[None]
    assert not np.array_equal(mask[0], mask[1]) and not np.array_equal(mask[1], mask[2])
    outputs = np.asarray(layer(x, attention_mask=mask))
    for image in range(num_images):
        for window in range(num_windows):
            index = image * num_windows + window  # window_partition's image-major order
            expected = numpy_attention(
                layer.self_attention, x[index : index + 1], bias, mask[window : window + 1]
            )
            np.testing.assert_allclose(outputs[index : index + 1], expected, atol=1e-5)
    # A full (batch_size * num_windows, T, T) mask is used as is.
    np.testing.assert_allclose(layer(x, attention_mask=np.tile(mask, (2, 1, 1))), outputs)
    reversed_order = np.asarray(layer(x, attention_mask=mask[::-1]))
    assert not np.allclose(reversed_order, outputs, atol=1e-3)


def test_shifted_window_mask_zeroes_scores():
    mask = ops.shifted_window_mask(4, 4, 2, 1)  # (4, 4, 4)
    x = RNG.normal(size=(8, 4, 8)).astype("float32")
    layer = built_layer(2, 2, x)
    _, scores = layer(x, attention_mask=mask, return_attention_scores=True)
    tiled = np.tile(mask, (2, 1, 1))[:, None]  # (8, 1, 4, 4)
    scores = np.asarray(scores)
    assert np.all(scores[np.broadcast_to(~tiled, scores.shape)] == 0.0)
    assert np.all(scores[np.broadcast_to(tiled, scores.shape)] > 0.0)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-6)


def window_model(window_size, num_heads=2, channels=8):
    window_height, window_width = (
        (window_size, window_size) if isinstance(window_size, int) else window_size
    )
    inputs = keras.Input((window_height * window_width, channels))
    layer = layers.WindowAttention(num_heads, window_size, name="window_attention")
    return keras.Model(inputs, layer(inputs)), layer


def test_weights_round_trip_through_a_file(tmp_path):
    path = os.path.join(tmp_path, "window.weights.h5")
    model, layer = window_model((2, 3))
    layer.relative_position_bias_table.assign(RNG.normal(size=(15, 2)).astype("float32"))
    model.save_weights(path)
    reloaded, reloaded_layer = window_model((2, 3))
    reloaded.load_weights(path)
    for saved, loaded in zip(layer.weights, reloaded_layer.weights):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())
    x = RNG.normal(size=(3, 6, 8)).astype("float32")
    np.testing.assert_allclose(reloaded(x), model(x), atol=1e-6)


def test_weights_of_another_window_size_resample_the_table(tmp_path):
    path = os.path.join(tmp_path, "window4.weights.h5")
    model, layer = window_model(4)
    table = RNG.normal(size=(49, 2)).astype("float32")
    layer.relative_position_bias_table.assign(table)
    model.save_weights(path)
    for target_window in [6, (3, 5), 4]:
        check_resampled_load(path, layer, table, target_window)


def check_resampled_load(path, layer, table, target_window):
    target, target_layer = window_model(target_window)
    target.load_weights(path)
    window_height, window_width = (
        (target_window, target_window) if isinstance(target_window, int) else target_window
    )
    grid = (2 * window_height - 1, 2 * window_width - 1)
    expected = np.asarray(ops.bicubic_resize(table.reshape(7, 7, 2), grid)).reshape(-1, 2)
    np.testing.assert_allclose(target_layer.relative_position_bias_table, expected, atol=1e-6)
    if target_window == 4:
        np.testing.assert_allclose(target_layer.relative_position_bias_table, table, atol=1e-6)
    # The projections do not depend on the window size and load unchanged.
    for saved, loaded in zip(
        layer.self_attention.get_weights(), target_layer.self_attention.get_weights()
    ):
        np.testing.assert_array_equal(saved, loaded)


# Keras warns about the containers it skips once a layer's loading has failed.
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_incompatible_table_raises(tmp_path):
    path = os.path.join(tmp_path, "heads2.weights.h5")
    model, _ = window_model(4, num_heads=2)
    model.save_weights(path)
    target, _ = window_model(6, num_heads=4)
    with pytest.raises(ValueError, match="relative position bias table"):
        target.load_weights(path)
    layer = layers.WindowAttention(num_heads=2, window_size=3)
    layer(np.zeros((1, 9, 8), "float32"))
    for table in (np.zeros((50, 2)), np.zeros((49, 3)), np.zeros((49,))):
        with pytest.raises(ValueError, match="relative position bias table"):
            layer.load_own_variables({"0": table})


def test_contract_with_window_mask():
    # One image: the (num_windows, T, T) mask and the windows share their first axis, as the
    # harness's fit and predict need. With scores, so that both outputs are checked.
    testing.run_layer_test(
        layers.WindowAttention,
        {"num_heads": 2, "window_size": 2},
        RNG.normal(size=(6, 4, 8)).astype("float32"),
        call_kwargs={
            "attention_mask": ops.shifted_window_mask(4, 6, 2, 1),  # 6 windows of 2 x 2
            "return_attention_scores": True,
        },
        expected_output_shape=[(6, 4, 8), (6, 2, 4, 4)],
        expected_num_trainable_weights=9,
        expected_num_non_trainable_weights=0,
    )


def test_contract_two_images_share_the_window_mask():
    mask = ops.shifted_window_mask(4, 4, 2, 1)  # 4 windows
    testing.run_layer_test(
        layers.WindowAttention,
        {"num_heads": 2, "window_size": (2, 2), "attention_dropout": 0.1},
        RNG.normal(size=(8, 4, 8)).astype("float32"),
        call_kwargs={"attention_mask": mask},
        expected_output_shape=(8, 4, 8),
        expected_num_trainable_weights=9,
        # fit() and predict() need every input to have the same number of rows; the mask has
        # one per window position (4), the windows one per image and position (8).
        run_training_check=False,
        run_jit_check=False,
    )


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`num_heads`"):
        layers.WindowAttention(num_heads=0, window_size=4)
    with pytest.raises(ValueError, match="`window_size`"):
        layers.WindowAttention(num_heads=2, window_size=(4, 0))
    with pytest.raises(ValueError, match="`window_size`"):
        layers.WindowAttention(num_heads=2, window_size=(4, 4, 4))
    with pytest.raises(ValueError, match="`attention_dropout`"):
        layers.WindowAttention(num_heads=2, window_size=4, attention_dropout=1.0)
    with pytest.raises(ValueError, match="`inputs`"):
        layers.WindowAttention(num_heads=2, window_size=4)(np.zeros((2, 15, 8), "float32"))
    with pytest.raises(ValueError, match="`num_heads`"):
        layers.WindowAttention(num_heads=3, window_size=2)(np.zeros((2, 4, 8), "float32"))
    template = layers.MultiHeadAttention(num_heads=4, key_dim=2)
    with pytest.raises(ValueError, match="`num_heads`"):
        layers.WindowAttention(num_heads=2, window_size=2, attention=template)(
            np.zeros((2, 4, 8), "float32")
        )


def test_attention_template_plugs_in():
    template = layers.MultiHeadAttention(num_heads=2, key_dim=3, use_bias=False)
    x = RNG.normal(size=(3, 4, 8)).astype("float32")
    layer = layers.WindowAttention(num_heads=2, window_size=2, attention=template)
    layer(x)
    assert layer.self_attention is not template and layer.self_attention.key_dim == 3
    bias = gathered_bias(layer.relative_position_bias_table.numpy(), 2, 2)
    reference = layers.MultiHeadAttention(num_heads=2, key_dim=3, use_bias=False)
    reference(x)
    reference.set_weights(layer.self_attention.get_weights())
    np.testing.assert_allclose(layer(x), reference(x, attention_bias=bias[None]), atol=1e-5)
    revived = layers.WindowAttention.from_config(layer.get_config())
    revived(x)
    assert revived.self_attention.key_dim == 3 and not revived.self_attention.use_bias
