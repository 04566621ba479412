"""VisionTransformer: the 0.1 single-class ViT, now `ViTImageClassifier` on a `ViTBackbone`."""

from keras_seq.api import keras_seq_export
from keras_seq.models.default_name import default_name
from keras_seq.models.deprecation import LegacyWeightLayout
from keras_seq.models.deprecation import warn_deprecated
from keras_seq.models.presets import check_overrides
from keras_seq.models.presets import constructor_arguments
from keras_seq.models.presets import preset_config
from keras_seq.models.vit.vit_backbone import ViTBackbone
from keras_seq.models.vit.vit_image_classifier import ViTImageClassifier

# The 0.1 constructor arguments that are the backbone's.
_BACKBONE_ARGUMENTS = (
    "image_shape",
    "patch_size",
    "num_layers",
    "hidden_dim",
    "num_heads",
    "intermediate_dim",
    "dropout",
    "attention_dropout",
    "drop_path_rate",
    "layer_norm_epsilon",
    "position_grid_shape",
)


@keras_seq_export
class VisionTransformer(LegacyWeightLayout, ViTImageClassifier):
    """Deprecated: use `ViTImageClassifier(ViTBackbone(...), num_classes)` or `from_preset`.

    The 0.1 Vision Transformer, kept so that code and `.keras` files written for keras_seq 0.1
    keep working: it takes `ViTBackbone`'s arguments plus `num_classes` and `pooling`, builds
    the backbone and is a `ViTImageClassifier` on it (same logits), saving its weights at
    their 0.1 paths. With `num_classes=None` it has no head and returns the pooled features
    `(batch_size, hidden_dim)`, as in 0.1 (with the new classes: pool `ViTBackbone`'s tokens).
    `feature_extractor()` and the 0.1 attributes (`encoder_layers`, ...) are the backbone's.
    Constructing one emits a `DeprecationWarning`.

    Args:
        image_shape, patch_size, num_layers, hidden_dim, num_heads, intermediate_dim, dropout,
            attention_dropout, drop_path_rate, layer_norm_epsilon, position_grid_shape: as
            `ViTBackbone`.
        num_classes: int or `None`. Classes of the head; `None` for no head (pooled
            features). Defaults to `1000`.
        pooling: as `ViTImageClassifier`. Defaults to `"token"`.
        **kwargs: base model arguments (`name`, `dtype`).
    """

    presets = ViTBackbone.presets
    _head_optional = True

    def __init__(
        self,
        image_shape=(224, 224, 3),
        patch_size=16,
        num_layers=12,
        hidden_dim=768,
        num_heads=12,
        intermediate_dim=3072,
        num_classes=1000,
        pooling="token",
        dropout=0.0,
        attention_dropout=0.0,
        drop_path_rate=0.0,
        layer_norm_epsilon=1e-6,
        position_grid_shape=None,
        **kwargs,
    ):
        warn_deprecated(
            "VisionTransformer",
            "keras_seq.models.ViTImageClassifier(keras_seq.models.ViTBackbone(...), num_classes)",
        )
        arguments = dict(
            image_shape=image_shape,
            patch_size=patch_size,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            drop_path_rate=drop_path_rate,
            layer_norm_epsilon=layer_norm_epsilon,
            position_grid_shape=position_grid_shape,
        )
        kwargs.setdefault("name", default_name("vision_transformer"))
        backbone = ViTBackbone(**arguments, dtype=kwargs.get("dtype"), name="vit_backbone")
        super().__init__(backbone, num_classes=num_classes, pooling=pooling, **kwargs)
        for name, value in arguments.items():
            setattr(self, name, value)
        self.use_legacy_layout()

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Build the architecture named `preset` (random weights), with constructor overrides."""
        entry = preset_config(ViTBackbone, preset)
        check_overrides(cls, preset, overrides, constructor_arguments(cls))
        return cls(**{**entry["config"], **entry.get("task_config", {}), **overrides})

    def legacy_layers(self):
        # 0.1: the backbone's layers in graph order, then the head.
        return self.backbone.layers + ([self.head] if self.head is not None else [])

    def get_config(self):
        config = super().get_config()
        del config["backbone"]
        # Not arguments of the 0.1 class (its models never carry a checkpoint's preprocessing).
        del config["pooled_layer_norm"], config["preprocessor"], config["label_names"]
        return {**config, **{name: getattr(self, name) for name in _BACKBONE_ARGUMENTS}}
