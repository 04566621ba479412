"""PatchMerging: a NumPy loop reference (odd sizes zero-padded), the output size, contract and
argument errors."""

import keras
import numpy as np
import pytest

from keras_seq import layers
from keras_seq import testing

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

RNG = np.random.default_rng(6)


def numpy_layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def numpy_patch_merging(x, gamma, beta, kernel, epsilon):
    """Each output (i, j) concatenates x[2i, 2j], x[2i+1, 2j], x[2i, 2j+1], x[2i+1, 2j+1]
    (zeros beyond the map), then layer norm and a bias-free projection."""
    batch_size, height, width, channels = x.shape
    out_height, out_width = (height + 1) // 2, (width + 1) // 2

    def at(b, y, x_):
        return x[b, y, x_] if y < height and x_ < width else np.zeros(channels)

    merged = np.zeros((batch_size, out_height, out_width, 4 * channels))
    for b in range(batch_size):
        for i in range(out_height):
            for j in range(out_width):
                merged[b, i, j] = np.concatenate(
                    [
                        at(b, 2 * i, 2 * j),
                        at(b, 2 * i + 1, 2 * j),
                        at(b, 2 * i, 2 * j + 1),
                        at(b, 2 * i + 1, 2 * j + 1),
                    ]
                )
    return numpy_layer_norm(merged, gamma, beta, epsilon) @ kernel


def test_equals_numpy_reference():
    for shape in [(2, 4, 6, 3), (2, 5, 7, 3), (1, 1, 1, 3), (3, 6, 3, 3)]:
        for output_dim in (None, 5):
            check_against_numpy(shape, output_dim)


def check_against_numpy(shape, output_dim):
    x = RNG.normal(size=shape).astype("float32")
    layer = layers.PatchMerging(output_dim=output_dim, layer_norm_epsilon=1e-3)
    outputs = np.asarray(layer(x))
    units = output_dim or 2 * shape[-1]
    assert outputs.shape == (shape[0], (shape[1] + 1) // 2, (shape[2] + 1) // 2, units)
    gamma = RNG.normal(size=4 * shape[-1]).astype("float32")
    beta = RNG.normal(size=4 * shape[-1]).astype("float32")
    kernel = RNG.normal(size=(4 * shape[-1], units)).astype("float32")
    layer.set_weights([gamma, beta, kernel])
    np.testing.assert_allclose(
        layer(x),
        numpy_patch_merging(x, gamma, beta, kernel, 1e-3),
        atol=1e-4,
        err_msg=f"shape={shape}, output_dim={output_dim}",
    )


def test_symbolic_shape_matches():
    inputs = keras.Input((7, 5, 4))
    assert layers.PatchMerging(output_dim=6)(inputs).shape == (None, 4, 3, 6)


@pytest.mark.parametrize(
    "shape,init_kwargs,expected_shape",
    [((2, 4, 6, 4), {"output_dim": 6}, (2, 2, 3, 6)), ((2, 5, 7, 4), {}, (2, 3, 4, 8))],
    ids=["even", "odd"],
)
def test_contract(shape, init_kwargs, expected_shape):
    testing.run_layer_test(
        layers.PatchMerging,
        init_kwargs,
        RNG.normal(size=shape).astype("float32"),
        expected_output_shape=expected_shape,
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
    )


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`output_dim`"):
        layers.PatchMerging(output_dim=0)
    with pytest.raises(ValueError, match="`layer_norm_epsilon`"):
        layers.PatchMerging(layer_norm_epsilon=0.0)
    with pytest.raises(ValueError, match="`inputs`"):
        layers.PatchMerging()(np.zeros((2, 6, 4), "float32"))
    with pytest.raises(ValueError, match="`inputs`"):
        layers.PatchMerging()(keras.Input((None, 6, 4)))
