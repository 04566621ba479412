"""timm ViT checkpoints (hub layout: `config.json` with `architecture` "vit_*") -> `ViTBackbone` /
`ViTImageClassifier`.

The architecture comes from the name (`vit_{tiny,small,base,large,huge}_patch{P}_{S}`) with
timm's `model_args` over it (tiny test models, variants), checked against the tensors. Read:
class-token and average-pooled models (with `fc_norm`, or without, or without a class
token). Not representable, and refused by name: register tokens, layer scale, pre-norm
(CLIP), positions without the class token, attention pooling. Checkpoint names appear only
in this module.
"""

import re

from keras_seq.models.checkpoints import image_preprocessing
from keras_seq.models.checkpoints.converter import Converter
from keras_seq.models.checkpoints.converter import timm_label_names

_NAME = re.compile(r"^vit_(tiny|small|base|large|huge)_patch(\d+)_(\d+)$")
# timm's sizes: (embed_dim, depth, num_heads); mlp_ratio 4 throughout.
_SIZES = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
    "huge": (1280, 32, 16),
}
# model_args with the only value keras_seq represents, and what they mean.
_FIXED_ARGUMENTS = {
    "qkv_bias": (True, "biases on the query, key and value projections"),
    "reg_tokens": (0, "no register tokens"),
    "no_embed_class": (False, "a position for the class token"),
    "pre_norm": (False, "no norm before the blocks"),
    "init_values": (None, "no layer scale"),
    "final_norm": (True, "a final norm"),
    "in_chans": (3, "RGB images"),
    "class_token_pos": (None, "the class token first"),
}
_EPSILON = 1e-6  # timm's ViT layer norms.


class ViTTimmConverter(Converter):
    """timm `VisionTransformer` (hub layout) -> keras_seq's ViT family."""

    source = "timm"
    model_types = ("vit_",)
    free_arguments = Converter.free_arguments + ("image_shape", "position_grid_shape")

    def _arguments(self):
        """timm's constructor arguments: the architecture's, then `model_args`."""
        architecture = str(self.config["architecture"]).split(".")[0]
        match = _NAME.match(architecture)
        model_args = dict(self.config.get("model_args") or {})
        if match is None and not {"embed_dim", "depth", "num_heads"} <= set(model_args):
            raise ValueError(
                f"The timm architecture {architecture!r} in {self.directory} is not one "
                "keras_seq reads: vit_{tiny,small,base,large,huge}_patch{P}_{S} (or any name "
                "with embed_dim, depth and num_heads in `model_args`)."
            )
        arguments = {"mlp_ratio": 4.0, "global_pool": "token", "class_token": True}
        if match is not None:
            size, patch, image = match.groups()
            embed_dim, depth, num_heads = _SIZES[size]
            arguments.update(
                embed_dim=embed_dim,
                depth=depth,
                num_heads=num_heads,
                patch_size=int(patch),
                img_size=int(image),
            )
        arguments.update(model_args)
        for key, (value, meaning) in _FIXED_ARGUMENTS.items():
            if arguments.get(key, value) != value:
                raise ValueError(
                    f"The timm checkpoint in {self.directory} sets {key}={arguments[key]!r}; "
                    f"keras_seq's ViT supports only {key}={value!r} ({meaning})."
                )
        if arguments["global_pool"] not in ("token", "avg"):
            raise ValueError(
                f"The timm checkpoint in {self.directory} pools with "
                f"global_pool={arguments['global_pool']!r}; keras_seq's ViTImageClassifier "
                "pools with the class token ('token') or the mean ('avg')."
            )
        fc_norm = arguments.get("fc_norm")
        arguments["fc_norm"] = arguments["global_pool"] == "avg" if fc_norm is None else fc_norm
        return arguments

    def backbone_config(self):
        arguments = self._arguments()
        image_size = arguments.get("img_size", 224)
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        return {
            "image_shape": (height, width, 3),
            "patch_size": arguments["patch_size"],
            "num_layers": arguments["depth"],
            "hidden_dim": arguments["embed_dim"],
            "num_heads": arguments["num_heads"],
            "intermediate_dim": int(arguments["embed_dim"] * arguments["mlp_ratio"]),
            "layer_norm_epsilon": _EPSILON,
            "use_class_token": bool(arguments["class_token"]),
            "use_final_layer_norm": not arguments["fc_norm"],
        }

    def load_backbone(self, assignment):
        arguments = self._arguments()
        self.conv(assignment, "patch_embed.proj", "patch_embedding/projection")
        if arguments["class_token"]:
            assignment.set(
                "position_embedding/class_token", self.tensors.take("cls_token"), "cls_token"
            )
        table = self.tensors.take("pos_embed")[0]
        path = "position_embedding/position_embeddings"
        if table.shape != assignment.shape(path):  # Another image size: resample once.
            table = assignment.model.position_embedding._resample_table(table)
        assignment.set(path, table, "pos_embed")
        for index in range(arguments["depth"]):
            source, target = f"blocks.{index}", f"encoder_layer_{index}"
            self.layer_norm(assignment, f"{source}.norm1", f"{target}/self_attention_layer_norm")
            self.fused_attention_projections(
                assignment, f"{source}.attn", f"{target}/self_attention", arguments["num_heads"]
            )
            self.layer_norm(assignment, f"{source}.norm2", f"{target}/feedforward_layer_norm")
            self.dense(assignment, f"{source}.mlp.fc1", f"{target}/feedforward/intermediate_dense")
            self.dense(assignment, f"{source}.mlp.fc2", f"{target}/feedforward/output_dense")
        if not arguments["fc_norm"]:
            self.layer_norm(assignment, "norm", "layer_norm")

    def task_tensors(self):
        names = ("fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias")
        return [name for name in names if name in self.tensors]

    def task_config(self):
        arguments = self._arguments()
        config = {
            "pooling": "token" if arguments["global_pool"] == "token" else "mean",
            "pooled_layer_norm": bool(arguments["fc_norm"]),
        }
        if "head.weight" in self.tensors:
            config["num_classes"] = self.tensors.shape("head.weight")[0]
        return config

    def load_task(self, assignment, new_head):
        if self._arguments()["fc_norm"]:
            self.layer_norm(assignment, "fc_norm", "pooled_norm")
        if new_head:
            self.replace_head(
                assignment, [n for n in ("head.weight", "head.bias") if n in self.tensors], "head/"
            )
        else:
            self.dense(assignment, "head", "head")

    def label_names(self):
        return timm_label_names(self.config)

    def preprocessor(self):
        return image_preprocessing.from_timm(
            self.config.get("pretrained_cfg"), f"{self.directory}/config.json"
        )
