"""Backbone feature map to transformer tokens, with DETR's position encoding and mask.

Letter legend for shape comments: B batch, H / W image height and width, h / w feature-map
height and width, D channels.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.embeddings.sine_position_encoding_2d import SinePositionEncoding2D


@keras_seq_export
class DETRFeatureTokens(keras.layers.Layer):
    """Flatten a feature map into tokens, with their 2-D sine encoding and padding mask.

    The image's padding mask (`True` = real pixel) is resampled to the feature map by
    nearest neighbour (pixel `floor(i * H / h)` for feature row `i`, as PyTorch's nearest
    interpolation in the original), the `SinePositionEncoding2D` of the map is computed
    from it, and map, encoding and mask are flattened row-major to `h * w` tokens. Works
    for sizes known only at run time (a Keras functional reshape cannot flatten two
    unknown axes). Used by `keras_seq.models.DETRBackbone`.

    Args:
        temperature: float > 0. Of the sine encoding. Defaults to `10000.0`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, channels)` feature map, `channels`
            divisible by 4.
        padding_mask: optional bool `(batch_size, image_height, image_width)`, `True` =
            real pixel, at the image's resolution.

    Returns:
        `(tokens, position_embedding, token_mask)`: `(batch_size, height * width,
        channels)` twice and bool `(batch_size, height * width)` (all `True` without a
        padding mask).

    Example:
    ```python
    layer = keras_seq.layers.DETRFeatureTokens()
    tokens, position, mask = layer(np.zeros((2, 3, 4, 8), "float32"))
    assert tokens.shape == position.shape == (2, 12, 8) and mask.shape == (2, 12)
    ```
    """

    def __init__(self, temperature=10000.0, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature
        self.position_encoding = SinePositionEncoding2D(
            temperature=temperature, dtype=self.dtype_policy, name="position_encoding"
        )

    def build(self, inputs_shape, padding_mask_shape=None):
        self.position_encoding.build(inputs_shape)

    def _feature_mask(self, padding_mask, height, width):
        """Nearest-neighbour resampling of `(B, H, W)` to `(B, h, w)`."""
        image_height, image_width = ops.shape(padding_mask)[1], ops.shape(padding_mask)[2]
        rows = (ops.arange(height, dtype="int32") * image_height) // height
        columns = (ops.arange(width, dtype="int32") * image_width) // width
        mask = ops.take(ops.cast(padding_mask, "int32"), rows, axis=1)
        return ops.cast(ops.take(mask, columns, axis=2), "bool")  # (B, h, w)

    def call(self, inputs, padding_mask=None):
        shape = ops.shape(inputs)
        batch_size, height, width, channels = shape[0], shape[1], shape[2], inputs.shape[-1]
        if padding_mask is None:
            feature_mask = ops.ones((batch_size, height, width), "bool")
        else:
            feature_mask = self._feature_mask(padding_mask, height, width)
        position = self.position_encoding(inputs, feature_mask)  # (B, h, w, D)
        tokens = (batch_size, height * width, channels)
        return (
            ops.reshape(inputs, tokens),
            ops.reshape(position, tokens),
            ops.reshape(feature_mask, (batch_size, height * width)),
        )

    def compute_output_spec(self, inputs, padding_mask=None):
        batch_size, height, width, channels = inputs.shape
        length = None if height is None or width is None else height * width
        return (
            keras.KerasTensor((batch_size, length, channels), dtype=self.compute_dtype),
            keras.KerasTensor((batch_size, length, channels), dtype=self.compute_dtype),
            keras.KerasTensor((batch_size, length), dtype="bool"),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config
