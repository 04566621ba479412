"""The masked-language-model head of BERT-style pretraining.

Letter legend for shape comments: B batch, T sequence length, P masked positions,
H input width, E embedding width, V vocabulary size.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.embeddings.position_embedding import get_initializer
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int


def _validate_activation(name, value, allow_none=False):
    if value is None and allow_none:
        return
    try:
        keras.activations.get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"Unknown `{name}`. Received: {name}={value!r} ({error})") from None


@keras_seq_export
class MaskedLMHead(keras.layers.Layer):
    """Masked-LM head: gather the masked positions, transform, project onto the vocabulary.

    For each of the `P` positions in `mask_positions` it takes the encoder output there and
    computes `LayerNorm(Dense(x, intermediate_activation))`, then vocabulary logits through
    the transposed token table of `token_embedding` (tied weights, as in BERT), or through
    an own `(E, V)` kernel when no embedding is given, plus an output bias.

    Same computation and weights as `keras_hub.layers.MaskedLMHead`, whose way of
    serializing the tied embedding it follows (the embedding's config is saved inside the
    head's; a head restored from it alone owns a copy; a model that ties them, like
    `keras_seq.models.BERTMaskedLM`, rebuilds the tie from its own config). What ours adds:
    `build()` also builds the tied embedding, so a head restored from its config and build
    config holds every weight (keras_hub's leaves the embedding unbuilt); arguments are
    checked and stored unchanged; `mask_positions` must be rank 2; every kernel gets its own
    initializer instance.

    Args:
        vocabulary_size: int or `None`. Number of output logits. Optional with
            `token_embedding` (whose `input_dim` it must then equal); required without.
            Defaults to `None`.
        token_embedding: a `keras.layers.ReversibleEmbedding` (e.g. keras_hub's, as in
            `keras_seq.models.BERTBackbone.token_embedding`) whose table is reused, transposed, as
            the output projection; `None` for an own kernel. Defaults to `None`.
        intermediate_activation: activation of the transform `Dense` (name or config).
            Defaults to `"gelu"`.
        activation: activation applied to the logits, e.g. `"softmax"`, or `None` for
            logits. Defaults to `None`.
        layer_norm_epsilon: float. Epsilon of the transform's layer norm. Defaults to `1e-5`.
        kernel_initializer: initializer of the transform kernel and of the own output
            kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the biases. Defaults to `"zeros"`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, sequence_length, hidden_dim)`: the encoder outputs.
        mask_positions: int `(batch_size, num_predictions)`: the positions to predict, in
            `[0, sequence_length)`; padding entries may point anywhere (e.g. `0`) and are
            ignored through the loss weights.

    Returns:
        Float `(batch_size, num_predictions, vocabulary_size)` logits (or activations), in
        the compute dtype.

    Masking:
        Ignores the Keras mask of `inputs` (the predicted positions are chosen by
        `mask_positions`) and returns no mask.

    Example:
    ```python
    embedding = keras.layers.ReversibleEmbedding(input_dim=100, output_dim=32)
    head = keras_seq.layers.MaskedLMHead(token_embedding=embedding)
    encoded = np.random.rand(2, 10, 32).astype("float32")
    logits = head(encoded, mask_positions=np.array([[1, 4], [0, 9]]))
    assert logits.shape == (2, 2, 100)
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """

    def __init__(
        self,
        vocabulary_size=None,
        token_embedding=None,
        intermediate_activation="gelu",
        activation=None,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        if vocabulary_size is not None:
            vocabulary_size = validate_positive_int("vocabulary_size", vocabulary_size)
        if token_embedding is None:
            if vocabulary_size is None:
                raise ValueError(
                    "One of `vocabulary_size` or `token_embedding` must be set. Received: "
                    "vocabulary_size=None, token_embedding=None"
                )
        elif not isinstance(token_embedding, keras.layers.ReversibleEmbedding):
            raise TypeError(
                "`token_embedding` must be a keras.layers.ReversibleEmbedding (or keras_hub's "
                f"subclass). Received: token_embedding={token_embedding!r}"
            )
        elif vocabulary_size is not None and vocabulary_size != token_embedding.input_dim:
            raise ValueError(
                "`vocabulary_size` must equal the `input_dim` of `token_embedding`. Received: "
                f"vocabulary_size={vocabulary_size}, "
                f"token_embedding.input_dim={token_embedding.input_dim}"
            )
        _validate_activation("intermediate_activation", intermediate_activation)
        _validate_activation("activation", activation, allow_none=True)
        layer_norm_epsilon = validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        get_initializer("kernel_initializer", kernel_initializer)
        get_initializer("bias_initializer", bias_initializer)
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.token_embedding = token_embedding
        self.intermediate_activation = intermediate_activation
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.supports_masking = True  # Accepts masked encoder outputs; returns no mask.
        self._vocabulary_size = (
            token_embedding.input_dim if token_embedding is not None else vocabulary_size
        )
        self._activation = keras.activations.get(activation)

    def _initializer(self, value):
        """A fresh initializer instance (an unseeded instance repeats its values)."""
        return clone_initializer(value)

    def build(self, inputs_shape, mask_positions_shape=None):
        if len(inputs_shape) != 3:
            raise ValueError(
                "MaskedLMHead expects `inputs` of shape (batch_size, sequence_length, "
                f"hidden_dim). Received: inputs.shape={tuple(inputs_shape)}"
            )
        if mask_positions_shape is not None and len(mask_positions_shape) != 2:
            raise ValueError(
                "`mask_positions` must have shape (batch_size, num_predictions). Received: "
                f"mask_positions.shape={tuple(mask_positions_shape)}"
            )
        if self.token_embedding is not None:
            if not self.token_embedding.built:
                self.token_embedding.build()
            feature_dim = self.token_embedding.output_dim
        else:
            feature_dim = inputs_shape[-1]
        self.intermediate_dense = keras.layers.Dense(
            feature_dim,
            activation=self.intermediate_activation,
            kernel_initializer=self._initializer(self.kernel_initializer),
            bias_initializer=self._initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="intermediate_dense",
        )
        self.intermediate_dense.build((inputs_shape[0], None, inputs_shape[-1]))
        self.intermediate_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="intermediate_layer_norm"
        )
        self.intermediate_layer_norm.build((inputs_shape[0], None, feature_dim))
        if self.token_embedding is None:
            self.output_kernel = self.add_weight(
                shape=(feature_dim, self._vocabulary_size),  # (E, V)
                initializer=self._initializer(self.kernel_initializer),
                name="output_kernel",
            )
        self.output_bias = self.add_weight(
            shape=(self._vocabulary_size,),  # (V,)
            initializer=self._initializer(self.bias_initializer),
            name="output_bias",
        )

    def call(self, inputs, mask_positions):
        positions = ops.expand_dims(ops.cast(mask_positions, "int32"), -1)  # (B, P, 1)
        x = ops.take_along_axis(inputs, positions, axis=1)  # (B, P, H)
        x = self.intermediate_layer_norm(self.intermediate_dense(x))  # (B, P, E)
        if self.token_embedding is not None:
            logits = self.token_embedding(x, reverse=True)  # (B, P, V)
        else:
            logits = ops.matmul(x, self.output_kernel)  # (B, P, V)
        logits = ops.cast(logits, self.compute_dtype) + self.output_bias
        if self._activation is not None:
            logits = self._activation(logits)
        return logits

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, inputs_shape, mask_positions_shape):
        return tuple(mask_positions_shape) + (self._vocabulary_size,)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("token_embedding"), dict):
            config["token_embedding"] = keras.layers.deserialize(config["token_embedding"])
        return cls(**config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "token_embedding": (
                    None
                    if self.token_embedding is None
                    else keras.layers.serialize(self.token_embedding)
                ),
                "intermediate_activation": keras.saving.serialize_keras_object(
                    self.intermediate_activation
                ),
                "activation": keras.saving.serialize_keras_object(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.saving.serialize_keras_object(self.kernel_initializer),
                "bias_initializer": keras.saving.serialize_keras_object(self.bias_initializer),
            }
        )
        return config
