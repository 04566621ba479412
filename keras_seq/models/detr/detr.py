"""DETR: the 0.1 single-class DETR, now `DETRObjectDetector` on a `DETRBackbone`."""

from keras_seq.api import keras_seq_export
from keras_seq.models.deprecation import LegacyWeightLayout
from keras_seq.models.deprecation import warn_deprecated
from keras_seq.models.detr.detr_backbone import DETRBackbone
from keras_seq.models.detr.detr_object_detector import DETRObjectDetector
from keras_seq.models.presets import preset_config

# The 0.1 constructor arguments that `DETRBackbone` takes under the same name (the 0.1
# `backbone`, the image network, is `DETRBackbone`'s `image_encoder`).
_BACKBONE_ARGUMENTS = (
    "image_shape",
    "hidden_dim",
    "num_queries",
    "num_encoder_layers",
    "num_decoder_layers",
    "num_heads",
    "intermediate_dim",
    "dropout",
    "activation",
    "use_padding_mask",
    "freeze_batch_norm",
    "layer_norm_epsilon",
)


@keras_seq_export
class DETR(LegacyWeightLayout, DETRObjectDetector):
    """Deprecated: use `DETRObjectDetector(DETRBackbone(image_encoder=...), num_classes)`.

    The 0.1 DETR, kept so that code and `.keras` files written for keras_seq 0.1 keep
    working: it takes the 0.1 arguments, builds a `DETRBackbone` whose `image_encoder` is the
    0.1 `backbone` argument, and is a `DETRObjectDetector` on it (same outputs,
    `compute_loss`, `postprocess`), saving its weights at their 0.1 paths. Constructing one
    emits a `DeprecationWarning`. One change: `model.backbone` is now the `DETRBackbone`;
    the image network given as `backbone=` is `model.backbone.image_encoder` (also reachable
    as `model.image_encoder`).

    Args:
        num_classes: int. Object classes (without "no object").
        backbone: `keras.Model`, its serialized config, or `None`: the image network,
            `DETRBackbone`'s `image_encoder`. Defaults to `None` (ResNet50).
        image_shape, hidden_dim, num_queries, num_encoder_layers, num_decoder_layers,
            num_heads, intermediate_dim, dropout, activation, use_padding_mask,
            freeze_batch_norm, layer_norm_epsilon: as `DETRBackbone`.
        **kwargs: base model arguments (`name`, `dtype`).
    """

    presets = DETRBackbone.presets

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
        warn_deprecated(
            "DETR",
            "keras_seq.models.DETRObjectDetector(keras_seq.models.DETRBackbone(image_encoder="
            "...), num_classes)",
        )
        arguments = dict(
            image_shape=image_shape,
            hidden_dim=hidden_dim,
            num_queries=num_queries,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            activation=activation,
            use_padding_mask=use_padding_mask,
            freeze_batch_norm=freeze_batch_norm,
            layer_norm_epsilon=layer_norm_epsilon,
        )
        try:
            detr_backbone = DETRBackbone(
                image_encoder=backbone, **arguments, dtype=kwargs.get("dtype"), name="detr_backbone"
            )
        except (TypeError, ValueError) as error:
            # Errors about the image network name the 0.1 argument, `backbone`.
            message = str(error)
            if "image_encoder" not in message:
                raise
            message = message.replace("`image_encoder`", "`backbone`")
            raise type(error)(message.replace("image_encoder=", "backbone=")) from None
        super().__init__(detr_backbone, num_classes, **kwargs)
        for name, value in arguments.items():
            setattr(self, name, value)
        self.use_legacy_layout()

    @classmethod
    def from_preset(cls, preset, **overrides):
        """The 0.1 `from_preset`: the preset's backbone and task arguments with `overrides`
        (random weights)."""
        entry = preset_config(DETRBackbone, preset)
        return cls(**{**entry["config"], **entry.get("task_config", {}), **overrides})

    def legacy_layers(self):
        # 0.1 order: the backbone's layers (image network, projection, tokens, encoder,
        # queries, decoder, shared norm), then the box head and the class head.
        return self.backbone.layers + self.box_head + [self.class_head]

    def get_config(self):
        config = super().get_config()
        del config["backbone"]
        # Not arguments of the 0.1 class (its models never carry a checkpoint's preprocessing).
        del config["preprocessor"], config["label_names"]
        backbone_config = self.backbone.get_config()
        return {
            **config,
            "backbone": backbone_config["image_encoder"],
            **{name: backbone_config[name] for name in _BACKBONE_ARGUMENTS},
        }
