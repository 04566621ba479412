"""SwinBackbone: a hierarchical vision transformer with shifted-window attention.

Letter legend for shape comments: B batch, H / W feature-map height and width, C channels.
"""

import keras
import numpy as np

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.patch_merging import PatchMerging
from keras_seq.layers.blocks.swin_block import SwinBlock
from keras_seq.layers.embeddings.patch_embedding import PatchEmbedding
from keras_seq.models.backbone import Backbone
from keras_seq.models.swin.swin_converter_keras_hub import SwinKerasHubConverter
from keras_seq.models.swin.swin_converter_timm import SwinTimmConverter
from keras_seq.models.swin.swin_converter_transformers import SwinTransformersConverter
from keras_seq.models.swin.swin_presets import SWIN_PRESETS
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_image_shape
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


def _validate_stages(num_layers, num_heads):
    for name, value in (("num_layers", num_layers), ("num_heads", num_heads)):
        if not isinstance(value, (tuple, list)) or not value:
            raise ValueError(
                f"`{name}` must be a non-empty list with one int per stage. Received: "
                f"{name}={value!r}"
            )
        for item in value:
            validate_positive_int(name, item)
    if len(num_layers) != len(num_heads):
        raise ValueError(
            "`num_layers` and `num_heads` must have one entry per stage each. Received: "
            f"num_layers={num_layers!r}, num_heads={num_heads!r}"
        )


