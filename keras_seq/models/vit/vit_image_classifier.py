"""ViTImageClassifier: pooling and a linear head on a `ViTBackbone`.

Letter legend for shape comments: B batch, T tokens (class token plus patches), C hidden width,
K classes.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.default_name import default_name
from keras_seq.models.image_task import ImageClassifier
from keras_seq.models.vit.vit_backbone import ViTBackbone
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_int


def _is_token_backbone(model):
    outputs = getattr(model, "outputs", None)
    return outputs is not None and len(outputs) == 1 and len(outputs[0].shape) == 3


@keras_seq_export
class ViTImageClassifier(ImageClassifier):
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
        pooled_layer_norm: bool. Normalize the pooled features before the head (timm's
            `fc_norm`, used by its average-pooled ViTs, whose backbone has no final norm:
            `use_final_layer_norm=False`). Defaults to `False`.
        preprocessor: a `keras_seq.layers.ImagePreprocessor` (or its config) turning raw
            images into the backbone's inputs, used by `classify`; set by `from_preset`
            from a checkpoint's preprocessing. Defaults to `None`.
        label_names: list of `num_classes` strings (a checkpoint's `id2label`), used by
            `classify`. Defaults to `None`.
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

    def __init__(
        self,
        backbone,
        num_classes,
        pooling="token",
        pooled_layer_norm=False,
        preprocessor=None,
        label_names=None,
        **kwargs,
    ):
        backbone = self.resolve_backbone(
            backbone,
            _is_token_backbone,
            "a ViTBackbone (or a functional model with one (batch_size, tokens, hidden_dim) "
            "output, class token first)",
        )
        if num_classes is not None or not self._head_optional:
            validate_positive_int("num_classes", num_classes)
            # The head has (at least) one weight per class.
            check_model_size(
                type(self).__name__, {"num_classes": num_classes}, [(1, "num_classes")]
            )
        validate_choice("pooling", pooling, ("token", "mean"))
        validate_bool("pooled_layer_norm", pooled_layer_norm)
        num_prefix_tokens = int(getattr(backbone, "use_class_token", True))
        if pooling == "token" and not num_prefix_tokens:
            raise ValueError(
                "`pooling='token'` needs a class token, and the backbone has none "
                "(use_class_token=False): use pooling='mean'."
            )
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
        pooled_norm = (
            keras.layers.LayerNormalization(
                epsilon=getattr(backbone, "layer_norm_epsilon", 1e-6),
                dtype=kwargs["dtype"],
                name="pooled_norm",
            )
            if pooled_layer_norm
            else None
        )

        # === Functional model ===
        inputs = backbone.input
        tokens = backbone(inputs)  # (B, T, C)
        if pooling == "token":
            pooled = tokens[:, 0]  # (B, C)
        else:
            pooled = ops.mean(tokens[:, num_prefix_tokens:], axis=1)  # (B, C)
        if pooled_norm is not None:
            pooled = pooled_norm(pooled)
        outputs = pooled if head is None else head(pooled)  # (B, K)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.pooled_norm = pooled_norm
        self.head = head
        self._set_image_task(preprocessor, label_names, num_classes)

        # === Config ===
        self.num_classes = num_classes
        self.pooling = pooling
        self.pooled_layer_norm = pooled_layer_norm

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "pooling": self.pooling,
            "pooled_layer_norm": self.pooled_layer_norm,
        }
