"""SwinImageClassifier: global average pooling and a linear head on a `SwinBackbone`.

Letter legend for shape comments: B batch, H / W feature-map height and width, C channels,
K classes.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.image_task import ImageClassifier
from keras_seq.models.swin.swin_backbone import SwinBackbone
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_positive_int


def _is_feature_map_backbone(model):
    outputs = getattr(model, "outputs", None)
    return outputs is not None and len(outputs) == 1 and len(outputs[0].shape) == 4


@keras_seq_export
class SwinImageClassifier(ImageClassifier):
    """Image classifier on a Swin backbone: average the feature map, then a linear head.

    The backbone's final feature map is averaged over its height and width and a `Dense` head
    maps it to logits (Liu et al., 2021; timm's `global_pool="avg"`). For pooled features
    without a head, average the backbone's output: `ops.mean(feature_map, axis=(1, 2))`.

    Args:
        backbone: a `SwinBackbone`, or its config from `keras.saving.serialize_keras_object`;
            any functional model with one output `(batch_size, height, width, channels)`
            plugs in. Its weights are shared, not copied.
        num_classes: int. Number of classes (logits) of the head.
        preprocessor: a `keras_seq.layers.ImagePreprocessor` (or its config) turning raw
            images into the backbone's inputs, used by `classify`; set by `from_preset`
            from a checkpoint's preprocessing. Defaults to `None`.
        label_names: list of `num_classes` strings (a checkpoint's `id2label`), used by
            `classify`. Defaults to `None`.
        **kwargs: base model arguments (`name`, `dtype`); `dtype` defaults to the backbone's
            dtype policy.

    Call arguments:
        inputs: the backbone's inputs: float `(batch_size, height, width, channels)` images
            for a `SwinBackbone`.

    Returns:
        Logits `(batch_size, num_classes)`.

    Example:
    ```python
    backbone = keras_seq.models.SwinBackbone(
        image_shape=(32, 48, 3), patch_size=2, hidden_dim=16, num_layers=(2, 2),
        num_heads=(2, 4), window_size=4,
    )
    model = keras_seq.models.SwinImageClassifier(backbone, num_classes=10)
    assert model(np.zeros((2, 32, 48, 3), "float32")).shape == (2, 10)
    ```

    References:
        - [Liu et al., 2021](https://arxiv.org/abs/2103.14030)
    """

    backbone_cls = SwinBackbone
    # keras_seq 0.1's `SwinTransformer(num_classes=None)` returned the pooled features: only
    # that deprecated subclass builds without a head.
    _head_optional = False

    def __init__(self, backbone, num_classes, preprocessor=None, label_names=None, **kwargs):
        backbone = self.resolve_backbone(
            backbone,
            _is_feature_map_backbone,
            "a SwinBackbone (or a functional model with one (batch_size, height, width, "
            "channels) output)",
        )
        if num_classes is not None or not self._head_optional:
            validate_positive_int("num_classes", num_classes)
            # The head has (at least) one weight per class.
            check_model_size(
                type(self).__name__, {"num_classes": num_classes}, [(1, "num_classes")]
            )
        kwargs.setdefault("dtype", backbone.dtype_policy)

        # === Layers ===
        # Assigned after the functional constructor, so that the weights list the backbone's
        # first, then the head's (the order of 0.1 and of keras_hub's tasks).
        head = (
            keras.layers.Dense(num_classes, dtype=kwargs["dtype"], name="head")
            if num_classes is not None
            else None
        )

        # === Functional model ===
        inputs = backbone.input
        feature_map = backbone(inputs)  # (B, H, W, C)
        pooled = ops.mean(feature_map, axis=(1, 2))  # (B, C)
        outputs = pooled if head is None else head(pooled)  # (B, K)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.head = head
        self._set_image_task(preprocessor, label_names, num_classes)

        # === Config ===
        self.num_classes = num_classes

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
