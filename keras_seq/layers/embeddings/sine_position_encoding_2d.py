"""Fixed 2-D sinusoidal position encoding of a feature map (DETR).

Letter legend for shape comments: B batch, H / W feature-map height and width, C channels,
F = C / 2 encoding features per axis.
"""

import math

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_float


@keras_seq_export
class SinePositionEncoding2D(keras.layers.Layer):
    """2-D sine position encoding of a feature map, aware of padded pixels (DETR's).

    Half of the channels encode the row, half the column: each axis' position `p` (counted
    over real pixels only, so padding does not shift the image's positions) gives
    `sin(p / T^(2i/F))` and `cos(p / T^(2i/F))` interleaved, `T` the temperature and `F = C / 2`.
    With `normalize=True` positions are divided by the image's own extent and multiplied by
    `scale`, so that images of different sizes in one padded batch get the same encoding
    range. The result has the feature map's shape, to be added to attention queries and
    keys (see `position_embedding` of `keras_seq.layers.TransformerEncoder`). Weightless.
    keras_hub has no 2-D or mask-aware sine encoding; its `SinePositionEncoding` is 1-D.

    Args:
        temperature: float > 0. Base of the wavelengths. Defaults to `10000.0`.
        normalize: bool. Normalize positions by each image's height and width. Defaults to
            `True` (DETR's setting).
        scale: float > 0. Range of normalized positions, `(0, scale]`. Only with
            `normalize=True`. Defaults to `2 * pi`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, channels)` feature map; only its shape
            is used. `channels` must be divisible by 4.
        padding_mask: optional bool `(batch_size, height, width)`, `True` = real pixel.
            Without it every pixel is real.

    Returns:
        Tensor `(batch_size, height, width, channels)` in the layer's compute dtype:
        channels `[0, C/2)` encode the row, `[C/2, C)` the column.

    Example:
    ```python
    encoding = keras_seq.layers.SinePositionEncoding2D()(np.zeros((2, 3, 5, 8), "float32"))
    assert encoding.shape == (2, 3, 5, 8)
    ```

    References:
        - [Carion et al., 2020](https://arxiv.org/abs/2005.12872) (DETR)
    """

    def __init__(self, temperature=10000.0, normalize=True, scale=2 * math.pi, **kwargs):
        temperature = validate_positive_float("temperature", temperature)
        validate_bool("normalize", normalize)
        scale = validate_positive_float("scale", scale)
        super().__init__(**kwargs)
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale

    def build(self, inputs_shape, padding_mask_shape=None):
        if len(inputs_shape) != 4 or inputs_shape[-1] is None or inputs_shape[-1] % 4:
            raise ValueError(
                "`inputs` must be a feature map (batch_size, height, width, channels) with "
                "`channels` divisible by 4 (sine and cosine for rows and for columns). "
                f"Received: inputs.shape={tuple(inputs_shape)}"
            )

    def _axis_encoding(self, positions, features):
        """`(B, H, W)` positions -> `(B, H, W, F)`, sin and cos interleaved."""
        exponent = 2.0 * ops.cast(ops.arange(features) // 2, "float32") / features
        frequencies = ops.power(self.temperature, exponent)  # (F,)
        angles = positions[..., None] / frequencies  # (B, H, W, F)
        # Feature pairs (2i, 2i + 1) share a wavelength: sin on the even one, cos on the odd.
        sines, cosines = ops.sin(angles[..., 0::2]), ops.cos(angles[..., 1::2])
        interleaved = ops.stack([sines, cosines], axis=-1)  # (B, H, W, F/2, 2)
        shape = ops.shape(positions)
        return ops.reshape(interleaved, (shape[0], shape[1], shape[2], features))

    def call(self, inputs, padding_mask=None):
        shape = ops.shape(inputs)
        if padding_mask is None:
            real = ops.ones((shape[0], shape[1], shape[2]), "float32")
        else:
            real = ops.cast(padding_mask, "float32")  # (B, H, W)
        rows = ops.cumsum(real, axis=1)  # 1-based positions over real pixels
        columns = ops.cumsum(real, axis=2)
        if self.normalize:
            epsilon = 1e-6
            rows = rows / (rows[:, -1:, :] + epsilon) * self.scale
            columns = columns / (columns[:, :, -1:] + epsilon) * self.scale
        features = inputs.shape[-1] // 2
        encoding = ops.concatenate(
            [self._axis_encoding(rows, features), self._axis_encoding(columns, features)],
            axis=-1,
        )  # (B, H, W, C)
        return ops.cast(encoding, self.compute_dtype)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return tuple(inputs_shape)

    def compute_output_spec(self, inputs, padding_mask=None):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"temperature": self.temperature, "normalize": self.normalize, "scale": self.scale}
        )
        return config
