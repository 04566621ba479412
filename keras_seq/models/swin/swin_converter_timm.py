"""timm Swin checkpoints (hub layout: `config.json` with `architecture` "swin_*") ->
`SwinBackbone` / `SwinImageClassifier`.

The architecture comes from the name (`swin_{tiny,small,base,large}_patch4_window{W}_{S}`)
with timm's `model_args` over it. Recent timm (>= 0.9) keeps the patch merging at the start
of the next stage (`layers.{s + 1}.downsample`), the original checkpoints at the end of the
stage (`layers.{s}.downsample`): both are read. timm's merging concatenates the 2 x 2
neighbours in our order. Checkpoint names appear only in this module.
"""

import re

from keras_seq.models.checkpoints import image_preprocessing
from keras_seq.models.checkpoints.converter import Converter
from keras_seq.models.checkpoints.converter import timm_label_names

_NAME = re.compile(r"^swin_(tiny|small|base|large)_patch(\d+)_window(\d+)_(\d+)$")
# timm's sizes: (embed_dim, depths, num_heads).
_SIZES = {
    "tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "base": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
    "large": (192, (2, 2, 18, 2), (6, 12, 24, 48)),
}
_EPSILON = 1e-5  # timm's Swin layer norms.


class SwinTimmConverter(Converter):
    """timm `SwinTransformer` (hub layout) -> keras_seq's Swin family."""

    source = "timm"
    model_types = ("swin_",)
    free_arguments = Converter.free_arguments + ("image_shape", "mask_padding")

    @classmethod
    def matches(cls, source, config):
        architecture = str(config.get("architecture", ""))
        return (
            source == cls.source
            and architecture.startswith("swin_")
            and not (architecture.startswith("swinv2"))
        )

    def _arguments(self):
        architecture = str(self.config["architecture"]).split(".")[0]
        match = _NAME.match(architecture)
        model_args = dict(self.config.get("model_args") or {})
        if match is None:
            raise ValueError(
                f"The timm architecture {architecture!r} in {self.directory} is not one "
                "keras_seq reads: swin_{tiny,small,base,large}_patch{P}_window{W}_{S}."
            )
        size, patch, window, image = match.groups()
        embed_dim, depths, num_heads = _SIZES[size]
        arguments = {
            "embed_dim": embed_dim,
            "depths": depths,
            "num_heads": num_heads,
            "patch_size": int(patch),
            "window_size": int(window),
            "img_size": int(image),
            "mlp_ratio": 4.0,
            "global_pool": "avg",
            **model_args,
        }
        for key, value, meaning in (
            ("qkv_bias", True, "biases on the query, key and value projections"),
            ("in_chans", 3, "RGB images"),
            ("global_pool", "avg", "average pooling"),
            ("ape", False, "relative position biases only"),
        ):
            if arguments.get(key, value) != value:
                raise ValueError(
                    f"The timm checkpoint in {self.directory} sets {key}={arguments[key]!r}; "
                    f"keras_seq's Swin supports only {key}={value!r} ({meaning})."
                )
        return arguments

    def backbone_config(self):
        arguments = self._arguments()
        image_size = arguments["img_size"]
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        window = arguments["window_size"]
        if not isinstance(window, int):
            raise ValueError(
                f"The timm checkpoint in {self.directory} has a non-square window "
                f"(window_size={window!r}); keras_seq's Swin windows are square."
            )
        return {
            "image_shape": (height, width, 3),
            "patch_size": arguments["patch_size"],
            "hidden_dim": arguments["embed_dim"],
            "num_layers": tuple(arguments["depths"]),
            "num_heads": tuple(arguments["num_heads"]),
            "window_size": window,
            "mlp_ratio": float(arguments["mlp_ratio"]),
            "drop_path_rate": 0.1,
            "layer_norm_epsilon": _EPSILON,
            "mask_padding": False,  # The original lets padded tokens take part.
        }

    def load_backbone(self, assignment):
        arguments = self._arguments()
        merging_at_start = "layers.0.downsample.reduction.weight" not in self.tensors
        self.conv(assignment, "patch_embed.proj", "patch_embedding/projection")
        self.layer_norm(assignment, "patch_embed.norm", "patch_layer_norm")
        depths = arguments["depths"]
        for stage, (depth, num_heads) in enumerate(zip(depths, arguments["num_heads"])):
            for index in range(depth):
                source = f"layers.{stage}.blocks.{index}"
                target = f"stage_{stage + 1}_block_{index}"
                attention = f"{target}/window_attention"
                self.layer_norm(assignment, f"{source}.norm1", f"{target}/attention_layer_norm")
                table = f"{source}.attn.relative_position_bias_table"
                assignment.set(
                    f"{attention}/relative_position_bias_table", self.tensors.take(table), table
                )
                for buffer in ("relative_position_index", "attn_mask"):
                    name = (
                        f"{source}.attn.{buffer}"
                        if buffer != "attn_mask"
                        else (f"{source}.{buffer}")
                    )
                    if name in self.tensors:
                        self.tensors.skip([name], "a constant table that keras_seq computes itself")
                self.fused_attention_projections(
                    assignment, f"{source}.attn", f"{attention}/self_attention", num_heads
                )
                self.layer_norm(assignment, f"{source}.norm2", f"{target}/feedforward_layer_norm")
                self.dense(
                    assignment, f"{source}.mlp.fc1", f"{target}/feedforward/intermediate_dense"
                )
                self.dense(assignment, f"{source}.mlp.fc2", f"{target}/feedforward/output_dense")
            if stage < len(depths) - 1:
                source = f"layers.{stage + 1 if merging_at_start else stage}.downsample"
                target = f"patch_merging_{stage + 1}"
                self.layer_norm(assignment, f"{source}.norm", f"{target}/layer_norm")
                self.dense(assignment, f"{source}.reduction", f"{target}/reduction", False)
        self.layer_norm(assignment, "norm", "layer_norm")

    def task_tensors(self):
        return [name for name in ("head.fc.weight", "head.fc.bias") if name in self.tensors]

    def task_config(self):
        if "head.fc.weight" not in self.tensors:
            return {}
        return {"num_classes": self.tensors.shape("head.fc.weight")[0]}

    def load_task(self, assignment, new_head):
        if new_head:
            self.replace_head(assignment, self.task_tensors(), "head/")
        else:
            self.dense(assignment, "head.fc", "head")

    def label_names(self):
        return timm_label_names(self.config)

    def preprocessor(self):
        return image_preprocessing.from_timm(
            self.config.get("pretrained_cfg"), f"{self.directory}/config.json"
        )
