"""CaptioningCNNBackbone: a few strided convolutions turning an image into a grid of regions.

Letter legend for shape comments: B batch, H x W feature grid, C channels.
"""

import keras

from keras_seq.api import keras_seq_export
from keras_seq.models.backbone import Backbone
from keras_seq.models.captioning.captioning_presets import CAPTIONING_PRESETS
from keras_seq.utils.validation import validate_image_shape

# Channels of the default convolutions (those of the 0.1 `ImageCaptioner`'s image encoder).
DEFAULT_NUM_FILTERS = (32, 64, 128)


def convolution_layers(num_filters, dtype=None):
    """The convolutions of `CaptioningCNNBackbone`: one 3x3 stride-2 `Conv2D` with ReLU and
    `"same"` padding per entry of `num_filters`, named `conv_0`, `conv_1`, ..."""
    return [
        keras.layers.Conv2D(
            filters,
            3,
            strides=2,
            padding="same",
            activation="relu",
            dtype=dtype,
            name=f"conv_{index}",
        )
        for index, filters in enumerate(num_filters)
    ]


@keras_seq_export
class CaptioningCNNBackbone(Backbone):
    """A small CNN image backbone: strided 3x3 convolutions giving a grid of region features.

    Each entry of `num_filters` adds a 3x3 convolution with stride 2, `"same"` padding and
    ReLU, so the default three give a grid 1/8 of the image's size: regions of 8x8 pixels,
    the annotation vectors that `RNNImageCaptioner` and `TransformerImageCaptioner` attend
    over. It is the image encoder the 0.1 `ImageCaptioner` built by default, and it is small
    enough to train from scratch on synthetic data; for natural images, a pretrained
    `keras.applications` model (`include_top=False`) plugs into the captioners the same way.
    Images go in as they are (no rescaling).

    Args:
        image_shape: tuple of three positive ints `(height, width, channels)`. The input image
            size, which fixes the grid (the captioners need it known).
        num_filters: tuple of positive ints. Output channels of each convolution, one stride-2
            convolution per entry. Defaults to `(32, 64, 128)`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: float images `(batch_size, height, width, channels)`.

    Returns:
        Feature map `(batch_size, grid_height, grid_width, num_filters[-1])`, the grid being
        the image size divided by `2 ** len(num_filters)`, rounded up.

    Example:
    ```python
    backbone = keras_seq.models.CaptioningCNNBackbone(image_shape=(32, 32, 3))
    features = backbone(np.zeros((2, 32, 32, 3), "float32"))
    assert features.shape == (2, 4, 4, 128)
    ```
    """

    presets = CAPTIONING_PRESETS

    def __init__(self, image_shape, num_filters=DEFAULT_NUM_FILTERS, **kwargs):
        validate_image_shape(image_shape, allow_dynamic=False)
        if (
            not isinstance(num_filters, (tuple, list))
            or not num_filters
            or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in num_filters)
        ):
            raise ValueError(
                "`num_filters` must be a non-empty tuple of positive ints, the channels of "
                f"each convolution. Received: num_filters={num_filters!r}"
            )

        # === Layers ===
        self.convolutions = convolution_layers(num_filters, dtype=kwargs.get("dtype"))

        # === Functional model ===
        images = keras.Input(shape=tuple(image_shape), name="images")
        x = images
        for layer in self.convolutions:
            x = layer(x)  # (B, H, W, C)
        super().__init__(inputs=images, outputs=x, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.num_filters = num_filters

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "num_filters": self.num_filters,
        }
