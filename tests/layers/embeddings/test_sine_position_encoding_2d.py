"""SinePositionEncoding2D against a loop transcription of DETR's formula, masks, contract."""

import math

import numpy as np
import pytest

from keras_seq import layers
from keras_seq import testing

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

RNG = np.random.default_rng(3)


def loop_encoding(mask, channels, temperature=10000.0, normalize=True, scale=2 * math.pi):
    """Position of a pixel = number of real pixels up to it on its column (rows) or row
    (columns); normalized by the image's extent; feature k of an axis is sin (k even) or cos
    (k odd) of position / temperature^(2 floor(k/2) / F)."""
    batch_size, height, width = mask.shape
    features = channels // 2
    out = np.zeros((batch_size, height, width, channels))
    for b in range(batch_size):
        real = mask[b].astype(float)
        for i in range(height):
            for j in range(width):
                row = real[: i + 1, j].sum()
                column = real[i, : j + 1].sum()
                if normalize:
                    row = row / (real[:, j].sum() + 1e-6) * scale
                    column = column / (real[i, :].sum() + 1e-6) * scale
                for axis, position in enumerate((row, column)):
                    for k in range(features):
                        angle = position / temperature ** (2 * (k // 2) / features)
                        value = math.sin(angle) if k % 2 == 0 else math.cos(angle)
                        out[b, i, j, axis * features + k] = value
    return out


@pytest.mark.parametrize("normalize", [True, False])
def test_equals_formula_with_padding(normalize):
    mask = np.ones((2, 4, 6), bool)
    mask[1, 3:, :] = False  # the second image is 3 x 4, padded to 4 x 6
    mask[1, :, 4:] = False
    features = np.zeros((2, 4, 6, 8), "float32")
    layer = layers.SinePositionEncoding2D(normalize=normalize, temperature=20.0)
    np.testing.assert_allclose(
        layer(features, padding_mask=mask),
        loop_encoding(mask, 8, temperature=20.0, normalize=normalize),
        atol=1e-5,
    )
    # Without a mask every pixel is real.
    np.testing.assert_allclose(
        layer(features),
        loop_encoding(np.ones((2, 4, 6), bool), 8, temperature=20.0, normalize=normalize),
        atol=1e-5,
    )


def test_padding_does_not_change_real_pixels_encoding():
    # A 3 x 4 image padded to 5 x 7 encodes its real pixels exactly as the unpadded image.
    small = layers.SinePositionEncoding2D()(np.zeros((1, 3, 4, 16), "float32"))
    mask = np.zeros((1, 5, 7), bool)
    mask[0, :3, :4] = True
    padded = layers.SinePositionEncoding2D()(np.zeros((1, 5, 7, 16), "float32"), mask)
    np.testing.assert_allclose(np.asarray(padded)[:, :3, :4], small, atol=1e-6)


def test_contract():
    mask = RNG.random((2, 3, 5)) > 0.2
    testing.run_layer_test(
        layers.SinePositionEncoding2D,
        {"temperature": 100.0},
        np.zeros((2, 3, 5, 8), "float32"),
        call_kwargs={"padding_mask": mask},
        expected_output_shape=(2, 3, 5, 8),
        expected_num_trainable_weights=0,
        # The encoding depends on the shape and the mask, not on the values of `inputs`:
        # there is no gradient to pass back.
        run_training_check=False,
    )


def test_invalid_arguments_and_shapes():
    with pytest.raises(ValueError, match="temperature"):
        layers.SinePositionEncoding2D(temperature=0.0)
    with pytest.raises(ValueError, match="scale"):
        layers.SinePositionEncoding2D(scale=-1.0)
    with pytest.raises((TypeError, ValueError), match="normalize"):
        layers.SinePositionEncoding2D(normalize="yes")
    with pytest.raises(ValueError, match=r"`inputs`.*divisible by 4.*\(2, 3, 5, 6\)"):
        layers.SinePositionEncoding2D()(np.zeros((2, 3, 5, 6), "float32"))
