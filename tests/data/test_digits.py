"""Digits: images against a NumPy bilinear reference, the split, channels, seeds, errors."""

import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from keras_seq.data.digits import digits_data


def bilinear_reference(images, size):
    """Half-pixel-centre bilinear resize of `(N, h, w)` images, edges clamped, in float64."""

    def weights(in_size):
        source = np.clip((np.arange(size) + 0.5) * in_size / size - 0.5, 0, in_size - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, in_size - 1)
        matrix = np.zeros((size, in_size))
        matrix[np.arange(size), low] += 1 - (source - low)
        matrix[np.arange(size), high] += source - low
        return matrix  # (size, in_size)

    rows, columns = weights(images.shape[1]), weights(images.shape[2])
    return np.einsum("ih,nhw,jw->nij", rows, images.astype(np.float64), columns)


def test_images_labels_and_split():
    digits = load_digits()
    (x, y), (x_val, y_val) = digits_data(image_size=20, seed=1)
    assert x.shape == (1437, 20, 20, 1) and x_val.shape == (360, 20, 20, 1)
    assert x.dtype == np.float32 and y.dtype == np.int32 and y_val.shape == (360,)
    assert 0.0 <= min(x.min(), x_val.min()) and max(x.max(), x_val.max()) <= 1.0
    expected = np.clip(bilinear_reference(digits.images / 16.0, 20), 0, 1)  # (1797, 20, 20)
    # Each returned image is one of the digits, with its label: find it by the reference.
    order = np.random.default_rng(1).permutation(1797)
    np.testing.assert_allclose(x[..., 0], expected[order[:1437]], atol=1e-5)
    np.testing.assert_allclose(x_val[..., 0], expected[order[1437:]], atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([y, y_val]), digits.target[order])
    assert sorted(order.tolist()) == list(range(1797))  # disjoint, complete


def test_native_size_is_the_raw_digits():
    (x, y), (x_val, y_val) = digits_data(image_size=8, validation_fraction=0.0)
    assert x_val.shape == (0, 8, 8, 1) and y_val.shape == (0,)
    order = np.random.default_rng(0).permutation(1797)
    np.testing.assert_array_equal(x[..., 0], load_digits().images[order] / 16.0)


def test_three_channels_repeat_the_grey_image():
    (x, _), _ = digits_data(image_size=12, channels=3)
    (grey, _), _ = digits_data(image_size=12, channels=1)
    assert x.shape == (1437, 12, 12, 3)
    for channel in range(3):
        np.testing.assert_array_equal(x[..., channel], grey[..., 0])


def test_seeds_and_fraction():
    (x, y), _ = digits_data(image_size=8, seed=3)
    (x2, y2), _ = digits_data(image_size=8, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(y, digits_data(image_size=8, seed=4)[0][1])
    (x, _), (x_val, _) = digits_data(image_size=8, validation_fraction=0.5)
    assert len(x) == 898 and len(x_val) == 899


def test_missing_scikit_learn_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        digits_data()


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"image_size": 0}, ValueError, "`image_size` must be a positive integer"),
        ({"channels": 2}, ValueError, "`channels` must be one of"),
        ({"seed": -1}, ValueError, "`seed` must be a non-negative integer"),
        ({"validation_fraction": 1.0}, ValueError, "`validation_fraction` must be a float"),
        ({"validation_fraction": "0.2"}, TypeError, "`validation_fraction` must be a float"),
    ],
)
def test_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        digits_data(**kwargs)
