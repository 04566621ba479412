"""ViTBackbone: patch embedding, class token and positions, pre-norm encoder blocks, final norm.

Letter legend for shape comments: B batch, h / w patch-grid height and width, C hidden width,
T tokens (class token plus patches).
"""

import keras
import numpy as np
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_encoder import TransformerEncoder
from keras_seq.layers.embeddings.patch_embedding import PatchEmbedding
from keras_seq.layers.embeddings.patch_position_embedding import PatchPositionEmbedding
from keras_seq.models.backbone import Backbone
from keras_seq.models.default_name import default_name
from keras_seq.models.vit.vit_converter_keras_hub import ViTKerasHubConverter
from keras_seq.models.vit.vit_converter_timm import ViTTimmConverter
from keras_seq.models.vit.vit_converter_transformers import ViTTransformersConverter
from keras_seq.models.vit.vit_presets import VIT_PRESETS
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_image_shape
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


@keras_seq_export
class ViTBackbone(Backbone):
    """Vision Transformer (ViT) backbone: images as sequences of patches through an encoder.

    Patch embedding (a convolution with stride `patch_size`), a class token, learned position
    embeddings, dropout, `num_layers` pre-norm `TransformerEncoder` blocks (GELU, stochastic
    depth rising linearly to `drop_path_rate`) and a final layer norm. It returns the normalized
    tokens, the class token first: what HF's `ViTModel` returns as `last_hidden_state` and
    timm's `VisionTransformer.forward_features` (class token, `fc_norm` off). `ViTImageClassifier`
    pools them and puts a linear head on top. The presets are the original ViT-Ti/S/B/L at
    patch 16 and 32 (random weights); `from_preset` also loads checkpoints: Hugging Face
    `ViTModel` / `ViTForImageClassification` and timm `vit_*` directories or `hf://`
    handles (see `Backbone.from_preset`).

    Any image size: the position table is resampled in 2-D to the patch grid of each call
    (build with `image_shape=(None, None, 3)` and a `position_grid_shape` to feed images of
    varying size), and weights saved at one size load into a model built for another (the
    stored table is resampled once: `ViTBackbone.from_preset(name, image_shape=(384, 384,
    3))`, then `load_weights` of a 224 x 224 file). keras_hub's `ViTBackbone` supports
    neither. `feature_extractor()` lays the patch tokens out as a feature map.

    Args:
        image_shape: `(height, width, channels)`; height and width may be `None` (any size
            at call time, multiples of `patch_size`). Defaults to `(224, 224, 3)`.
        patch_size: int. Height and width of a patch. Defaults to `16`.
        num_layers: int. Number of encoder blocks. Defaults to `12`.
        hidden_dim: int. Token width; divisible by `num_heads`. Defaults to `768`.
        num_heads: int. Attention heads. Defaults to `12`.
        intermediate_dim: int. Feed-forward width. Defaults to `3072`.
        dropout: float in [0, 1). Dropout on the embeddings and sublayer outputs. Defaults to
            `0.0`.
        attention_dropout: float in [0, 1). Dropout on attention probabilities. Defaults
            to `0.0`.
        drop_path_rate: float in [0, 1). Stochastic depth of the last block (linear from 0).
            Defaults to `0.0`.
        layer_norm_epsilon: float. Epsilon of the layer norms. Defaults to `1e-6`.
        position_grid_shape: pair `(rows, columns)` or `None`. Patch grid of the learned
            position table. Defaults to `image_shape[:2] // patch_size`; required when the
            image size is `None`.
        use_class_token: bool. Prepend a learned class token. `False` for models pooled by
            averaging without one (timm's `class_token=False`). Defaults to `True`.
        use_final_layer_norm: bool. Normalize the output tokens. `False` where the
            classifier normalizes after pooling instead (timm's average-pooled ViTs with
            `fc_norm`; use `ViTImageClassifier(pooled_layer_norm=True)`). Defaults to `True`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, channels)` images (normalized as the
            user's data pipeline does; the model does not rescale).

    Returns:
        Tokens `(batch_size, 1 + (height / patch_size) * (width / patch_size), hidden_dim)`
        after the final layer norm: the class token, then the patches in row-major order
        (without a class token or the final norm when those are turned off).

    Example:
    ```python
    backbone = keras_seq.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, hidden_dim=32, num_heads=2,
        intermediate_dim=64,
    )
    tokens = backbone(np.zeros((2, 32, 32, 3), "float32"))
    assert tokens.shape == (2, 1 + 4 * 4, 32)
    features = backbone.feature_extractor()(np.zeros((2, 32, 32, 3), "float32"))
    assert features["feature_map"].shape == (2, 4, 4, 32)
    ```

    References:
        - [Dosovitskiy et al., 2020](https://arxiv.org/abs/2010.11929)
        - [Steiner et al., 2021](https://arxiv.org/abs/2106.10270) (Ti and S sizes)
    """

    presets = VIT_PRESETS
    checkpoint_converters = (ViTTransformersConverter, ViTTimmConverter, ViTKerasHubConverter)

    def __init__(
        self,
        image_shape=(224, 224, 3),
        patch_size=16,
        num_layers=12,
        hidden_dim=768,
        num_heads=12,
        intermediate_dim=3072,
        dropout=0.0,
        attention_dropout=0.0,
        drop_path_rate=0.0,
        layer_norm_epsilon=1e-6,
        position_grid_shape=None,
        use_class_token=True,
        use_final_layer_norm=True,
        **kwargs,
    ):
        validate_image_shape(image_shape)
        for name, value in (
            ("patch_size", patch_size),
            ("num_layers", num_layers),
            ("hidden_dim", hidden_dim),
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
        ):
            validate_positive_int(name, value)
        validate_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
        validate_rate("dropout", dropout)
        validate_rate("attention_dropout", attention_dropout)
        validate_rate("drop_path_rate", drop_path_rate)
        validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        validate_bool("use_class_token", use_class_token)
        validate_bool("use_final_layer_norm", use_final_layer_norm)
        grid_shape = _position_grid(image_shape, patch_size, position_grid_shape)
        kwargs.setdefault("name", default_name("vit_backbone"))  # Keras would say "vi_t_backbone".
        dtype = kwargs.get("dtype")
        check_model_size(
            "ViTBackbone",
            {
                "patch_size": patch_size,
                "channels": image_shape[2],
                "num_patches": grid_shape[0] * grid_shape[1],
                "num_layers": num_layers,
                "hidden_dim": hidden_dim,
                "intermediate_dim": intermediate_dim,
            },
            [
                (1, "patch_size", "patch_size", "channels", "hidden_dim"),
                (1, "num_patches", "hidden_dim"),
                (4, "num_layers", "hidden_dim", "hidden_dim"),
                (2, "num_layers", "hidden_dim", "intermediate_dim"),
            ],
            num_blocks=num_layers,
            dtype=dtype,
        )

        # === Layers ===
        self.patch_embedding = PatchEmbedding(
            hidden_dim, patch_size, dtype=dtype, name="patch_embedding"
        )
        self.position_embedding = PatchPositionEmbedding(
            grid_shape, use_class_token=use_class_token, dtype=dtype, name="position_embedding"
        )
        self.embedding_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embedding_dropout"
        )
        self.encoder_layers = [
            TransformerEncoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                attention_dropout=attention_dropout,
                activation="gelu",
                normalize_first=True,
                layer_norm_epsilon=layer_norm_epsilon,
                drop_path_rate=float(rate),
                dtype=dtype,
                name=f"encoder_layer_{index}",
            )
            for index, rate in enumerate(np.linspace(0.0, drop_path_rate, num_layers))
        ]
        self.layer_norm = (
            keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="layer_norm"
            )
            if use_final_layer_norm
            else None
        )

        # === Functional model ===
        images = keras.Input(tuple(image_shape), name="images")
        patches = self.patch_embedding(images)  # (B, h, w, C)
        x = self.embedding_dropout(self.position_embedding(patches))  # (B, T, C)
        for layer in self.encoder_layers:
            x = layer(x)
        tokens = x if self.layer_norm is None else self.layer_norm(x)  # (B, T, C)
        super().__init__(inputs=images, outputs=tokens, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.position_grid_shape = position_grid_shape
        self.use_class_token = use_class_token
        self.use_final_layer_norm = use_final_layer_norm

    def feature_extractor(self):
        """A model sharing this one's layers that returns `{"feature_map": (B, h, w, C)}`.

        The final-norm patch tokens on the patch grid (`h = height / patch_size`), e.g. as a
        dense-prediction or detection backbone. Needs a static `image_shape`.
        """
        height, width = self.image_shape[0], self.image_shape[1]
        if height is None or width is None:
            raise ValueError(
                "`feature_extractor()` needs a static image size to lay the patch tokens "
                f"out on their grid. Received: image_shape={self.image_shape}. Rebuild the "
                "model with a fixed `image_shape` and load these weights into it."
            )
        grid_height, grid_width = height // self.patch_size, width // self.patch_size
        patch_tokens = self.output[:, int(self.use_class_token) :]  # (B, h * w, C)
        feature_map = ops.reshape(patch_tokens, (-1, grid_height, grid_width, self.hidden_dim))
        return keras.Model(self.input, {"feature_map": feature_map}, name=f"{self.name}_features")

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "patch_size": self.patch_size,
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "drop_path_rate": self.drop_path_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "position_grid_shape": self.position_grid_shape,
            "use_class_token": self.use_class_token,
            "use_final_layer_norm": self.use_final_layer_norm,
        }


def _position_grid(image_shape, patch_size, position_grid_shape):
    """The position table's patch grid: given, or the image size over the patch size."""
    if position_grid_shape is not None:
        if (
            not isinstance(position_grid_shape, (tuple, list))
            or len(position_grid_shape) != 2
            or not all(isinstance(s, int) and s > 0 for s in position_grid_shape)
        ):
            raise ValueError(
                "`position_grid_shape` must be a pair of positive ints (rows, columns). "
                f"Received: position_grid_shape={position_grid_shape!r}"
            )
        return tuple(position_grid_shape)
    if image_shape[0] is None or image_shape[1] is None:
        raise ValueError(
            "With a variable image size, `position_grid_shape` sets the patch grid of the "
            "learned position table, e.g. (14, 14) for 224 x 224 images at patch 16. "
            f"Received: image_shape={image_shape!r}, position_grid_shape=None"
        )
    for axis, size in (("height", image_shape[0]), ("width", image_shape[1])):
        if size % patch_size:
            raise ValueError(
                f"The image {axis} must be a multiple of `patch_size`. Received: "
                f"image_shape={image_shape!r}, patch_size={patch_size}"
            )
    return (image_shape[0] // patch_size, image_shape[1] // patch_size)
