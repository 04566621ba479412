"""DETRBackbone: image encoder, input projection, sine positions, transformer with object queries.

Letter legend for shape comments: B batch, h / w feature-map height and width, T image tokens
(h * w), Q queries, L decoder layers, D width.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.blocks.transformer_encoder import TransformerEncoder
from keras_seq.layers.embeddings.detr_feature_tokens import DETRFeatureTokens
from keras_seq.layers.embeddings.object_queries import ObjectQueries
from keras_seq.models.backbone import Backbone
from keras_seq.models.detr.detr_converter_transformers import DETRTransformersConverter
from keras_seq.models.detr.detr_presets import DETR_PRESETS
from keras_seq.utils.layer_walk import find_layers
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_image_shape
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


def _freeze_batch_norm(model):
    """Set every `BatchNormalization` inside `model` non-trainable, nested models and layers
    included."""
    # `find_layers` reaches the sublayers of plain layers too (a residual block's batch norms),
    # which `Model.layers` does not.
    for _, layer in find_layers(model, keras.layers.BatchNormalization):
        layer.trainable = False


@keras_seq_export
class DETRBackbone(Backbone):
    """DETR's body: image encoder, transformer encoder, and a decoder over object queries.

    The image encoder's feature map is projected to `hidden_dim` by a 1x1 convolution and
    flattened to tokens with their 2-D sine position encoding (`DETRFeatureTokens`); a
    post-norm transformer encoder (the encoding added to queries and keys at every layer) and
    decoder (`num_queries` learned `ObjectQueries` as the decoder's positions, starting from
    zeros, no causal mask) follow, and one shared layer norm is applied to every decoder
    layer's output (Carion et al., 2020). It returns those normalized decoder states of every
    layer (the detection head predicts from each of them, the earlier ones for the auxiliary
    losses) and the encoder's output, as Hugging Face's `DetrModel` does.
    `DETRObjectDetector` puts the class and box heads on it. `from_preset` loads Hugging
    Face `DetrForObjectDetection` checkpoints (facebook/detr-resnet-50 and -101, either
    ResNet layout) with keras-hub's `ResNetBackbone` as the image encoder.

    The image encoder is pluggable: any `keras.Model` mapping the images to one feature map.
    The default is `keras.applications.ResNet50(include_top=False, weights=None)` (nothing is
    downloaded; its layout is Keras', not that of the published DETR checkpoints) with frozen
    batch norms, as in the paper; a `SwinBackbone` (its last stage's map) works too. The preset
    `detr_resnet50` reproduces the original transformer parameter for parameter.

    Args:
        image_encoder: `keras.Model`, its config from `keras.saving.serialize_keras_object`,
            or `None`. Maps float images `(batch_size, height, width, channels)` to one feature
            map `(batch_size, h, w, feature_channels)` (any stride, any `feature_channels`).
            `None` builds ResNet50 for `image_shape` (and saves as `None`). Defaults to `None`.
        image_shape: `(height, width, channels)`; `None` sizes accept any size at call
            time. Defaults to `(None, None, 3)`.
        hidden_dim: int. Transformer width; divisible by `num_heads` and by 4. Defaults to
            `256`.
        num_queries: int. Object queries: the most objects per image. Defaults to `100`.
        num_encoder_layers: int. Defaults to `6`.
        num_decoder_layers: int. Defaults to `6`.
        num_heads: int. Attention heads. Defaults to `8`.
        intermediate_dim: int. Feed-forward width. Defaults to `2048`.
        dropout: float in [0, 1). Dropout in the transformer (sublayer outputs and
            attention probabilities). Defaults to `0.1`.
        activation: feed-forward activation. Defaults to `"relu"`.
        use_padding_mask: bool. Take `{"images", "padding_mask"}` (bool `(batch_size,
            height, width)`, `True` = real pixel) instead of images alone, for batches of
            images of different sizes padded to one shape. Defaults to `False`.
        freeze_batch_norm: bool. Make the image encoder's batch norms non-trainable
            (inference statistics), as the paper does. Changes the given image encoder in
            place. Defaults to `True`.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, channels)` images (normalized by the
            user's pipeline), or with `use_padding_mask=True` a dict `{"images": ...,
            "padding_mask": ...}`.

    Returns:
        A dict: `"decoder_hidden_states"` `(batch_size, num_decoder_layers, num_queries,
        hidden_dim)`, every decoder layer's output after the shared layer norm (the last
        entry is the final one), and `"encoder_hidden_states"` `(batch_size, h * w,
        hidden_dim)`, the encoder's output over the feature-map tokens.

    Example:
    ```python
    image_encoder = keras.Sequential(
        [keras.layers.Conv2D(16, 3, strides=4, activation="relu"),
         keras.layers.Conv2D(32, 3, strides=2, activation="relu")]
    )
    backbone = keras_seq.models.DETRBackbone(
        image_encoder=image_encoder, image_shape=(64, 64, 3), hidden_dim=32, num_queries=5,
        num_encoder_layers=1, num_decoder_layers=2, num_heads=2, intermediate_dim=64,
    )
    features = backbone(np.zeros((2, 64, 64, 3), "float32"))
    assert features["decoder_hidden_states"].shape == (2, 2, 5, 32)
    assert features["encoder_hidden_states"].shape == (2, 7 * 7, 32)
    ```

    References:
        - [Carion et al., 2020](https://arxiv.org/abs/2005.12872) (DETR)
    """

    presets = DETR_PRESETS
    checkpoint_converters = (DETRTransformersConverter,)

    def __init__(
        self,
        image_encoder=None,
        image_shape=(None, None, 3),
        hidden_dim=256,
        num_queries=100,
        num_encoder_layers=6,
        num_decoder_layers=6,
        num_heads=8,
        intermediate_dim=2048,
        dropout=0.1,
        activation="relu",
        use_padding_mask=False,
        freeze_batch_norm=True,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        if isinstance(image_encoder, dict):
            image_encoder = keras.saving.deserialize_keras_object(image_encoder)
        if image_encoder is not None and not isinstance(image_encoder, keras.Model):
            raise TypeError(
                "`image_encoder` must be a keras.Model with one (batch_size, h, w, channels) "
                "output (or its config from keras.saving.serialize_keras_object), or None for "
                f"ResNet50. Received: image_encoder={image_encoder!r}"
            )
        validate_image_shape(image_shape)
        for name, value in (
            ("hidden_dim", hidden_dim),
            ("num_queries", num_queries),
            ("num_encoder_layers", num_encoder_layers),
            ("num_decoder_layers", num_decoder_layers),
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
        ):
            validate_positive_int(name, value)
        validate_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
        if hidden_dim % 4:
            raise ValueError(
                "`hidden_dim` must be divisible by 4 (the 2-D sine encoding has a sine and "
                f"a cosine per axis). Received: hidden_dim={hidden_dim}"
            )
        validate_rate("dropout", dropout)
        try:
            keras.activations.get(activation)
        except (TypeError, ValueError):
            raise ValueError(
                "`activation` must be the name of a Keras activation or a registered "
                f"activation function. Received: activation={activation!r}"
            ) from None
        validate_bool("use_padding_mask", use_padding_mask)
        validate_bool("freeze_batch_norm", freeze_batch_norm)
        validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        dtype = kwargs.get("dtype")
        check_model_size(
            "DETRBackbone",
            {
                "num_queries": num_queries,
                "num_encoder_layers": num_encoder_layers,
                "num_decoder_layers": num_decoder_layers,
                "hidden_dim": hidden_dim,
                "intermediate_dim": intermediate_dim,
            },
            [
                (1, "num_queries", "hidden_dim"),
                (4, "num_encoder_layers", "hidden_dim", "hidden_dim"),
                (2, "num_encoder_layers", "hidden_dim", "intermediate_dim"),
                (8, "num_decoder_layers", "hidden_dim", "hidden_dim"),
                (2, "num_decoder_layers", "hidden_dim", "intermediate_dim"),
            ],
            num_blocks=num_encoder_layers + num_decoder_layers,
            dtype=dtype,
        )

        # === Layers ===
        image_encoder_given = image_encoder is not None
        if image_encoder is None:
            image_encoder = keras.applications.ResNet50(
                include_top=False, weights=None, input_shape=tuple(image_shape)
            )
        if freeze_batch_norm:
            _freeze_batch_norm(image_encoder)
        self.image_encoder = image_encoder
        self.input_projection = keras.layers.Conv2D(
            hidden_dim, 1, dtype=dtype, name="input_projection"
        )
        self.feature_tokens = DETRFeatureTokens(dtype=dtype, name="feature_tokens")
        block_kwargs = {
            "num_heads": num_heads,
            "intermediate_dim": intermediate_dim,
            "dropout": dropout,
            "attention_dropout": dropout,
            "activation": activation,
            "layer_norm_epsilon": layer_norm_epsilon,
            "dtype": dtype,
        }
        self.encoder_layers = [
            TransformerEncoder(**block_kwargs, name=f"encoder_layer_{index}")
            for index in range(num_encoder_layers)
        ]
        self.object_queries = ObjectQueries(
            num_queries, hidden_dim, dtype=dtype, name="object_queries"
        )
        self.decoder_layers = [
            TransformerDecoder(**block_kwargs, name=f"decoder_layer_{index}")
            for index in range(num_decoder_layers)
        ]
        self.decoder_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="decoder_layer_norm"
        )

        # === Functional model ===
        images = keras.Input(tuple(image_shape), name="images")
        padding_mask = None
        inputs = images
        if use_padding_mask:
            padding_mask = keras.Input(tuple(image_shape[:2]), dtype="bool", name="padding_mask")
            inputs = {"images": images, "padding_mask": padding_mask}
        features = image_encoder(images)
        if not isinstance(features, keras.KerasTensor) or len(features.shape) != 4:
            raise ValueError(
                "`image_encoder` must have one output, a (batch_size, h, w, channels) feature "
                f"map. Received: outputs {features!r}"
            )
        features = self.input_projection(features)  # (B, h, w, D)
        tokens, position, token_mask = self.feature_tokens(features, padding_mask)  # (B, T, D)
        memory = tokens
        for layer in self.encoder_layers:
            memory = layer(memory, padding_mask=token_mask, position_embedding=position)
        query_position = self.object_queries(memory)  # (B, Q, D)
        x = ops.zeros_like(query_position)  # the decoder starts from zeros
        hidden_states = []
        for layer in self.decoder_layers:
            x = layer(
                x,
                memory,
                encoder_padding_mask=token_mask,
                decoder_position_embedding=query_position,
                encoder_position_embedding=position,
                use_causal_mask=False,
            )
            hidden_states.append(self.decoder_layer_norm(x))  # (B, Q, D)
        outputs = {
            "decoder_hidden_states": ops.stack(hidden_states, axis=1),  # (B, L, Q, D)
            "encoder_hidden_states": memory,  # (B, T, D)
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.num_encoder_layers = num_encoder_layers
        self.num_decoder_layers = num_decoder_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = activation
        self.use_padding_mask = use_padding_mask
        self.freeze_batch_norm = freeze_batch_norm
        self.layer_norm_epsilon = layer_norm_epsilon
        self._image_encoder_given = image_encoder_given

    def get_config(self):
        return {
            **super().get_config(),
            "image_encoder": (
                keras.saving.serialize_keras_object(self.image_encoder)
                if self._image_encoder_given
                else None
            ),
            "image_shape": self.image_shape,
            "hidden_dim": self.hidden_dim,
            "num_queries": self.num_queries,
            "num_encoder_layers": self.num_encoder_layers,
            "num_decoder_layers": self.num_decoder_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "activation": keras.saving.serialize_keras_object(self.activation),
            "use_padding_mask": self.use_padding_mask,
            "freeze_batch_norm": self.freeze_batch_norm,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
