"""SwinTransformer: the 0.1 single-class Swin, now `SwinImageClassifier` on a `SwinBackbone`."""

from keras_seq.api import keras_seq_export
from keras_seq.models.deprecation import LegacyWeightLayout
from keras_seq.models.deprecation import warn_deprecated
from keras_seq.models.presets import check_overrides
from keras_seq.models.presets import constructor_arguments
from keras_seq.models.presets import preset_config
from keras_seq.models.swin.swin_backbone import SwinBackbone
from keras_seq.models.swin.swin_image_classifier import SwinImageClassifier

# The 0.1 constructor arguments that are the backbone's.
_BACKBONE_ARGUMENTS = (
    "image_shape",
    "patch_size",
    "hidden_dim",
    "num_layers",
    "num_heads",
    "window_size",
    "mlp_ratio",
    "dropout",
    "attention_dropout",
    "drop_path_rate",
    "layer_norm_epsilon",
)
_REPLACEMENT = (
    "keras_seq.models.SwinImageClassifier(keras_seq.models.SwinBackbone(...), num_classes)"
)


@keras_seq_export
class SwinTransformer(LegacyWeightLayout, SwinImageClassifier):
    """Deprecated: use `SwinImageClassifier(SwinBackbone(...), num_classes)` or `from_preset`.

    The 0.1 Swin Transformer, kept so that code and `.keras` files written for keras_seq 0.1
    keep working: it takes `SwinBackbone`'s arguments plus `num_classes`, builds the backbone
    and is a `SwinImageClassifier` on it (same logits), saving its weights at their 0.1 paths.
    With `num_classes=None` it has no head and returns the pooled features, as in 0.1 (with the
    new classes: average `SwinBackbone`'s feature map). `feature_extractor()` and the 0.1
    attributes (`stages`, ...) are the backbone's. Constructing one emits a
    `DeprecationWarning`.

    Args:
        image_shape, patch_size, hidden_dim, num_layers, num_heads, window_size, mlp_ratio,
            dropout, attention_dropout, drop_path_rate, layer_norm_epsilon: as `SwinBackbone`.
        num_classes: int or `None`. Classes of the head; `None` for no head (pooled
            features `(batch_size, hidden_dim * 2**(num_stages - 1))`). Defaults to `1000`.
        **kwargs: base model arguments (`name`, `dtype`).
    """

    presets = SwinBackbone.presets
    _head_optional = True

    def __init__(
        self,
        image_shape=(224, 224, 3),
        patch_size=4,
        hidden_dim=96,
        num_layers=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4.0,
        num_classes=1000,
        dropout=0.0,
        attention_dropout=0.0,
        drop_path_rate=0.1,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        warn_deprecated("SwinTransformer", _REPLACEMENT)
        arguments = dict(
            image_shape=image_shape,
            patch_size=patch_size,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            dropout=dropout,
            attention_dropout=attention_dropout,
            drop_path_rate=drop_path_rate,
            layer_norm_epsilon=layer_norm_epsilon,
        )
        backbone = SwinBackbone(**arguments, dtype=kwargs.get("dtype"), name="swin_backbone")
        super().__init__(backbone, num_classes=num_classes, **kwargs)
        for name, value in arguments.items():
            setattr(self, name, value)
        self.use_legacy_layout()

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Build the architecture named `preset` (random weights), with constructor overrides."""
        entry = preset_config(SwinBackbone, preset)
        check_overrides(cls, preset, overrides, constructor_arguments(cls))
        return cls(**{**entry["config"], **entry.get("task_config", {}), **overrides})

    def legacy_layers(self):
        # 0.1: the backbone's layers in graph order, then the head.
        return self.backbone.layers + ([self.head] if self.head is not None else [])

    def get_config(self):
        config = super().get_config()
        del config["backbone"]
        # Not arguments of the 0.1 class (its models never carry a checkpoint's preprocessing).
        del config["preprocessor"], config["label_names"]
        return {**config, **{name: getattr(self, name) for name in _BACKBONE_ARGUMENTS}}
