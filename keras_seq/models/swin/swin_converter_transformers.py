"""Hugging Face transformers Swin checkpoints (`model_type` "swin") -> `SwinBackbone` /
`SwinImageClassifier`.

Reads `SwinModel` (tensors at the top level) and `SwinForImageClassification` (under
`swin.`, plus `classifier`). Hugging Face keeps the patch merging at the end of a stage
(`layers.{s}.downsample`), where our `patch_merging_{s + 1}` sits; its concatenation order of
the 2 x 2 neighbours is ours. Checkpoint names appear only in this module.
"""

from keras_seq.models.checkpoints import image_preprocessing
from keras_seq.models.checkpoints.converter import Converter
from keras_seq.models.checkpoints.converter import transformers_label_names


class SwinTransformersConverter(Converter):
    """`SwinModel` / `SwinForImageClassification` -> keras_seq's Swin family."""

    source = "transformers"
    model_types = ("swin",)
    free_arguments = Converter.free_arguments + ("image_shape", "mask_padding")

    def __init__(self, directory, config, tensors):
        super().__init__(directory, config, tensors)
        self.prefix = "swin." if "swin.embeddings.norm.weight" in tensors else ""

    def backbone_config(self):
        config = self.config
        self.require("hidden_act", "gelu", "GELU feed-forward networks")
        self.require("qkv_bias", True, "biases on the query, key and value projections")
        self.require("use_absolute_embeddings", False, "relative position biases only")
        return {
            "image_shape": self.transformers_image_shape(),
            "patch_size": config.get("patch_size", 4),
            "hidden_dim": config["embed_dim"],
            "num_layers": tuple(config["depths"]),
            "num_heads": tuple(config["num_heads"]),
            "window_size": config.get("window_size", 7),
            "mlp_ratio": float(config.get("mlp_ratio", 4.0)),
            "dropout": config.get("hidden_dropout_prob", 0.0),
            "attention_dropout": config.get("attention_probs_dropout_prob", 0.0),
            "drop_path_rate": config.get("drop_path_rate", 0.1),
            "layer_norm_epsilon": config.get("layer_norm_eps", 1e-5),
            "mask_padding": False,  # The original lets padded tokens take part.
        }

    def load_backbone(self, assignment):
        prefix = self.prefix
        self.conv(
            assignment,
            f"{prefix}embeddings.patch_embeddings.projection",
            "patch_embedding/projection",
        )
        self.layer_norm(assignment, f"{prefix}embeddings.norm", "patch_layer_norm")
        if f"{prefix}embeddings.mask_token" in self.tensors:
            self.tensors.skip(
                [f"{prefix}embeddings.mask_token"],
                "the masked-image-modeling token, used only in pre-training",
            )
        depths, heads = self.config["depths"], self.config["num_heads"]
        for stage, (depth, num_heads) in enumerate(zip(depths, heads)):
            for index in range(depth):
                source = f"{prefix}encoder.layers.{stage}.blocks.{index}"
                target = f"stage_{stage + 1}_block_{index}"
                attention = f"{target}/window_attention"
                self.layer_norm(
                    assignment, f"{source}.layernorm_before", f"{target}/attention_layer_norm"
                )
                table = f"{source}.attention.self.relative_position_bias_table"
                assignment.set(
                    f"{attention}/relative_position_bias_table", self.tensors.take(table), table
                )
                index_table = f"{source}.attention.self.relative_position_index"
                if index_table in self.tensors:
                    self.tensors.skip(
                        [index_table], "a constant index table that keras_seq computes itself"
                    )
                self.attention_projections(
                    assignment,
                    [f"{source}.attention.self.{name}" for name in ("query", "key", "value")]
                    + [f"{source}.attention.output.dense"],
                    f"{attention}/self_attention",
                    num_heads,
                )
                self.layer_norm(
                    assignment, f"{source}.layernorm_after", f"{target}/feedforward_layer_norm"
                )
                self.dense(
                    assignment,
                    f"{source}.intermediate.dense",
                    f"{target}/feedforward/intermediate_dense",
                )
                self.dense(
                    assignment, f"{source}.output.dense", f"{target}/feedforward/output_dense"
                )
            if stage < len(depths) - 1:
                source = f"{prefix}encoder.layers.{stage}.downsample"
                target = f"patch_merging_{stage + 1}"
                self.layer_norm(assignment, f"{source}.norm", f"{target}/layer_norm")
                self.dense(assignment, f"{source}.reduction", f"{target}/reduction", False)
        self.layer_norm(assignment, f"{prefix}layernorm", "layer_norm")

    def task_tensors(self):
        return [name for name in ("classifier.weight", "classifier.bias") if name in self.tensors]

    def task_config(self):
        if "classifier.weight" not in self.tensors:
            return {}
        return {"num_classes": self.tensors.shape("classifier.weight")[0]}

    def load_task(self, assignment, new_head):
        if new_head:
            self.replace_head(assignment, self.task_tensors(), "head/")
        else:
            self.dense(assignment, "classifier", "head")

    def label_names(self):
        return transformers_label_names(self.config, self.tensors.shape("classifier.weight")[0])

    def preprocessor(self):
        return image_preprocessing.from_transformers(self.directory)
