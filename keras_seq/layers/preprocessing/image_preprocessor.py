"""ImagePreprocessor: resize, rescale and normalize images as a checkpoint was trained to see them.

Letter legend for shape comments: B batch, H / W input height and width, h / w output height and
width.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_fraction
from keras_seq.utils.validation import validate_int_pair
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int

RESIZE_MODES = ("none", "exact", "center_crop", "shortest_edge")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def _validate_channels(name, value):
    if value is None:
        return
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(
            f"`{name}` must be a list of per-channel floats or None. Received: {name}={value!r}"
        )
    for item in value:
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            raise TypeError(
                f"`{name}` must be a list of per-channel floats. Received: {name}={value!r}"
            )
        if name == "std" and item <= 0:
            raise ValueError(f"`std` must hold positive floats. Received: std={value!r}")


@keras_seq_export
class ImagePreprocessor(keras.layers.Layer):
    """Turn images (uint8 or float, `(batch_size, height, width, channels)`) into the
    normalized float pixels a checkpoint expects: resize, multiply by `scale`, subtract
    `mean` and divide by `std`, per channel.

    A model loaded from a checkpoint carries one as `model.preprocessor`, configured from
    the checkpoint's `preprocessor_config.json` (Hugging Face) or `pretrained_cfg` (timm), so
    `model(model.preprocessor(uint8_images))` sees what the original saw. It is a plain Keras
    layer over Keras' own image ops (`keras.ops.image.resize`): it runs in `tf.data`
    pipelines and saves with the model. What it adds is the three resize policies of the
    checkpoints' processors: `"exact"` (to `image_size`, ignoring the aspect ratio: Hugging
    Face's ViT / Swin processors), `"center_crop"` (the shorter side to `image_size /
    crop_fraction`, then the central `image_size`: timm's evaluation transform) and
    `"shortest_edge"` (the shorter side to `shortest_edge`, the longer at most
    `longest_edge`, keeping the aspect ratio: DETR's processor). The reference processors
    resize PIL images with antialiasing; this layer antialiases when shrinking, so resized
    pixels agree closely but not bit for bit (without resizing, the output is exact).

    Args:
        image_size: `(height, width)` of the output for `"exact"` and `"center_crop"`.
        resize: one of `"none"`, `"exact"`, `"center_crop"`, `"shortest_edge"`. Defaults to
            `"exact"` when `image_size` is given, else `"none"`.
        interpolation: `"nearest"`, `"bilinear"` or `"bicubic"`. Defaults to `"bilinear"`.
        crop_fraction: float in (0, 1], for `"center_crop"` (timm's `crop_pct`). Defaults
            to `1.0`.
        shortest_edge: int, for `"shortest_edge"`.
        longest_edge: int or `None`, for `"shortest_edge"`.
        scale: float multiplied into the pixels before normalizing. Defaults to `1 / 255`.
        mean: per-channel means (after `scale`), or `None` for no centering.
        std: per-channel standard deviations (after `scale`), or `None`.
        **kwargs: base layer arguments (`name`, `dtype`).

    Call arguments:
        inputs: images `(batch_size, height, width, channels)`, any real or integer dtype.

    Returns:
        float `(batch_size, height', width', channels)` normalized pixels.

    Example:
    ```python
    preprocessor = keras_seq.layers.ImagePreprocessor(
        image_size=(32, 32), mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]
    )
    pixels = preprocessor(np.full((1, 64, 48, 3), 255, "uint8"))
    assert pixels.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(np.asarray(pixels), 1.0, atol=1e-5)
    ```
    """

    def __init__(
        self,
        image_size=None,
        resize=None,
        interpolation="bilinear",
        crop_fraction=1.0,
        shortest_edge=None,
        longest_edge=None,
        scale=1.0 / 255.0,
        mean=None,
        std=None,
        **kwargs,
    ):
        if image_size is not None:
            validate_int_pair("image_size", image_size, minimum=1, allow_single=False)
            image_size = tuple(int(size) for size in image_size)
        if resize is None:
            resize = "exact" if image_size is not None else "none"
        validate_choice("resize", resize, RESIZE_MODES)
        validate_choice("interpolation", interpolation, INTERPOLATIONS)
        validate_fraction("crop_fraction", crop_fraction, include_zero=False)
        if resize in ("exact", "center_crop") and image_size is None:
            raise ValueError(f"`resize={resize!r}` needs `image_size`. Received: image_size=None")
        if resize == "shortest_edge":
            validate_positive_int("shortest_edge", shortest_edge)
        if longest_edge is not None:
            validate_positive_int("longest_edge", longest_edge)
        validate_positive_float("scale", scale)
        _validate_channels("mean", mean)
        _validate_channels("std", std)
        if mean is not None and std is not None and len(mean) != len(std):
            raise ValueError(
                f"`mean` and `std` must have one value per channel each. Received: mean={mean}, "
                f"std={std}"
            )
        super().__init__(**kwargs)
        self.image_size = image_size
        self.resize = resize
        self.interpolation = interpolation
        self.crop_fraction = float(crop_fraction)
        self.shortest_edge = shortest_edge
        self.longest_edge = longest_edge
        self.scale = float(scale)
        self.mean = None if mean is None else [float(value) for value in mean]
        self.std = None if std is None else [float(value) for value in std]

    def _resize(self, images, size):
        return ops.image.resize(images, size, interpolation=self.interpolation, antialias=True)

    def _output_size(self, height, width):
        """`(h, w)` of the resize step (static Python ints when `height` / `width` are)."""
        if self.resize == "exact":
            return self.image_size
        if self.resize == "center_crop":
            target = max(self.image_size)
            shorter = int(target / self.crop_fraction)
        else:
            shorter = self.shortest_edge
        short, long = min(height, width), max(height, width)
        if self.resize == "shortest_edge" and self.longest_edge is not None:
            if long * shorter / short > self.longest_edge:
                shorter = int(self.longest_edge * short / long)
        if height <= width:
            return shorter, int(shorter * width / height)
        return int(shorter * height / width), shorter

    def call(self, inputs):
        images = ops.cast(inputs, self.compute_dtype)  # (B, H, W, C)
        if self.resize != "none":
            height, width = images.shape[1], images.shape[2]
            if height is None or width is None:
                raise ValueError(
                    f"`ImagePreprocessor(resize={self.resize!r})` needs images of a static "
                    "size (a tf.data pipeline: resize each image, or batch images of one "
                    f"size). Received: inputs.shape={tuple(inputs.shape)}"
                )
            size = self._output_size(height, width)
            if tuple(size) != (height, width):
                images = self._resize(images, size)  # (B, h, w, C)
            if self.resize == "center_crop":
                # torchvision's CenterCrop offsets (Python's round, half to even), so that
                # the crop is the one timm's transform takes.
                top = int(round((size[0] - self.image_size[0]) / 2.0))
                left = int(round((size[1] - self.image_size[1]) / 2.0))
                images = images[:, top : top + self.image_size[0], left : left + self.image_size[1]]
        images = images * self.scale
        if self.mean is not None:
            images = images - ops.convert_to_tensor(self.mean, images.dtype)
        if self.std is not None:
            images = images / ops.convert_to_tensor(self.std, images.dtype)
        return images

    def compute_output_shape(self, inputs_shape):
        batch_size, height, width, channels = inputs_shape
        if self.resize in ("exact", "center_crop"):
            height, width = self.image_size
        elif self.resize == "shortest_edge" and height is not None and width is not None:
            height, width = self._output_size(height, width)
        return (batch_size, height, width, channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "resize": self.resize,
                "interpolation": self.interpolation,
                "crop_fraction": self.crop_fraction,
                "shortest_edge": self.shortest_edge,
                "longest_edge": self.longest_edge,
                "scale": self.scale,
                "mean": self.mean,
                "std": self.std,
            }
        )
        return config
