"""The Swin transformer block: (shifted) window attention, then a feed-forward network.

Letter legend for shape comments: B batch, H / W feature-map height and width (Hp / Wp
padded to window multiples), C channels, K windows per image, T tokens per window, N heads.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.attention.window_attention import WindowAttention
from keras_seq.layers.blocks.transformer_block import TransformerBlock
from keras_seq.ops.windows import shifted_window_mask
from keras_seq.ops.windows import window_partition
from keras_seq.ops.windows import window_reverse
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class SwinBlock(TransformerBlock):
    """Swin transformer block on a `(batch_size, height, width, channels)` feature map.

    Pre-norm window attention (`keras_seq.layers.WindowAttention`, relative position bias)
    and a feed-forward network, each with a residual, dropout and stochastic depth (Liu et
    al., 2021). With `shift=True` the map is rolled by half a window before partitioning so
    that windows straddle the previous block's window borders; the mask that keeps the
    wrapped-around pieces apart is computed once in `build()`, not per call. Any map size
    works: the map is zero-padded to window multiples (by default the padded tokens are
    masked out as keys, so real outputs do not depend on the padding; the original, Hugging
    Face's and timm's Swin let them take part, which `mask_padding=False` reproduces), and a
    window axis longer than the map is clamped to the map with no shift on that axis (as
    timm does), so keras_seq's Swin runs at sizes such as 112x112, 100x100 and 96x160 where
    keras_hub's fails. Shares its sublayers and residual logic with the transformer blocks.

    Args:
        num_heads: int. Number of attention heads; must divide the channels.
        intermediate_dim: int. Width of the feed-forward hidden layer.
        window_size: int. Height and width of the attention windows. Defaults to `7`.
        shift: bool. Shift the windows by `window_size // 2`. Defaults to `False`.
        dropout: float in [0, 1). Dropout on each sublayer's output. Defaults to `0.0`.
        attention_dropout: float in [0, 1). Dropout on the attention probabilities.
            Defaults to `0.0`.
        activation: activation of the feed-forward hidden layer. Defaults to `"gelu"`.
        normalize_first: bool. Pre-norm if `True` (Swin), post-norm if `False`. Defaults
            to `True`.
        layer_norm_epsilon: float. Epsilon of the layer norms. Defaults to `1e-5`.
        kernel_initializer: initializer of every kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of every bias. Defaults to `"zeros"`.
        attention: the attention inside the windows (see `WindowAttention`). Defaults to
            `"multi_head"`.
        drop_path_rate: float in [0, 1). Stochastic depth of each residual branch. Defaults
            to `0.0`.
        mask_padding: bool. Keep the zero padding of a map that is no window multiple out
            of attention (`True`), or let it take part as the original Swin does (`False`,
            the outputs of published checkpoints at such sizes). Defaults to `True`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, channels)` with static height and width.
        return_attention_scores: bool. Also return the attention probabilities of every
            window.
        training: bool or `None`.

    Returns:
        Tensor shaped like `inputs`; with `return_attention_scores=True`, `(outputs,
        scores)`, scores `(batch_size * num_windows, num_heads, tokens, tokens)` over the
        padded, shifted map's windows.

    Example:
    ```python
    block = keras_seq.layers.SwinBlock(num_heads=2, intermediate_dim=32, window_size=4, shift=True)
    outputs = block(np.random.rand(2, 8, 12, 16).astype("float32"))
    assert outputs.shape == (2, 8, 12, 16)
    ```

    References:
        - [Liu et al., 2021](https://arxiv.org/abs/2103.14030)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        window_size=7,
        shift=False,
        dropout=0.0,
        attention_dropout=0.0,
        activation="gelu",
        normalize_first=True,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        attention="multi_head",
        drop_path_rate=0.0,
        mask_padding=True,
        **kwargs,
    ):
        num_heads = validate_positive_int("num_heads", num_heads)
        validate_bool("mask_padding", mask_padding)
        window_size = validate_positive_int("window_size", window_size)
        validate_bool("shift", shift)
        super().__init__(
            num_heads=num_heads if isinstance(attention, str) else None,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation=activation,
            normalize_first=normalize_first,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            attention=attention,
            drop_path_rate=drop_path_rate,
            **kwargs,
        )
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift = shift
        self.mask_padding = mask_padding

    def build(self, inputs_shape):
        if len(inputs_shape) != 4 or inputs_shape[1] is None or inputs_shape[2] is None:
            raise ValueError(
                "`inputs` must be a feature map (batch_size, height, width, channels) with "
                f"static height and width. Received: inputs.shape={tuple(inputs_shape)}"
            )
        height, width, channels = inputs_shape[1], inputs_shape[2], inputs_shape[3]
        self._map_size = (height, width)  # windows, shifts and masks are made for it
        # A window axis longer than the map is clamped to it, with no shift on that axis.
        self._window = (min(self.window_size, height), min(self.window_size, width))
        self._shift = tuple(
            self.window_size // 2 if self.shift and size > self.window_size else 0
            for size in (height, width)
        )
        self._padded = tuple(
            -(-size // window) * window for size, window in zip((height, width), self._window)
        )
        # Without `mask_padding`, padded tokens count as real ones (the original's masks are
        # those of the padded map).
        valid = (height, width) if self.mask_padding else self._padded
        needs_mask = any(self._shift) or self._padded != valid
        self._mask = (
            shifted_window_mask(*self._padded, self._window, self._shift, *valid)
            if needs_mask
            else None
        )  # (K, T, T) NumPy constant
        self.attention_layer_norm = self._make_layer_norm("attention_layer_norm", inputs_shape)
        self.window_attention = WindowAttention(
            num_heads=self.num_heads,
            window_size=self._window,
            attention_dropout=self.attention_dropout,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            attention=self.attention,
            dtype=self.dtype_policy,
            name="window_attention",
        )
        self.window_attention.build((None, self._window[0] * self._window[1], channels))
        self.attention_dropout_layer = self._make_dropout("attention_dropout_layer")
        self.attention_drop_path = self._make_drop_path("attention_drop_path")
        self.feedforward_layer_norm = self._make_layer_norm("feedforward_layer_norm", inputs_shape)
        self.feedforward = self._make_feedforward(inputs_shape)
        self.feedforward_dropout = self._make_dropout("feedforward_dropout")
        self.feedforward_drop_path = self._make_drop_path("feedforward_drop_path")

    def _windowed_attention(self, x, return_attention_scores, training):
        height, width = x.shape[1], x.shape[2]
        padded_height, padded_width = self._padded
        if (padded_height, padded_width) != (height, width):
            x = ops.pad(x, ((0, 0), (0, padded_height - height), (0, padded_width - width), (0, 0)))
        if any(self._shift):
            x = ops.roll(x, (-self._shift[0], -self._shift[1]), axis=(1, 2))
        windows = window_partition(x, self._window)  # (B * K, T, C)
        mask = None if self._mask is None else ops.convert_to_tensor(self._mask)
        outputs = self.window_attention(
            windows,
            attention_mask=mask,
            return_attention_scores=return_attention_scores,
            training=training,
        )
        outputs, scores = outputs if return_attention_scores else (outputs, None)
        x = window_reverse(outputs, self._window, padded_height, padded_width)  # (B, Hp, Wp, C)
        if any(self._shift):
            x = ops.roll(x, self._shift, axis=(1, 2))
        x = x[:, :height, :width]
        return (x, scores) if return_attention_scores else x

    def call(self, inputs, return_attention_scores=False, training=None):
        if any(
            size is not None and size != built
            for size, built in zip(inputs.shape[1:3], self._map_size)
        ):
            raise ValueError(
                "`inputs` must have the height and width this SwinBlock was built for, "
                f"{self._map_size} (its windows and masks are made for them). "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )
        x, scores = self._residual(
            inputs,
            lambda h: self._windowed_attention(h, return_attention_scores, training),
            self.attention_layer_norm,
            self.attention_dropout_layer,
            self.attention_drop_path,
            training,
        )
        x = self._feedforward_residual(x, training)
        return (x, scores[0]) if return_attention_scores else x

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def compute_output_spec(self, inputs, return_attention_scores=False, training=None):
        outputs = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        num_windows = (self._padded[0] // self._window[0]) * (self._padded[1] // self._window[1])
        batch_size = inputs.shape[0]
        tokens = self._window[0] * self._window[1]
        scores_shape = (
            None if batch_size is None else batch_size * num_windows,
            self.num_heads,
            tokens,
            tokens,
        )
        return outputs, keras.KerasTensor(scores_shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "window_size": self.window_size,
                "shift": self.shift,
                "mask_padding": self.mask_padding,
            }
        )
        return config
