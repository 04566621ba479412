"""Patch merging: halve a feature map's resolution and double its channels (Swin)."""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class PatchMerging(keras.layers.Layer):
    """Downsample a `(batch_size, height, width, channels)` map by merging 2x2 neighbours.

    Concatenates the channels of each 2x2 group of tokens (`4 * channels`), normalizes them
    and projects them linearly (no bias) to `output_dim` (Swin's stage transition: `2 *
    channels` at half the resolution). An odd height or width is zero-padded at the bottom /
    right first, as in the original, so no row or column is dropped.

    Args:
        output_dim: int or `None`. Output channels. Defaults to `2 * channels`.
        layer_norm_epsilon: float. Epsilon of the layer norm. Defaults to `1e-5`.
        kernel_initializer: initializer of the projection. Defaults to `"glorot_uniform"`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, channels)`, static height and width.

    Returns:
        Tensor `(batch_size, ceil(height / 2), ceil(width / 2), output_dim)`.

    Example:
    ```python
    layer = keras_seq.layers.PatchMerging()
    assert layer(np.zeros((2, 7, 8, 16), "float32")).shape == (2, 4, 4, 32)
    ```

    References:
        - [Liu et al., 2021](https://arxiv.org/abs/2103.14030)
    """

    def __init__(
        self,
        output_dim=None,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        if output_dim is not None:
            output_dim = validate_positive_int("output_dim", output_dim)
        layer_norm_epsilon = validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        super().__init__(**kwargs)
        self.output_dim = output_dim
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = kernel_initializer

    def build(self, inputs_shape):
        if len(inputs_shape) != 4 or inputs_shape[1] is None or inputs_shape[2] is None:
            raise ValueError(
                "`inputs` must be a feature map (batch_size, height, width, channels) with "
                f"static height and width. Received: inputs.shape={tuple(inputs_shape)}"
            )
        channels = inputs_shape[-1]
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.layer_norm.build((None, None, None, 4 * channels))
        self.reduction = keras.layers.Dense(
            self.output_dim or 2 * channels,
            use_bias=False,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="reduction",
        )
        self.reduction.build((None, None, None, 4 * channels))

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        if height % 2 or width % 2:
            inputs = ops.pad(inputs, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)))
        # The original's order: (even row, even col), (odd, even), (even, odd), (odd, odd).
        x = ops.concatenate(
            [
                inputs[:, 0::2, 0::2],
                inputs[:, 1::2, 0::2],
                inputs[:, 0::2, 1::2],
                inputs[:, 1::2, 1::2],
            ],
            axis=-1,
        )  # (B, H / 2, W / 2, 4C)
        return self.reduction(self.layer_norm(x))

    def compute_output_shape(self, inputs_shape):
        batch_size, height, width, channels = inputs_shape
        return (batch_size, -(-height // 2), -(-width // 2), self.output_dim or 2 * channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.saving.serialize_keras_object(self.kernel_initializer),
            }
        )
        return config
