"""scikit-learn's bundled 8x8 digits, upsampled for the vision transformers.

The 1,797 handwritten digits ship inside scikit-learn's wheel (`sklearn.datasets.load_digits`
reads them from the package, offline), which makes them the one real image data set usable
without a download. scikit-learn is optional: it is imported when the data is asked for.

Letter legend for shape comments: N examples, S `image_size`, C `channels`.
"""

import keras
import numpy as np

from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate
from keras_seq.utils.validation import validate_seed

DIGITS_NUM_EXAMPLES = 1797
DIGITS_NUM_CLASSES = 10


def digits_data(image_size=32, channels=1, seed=0, validation_fraction=0.2):
    """scikit-learn's 8x8 digits, scaled to [0, 1], upsampled and split at random.

    Pixel values 0-16 are divided by 16, then the images are resized bilinearly (no
    antialiasing) to `image_size` and clipped to [0, 1]. Bilinear rather than
    nearest-neighbour upsampling matters for patch-based models: a patch of a blocky
    image holds one value repeated, which a patch embedding maps onto a line. A seeded
    permutation splits the 1,797 images: the first `int((1 - validation_fraction) *
    1797)` go to training (1,437 for 0.2), the rest (360) to validation.

    Args:
        image_size: int. Height and width of the returned images. Defaults to `32`.
        channels: `1` (grey) or `3` (the grey image repeated, for RGB backbones).
            Defaults to `1`.
        seed: int >= 0. Seed of the split's permutation. Defaults to `0`.
        validation_fraction: float in [0, 1). Share of the images held out.
            Defaults to `0.2`.

    Returns:
        `((train_images, train_labels), (validation_images, validation_labels))`: images
        float32 `(N, image_size, image_size, channels)` in [0, 1], labels int32 `(N,)` in
        0-9.

    Raises:
        ImportError: when scikit-learn is not installed (`pip install scikit-learn`).

    Example:
    ```python
    (x, y), (x_val, y_val) = keras_seq.data.digits_data(image_size=16)
    assert x.shape == (1437, 16, 16, 1) and x_val.shape == (360, 16, 16, 1)
    assert set(np.unique(y)) == set(range(10))
    ```
    """
    image_size = validate_positive_int("image_size", image_size)
    channels = validate_choice("channels", channels, (1, 3))
    seed = validate_seed("seed", seed, allow_none=False)
    validation_fraction = validate_rate("validation_fraction", validation_fraction)
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "`digits_data` needs scikit-learn, whose wheel bundles the digits (nothing is "
            "downloaded): `pip install scikit-learn`."
        ) from error
    digits = load_digits()
    images = digits.images.astype("float32")[..., None] / np.float32(16)  # (N, 8, 8, 1)
    images = keras.ops.image.resize(
        images, (image_size, image_size), interpolation="bilinear", antialias=False
    )  # (N, S, S, 1)
    images = np.clip(keras.ops.convert_to_numpy(images), 0.0, 1.0).astype("float32")
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)  # (N, S, S, 3)
    labels = digits.target.astype("int32")  # (N,)
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = int((1 - validation_fraction) * len(labels))
    train, validation = order[:cut], order[cut:]
    return (images[train], labels[train]), (images[validation], labels[validation])
