"""Class token and learned 2-D position embeddings of a ViT, resampled to any grid size.

Letter legend for shape comments: B batch, h / w patch-grid height and width at call time,
gh / gw the grid of the learned table, C channels.
"""

import keras
import numpy as np
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.ops.interpolation import bicubic_resize
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_int_pair


@keras_seq_export
class PatchPositionEmbedding(keras.layers.Layer):
    """Flatten a patch grid into tokens, prepend a class token, add learned positions.

    Holds the class token and a table of `1 + grid_height * grid_width` learned position embeddings
    (the class token's, then the grid's in row-major order; the layout of the original ViT and
    timm). Images of another size work: when the call's patch grid differs from `grid_shape`,
    the grid part of the table is resampled bicubically in 2-D (PyTorch's bicubic without
    antialiasing, see `keras_seq.ops.bicubic_resize`) to the call's grid, also when the grid
    size is only known at run time (`image_shape=(None, None, 3)`). Weights saved for another
    grid load into this one: `load_own_variables` resamples the stored table once, the way one
    fine-tunes at a higher resolution (equal to timm's `resample_abs_pos_embed` with
    `antialias=False`; a stored table is taken to be a square grid: the file does not record its
    grid, so a non-square one with another row count is an error). keras_hub's ViT can do
    neither.

    Args:
        grid_shape: pair `(grid_height, grid_width)`. Patch grid of the learned table (the
            image size the model is built for, divided by the patch size).
        use_class_token: bool. Prepend a learned class token. Defaults to `True`.
        initializer: initializer of the position table and class token. Defaults to a
            truncated normal with stddev 0.02.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, hidden_dim)`, a patch grid (the output of
            `keras_seq.layers.PatchEmbedding`).

    Returns:
        Tensor `(batch_size, [1 +] height * width, hidden_dim)`: the class token first (if
        used), then the patches in row-major order, each plus its position embedding.

    Example:
    ```python
    layer = keras_seq.layers.PatchPositionEmbedding(grid_shape=(4, 4))
    assert layer(np.zeros((2, 4, 4, 8), "float32")).shape == (2, 17, 8)
    # A 6 x 5 grid gets the table resampled to 6 x 5.
    assert layer(np.zeros((2, 6, 5, 8), "float32")).shape == (2, 31, 8)
    ```

    References:
        - [Dosovitskiy et al., 2020](https://arxiv.org/abs/2010.11929)
    """

    def __init__(self, grid_shape, use_class_token=True, initializer=None, **kwargs):
        validate_int_pair("grid_shape", grid_shape, minimum=1, allow_single=False)
        validate_bool("use_class_token", use_class_token)
        super().__init__(**kwargs)
        self.grid_shape = grid_shape
        self.use_class_token = use_class_token
        self.initializer = initializer
        self._num_prefix_tokens = int(use_class_token)

    def _initializer(self):
        return clone_initializer(
            self.initializer or keras.initializers.TruncatedNormal(stddev=0.02)
        )

    def build(self, inputs_shape):
        if len(inputs_shape) != 4:
            raise ValueError(
                "`inputs` must be a patch grid (batch_size, height, width, hidden_dim). "
                f"Received: inputs.shape={tuple(inputs_shape)}"
            )
        hidden_dim = inputs_shape[-1]
        if self.use_class_token:
            self.class_token = self.add_weight(
                shape=(1, 1, hidden_dim), initializer=self._initializer(), name="class_token"
            )
        grid_height, grid_width = self.grid_shape
        self.position_embeddings = self.add_weight(
            shape=(self._num_prefix_tokens + grid_height * grid_width, hidden_dim),
            initializer=self._initializer(),
            name="position_embeddings",
        )

    def _grid_embeddings(self, height, width):
        """`(h * w, C)` position embeddings of the patches, resampled if needed."""
        grid = self.position_embeddings[self._num_prefix_tokens :]
        grid_height, grid_width = self.grid_shape
        static = isinstance(height, int) and isinstance(width, int)
        if static and (height, width) == (grid_height, grid_width):
            return grid  # Static and equal; a size known only at run time is resampled.
        grid = ops.reshape(grid, (grid_height, grid_width, -1))  # (gh, gw, C)
        return ops.reshape(bicubic_resize(grid, (height, width)), (-1, grid.shape[-1]))

    def call(self, inputs):
        height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
        hidden_dim = inputs.shape[-1]
        x = ops.reshape(inputs, (ops.shape(inputs)[0], -1, hidden_dim))  # (B, h * w, C)
        x = x + ops.cast(self._grid_embeddings(height, width), x.dtype)[None]
        if self.use_class_token:
            prefix = ops.cast(self.class_token + self.position_embeddings[None, :1], x.dtype)
            prefix = ops.broadcast_to(prefix, (ops.shape(x)[0], 1, hidden_dim))
            x = ops.concatenate([prefix, x], axis=1)
        return x

    def compute_output_shape(self, inputs_shape):
        batch_size, height, width, hidden_dim = inputs_shape
        tokens = None if height is None or width is None else height * width
        if tokens is not None:
            tokens += self._num_prefix_tokens
        return (batch_size, tokens, hidden_dim)

    def load_own_variables(self, store):
        """Load the weights, resampling a position table saved for another grid."""
        variables = self.weights
        for index, variable in enumerate(variables):
            value = np.asarray(store[str(index)])
            if variable is self.position_embeddings and value.shape != tuple(variable.shape):
                value = self._resample_table(value)
            variable.assign(value)

    def _resample_table(self, table):
        """Resample a saved `(prefix + g * g, C)` table (square grid) to this layer's grid."""
        prefix, grid = table[: self._num_prefix_tokens], table[self._num_prefix_tokens :]
        side = int(round(grid.shape[0] ** 0.5)) if table.ndim == 2 else 0
        expected = tuple(self.position_embeddings.shape)
        if table.ndim != 2 or table.shape[1] != expected[1] or side * side != grid.shape[0]:
            raise ValueError(
                f"Layer '{self.name}' can resample a position table saved for a square grid "
                f"({self._num_prefix_tokens} + g * g rows, {expected[1]} columns) into its "
                f"{expected} table. Received: a table of shape {table.shape}"
            )
        grid = bicubic_resize(grid.reshape(side, side, -1), tuple(self.grid_shape))
        return np.concatenate([prefix, np.asarray(grid).reshape(-1, expected[1])], axis=0)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "grid_shape": self.grid_shape,
                "use_class_token": self.use_class_token,
                "initializer": keras.saving.serialize_keras_object(self.initializer),
            }
        )
        return config
