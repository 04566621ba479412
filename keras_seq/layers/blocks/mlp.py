"""The position-wise feed-forward network shared by transformer, ViT and Swin blocks."""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.ops.linear import dense_matmul
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.quantization import QuantizesLikeParent
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


class _Dense(QuantizesLikeParent, keras.layers.Dense):
    """`keras.layers.Dense` whose product is `keras_seq.ops.dense_matmul`'s (faster for one
    row under XLA on CPU, as when decoding one sequence). Weights, paths, LoRA (`self.kernel`
    includes its update) and quantization (Keras' own `quantized_call`) are `Dense`'s.
    `quantize` is `Dense`'s: Keras' type check would otherwise skip this subclass in
    `model.quantize(mode)`.
    """

    def call(self, inputs, training=None):
        x = dense_matmul(inputs, self.kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x


@keras_seq_export
class MLP(keras.layers.Layer):
    """Two-layer feed-forward network: `Dense(intermediate_dim, activation)`, dropout, `Dense`.

    The feed-forward sublayer of every keras_seq block (transformer encoder and decoder,
    ViT, Swin), applied to each position independently: one implementation, not a copy per
    model.

    Args:
        intermediate_dim: int. Width of the hidden layer.
        output_dim: int or `None`. Output width. Defaults to the input's last dimension.
        activation: activation of the hidden layer (name or registered callable). Defaults
            to `"gelu"`.
        dropout: float in [0, 1). Dropout after the activation. Defaults to `0.0`.
        use_bias: bool. Whether both dense layers have biases. Defaults to `True`.
        kernel_initializer: initializer of the kernels. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the biases. Defaults to `"zeros"`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `(..., input_dim)`.
        training: bool or `None`.

    Returns:
        Tensor `(..., output_dim)`.

    Masking:
        Propagates the Keras mask of `inputs`.

    Example:
    ```python
    mlp = keras_seq.layers.MLP(intermediate_dim=64)
    outputs = mlp(np.zeros((2, 10, 16), "float32"))
    assert outputs.shape == (2, 10, 16)
    ```
    """

    def __init__(
        self,
        intermediate_dim,
        output_dim=None,
        activation="gelu",
        dropout=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        intermediate_dim = validate_positive_int("intermediate_dim", intermediate_dim)
        if output_dim is not None:
            output_dim = validate_positive_int("output_dim", output_dim)
        dropout = validate_rate("dropout", dropout)
        validate_bool("use_bias", use_bias)
        keras.activations.get(activation)  # Raises on an unknown name.
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim
        self.output_dim = output_dim
        self.activation = activation
        self.dropout = dropout
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.supports_masking = True

    def _dense(self, units, activation, name):
        return _Dense(
            units,
            activation=activation,
            use_bias=self.use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        self.intermediate_dense = self._dense(
            self.intermediate_dim, self.activation, "intermediate_dense"
        )
        self.intermediate_dense.build(input_shape)
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout_layer"
        )
        self.output_dense = self._dense(self.output_dim or input_shape[-1], None, "output_dense")
        self.output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))

    def call(self, inputs, training=None):
        x = self.intermediate_dense(inputs)
        x = self.dropout_layer(x, training=training)
        return self.output_dense(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim or input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "output_dim": self.output_dim,
                "activation": keras.saving.serialize_keras_object(self.activation),
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.saving.serialize_keras_object(self.kernel_initializer),
                "bias_initializer": keras.saving.serialize_keras_object(self.bias_initializer),
            }
        )
        return config
