"""What the transformer encoder and decoder blocks share: arguments, sublayers, residuals."""

import keras

from keras_seq.layers.attention.get_attention import make_attention
from keras_seq.layers.blocks.drop_path import DropPath
from keras_seq.layers.blocks.mlp import MLP
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


class TransformerBlock(keras.layers.Layer):
    """Base of `TransformerEncoder` and `TransformerDecoder` (not exported).

    Holds the constructor arguments both blocks take, builds their attention, layer norm,
    dropout and feed-forward sublayers, and applies a residual sublayer post-norm
    (`norm(x + dropout(f(x)))`, the paper) or pre-norm (`x + dropout(f(norm(x)))`).
    """

    def __init__(
        self,
        num_heads=None,
        intermediate_dim=None,
        dropout=0.0,
        attention_dropout=0.0,
        activation="relu",
        normalize_first=False,
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        attention="multi_head",
        drop_path_rate=0.0,
        **kwargs,
    ):
        intermediate_dim = validate_positive_int("intermediate_dim", intermediate_dim)
        if isinstance(attention, str):
            num_heads = validate_positive_int("num_heads", num_heads)
        elif num_heads is not None:
            raise ValueError(
                "`num_heads` configures the attention only when `attention` is a name; an "
                "attention instance or config carries its own. Received: "
                f"num_heads={num_heads}, attention={attention!r}"
            )
        dropout = validate_rate("dropout", dropout)
        attention_dropout = validate_rate("attention_dropout", attention_dropout)
        drop_path_rate = validate_rate("drop_path_rate", drop_path_rate)
        validate_bool("normalize_first", normalize_first)
        layer_norm_epsilon = validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        keras.activations.get(activation)  # Raises on an unknown name.
        if not isinstance(attention, (str, dict, keras.layers.Layer)):
            raise TypeError(
                "`attention` must be a name, a config dict or a keras.layers.Layer instance. "
                f"Received: attention={attention!r}"
            )
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.normalize_first = normalize_first
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.attention = attention
        self.drop_path_rate = drop_path_rate
        self.supports_masking = True

    def _make_attention(self, hidden_dim, name):
        """A fresh attention sublayer (or a copy of the given instance's config)."""
        return make_attention(
            self.attention,
            hidden_dim,
            self.num_heads,
            self.attention_dropout,
            self.kernel_initializer,
            self.bias_initializer,
            self.dtype_policy,
            name,
        )

    def _make_layer_norm(self, name, input_shape):
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build(input_shape)
        return layer

    def _make_dropout(self, name):
        return keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name=name)

    def _make_drop_path(self, name):
        layer = DropPath(self.drop_path_rate, dtype=self.dtype_policy, name=name)
        # Built now (it has no weights): a block whose output shape Keras computes without
        # tracing `call` would otherwise leave it unbuilt, and `model.quantize` refuses that.
        layer.build(None)
        return layer

    def _make_feedforward(self, input_shape):
        layer = MLP(
            self.intermediate_dim,
            activation=self.activation,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="feedforward",
        )
        layer.build(input_shape)
        return layer

    @staticmethod
    def _attention_kwargs(
        query_mask, value_mask, attention_mask, attention_bias, return_attention_scores, **extra
    ):
        """Keyword arguments of an attention call; only the ones that are set.

        Padding masks are always passed explicitly when known, so that the attention layer
        does not also pick up the Keras masks of its inputs (the block's explicit
        `padding_mask` wins over them).
        """
        kwargs = {
            "query_mask": query_mask,
            "value_mask": value_mask,
            "attention_mask": attention_mask,
            "attention_bias": attention_bias,
            "return_attention_scores": return_attention_scores or None,
            **extra,
        }
        return {key: value for key, value in kwargs.items() if value is not None}

    @staticmethod
    def _attend(attention, query, value, query_position, key_position, training, kwargs):
        """`attention(query, value)` with position embeddings added to queries and keys.

        DETR's attention: `query + query_position` attends with keys `value + key_position`
        to the values `value` (positions never enter the values). Without positions this is
        the plain call.
        """
        if query_position is not None:
            query = query + query_position
        if key_position is not None:
            kwargs = {**kwargs, "key": value + key_position}
        return attention(query, value, training=training, **kwargs)

    def _residual(self, x, sublayer, layer_norm, dropout, drop_path, training):
        """Apply `sublayer` (a function of the normalized or raw input) with a residual.

        The branch goes through dropout, then stochastic depth, before the residual sum.
        Returns the new hidden state and whatever else `sublayer` returned (a tuple).
        """
        outputs = sublayer(layer_norm(x) if self.normalize_first else x)
        outputs, extras = (outputs[0], outputs[1:]) if isinstance(outputs, tuple) else (outputs, ())
        x = x + drop_path(dropout(outputs, training=training), training=training)
        if not self.normalize_first:
            x = layer_norm(x)
        return x, extras

    def _feedforward_residual(self, x, training):
        """The feed-forward sublayer with its norm, dropout, drop path and residual."""
        x, _ = self._residual(
            x,
            lambda h: self.feedforward(h, training=training),
            self.feedforward_layer_norm,
            self.feedforward_dropout,
            self.feedforward_drop_path,
            training,
        )
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": keras.saving.serialize_keras_object(self.activation),
                "normalize_first": self.normalize_first,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.saving.serialize_keras_object(self.kernel_initializer),
                "bias_initializer": keras.saving.serialize_keras_object(self.bias_initializer),
                "attention": keras.saving.serialize_keras_object(self.attention),
                "drop_path_rate": self.drop_path_rate,
            }
        )
        return config
