"""DETR: end-to-end object detection with a transformer and set-based matching.

Letter legend for shape comments: B batch, Q queries, L decoder layers, C classes, D width.
"""

import keras
import numpy as np
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.blocks.transformer_encoder import TransformerEncoder
from keras_seq.layers.embeddings.detr_feature_tokens import DETRFeatureTokens
from keras_seq.layers.embeddings.object_queries import ObjectQueries
from keras_seq.models.detr.detr_presets import DETR_PRESETS
from keras_seq.models.functional_model import FunctionalModel
from keras_seq.ops.boxes import box_cxcywh_to_xyxy
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_image_shape
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


def _freeze_batch_norm(model):
    """Set every BatchNormalization inside `model` (nested models too) non-trainable."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


@keras_seq_export
class DETR(FunctionalModel):
    """DETR: a CNN or transformer backbone, a transformer, and a fixed set of object queries.

    The backbone's last feature map is projected to `hidden_dim` by a 1x1 convolution and
    flattened to tokens with their 2-D sine position encoding (`DETRFeatureTokens`); a
    post-norm transformer encoder (the encoding added to queries and keys at every layer)
    and decoder (`num_queries` learned `ObjectQueries` as the decoder's positions, no causal
    mask) follow, with a shared layer norm on every decoder layer's output and shared heads:
    a linear class head over `num_classes + 1` (the last class is "no object") and a
    3-layer MLP giving normalized `(cx, cy, w, h)` boxes through a sigmoid (Carion et al.,
    2020). Every decoder layer's predictions are returned, for `DETRLoss`'s auxiliary
    losses. Trains with `model.fit` on padded targets with `compile(loss=DETRLoss())`:
    `compute_loss` gives the loss all outputs and targets at once.

    The default backbone is `keras.applications.ResNet50(include_top=False,
    weights=None)` (nothing is downloaded) with its batch norms frozen, as in the paper; any
    model with one 4-D output works, e.g. a `SwinTransformer`'s last stage (see the
    example). The preset `detr_resnet50` reproduces the original transformer and heads
    parameter for parameter. What keras_hub and Keras lack: a DETR at all (keras-hub #2043
    is open), exact batched matching that compiles with XLA, padding masks for batches of
    differently sized images.

    Args:
        num_classes: int. Object classes (without "no object").
        backbone: `keras.Model` or `None`. Image feature extractor with one
            `(batch_size, h, w, channels)` output. `None` builds ResNet50 for
            `image_shape`. Defaults to `None`.
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
        freeze_batch_norm: bool. Make the backbone's batch norms non-trainable (inference
            statistics), as the paper does. Changes the given backbone in place. Defaults
            to `True`.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, channels)` images (normalized by the
            user's pipeline), or with `use_padding_mask=True` a dict `{"images": ...,
            "padding_mask": ...}`.

    Returns:
        A dict: `"logits"` `(batch_size, num_queries, num_classes + 1)`, `"boxes"`
        `(batch_size, num_queries, 4)` normalized `(cx, cy, w, h)` relative to each
        image's real (unpadded) size, and with more than one decoder layer `"aux_logits"` /
        `"aux_boxes"` with the earlier layers' predictions on axis 1.

    Example:
    ```python
    backbone = keras.Sequential(
        [keras.layers.Conv2D(16, 3, strides=4, activation="relu"),
         keras.layers.Conv2D(32, 3, strides=2, activation="relu")]
    )
    model = keras_seq.models.DETR(
        num_classes=3, backbone=backbone, image_shape=(64, 64, 3), hidden_dim=32,
        num_queries=5, num_encoder_layers=1, num_decoder_layers=2, num_heads=2,
        intermediate_dim=64,
    )
    outputs = model(np.zeros((2, 64, 64, 3), "float32"))
    assert outputs["logits"].shape == (2, 5, 4) and outputs["aux_boxes"].shape == (2, 1, 5, 4)
    detections = model.postprocess(outputs, image_sizes=[(64, 64), (48, 64)])
    assert detections["boxes"].shape == (2, 5, 4)  # (x_min, y_min, x_max, y_max) pixels
    ```

    References:
        - [Carion et al., 2020](https://arxiv.org/abs/2005.12872) (DETR)
    """

    presets = DETR_PRESETS

    def __init__(
        self,
        num_classes,
        backbone=None,
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
        validate_positive_int("num_classes", num_classes)
        if backbone is not None and not isinstance(backbone, keras.Model):
            raise TypeError(
                "`backbone` must be a keras.Model with one (batch_size, h, w, channels) "
                f"output, or None for ResNet50. Received: backbone={backbone!r}"
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
        keras.activations.get(activation)  # Raises on an unknown name.
        validate_bool("use_padding_mask", use_padding_mask)
        validate_bool("freeze_batch_norm", freeze_batch_norm)
        validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        dtype = kwargs.get("dtype")

        backbone_model = backbone
        if backbone_model is None:
            backbone_model = keras.applications.ResNet50(
                include_top=False, weights=None, input_shape=tuple(image_shape)
            )
        if freeze_batch_norm:
            _freeze_batch_norm(backbone_model)

        images = keras.Input(tuple(image_shape), name="images")
        padding_mask = None
        inputs = images
        if use_padding_mask:
            padding_mask = keras.Input(tuple(image_shape[:2]), dtype="bool", name="padding_mask")
            inputs = {"images": images, "padding_mask": padding_mask}
        features = backbone_model(images)
        if not isinstance(features, keras.KerasTensor) or len(features.shape) != 4:
            raise ValueError(
                "`backbone` must have one output, a (batch_size, h, w, channels) feature "
                f"map. Received: outputs {features!r}"
            )
        features = keras.layers.Conv2D(hidden_dim, 1, dtype=dtype, name="input_projection")(
            features
        )  # (B, h, w, D)
        tokens, position, token_mask = DETRFeatureTokens(dtype=dtype, name="feature_tokens")(
            features, padding_mask
        )
        block_kwargs = {
            "num_heads": num_heads,
            "intermediate_dim": intermediate_dim,
            "dropout": dropout,
            "attention_dropout": dropout,
            "activation": activation,
            "layer_norm_epsilon": layer_norm_epsilon,
            "dtype": dtype,
        }
        memory = tokens
        for index in range(num_encoder_layers):
            memory = TransformerEncoder(**block_kwargs, name=f"encoder_layer_{index}")(
                memory, padding_mask=token_mask, position_embedding=position
            )
        query_position = ObjectQueries(num_queries, hidden_dim, dtype=dtype, name="object_queries")(
            memory
        )  # (B, Q, D)
        decoder_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="decoder_layer_norm"
        )
        class_head = keras.layers.Dense(num_classes + 1, dtype=dtype, name="class_head")
        box_head = [
            keras.layers.Dense(hidden_dim, activation="relu", dtype=dtype, name="box_head_0"),
            keras.layers.Dense(hidden_dim, activation="relu", dtype=dtype, name="box_head_1"),
            keras.layers.Dense(4, activation="sigmoid", dtype=dtype, name="box_head_2"),
        ]
        x = ops.zeros_like(query_position)  # the decoder starts from zeros
        all_logits, all_boxes = [], []
        for index in range(num_decoder_layers):
            x = TransformerDecoder(**block_kwargs, name=f"decoder_layer_{index}")(
                x,
                memory,
                encoder_padding_mask=token_mask,
                decoder_position_embedding=query_position,
                encoder_position_embedding=position,
                use_causal_mask=False,
            )
            normalized = decoder_norm(x)
            boxes = normalized
            for layer in box_head:
                boxes = layer(boxes)
            all_logits.append(class_head(normalized))
            all_boxes.append(boxes)
        outputs = {"logits": all_logits[-1], "boxes": all_boxes[-1]}
        if num_decoder_layers > 1:
            outputs["aux_logits"] = ops.stack(all_logits[:-1], axis=1)  # (B, L - 1, Q, C)
            outputs["aux_boxes"] = ops.stack(all_boxes[:-1], axis=1)  # (B, L - 1, Q, 4)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.num_classes = num_classes
        self.backbone = backbone_model
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
        self._backbone_given = backbone is not None

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """A set loss (`keras.losses.Loss`) gets all outputs and targets at once.

        Keras pairs one loss with each output; DETR's loss needs the whole dict of
        predictions and of targets, so a single `Loss` given to `compile` is called on the
        two dicts directly. Lists or dicts of losses keep Keras' own behaviour.
        """
        if not isinstance(self.loss, keras.losses.Loss):
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        losses = [self.loss(y, y_pred, sample_weight)]
        losses += [self._aggregate_additional_loss(loss) for loss in self.losses]
        return ops.sum(ops.stack([ops.cast(loss, "float32") for loss in losses]))

    def postprocess(self, outputs, image_sizes=None):
        """Boxes in pixels, scores and labels from the model's outputs (DETR's PostProcess).

        Each query's label is its most probable real class and its score that class'
        probability (the softmax includes "no object", so background queries score low);
        boxes are converted to `(x_min, y_min, x_max, y_max)` and scaled by each image's
        real size. Pure `keras.ops`; the result feeds
        `keras_seq.metrics.mean_average_precision` directly.

        Args:
            outputs: the model's output dict (`"logits"` and `"boxes"` are used).
            image_sizes: optional `(batch_size, 2)` real `(height, width)` of each image,
                in pixels. Defaults to the static `image_shape`; required when it has
                `None` sizes.

        Returns:
            dict `{"boxes": (batch_size, num_queries, 4), "scores": (batch_size,
            num_queries), "labels": int32 (batch_size, num_queries)}`.
        """
        if image_sizes is None:
            height, width = self.image_shape[0], self.image_shape[1]
            if height is None or width is None:
                raise ValueError(
                    "`image_sizes` is required when the model's `image_shape` has `None` "
                    f"sizes. Received: image_sizes=None, image_shape={self.image_shape}"
                )
            image_sizes = np.array([[height, width]], "float32")
        image_sizes = ops.cast(ops.convert_to_tensor(image_sizes), "float32")
        if len(image_sizes.shape) != 2 or image_sizes.shape[-1] != 2:
            raise ValueError(
                "`image_sizes` must be (batch_size, 2) pixel sizes (height, width). "
                f"Received: image_sizes.shape={tuple(image_sizes.shape)}"
            )
        probabilities = ops.softmax(ops.cast(outputs["logits"], "float32"), axis=-1)
        scores = ops.max(probabilities[..., :-1], axis=-1)
        labels = ops.cast(ops.argmax(probabilities[..., :-1], axis=-1), "int32")
        boxes = box_cxcywh_to_xyxy(ops.cast(outputs["boxes"], "float32"))
        # (B, 2) (height, width) -> (B, 1, 4) scale (width, height, width, height)
        scale = ops.concatenate([image_sizes[:, ::-1], image_sizes[:, ::-1]], axis=-1)
        return {"boxes": boxes * scale[:, None, :], "scores": scores, "labels": labels}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "backbone": (
                    keras.saving.serialize_keras_object(self.backbone)
                    if self._backbone_given
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
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return super().from_config(config)
