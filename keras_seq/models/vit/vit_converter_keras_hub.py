"""keras-hub ViT presets (`keras_hub>ViTBackbone`, alone or under a
`keras_hub>ViTImageClassifier`) -> `ViTBackbone` / `ViTImageClassifier`.

keras-hub loads the preset (a directory, a keras-hub preset name or a `kaggle://` handle);
this module maps its config and its variables, by path, to ours. Checkpoint names appear
only in this module.
"""

from keras_seq.models.checkpoints.keras_hub_converter import KerasHubConverter
from keras_seq.models.vit.vit_presets import VIT_PRESETS

_EMBEDDING = "vit_patching_and_embedding"
_ENCODER = "vit_encoder"


class ViTKerasHubConverter(KerasHubConverter):
    """keras-hub's `ViTBackbone` / `ViTImageClassifier` -> keras_seq's ViT family.

    Reads the backbone (square patches, with or without a class token, any image size and
    channels, its dropout rates and layer norm epsilon) and the classifier's linear head
    (`pooling="token"`, or `"gap"` on a backbone without a class token: our `"mean"`),
    with its preprocessor's image converter as our `ImagePreprocessor`; keras-hub has no
    class names (`label_names` is `None`). Refused by name, as our ViT cannot represent
    them: `use_mha_bias=False`, `use_mlp_bias=False`, `use_patch_bias=False`, non-square
    patches, channels-first images, `"gap"` pooling over the class token too, and a head
    with an `intermediate_dim` (tanh pre-logits) layer or an activation other than softmax.
    """

    model_types = ("keras_hub>ViTBackbone",)
    task_types = ("keras_hub>ViTImageClassifier",)
    family = "ViTBackbone"
    builtin_presets = VIT_PRESETS
    free_arguments = KerasHubConverter.free_arguments + ("image_shape", "position_grid_shape")

    @classmethod
    def keras_hub_classes(cls):
        import keras_hub

        return keras_hub.models.ViTBackbone, keras_hub.models.ViTImageClassifier

    def backbone_config(self):
        config = self.config
        self.require("use_mha_bias", True, "biases on the attention projections")
        self.require("use_mlp_bias", True, "biases on the feed-forward layers")
        self.require("use_patch_bias", True, "a bias on the patch embedding")
        self.require_channels_last()
        patch_size = config["patch_size"]
        if isinstance(patch_size, (list, tuple)):
            if len(set(patch_size)) != 1:
                raise ValueError(
                    f"The checkpoint in {self.directory} sets `patch_size`={patch_size!r} in "
                    "its config, which keras_seq's model cannot represent (square patches; "
                    "it supports one size for both sides)."
                )
            patch_size = patch_size[0]
        return {
            "image_shape": tuple(config["image_shape"]),
            "patch_size": int(patch_size),
            "num_layers": config["num_layers"],
            "hidden_dim": config["hidden_dim"],
            "num_heads": config["num_heads"],
            "intermediate_dim": config["mlp_dim"],
            "dropout": config.get("dropout_rate", 0.0),
            "attention_dropout": config.get("attention_dropout", 0.0),
            "layer_norm_epsilon": config.get("layer_norm_epsilon", 1e-6),
            "use_class_token": bool(config.get("use_class_token", True)),
        }

    def load_backbone(self, assignment):
        config = self.config
        self.copy_layer(
            assignment,
            f"{_EMBEDDING}/patch_embedding",
            "patch_embedding/projection",
            ("kernel", "bias"),
        )
        if config.get("use_class_token", True):
            self.copy(assignment, f"{_EMBEDDING}/class_token", "position_embedding/class_token")
        source = f"{_EMBEDDING}/position_embedding/embeddings"
        table = self.tensors.take(source)  # (prefix + h * w, C)
        path = "position_embedding/position_embeddings"
        if table.shape != assignment.shape(path):  # Another image size: resample once.
            table = assignment.model.position_embedding._resample_table(table)
        assignment.set(path, table, source)
        for index in range(config["num_layers"]):
            source, target = f"{_ENCODER}/transformer_block_{index + 1}", f"encoder_layer_{index}"
            self.copy_layer(
                assignment,
                f"{source}/ln_1",
                f"{target}/self_attention_layer_norm",
                ("gamma", "beta"),
            )
            self.copy_attention(assignment, f"{source}/mha", f"{target}/self_attention")
            self.copy_layer(
                assignment, f"{source}/ln_2", f"{target}/feedforward_layer_norm", ("gamma", "beta")
            )
            self.copy_layer(
                assignment,
                f"{source}/mlp/dense_1",
                f"{target}/feedforward/intermediate_dense",
                ("kernel", "bias"),
            )
            self.copy_layer(
                assignment,
                f"{source}/mlp/dense_2",
                f"{target}/feedforward/output_dense",
                ("kernel", "bias"),
            )
        self.copy_layer(assignment, f"{_ENCODER}/ln", "layer_norm", ("gamma", "beta"))

    def head_config(self, config):
        pooling = config.get("pooling", "token")
        if pooling == "token" and self.config.get("use_class_token", True):
            return {"pooling": "token"}
        if pooling == "gap" and not self.config.get("use_class_token", True):
            return {"pooling": "mean"}  # The mean of the patch tokens: all tokens here.
        raise ValueError(
            f"The keras-hub classifier in {self.directory} pools with pooling={pooling!r} "
            f"(use_class_token={self.config.get('use_class_token', True)}); keras_seq's "
            "ViTImageClassifier pools with the class token ('token') or the mean of the patch "
            "tokens ('gap' on a backbone without a class token)."
        )

    def check_head(self, config):
        if config.get("intermediate_dim") is not None:
            raise ValueError(
                f"The keras-hub classifier in {self.directory} sets "
                f"intermediate_dim={config['intermediate_dim']!r} (a tanh pre-logits layer "
                "before its head), which keras_seq's ViTImageClassifier cannot represent "
                "(a linear head on the pooled tokens; intermediate_dim None)."
            )
