"""keras-hub Swin presets (`keras_hub>SwinTransformerBackbone`, alone or under a
`keras_hub>SwinTransformerImageClassifier`) -> `SwinBackbone` / `SwinImageClassifier`.

keras-hub loads the preset (a directory, a keras-hub preset name or a `kaggle://` handle);
this module maps its config and its variables, by path, to ours. keras-hub keeps the patch
merging at the end of a stage (`stage_{s}/downsample`), where our `patch_merging_{s + 1}`
sits, and concatenates the 2 x 2 neighbours in our order; its attention has one fused
query-key-value `Dense`. Checkpoint names appear only in this module.
"""

import numpy as np

from keras_seq.models.checkpoints.keras_hub_converter import KerasHubConverter
from keras_seq.models.swin.swin_presets import SWIN_PRESETS

_EPSILON = 1e-5  # keras-hub's Swin layer norms (fixed there).


class SwinKerasHubConverter(KerasHubConverter):
    """keras-hub's `SwinTransformerBackbone` / `SwinTransformerImageClassifier` -> keras_seq's
    Swin family.

    Reads the backbone (any patch size, widths, depths, heads, square window, MLP ratio,
    dropout and stochastic depth rates) and the classifier's linear head on the averaged
    tokens, with its preprocessor's image converter as our `ImagePreprocessor`; keras-hub
    has no class names (`label_names` is `None`). keras-hub's backbone returns the final
    tokens `(batch_size, H/32 * W/32, 8C)`, ours the same as a feature map. Refused by name,
    as our Swin cannot represent them: `qkv_bias=False`, `patch_norm=False`, a non-square
    window, channels-first images, and a head activation other than softmax. Outputs equal
    keras-hub's where its Swin computes standard (shifted) window attention: image sizes
    whose feature maps divide into windows at every stage (keras-hub pads other maps after
    shifting, without masking the padding, and fails on maps smaller than a window).
    """

    model_types = ("keras_hub>SwinTransformerBackbone",)
    task_types = ("keras_hub>SwinTransformerImageClassifier",)
    family = "SwinBackbone"
    builtin_presets = SWIN_PRESETS
    free_arguments = KerasHubConverter.free_arguments + ("image_shape",)

    @classmethod
    def keras_hub_classes(cls):
        import keras_hub

        return (
            keras_hub.models.SwinTransformerBackbone,
            keras_hub.models.SwinTransformerImageClassifier,
        )

    def backbone_config(self):
        config = self.config
        self.require("qkv_bias", True, "biases on the query, key and value projections")
        self.require("patch_norm", True, "a layer norm after the patch embedding")
        self.require("data_format", "channels_last", "channels-last images")
        window_size = config["window_size"]
        if not isinstance(window_size, int):
            raise ValueError(
                f"The checkpoint in {self.directory} sets `window_size`={window_size!r} in "
                "its config, which keras_seq's model cannot represent (square windows; it "
                "supports one int)."
            )
        return {
            "image_shape": tuple(config["image_shape"]),
            "patch_size": config.get("patch_size", 4),
            "hidden_dim": config["embed_dim"],
            "num_layers": tuple(config["depths"]),
            "num_heads": tuple(config["num_heads"]),
            "window_size": window_size,
            "mlp_ratio": float(config.get("mlp_ratio", 4.0)),
            "dropout": config.get("dropout_rate", 0.0),
            "attention_dropout": config.get("attention_dropout", 0.0),
            "drop_path_rate": config.get("drop_path", 0.1),
            "layer_norm_epsilon": _EPSILON,
        }

    def load_backbone(self, assignment):
        config = self.config
        self.copy_layer(
            assignment,
            "patch_embedding/conv_projection",
            "patch_embedding/projection",
            ("kernel", "bias"),
        )
        self.copy_layer(assignment, "patch_embedding/norm", "patch_layer_norm", ("gamma", "beta"))
        depths, heads = config["depths"], config["num_heads"]
        for stage, (depth, num_heads) in enumerate(zip(depths, heads)):
            for index in range(depth):
                source = f"stage_{stage}/blocks_{index}"
                target = f"stage_{stage + 1}_block_{index}"
                attention = f"{target}/window_attention"
                self.copy_layer(
                    assignment,
                    f"{source}/norm1",
                    f"{target}/attention_layer_norm",
                    ("gamma", "beta"),
                )
                self.copy(
                    assignment,
                    f"{source}/attn/relative_position_bias_table",
                    f"{attention}/relative_position_bias_table",
                )
                self._attention(
                    assignment, f"{source}/attn", f"{attention}/self_attention", num_heads
                )
                self.copy_layer(
                    assignment,
                    f"{source}/norm2",
                    f"{target}/feedforward_layer_norm",
                    ("gamma", "beta"),
                )
                self.copy_layer(
                    assignment,
                    f"{source}/mlp/fc1",
                    f"{target}/feedforward/intermediate_dense",
                    ("kernel", "bias"),
                )
                self.copy_layer(
                    assignment,
                    f"{source}/mlp/fc2",
                    f"{target}/feedforward/output_dense",
                    ("kernel", "bias"),
                )
            if stage < len(depths) - 1:
                source = f"stage_{stage}/downsample"
                target = f"patch_merging_{stage + 1}"
                self.copy(assignment, f"{source}/norm/gamma", f"{target}/layer_norm/gamma")
                self.copy(assignment, f"{source}/norm/beta", f"{target}/layer_norm/beta")
                self.copy(assignment, f"{source}/reduction/kernel", f"{target}/reduction/kernel")
        self.copy_layer(assignment, "norm", "layer_norm", ("gamma", "beta"))

    def _attention(self, assignment, source, target, num_heads):
        """keras-hub's fused `attention_qkv` `Dense` `(C, 3C)` (query, key, value columns, each
        head-major) and `attention_projection` -> our attention's `EinsumDense`s."""
        kernel = self.tensors.take(f"{source}/attention_qkv/kernel")  # (C, 3C)
        bias = self.tensors.take(f"{source}/attention_qkv/bias")  # (3C,)
        channels = kernel.shape[0]
        for name, kernel_part, bias_part in zip(
            ("query", "key", "value"), np.split(kernel, 3, axis=1), np.split(bias, 3)
        ):
            assignment.set(
                f"{target}/{name}_dense/kernel",
                kernel_part.reshape(channels, num_heads, -1),
                f"{source}/attention_qkv/kernel",
            )
            assignment.set(
                f"{target}/{name}_dense/bias",
                bias_part.reshape(num_heads, -1),
                f"{source}/attention_qkv/bias",
            )
        kernel = self.tensors.take(f"{source}/attention_projection/kernel")  # (C, C)
        assignment.set(
            f"{target}/output_dense/kernel",
            kernel.reshape(num_heads, -1, kernel.shape[1]),
            f"{source}/attention_projection/kernel",
        )
        self.copy(assignment, f"{source}/attention_projection/bias", f"{target}/output_dense/bias")