@keras_seq_export
class SwinBackbone(Backbone):
    """Swin Transformer backbone: shifted-window attention over a feature pyramid.

    Patch partition and linear embedding (`patch_size` 4: `hidden_dim` channels at H/4),
    then stages of `SwinBlock`s alternating regular and shifted windows, with
    `PatchMerging` between stages (C, 2C, 4C, 8C channels at H/4, H/8, H/16, H/32), stochastic
    depth rising linearly over all blocks to `drop_path_rate`, and a final layer norm (Liu et
    al., 2021). It returns the last stage's normalized feature map `(batch_size, H/32, W/32,
    8C)`: timm's `SwinTransformer.forward_features`; HF's `SwinModel` returns the same as
    tokens, `last_hidden_state` `(batch_size, H/32 * W/32, 8C)`. `SwinImageClassifier` averages
    it and puts a linear head on top; its 4-D output also makes it a `DETRBackbone` image
    encoder as it is.
    The presets are Swin-T / S / B (random weights); `from_preset` also loads checkpoints:
    Hugging Face `SwinModel` / `SwinForImageClassification` and timm `swin_*` directories
    or `hf://` handles (see `Backbone.from_preset`).

    Any image size, square or not (e.g. 112 x 112, 100 x 100, 96 x 160, where keras_hub's
    Swin fails): images and feature maps are padded to patch and window multiples (padded
    tokens are masked out of attention unless `mask_padding=False`, as in the original and in
    the checkpoints `from_preset` loads), odd maps are padded before merging, and a window
    larger than a feature map is clamped to it. Weights saved at one size load into a model
    built for another: bias tables of a changed window size are resampled.
    `feature_extractor()` returns every stage's output, for use as a detection backbone.

    Args:
        image_shape: `(height, width, channels)`, static. Defaults to `(224, 224, 3)`.
        patch_size: int. Patch height and width. Defaults to `4`.
        hidden_dim: int. Channels of the first stage. Defaults to `96`.
        num_layers: list of ints. Blocks per stage. Defaults to `(2, 2, 6, 2)`.
        num_heads: list of ints. Attention heads per stage; each divides its stage's
            channels (`hidden_dim * 2**stage`). Defaults to `(3, 6, 12, 24)`.
        window_size: int. Attention window height and width. Defaults to `7`.
        mlp_ratio: float. Feed-forward width over the stage's channels. Defaults to `4.0`.
        dropout: float in [0, 1). Dropout on the embedding and sublayer outputs. Defaults to
            `0.0`.
        attention_dropout: float in [0, 1). Dropout on attention probabilities. Defaults
            to `0.0`.
        drop_path_rate: float in [0, 1). Stochastic depth of the last block (linear from 0).
            Defaults to `0.1`.
        layer_norm_epsilon: float. Epsilon of the layer norms. Defaults to `1e-5`.
        mask_padding: bool. Mask the zero padding of feature maps that are no window
            multiple out of attention (a departure from the original, which lets the padded
            tokens take part: `False` reproduces it, and is what models loaded from Hugging
            Face or timm checkpoints use). No effect at sizes that need no padding, such as
            224 x 224 with window 7. Defaults to `True`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, height, width, channels)` images (normalized by the
            user's pipeline; the model does not rescale).

    Returns:
        Feature map `(batch_size, map_height, map_width, hidden_dim * 2**(num_stages - 1))`
        after the final layer norm, `map_height` the image height divided by `patch_size`
        and by 2 at each merge, rounded up.

    Example:
    ```python
    backbone = keras_seq.models.SwinBackbone(
        image_shape=(32, 48, 3), patch_size=2, hidden_dim=16, num_layers=(2, 2),
        num_heads=(2, 4), window_size=4,
    )
    assert backbone(np.zeros((2, 32, 48, 3), "float32")).shape == (2, 8, 12, 32)
    features = backbone.feature_extractor()(np.zeros((2, 32, 48, 3), "float32"))
    assert features["stage_1"].shape == (2, 16, 24, 16)
    ```

    References:
        - [Liu et al., 2021](https://arxiv.org/abs/2103.14030)
    """

    presets = SWIN_PRESETS
    checkpoint_converters = (SwinTransformersConverter, SwinTimmConverter, SwinKerasHubConverter)

    def __init__(
        self,
        image_shape=(224, 224, 3),
        patch_size=4,
        hidden_dim=96,
        num_layers=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4.0,
        dropout=0.0,
        attention_dropout=0.0,
        drop_path_rate=0.1,
        layer_norm_epsilon=1e-5,
        mask_padding=True,
        **kwargs,
    ):
        validate_image_shape(image_shape, allow_dynamic=False)
        validate_bool("mask_padding", mask_padding)
        validate_positive_int("patch_size", patch_size)
        validate_positive_int("hidden_dim", hidden_dim)
        _validate_stages(num_layers, num_heads)
        for stage, heads in enumerate(num_heads):
            validate_divisible(
                f"hidden_dim * 2**{stage}", hidden_dim * 2**stage, "num_heads", heads
            )
        validate_positive_int("window_size", window_size)
        validate_positive_float("mlp_ratio", mlp_ratio)
        validate_rate("dropout", dropout)
        validate_rate("attention_dropout", attention_dropout)
        validate_rate("drop_path_rate", drop_path_rate)
        validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        dtype = kwargs.get("dtype")
        check_model_size(
            "SwinBackbone",
            {"patch_size": patch_size, "channels": image_shape[2], "hidden_dim": hidden_dim},
            [(1, "patch_size", "patch_size", "channels", "hidden_dim")]
            + [
                # Stage `stage` is 2**stage times wider: attention and MLP kernels per block.
                ((4 + 2 * mlp_ratio) * 4**stage * depth, "hidden_dim", "hidden_dim")
                for stage, depth in enumerate(num_layers)
            ],
            num_blocks=sum(num_layers),
            dtype=dtype,
        )
        rates = iter(np.linspace(0.0, drop_path_rate, sum(num_layers)))

        # === Layers ===
        self.patch_embedding = PatchEmbedding(
            hidden_dim, patch_size, pad_to_multiple=True, dtype=dtype, name="patch_embedding"
        )
        self.patch_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="patch_layer_norm"
        )
        self.embedding_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embedding_dropout"
        )
        self.stages = []
        self.patch_merging_layers = []
        for stage, (depth, heads) in enumerate(zip(num_layers, num_heads)):
            channels = hidden_dim * 2**stage
            self.stages.append(
                [
                    SwinBlock(
                        num_heads=heads,
                        intermediate_dim=int(channels * mlp_ratio),
                        window_size=window_size,
                        shift=index % 2 == 1,
                        dropout=dropout,
                        attention_dropout=attention_dropout,
                        layer_norm_epsilon=layer_norm_epsilon,
                        drop_path_rate=float(next(rates)),
                        mask_padding=mask_padding,
                        dtype=dtype,
                        name=f"stage_{stage + 1}_block_{index}",
                    )
                    for index in range(depth)
                ]
            )
            if stage < len(num_layers) - 1:
                self.patch_merging_layers.append(
                    PatchMerging(
                        layer_norm_epsilon=layer_norm_epsilon,
                        dtype=dtype,
                        name=f"patch_merging_{stage + 1}",
                    )
                )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="layer_norm"
        )

        # === Functional model ===
        images = keras.Input(tuple(image_shape), name="images")
        x = self.patch_embedding(images)  # (B, H / 4, W / 4, C)
        x = self.embedding_dropout(self.patch_layer_norm(x))
        stage_outputs = {}
        for stage, blocks in enumerate(self.stages):
            for block in blocks:
                x = block(x)
            if stage < len(self.patch_merging_layers):
                stage_outputs[f"stage_{stage + 1}"] = x
                x = self.patch_merging_layers[stage](x)  # (B, H / 2, W / 2, 2C)
        x = self.layer_norm(x)
        stage_outputs[f"stage_{len(self.stages)}"] = x
        super().__init__(inputs=images, outputs=x, **kwargs)
        # Stage outputs for feature_extractor(), kept out of Keras' attribute tracking.
        object.__setattr__(self, "_stage_outputs", stage_outputs)

        # === Config ===
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.window_size = window_size
        self.mlp_ratio = mlp_ratio
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.mask_padding = mask_padding

    def feature_extractor(self):
        """A model sharing this one's layers that returns every stage's feature map.

        Outputs `{"stage_1": (B, H/4, W/4, C), ..., "stage_4": (B, H/32, W/32, 8C)}` (for
        the default four stages): each stage's output before patch merging, the last one
        after the final layer norm (this backbone's output, timm's convention), e.g. for a
        detection backbone.
        """
        return keras.Model(self.input, dict(self._stage_outputs), name=f"{self.name}_features")

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "patch_size": self.patch_size,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "window_size": self.window_size,
            "mlp_ratio": self.mlp_ratio,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "drop_path_rate": self.drop_path_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "mask_padding": self.mask_padding,
        }
