"""ViTImageClassifier: pooling and a linear head on a `ViTBackbone`.

Letter legend for shape comments: B batch, T tokens (class token plus patches), C hidden width,
K classes.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.default_name import default_name
from keras_seq.models.task import Task
from keras_seq.models.vit.vit_backbone import ViTBackbone
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_int


def _is_token_backbone(model):
    outputs = getattr(model, "outputs", None)
    return outputs is not None and len(outputs) == 1 and len(outputs[0].shape) == 3


@keras_seq_export
class ViTImageClassifier(Task):
    """Image classifier on a ViT backbone: pool the tokens, then a linear head.

    Pooling takes the class token (`"token"`, the original ViT) or the mean of the patch
    tokens (`"mean"`), both after the backbone's final layer norm (timm's
    `global_pool="token"`, and `global_pool="avg"` with `fc_norm=False`); a `Dense` head,
    zero-initialized as in the original ViT, maps them to logits. For pooled features without
    a head, pool the backbone's output: `tokens[:, 0]` or `ops.mean(tokens[:, 1:], axis=1)`.

    Args:
        backbone: a `ViTBackbone`, or its config from `keras.saving.serialize_keras_object`;
            any functional model with one output `(batch_size, tokens, hidden_dim)` whose first
            token is a class token plugs in. Its weights are shared, not copied.
        num_classes: int. Number of classes (logits) of the head.
        pooling: `"token"` (the class token) or `"mean"` (mean of the patch tokens).
            Defaults to `"token"`.
        **kwargs: base model arguments (`name`, `dtype`); `dtype` defaults to the backbone's
            dtype policy.

    Call arguments:
        inputs: the backbone's inputs: float `(batch_size, height, width, channels)` images
            for a `ViTBackbone`.

    Returns:
        Logits `(batch_size, num_classes)`.

    Example:
    ```python
    backbone = keras_seq.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, hidden_dim=32, num_heads=2,
        intermediate_dim=64,
    )
    model = keras_seq.models.ViTImageClassifier(backbone, num_classes=10, pooling="mean")
    assert model(np.zeros((2, 32, 32, 3), "float32")).shape == (2, 10)
    # A preset architecture (random weights) with another head and image size.
    model = keras_seq.models.ViTImageClassifier.from_preset(
        "vit_tiny_patch16_224", num_classes=10, image_shape=(64, 64, 3), num_layers=1
    )
    assert model(np.zeros((1, 64, 64, 3), "float32")).shape == (1, 10)
    ```

    References:
        - [Dosovitskiy et al., 2020](https://arxiv.org/abs/2010.11929)
    """

    backbone_cls = ViTBackbone
    # keras_seq 0.1's `VisionTransformer(num_classes=None)` returned the pooled features:
    # only that deprecated subclass builds without a head.
    _head_optional = False

    def __init__(self, backbone, num_classes, pooling="token", **kwargs):
        backbone = self.resolve_backbone(
            backbone,
            _is_token_backbone,
            "a ViTBackbone (or a functional model with one (batch_size, tokens, hidden_dim) "
            "output, class token first)",
        )
        if num_classes is not None or not self._head_optional:
            validate_positive_int("num_classes", num_classes)
        validate_choice("pooling", pooling, ("token", "mean"))
        kwargs.setdefault("name", default_name("vit_image_classifier"))
        kwargs.setdefault("dtype", backbone.dtype_policy)

        # === Layers ===
        # Assigned after the functional constructor, so that the weights list the backbone's
        # first, then the head's (the order of 0.1 and of keras_hub's tasks).
        head = (
            keras.layers.Dense(
                num_classes, kernel_initializer="zeros", dtype=kwargs["dtype"], name="head"
            )
            if num_classes is not None
            else None
        )

        # === Functional model ===
        inputs = backbone.input
        tokens = backbone(inputs)  # (B, T, C)
        pooled = tokens[:, 0] if pooling == "token" else ops.mean(tokens[:, 1:], axis=1)
        outputs = pooled if head is None else head(pooled)  # (B, K)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.head = head

        # === Config ===
        self.num_classes = num_classes
        self.pooling = pooling

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "pooling": self.pooling}
