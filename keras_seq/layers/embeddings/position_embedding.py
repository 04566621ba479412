"""Learned absolute position embedding, with optional linear resampling to other lengths.

Letter legend for shape comments: B batch, T input length, L `sequence_length` (table rows),
F input features, D table width.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.embeddings.sine_position_encoding import check_sequence_input_shape
from keras_seq.layers.embeddings.sine_position_encoding import merge_positions
from keras_seq.layers.embeddings.sine_position_encoding import merged_output_shape
from keras_seq.layers.embeddings.sine_position_encoding import static_start_index
from keras_seq.layers.embeddings.sine_position_encoding import validate_merge
from keras_seq.utils.shape_checks import check_not_empty
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int


def get_initializer(name, value):
    """`keras.initializers.get(value)`, with an error naming the argument `name`."""
    try:
        return keras.initializers.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{name}` must be an initializer name, config or instance. Received: "
            f"{name}={value!r} ({error})"
        ) from None


def resample_positions(table, length):
    """Linearly resample `table` `(L, D)` along its first axis to `length` rows.

    Half-pixel alignment, as image resizing (and ViT / DeiT position resampling) uses: output
    row `t` reads the table at coordinate `(t + 0.5) * L / length - 0.5`, clipped to
    `[0, L - 1]`. With `length == L` every coordinate is an integer and the table comes back
    unchanged.
    """
    num_rows = table.shape[0]
    scale = ops.divide(float(num_rows), ops.cast(length, "float32"))
    coordinates = ops.cast(ops.arange(length), "float32") + 0.5
    coordinates = ops.clip(coordinates * scale - 0.5, 0.0, float(num_rows - 1))  # (T,)
    lower = ops.floor(coordinates)
    weight = (coordinates - lower)[:, None]  # (T, 1)
    lower = ops.cast(lower, "int32")
    upper = ops.minimum(lower + 1, num_rows - 1)
    lower_rows = ops.take(table, lower, axis=0)  # (T, D)
    upper_rows = ops.take(table, upper, axis=0)  # (T, D)
    return lower_rows * (1.0 - weight) + upper_rows * weight


@keras_seq_export
class PositionEmbedding(keras.layers.Layer):
    """Learned absolute position embedding: a `(sequence_length, d)` table, one row a position.

    The learned lookup table of BERT, GPT-2 and ViT: row `t` is added to step `t`
    of the input (or concatenated with it), so `outputs[:, t] = inputs[:, t] + table[t]`.
    By default, inputs shorter than `sequence_length` use the first rows; longer ones are
    an error.

    With `interpolate=True` a model trained at one length runs at another: whenever the
    input length `T` differs from `sequence_length`, the table is resampled to `T` rows by
    linear interpolation along the position axis (a 1D, linear version of the resampling
    ViT and DeiT apply for new image sizes, with the same half-pixel alignment), so the
    whole table always spans the whole input; at
    `T == sequence_length` the table is used as is. Shorter inputs are then resampled too,
    not sliced: pad text to a fixed length if positions must not depend on the batch's
    length.

    What it adds over `keras_hub.layers.PositionEmbedding`: it returns `inputs + table`
    (or the concatenation) rather than the table alone, propagates the Keras mask, resamples
    to other lengths, checks lengths and `start_index` with clear errors, and keeps the table
    in float32 under mixed precision (cast after the lookup).

    Args:
        sequence_length: int. Number of table rows: the longest input without interpolation.
        initializer: initializer of the table (name, config or instance).
            Defaults to `"glorot_uniform"`.
        merge: `"add"` or `"concat"`. `"add"` returns `inputs + table[:T]` with `d` the last
            dimension of `inputs`; `"concat"` appends `hidden_dim` learned features.
            Defaults to `"add"`.
        hidden_dim: int or `None`. Table width `d` with `merge="concat"` (required there);
            must be `None` with `merge="add"`. Defaults to `None`.
        interpolate: bool. Resample the table to the input length whenever it differs from
            `sequence_length`. Defaults to `False`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `(batch_size, length, feature_dim)`; without interpolation
            `start_index + length <= sequence_length` (checked when both are static).
        start_index: int or integer scalar tensor. Table row of the first step of `inputs`:
            rows `start_index .. start_index + length - 1` are used, as when decoding one
            token at a time. Must be `0` with `interpolate=True`, since a resampled table
            depends on the full length, which one decoding step does not know. Defaults
            to `0`.

    Returns:
        `(batch_size, length, feature_dim)` with `merge="add"`;
        `(batch_size, length, feature_dim + hidden_dim)` with `merge="concat"`.

    Masking:
        Propagates the Keras mask of `inputs` unchanged; real steps do not depend on padded
        ones.

    Example:
    ```python
    layer = keras_seq.layers.PositionEmbedding(sequence_length=8)
    outputs = layer(np.zeros((2, 5, 16)))  # (2, 5, 16): rows 0..4 of the table
    step = layer(np.zeros((2, 1, 16)), start_index=6)  # row 6 only
    stretched = keras_seq.layers.PositionEmbedding(sequence_length=8, interpolate=True)
    outputs = stretched(np.zeros((2, 16, 16)))  # the 8 rows resampled to 16
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
        - [Dosovitskiy et al., 2021](https://arxiv.org/abs/2010.11929) (resampling)
        - [Touvron et al., 2021](https://arxiv.org/abs/2012.12877)
    """

    def __init__(
        self,
        sequence_length,
        initializer="glorot_uniform",
        merge="add",
        hidden_dim=None,
        interpolate=False,
        **kwargs,
    ):
        sequence_length = validate_positive_int("sequence_length", sequence_length)
        self._initializer = get_initializer("initializer", initializer)
        validate_merge(merge, hidden_dim)
        validate_bool("interpolate", interpolate)
        super().__init__(**kwargs)
        self.sequence_length = sequence_length
        self.initializer = initializer
        self.merge = merge
        self.hidden_dim = hidden_dim
        self.interpolate = interpolate
        self.supports_masking = True

    def build(self, input_shape):
        check_sequence_input_shape(self, input_shape, self.merge)
        self._check_positions(input_shape[1], 0)
        width = input_shape[-1] if self.merge == "add" else self.hidden_dim
        self.embeddings = self.add_weight(
            shape=(self.sequence_length, width),  # (L, D)
            initializer=self._initializer,
            name="embeddings",
            autocast=False,
        )

    def _check_positions(self, length, start_index):
        """Static checks of a call on `length` steps (int or `None`) from `start_index`."""
        start = static_start_index(start_index)
        if self.interpolate:
            if start != 0:
                received = "a tensor" if start is None else start
                raise ValueError(
                    "`start_index` must be 0 with interpolate=True: the resampled table "
                    "depends on the full sequence length, which a decoding step does not "
                    f"know. Received: start_index={received}"
                )
            return
        if start is not None and start < 0:
            raise ValueError(f"`start_index` must be >= 0. Received: start_index={start}")
        if length is not None and (start or 0) + length > self.sequence_length:
            raise ValueError(
                f"The input covers positions {start or 0}..{(start or 0) + length - 1}, beyond "
                f"the {self.sequence_length} rows of the table. Use inputs of at most "
                "`sequence_length` steps, a larger `sequence_length`, or interpolate=True. "
                f"Received: sequence_length={self.sequence_length}, input length={length}, "
                f"start_index={start_index if start is not None else 'a tensor'}"
            )

    def positions(self, length, start_index=0):
        """The float32 `(length, d)` position vectors added to `length` steps."""
        table = ops.convert_to_tensor(self.embeddings)  # (L, D), float32
        if self.interpolate:
            if isinstance(length, int) and length == self.sequence_length:
                return table
            return resample_positions(table, length)
        start = static_start_index(start_index)
        begin = start if start is not None else ops.cast(start_index, "int32")
        if start is None:
            # Rows at a tensor offset are gathered, not sliced. TensorFlow's XLA bridge wants
            # `Slice`'s offset as a compile-time constant, so an offset that is an argument of
            # a compiled function (the step count of a streamed decoding step) was compiled
            # in, once per value: a new XLA compilation for every token. Keras' PyTorch
            # `slice` reads the offset as a Python number (`torch.narrow`), which broke a
            # `torch.compile`d decoding step into ~10 graphs, 1.2x to 2x slower.
            rows = begin + ops.arange(length, dtype="int32")  # (T,)
            return ops.take(table, rows, axis=0)  # (T, D)
        return ops.slice(table, [begin, 0], [length, table.shape[1]])  # (T, D)

    def call(self, inputs, start_index=0):
        check_not_empty("inputs", inputs, 1, "sequence_length")
        self._check_positions(inputs.shape[1], start_index)
        positions = self.positions(ops.shape(inputs)[1], start_index)
        return merge_positions(inputs, ops.cast(positions, self.compute_dtype), self.merge)

    def compute_output_shape(self, input_shape):
        return merged_output_shape(input_shape, self.merge, self.hidden_dim)

    def compute_output_spec(self, inputs, start_index=0):
        self._check_positions(inputs.shape[1], start_index)
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self._initializer),
                "merge": self.merge,
                "hidden_dim": self.hidden_dim,
                "interpolate": self.interpolate,
            }
        )
        return config
