"""Patch embedding: cut an image into patches and project each one linearly."""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class PatchEmbedding(keras.layers.Layer):
    """Embed non-overlapping `patch_size x patch_size` patches of an image as tokens.

    A convolution with kernel and stride `patch_size` (a linear projection of each flattened
    patch), keeping the patch grid: `(batch_size, height / patch_size, width / patch_size,
    hidden_dim)`, for ViT (flattened afterwards) and Swin (windowed on the grid). Pixels are
    never dropped silently: an image whose static size is not a multiple of `patch_size` is
    an error, unless `pad_to_multiple=True` zero-pads it at the bottom / right (Swin's
    behaviour). The size is checked when the layer is built and again at every call, so a
    layer built for any size (`None` height / width, as `ViTBackbone(image_shape=(None, None,
    3))`) refuses an eager image of another size too. Only a graph traced with unknown height
    or width (a `tf.function` or `model.predict` over images of several sizes) cannot be
    checked: there, without `pad_to_multiple`, feed multiples of `patch_size` (a remainder would
    be cut off by the strided convolution).

    Args:
        hidden_dim: int. Embedding width.
        patch_size: int. Height and width of a patch.
        pad_to_multiple: bool. Zero-pad images to a multiple of `patch_size` instead of
            requiring one. Defaults to `False`.
        kernel_initializer: initializer of the projection. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the bias. Defaults to `"zeros"`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, channels)` images.

    Returns:
        Tensor `(batch_size, ceil(height / patch_size), ceil(width / patch_size),
        hidden_dim)`.

    Example:
    ```python
    layer = keras_seq.layers.PatchEmbedding(hidden_dim=32, patch_size=4)
    assert layer(np.zeros((2, 16, 24, 3), "float32")).shape == (2, 4, 6, 32)
    ```

    References:
        - [Dosovitskiy et al., 2020](https://arxiv.org/abs/2010.11929)
    """

    def __init__(
        self,
        hidden_dim,
        patch_size,
        pad_to_multiple=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        hidden_dim = validate_positive_int("hidden_dim", hidden_dim)
        patch_size = validate_positive_int("patch_size", patch_size)
        validate_bool("pad_to_multiple", pad_to_multiple)
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.patch_size = patch_size
        self.pad_to_multiple = pad_to_multiple
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def build(self, inputs_shape):
        if len(inputs_shape) != 4:
            raise ValueError(
                "`inputs` must be images (batch_size, height, width, channels). Received: "
                f"inputs.shape={tuple(inputs_shape)}"
            )
        self._check_image_size(inputs_shape)
        self.projection = keras.layers.Conv2D(
            self.hidden_dim,
            self.patch_size,
            strides=self.patch_size,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="projection",
        )
        self.projection.build(inputs_shape)

    def _check_image_size(self, shape):
        if self.pad_to_multiple:
            return
        for axis, size in (("height", shape[1]), ("width", shape[2])):
            if size is not None and size % self.patch_size:
                raise ValueError(
                    f"The image {axis} must be a multiple of `patch_size`, or set "
                    f"`pad_to_multiple=True`. Received: image {axis}={size}, "
                    f"patch_size={self.patch_size}"
                )

    def call(self, inputs):
        # A layer built for any size (height / width `None`) sees the size at call time.
        self._check_image_size(inputs.shape)
        if self.pad_to_multiple:
            height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
            inputs = ops.pad(
                inputs,
                (
                    (0, 0),
                    (0, (-height) % self.patch_size),
                    (0, (-width) % self.patch_size),
                    (0, 0),
                ),
            )
        return self.projection(inputs)

    def compute_output_shape(self, inputs_shape):
        def patches(size):
            return None if size is None else -(-size // self.patch_size)

        return (
            inputs_shape[0],
            patches(inputs_shape[1]),
            patches(inputs_shape[2]),
            self.hidden_dim,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "patch_size": self.patch_size,
                "pad_to_multiple": self.pad_to_multiple,
                "kernel_initializer": keras.saving.serialize_keras_object(self.kernel_initializer),
                "bias_initializer": keras.saving.serialize_keras_object(self.bias_initializer),
            }
        )
        return config
