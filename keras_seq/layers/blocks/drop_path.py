"""Stochastic depth: drop a residual branch for whole examples."""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.utils.validation import validate_rate
from keras_seq.utils.validation import validate_seed


@keras_seq_export
class DropPath(keras.layers.Layer):
    """Stochastic depth: zero a residual branch for a random subset of the batch.

    In training, each example's input is kept with probability `1 - rate` and scaled by
    `1 / (1 - rate)`, or zeroed entirely (one draw per example, shared by every position
    and channel); at inference it is the identity. Applied to a sublayer's output before the
    residual sum, it skips that block for the dropped examples (Huang et al., 2016). Keras
    core has no such layer (`Dropout` with `noise_shape` cannot broadcast over a batch of
    unknown rank); keras_seq's transformer, ViT and Swin blocks all use this one.

    Args:
        rate: float in [0, 1). Probability of dropping the branch for an example. Defaults
            to `0.0` (identity).
        seed: non-negative int or `None`. Seed of the draws. Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `(batch_size, ...)`.
        training: bool or `None`.

    Returns:
        Tensor shaped like `inputs`.

    Masking:
        Propagates the Keras mask of `inputs`.

    Example:
    ```python
    layer = keras_seq.layers.DropPath(rate=0.5, seed=0)
    outputs = np.asarray(layer(np.ones((8, 4, 3), "float32"), training=True))
    # Each example is either all zeros or all 2.0.
    assert set(np.unique(outputs)) <= {0.0, 2.0}
    ```

    References:
        - [Huang et al., 2016](https://arxiv.org/abs/1603.09382)
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        rate = validate_rate("rate", rate)
        seed = validate_seed("seed", seed)
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed) if rate > 0 else None

    def build(self, input_shape):
        del input_shape  # No weights; the seed generator is made in the constructor.

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        draws = keras.random.uniform(shape, seed=self.seed_generator, dtype="float32")
        scale = ops.cast(ops.floor(keep + draws), inputs.dtype) / ops.cast(keep, inputs.dtype)
        return inputs * scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
