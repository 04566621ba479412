"""Window multi-head self-attention with a learned relative position bias (Swin).

Letter legend for shape comments: B batch, K windows per image, T tokens per window, N heads,
C channels.
"""

import keras
import numpy as np
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.attention.get_attention import make_attention
from keras_seq.ops.interpolation import bicubic_resize
from keras_seq.ops.windows import relative_position_index
from keras_seq.utils.validation import validate_int_pair
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


@keras_seq_export
class WindowAttention(keras.layers.Layer):
    """Self-attention within windows of tokens, with a learned relative position bias.

    The attention of Swin (Liu et al., 2021): every window of `window_height x
    window_width` tokens attends within itself, and a learned table of
    `(2 * window_height - 1) * (2 * window_width - 1)` rows (one per relative offset `(dy,
    dx)`) by `num_heads` adds a bias to the logits, gathered through an index precomputed once.
    The attention itself is a pluggable layer (`keras_seq.layers.MultiHeadAttention` by
    default) called with `attention_bias`: one attention implementation for the whole
    library. What it adds over keras_hub's `WindowAttention`: it survives
    `from_config(get_config())`, takes a per-window mask built once by the caller, and loads
    weights saved for another window size by resampling the bias table bicubically (timm's
    `resize_rel_pos_bias_table_simple`; timm's Swin itself interpolates on a geometric grid).

    Args:
        num_heads: int. Number of attention heads; must divide the channels.
        window_size: int or pair `(window_height, window_width)`.
        attention_dropout: float in [0, 1). Dropout on the attention probabilities of a
            named attention. Defaults to `0.0`.
        kernel_initializer: initializer of the projection kernels. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer of the projection biases. Defaults to `"zeros"`.
        table_initializer: initializer of the bias table. Defaults to a truncated normal
            with stddev 0.02 (the original).
        attention: the attention layer: `"multi_head"`, a registered name, a config dict or
            an instance (a template), as in `keras_seq.layers.TransformerEncoder`; it must
            accept `attention_mask` and `attention_bias`. Defaults to `"multi_head"`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size * num_windows, tokens, channels)`, the windows of
            `keras_seq.ops.window_partition`, `tokens = window_height * window_width`.
        attention_mask: optional bool `(num_windows, tokens, tokens)` (the same for every
            image, e.g. `keras_seq.ops.shifted_window_mask`) or `(batch_size * num_windows,
            tokens, tokens)`; `True` = may attend.
        return_attention_scores: bool. Also return the attention probabilities.
        training: bool or `None`.

    Returns:
        Tensor shaped like `inputs`; with `return_attention_scores=True`, `(outputs,
        scores)`, scores `(batch_size * num_windows, num_heads, tokens, tokens)`.

    Example:
    ```python
    attention = keras_seq.layers.WindowAttention(num_heads=2, window_size=4)
    windows = np.random.rand(6, 16, 8).astype("float32")
    assert attention(windows).shape == (6, 16, 8)
    ```

    References:
        - [Liu et al., 2021](https://arxiv.org/abs/2103.14030)
    """

    def __init__(
        self,
        num_heads,
        window_size,
        attention_dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        table_initializer=None,
        attention="multi_head",
        **kwargs,
    ):
        num_heads = validate_positive_int("num_heads", num_heads)
        window_height, window_width = validate_int_pair("window_size", window_size, minimum=1)
        attention_dropout = validate_rate("attention_dropout", attention_dropout)
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.window_size = window_size
        self.attention_dropout = attention_dropout
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.table_initializer = table_initializer
        self.attention = attention
        self._window = (window_height, window_width)
        self._table_grid = (2 * window_height - 1, 2 * window_width - 1)
        self._index = relative_position_index(self._window).reshape(-1)  # (T * T,)
        self._tokens = window_height * window_width

    def build(self, inputs_shape):
        if len(inputs_shape) != 3 or inputs_shape[1] != self._tokens:
            raise ValueError(
                "`inputs` must be windows (batch_size * num_windows, tokens, channels) with "
                f"tokens = window_height * window_width = {self._tokens}. Received: "
                f"inputs.shape={tuple(inputs_shape)}, window_size={self.window_size}"
            )
        self.relative_position_bias_table = self.add_weight(
            shape=(self._table_grid[0] * self._table_grid[1], self.num_heads),
            initializer=self.table_initializer or keras.initializers.TruncatedNormal(stddev=0.02),
            name="relative_position_bias_table",
        )
        self.self_attention = make_attention(
            self.attention,
            inputs_shape[-1],
            self.num_heads,
            self.attention_dropout,
            self.kernel_initializer,
            self.bias_initializer,
            self.dtype_policy,
            "self_attention",
        )
        attention_heads = getattr(self.self_attention, "num_heads", self.num_heads)
        if attention_heads != self.num_heads:
            raise ValueError(
                "The bias table has one column per head: `num_heads` must equal the "
                "`attention` layer's number of heads. Received: "
                f"num_heads={self.num_heads}, attention num_heads={attention_heads}"
            )
        self.self_attention.build(inputs_shape, inputs_shape)

    def relative_position_bias(self):
        """The `(num_heads, tokens, tokens)` bias gathered from the table."""
        bias = ops.take(self.relative_position_bias_table, self._index, axis=0)  # (T * T, N)
        bias = ops.reshape(bias, (self._tokens, self._tokens, self.num_heads))
        return ops.transpose(bias, (2, 0, 1))  # (N, T, T)

    def call(self, inputs, attention_mask=None, return_attention_scores=False, training=None):
        kwargs = {"attention_bias": ops.cast(self.relative_position_bias(), inputs.dtype)}
        if attention_mask is not None:
            attention_mask = ops.convert_to_tensor(attention_mask, "bool")
            num_masks, num_windows = ops.shape(attention_mask)[0], ops.shape(inputs)[0]
            # One mask per window position, the same for every image: (K, T, T) ->
            # (B * K, T, T), windows in window_partition's image-major order.
            attention_mask = ops.tile(attention_mask, (num_windows // num_masks, 1, 1))
            kwargs["attention_mask"] = attention_mask
        if return_attention_scores:
            kwargs["return_attention_scores"] = True
        return self.self_attention(inputs, inputs, training=training, **kwargs)

    def compute_output_spec(
        self, inputs, attention_mask=None, return_attention_scores=False, training=None
    ):
        outputs = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        scores_shape = (inputs.shape[0], self.num_heads, self._tokens, self._tokens)
        return outputs, keras.KerasTensor(scores_shape, dtype=self.compute_dtype)

    def load_own_variables(self, store):
        """Load the bias table, resampling one saved for another (square) window size."""
        table = np.asarray(store["0"])
        expected = tuple(self.relative_position_bias_table.shape)
        if table.shape != expected:
            side = int(round(table.shape[0] ** 0.5)) if table.ndim == 2 else 0
            if table.ndim != 2 or table.shape[1] != self.num_heads or side * side != table.shape[0]:
                raise ValueError(
                    f"Layer '{self.name}' can resample a relative position bias table saved for "
                    f"a square window ((2M - 1)^2 rows, {self.num_heads} columns) into its "
                    f"{expected} table. Received: a table of shape {table.shape}"
                )
            table = bicubic_resize(table.reshape(side, side, self.num_heads), self._table_grid)
            table = np.asarray(table).reshape(expected)
        self.relative_position_bias_table.assign(table)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "window_size": self.window_size,
                "attention_dropout": self.attention_dropout,
                "kernel_initializer": keras.saving.serialize_keras_object(self.kernel_initializer),
                "bias_initializer": keras.saving.serialize_keras_object(self.bias_initializer),
                "table_initializer": keras.saving.serialize_keras_object(self.table_initializer),
                "attention": keras.saving.serialize_keras_object(self.attention),
            }
        )
        return config
