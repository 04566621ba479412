"""Token embedding plus position embedding: the input layer of BERT / GPT style models.

Letter legend for shape comments: B batch, T sequence length, E `embedding_dim`.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.embeddings.position_embedding import PositionEmbedding
from keras_seq.layers.embeddings.position_embedding import get_initializer
from keras_seq.layers.embeddings.sine_position_encoding import SinePositionEncoding
from keras_seq.layers.embeddings.sine_position_encoding import static_start_index
from keras_seq.ops.linear import reverse_dense_matmul
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.quantization import QuantizesLikeParent
from keras_seq.utils.shape_checks import check_not_empty
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_int

POSITION_TYPES = ("learned", "sine")


class _ReversibleEmbedding(QuantizesLikeParent, keras.layers.ReversibleEmbedding):
    """`keras.layers.ReversibleEmbedding` whose tied reverse projection is
    `keras_seq.ops.reverse_dense_matmul`'s (faster for one row under XLA on CPU, as when
    decoding one sequence). Weights, paths, LoRA, `reverse_dtype`, `logit_soft_cap` and
    quantization (Keras' own `quantized_call`) are `ReversibleEmbedding`'s. `quantize` is
    too: Keras' type check would otherwise skip this subclass in `model.quantize(mode)`.
    """

    def call(self, inputs, reverse=False):
        if not (reverse and self.tie_weights):
            return super().call(inputs, reverse=reverse)
        table = self.embeddings
        if self.reverse_dtype is not None:
            inputs = ops.cast(inputs, self.reverse_dtype)
            table = ops.cast(table, self.reverse_dtype)
        logits = reverse_dense_matmul(inputs, table)
        if self.logit_soft_cap is not None:
            cap = self.logit_soft_cap
            logits = ops.multiply(ops.tanh(ops.divide(logits, cap)), cap)
        return logits


@keras_seq_export
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Embed token ids and add a position embedding: `table[ids[:, t]] + position[t]`.

    The input layer of BERT and GPT. The token table is a
    `keras.layers.ReversibleEmbedding`, reachable as `token_embedding`, so a language
    model can reuse it as its output projection: `token_embedding(hidden, reverse=True)`
    gives vocabulary logits (with the transposed token table when `tie_weights=True`). The
    position part, `position_embedding`, is a learned `keras_seq.layers.PositionEmbedding`
    or a fixed `keras_seq.layers.SinePositionEncoding`, both adding to the token vectors.

    Args:
        vocabulary_size: int. Number of token ids, padding id 0 included.
        sequence_length: int or `None`. Longest input: the rows of the learned table with
            `position="learned"` (required there); with `position="sine"` an optional
            limit, `None` for none.
        embedding_dim: int. Width E of the token and position vectors.
        mask_zero: bool. Treat token id 0 as padding and output the mask `token_ids != 0`;
            real tokens then need ids >= 1. Defaults to `False`.
        position: `"learned"` or `"sine"`. Kind of position embedding.
            Defaults to `"learned"`.
        tie_weights: bool. Whether `token_embedding(x, reverse=True)` projects with the
            transposed token table (`True`) or a separate `(embedding_dim,
            vocabulary_size)` matrix. Defaults to `True`.
        embeddings_initializer: initializer of the token table and of the learned position
            table (name, config or instance; each table gets its own copy).
            Defaults to `"uniform"`.
        interpolate: bool. With `position="learned"`, resample the position table to the
            input length whenever it differs from `sequence_length` (see
            `PositionEmbedding`). Must be `False` with `"sine"`. Defaults to `False`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: int tensor `(batch_size, length)` of token ids in `[0, vocabulary_size)`.
        start_index: int or integer scalar tensor. Position of the first token, for
            decoding one token at a time. Must be `0` with `interpolate=True`.
            Defaults to `0`.

    Returns:
        Float tensor `(batch_size, length, embedding_dim)` in the compute dtype.

    Masking:
        With `mask_zero=True`, outputs the mask `token_ids != 0`; a Keras mask arriving
        on `inputs` is combined with it (logical and). With `mask_zero=False`, an incoming
        mask propagates unchanged. The mask is computed by this layer:
        `token_embedding` itself is built with `mask_zero=False`, and accepts masked
        inputs (its reverse projection returns no mask).

    Example:
    ```python
    layer = keras_seq.layers.TokenAndPositionEmbedding(
        vocabulary_size=100, sequence_length=16, embedding_dim=32, mask_zero=True
    )
    token_ids = np.array([[5, 8, 2, 0, 0], [7, 1, 3, 9, 4]])
    outputs = layer(token_ids)  # (2, 5, 32)
    mask = layer.compute_mask(token_ids)  # [[True, True, True, False, False], [True] * 5]
    logits = layer.token_embedding(outputs, reverse=True)  # (2, 5, 100), tied weights
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
        - [Radford et al., 2019](https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf)
        - [Press and Wolf, 2017](https://arxiv.org/abs/1608.05859) (tied output embedding)
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        embedding_dim,
        mask_zero=False,
        position="learned",
        tie_weights=True,
        embeddings_initializer="uniform",
        interpolate=False,
        **kwargs,
    ):
        vocabulary_size = validate_positive_int("vocabulary_size", vocabulary_size)
        embedding_dim = validate_positive_int("embedding_dim", embedding_dim)
        position = validate_choice("position", position, POSITION_TYPES)
        if sequence_length is None and position == "learned":
            raise ValueError(
                "`sequence_length` is required with position='learned': it is the number of "
                "rows of the position table. Received: sequence_length=None"
            )
        if sequence_length is not None:
            sequence_length = validate_positive_int("sequence_length", sequence_length)
        validate_bool("mask_zero", mask_zero)
        validate_bool("tie_weights", tie_weights)
        validate_bool("interpolate", interpolate)
        if interpolate and position != "learned":
            raise ValueError(
                "`interpolate` only applies to a learned position table; the sine encoding "
                f"works at any length. Received: interpolate=True, position={position!r}"
            )
        check_model_size(
            "TokenAndPositionEmbedding",
            {
                "vocabulary_size": vocabulary_size,
                "sequence_length": sequence_length or 0,
                "embedding_dim": embedding_dim,
            },
            [(1, "vocabulary_size", "embedding_dim"), (1, "sequence_length", "embedding_dim")],
            dtype=kwargs.get("dtype"),
        )
        initializer = get_initializer("embeddings_initializer", embeddings_initializer)
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.embedding_dim = embedding_dim
        self.mask_zero = mask_zero
        self.position = position
        self.tie_weights = tie_weights
        self.embeddings_initializer = embeddings_initializer
        self.interpolate = interpolate
        self._initializer = initializer
        self.supports_masking = True

        self.token_embedding = _ReversibleEmbedding(
            vocabulary_size,
            embedding_dim,
            tie_weights=tie_weights,
            embeddings_initializer=clone_initializer(initializer),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        # The reverse projection is applied to masked hidden states: accept their mask (it
        # returns none) instead of warning. The forward mask is this layer's compute_mask.
        self.token_embedding.supports_masking = True
        if position == "learned":
            self.position_embedding = PositionEmbedding(
                sequence_length,
                initializer=clone_initializer(initializer),
                interpolate=interpolate,
                dtype=self.dtype_policy,
                name="position_embedding",
            )
        else:
            self.position_embedding = SinePositionEncoding(
                dtype=self.dtype_policy, name="position_embedding"
            )

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "TokenAndPositionEmbedding expects token ids of shape (batch_size, length). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self._check_length(input_shape[1], 0)
        self.token_embedding.build(input_shape)
        self.position_embedding.build(tuple(input_shape) + (self.embedding_dim,))

    def _check_length(self, length, start_index):
        """The optional length limit of the sine encoding (the learned table checks its own)."""
        start = static_start_index(start_index)
        if self.position != "sine" or self.sequence_length is None or length is None:
            return
        if (start or 0) + length > self.sequence_length:
            raise ValueError(
                f"The input covers positions {start or 0}..{(start or 0) + length - 1}, beyond "
                f"the limit set by `sequence_length`. Use shorter inputs, a larger "
                "`sequence_length`, or sequence_length=None (the sine encoding works at any "
                f"length). Received: sequence_length={self.sequence_length}, input "
                f"length={length}, start_index={start_index if start is not None else 'a tensor'}"
            )

    def call(self, inputs, start_index=0):
        check_not_empty("inputs", inputs, 1, "sequence_length")
        self._check_length(inputs.shape[1], start_index)
        tokens = self.token_embedding(inputs)  # (B, T, E)
        return self.position_embedding(tokens, start_index=start_index)  # (B, T, E)

    def compute_mask(self, inputs, mask=None):
        token_mask = ops.not_equal(inputs, 0) if self.mask_zero else None
        if mask is None:
            return token_mask
        mask = ops.cast(mask, "bool")
        return mask if token_mask is None else ops.logical_and(mask, token_mask)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.embedding_dim,)

    def compute_output_spec(self, inputs, start_index=0):
        self._check_length(inputs.shape[1], start_index)
        self.position_embedding.compute_output_spec(
            keras.KerasTensor(self.compute_output_shape(inputs.shape)), start_index=start_index
        )
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "mask_zero": self.mask_zero,
                "position": self.position,
                "tie_weights": self.tie_weights,
                "embeddings_initializer": keras.initializers.serialize(self._initializer),
                "interpolate": self.interpolate,
            }
        )
        return config
