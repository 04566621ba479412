"""Hugging Face transformers ViT checkpoints (`model_type` "vit") -> `ViTBackbone` /
`ViTImageClassifier`.

Reads `ViTModel` (tensors at the top level, with or without its pooler) and
`ViTForImageClassification` (under `vit.`, plus `classifier`). Checkpoint names appear only
in this module.
"""

from keras_seq.models.checkpoints import image_preprocessing
from keras_seq.models.checkpoints.converter import Converter
from keras_seq.models.checkpoints.converter import transformers_label_names


class ViTTransformersConverter(Converter):
    """`ViTModel` / `ViTForImageClassification` -> keras_seq's ViT family."""

    source = "transformers"
    model_types = ("vit",)
    free_arguments = Converter.free_arguments + ("image_shape", "position_grid_shape")

    def __init__(self, directory, config, tensors):
        super().__init__(directory, config, tensors)
        self.prefix = "vit." if "vit.embeddings.cls_token" in tensors else ""

    def backbone_config(self):
        config = self.config
        self.require("model_type", "vit", "a ViT")
        self.require("hidden_act", "gelu", "GELU feed-forward networks")
        self.require("qkv_bias", True, "biases on the query, key and value projections")
        return {
            "image_shape": self.transformers_image_shape(),
            "patch_size": config.get("patch_size", 16),
            "num_layers": config["num_hidden_layers"],
            "hidden_dim": config["hidden_size"],
            "num_heads": config["num_attention_heads"],
            "intermediate_dim": config["intermediate_size"],
            "dropout": config.get("hidden_dropout_prob", 0.0),
            "attention_dropout": config.get("attention_probs_dropout_prob", 0.0),
            "layer_norm_epsilon": config.get("layer_norm_eps", 1e-12),
        }

    def load_backbone(self, assignment):
        prefix, num_heads = self.prefix, self.config["num_attention_heads"]
        embeddings = f"{prefix}embeddings"
        self.conv(
            assignment, f"{embeddings}.patch_embeddings.projection", "patch_embedding/projection"
        )
        assignment.set(
            "position_embedding/class_token",
            self.tensors.take(f"{embeddings}.cls_token"),
            f"{embeddings}.cls_token",
        )
        table = self.tensors.take(f"{embeddings}.position_embeddings")[0]  # (1 + N, C)
        path = "position_embedding/position_embeddings"
        if table.shape != assignment.shape(path):  # Another image size: resample once.
            table = assignment.model.position_embedding._resample_table(table)
        assignment.set(path, table, f"{embeddings}.position_embeddings")
        if f"{embeddings}.mask_token" in self.tensors:
            self.tensors.skip(
                [f"{embeddings}.mask_token"],
                "the masked-image-modeling token, used only in pre-training",
            )
        for index in range(self.config["num_hidden_layers"]):
            source, target = f"{prefix}encoder.layer.{index}", f"encoder_layer_{index}"
            attention = f"{source}.attention"
            self.layer_norm(
                assignment, f"{source}.layernorm_before", f"{target}/self_attention_layer_norm"
            )
            self.attention_projections(
                assignment,
                [f"{attention}.attention.{name}" for name in ("query", "key", "value")]
                + [f"{attention}.output.dense"],
                f"{target}/self_attention",
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
            self.dense(assignment, f"{source}.output.dense", f"{target}/feedforward/output_dense")
        self.layer_norm(assignment, f"{prefix}layernorm", "layer_norm")

    def skipped_tensors(self):
        pooler = [name for name in self.tensors.keys() if name.startswith(f"{self.prefix}pooler.")]
        reason = (
            "ViTModel's pooler (dense + tanh on the class token), which "
            "ViTForImageClassification does not use either"
        )
        return {name: reason for name in pooler}

    def task_tensors(self):
        return [name for name in ("classifier.weight", "classifier.bias") if name in self.tensors]

    def task_config(self):
        config = {"pooling": "token"}
        if "classifier.weight" in self.tensors:
            config["num_classes"] = self.tensors.shape("classifier.weight")[0]
        return config

    def load_task(self, assignment, new_head):
        if new_head:
            self.replace_head(assignment, self.task_tensors(), "head/")
        else:
            self.dense(assignment, "classifier", "head")

    def label_names(self):
        return transformers_label_names(self.config, self.tensors.shape("classifier.weight")[0])

    def preprocessor(self):
        return image_preprocessing.from_transformers(self.directory)
