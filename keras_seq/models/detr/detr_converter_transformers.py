"""Hugging Face transformers DETR checkpoints (`model_type` "detr") -> `DETRBackbone` /
`DETRObjectDetector`.

The published checkpoints (facebook/detr-resnet-50 and -101) hold a ResNet in torchvision's
layout (stride on the 3 x 3 convolution, no convolution biases, frozen batch norms with
epsilon 1e-5) under timm's key names (`use_timm_backbone=True`); Hugging Face's own ResNet
(`use_timm_backbone=False`) is the same network under other names. Both load into
keras-hub's `ResNetBackbone`, which is exactly that layout, as the image encoder.
Checkpoint names appear only in this module.
"""

import re

import keras_hub

from keras_seq.models.checkpoints import image_preprocessing
from keras_seq.models.checkpoints.converter import Converter
from keras_seq.models.checkpoints.converter import transformers_label_names

_IMAGE_ENCODER = "model.backbone.conv_encoder.model"


class DETRTransformersConverter(Converter):
    """`DetrForObjectDetection` / `DetrModel` -> keras_seq's DETR family."""

    source = "transformers"
    model_types = ("detr",)
    free_arguments = Converter.free_arguments + ("image_shape", "use_padding_mask")

    def __init__(self, directory, config, tensors):
        super().__init__(directory, config, tensors)
        self.prefix = "model." if "model.input_projection.weight" in tensors else ""
        self.encoder_prefix = f"{self.prefix}backbone.conv_encoder.model"

    # === The ResNet ===

    def _timm_layout(self):
        """Whether the ResNet's tensors have timm's names (the published checkpoints) rather
        than Hugging Face ResNet's: from `backbone_config` (transformers >= 5) or the older
        top-level `use_timm_backbone`."""
        backbone_config = self.config.get("backbone_config") or {}
        if backbone_config.get("model_type") == "timm_backbone":
            return True
        if backbone_config.get("model_type") == "resnet":
            return False
        return bool(self.config.get("use_timm_backbone", True))

    def _resnet_blocks(self):
        """The number of blocks per stage, from the tensors (the checkpoint is the truth)."""
        prefix = re.escape(self.encoder_prefix)
        if self._timm_layout():
            pattern, first_stage = re.compile(rf"^{prefix}\.layer(\d)\.(\d+)\.conv1\."), 1
        else:
            pattern = re.compile(
                rf"^{prefix}\.encoder\.stages\.(\d)\.layers\.(\d+)\.layer\.0\.convolution\."
            )
            first_stage = 0
        blocks = {}
        for name in self.tensors.keys():
            match = pattern.match(name)
            if match:
                stage = int(match.group(1)) - first_stage
                blocks[stage] = max(blocks.get(stage, 0), int(match.group(2)) + 1)
        if sorted(blocks) != [0, 1, 2, 3]:
            raise ValueError(
                f"The DETR checkpoint in {self.directory} has no four-stage bottleneck ResNet "
                f"under {self.encoder_prefix!r}; keras_seq reads ResNet image encoders only."
            )
        return [blocks[stage] for stage in range(4)]

    def _image_encoder(self):
        """keras-hub's `ResNetBackbone` shaped as the checkpoint's ResNet (depths and widths
        from its tensors; a layout other than a bottleneck ResNet with one 7 x 7 stem
        convolution fails by tensor name)."""
        if self.config.get("dilation"):
            raise ValueError(
                f"The DETR checkpoint in {self.directory} uses a dilated last stage "
                "(dilation=True, the DC5 models), which keras-hub's ResNetBackbone lacks."
            )
        source = self.encoder_prefix
        if self._timm_layout():
            stem = f"{source}.conv1.weight"
            first_convs = [f"{source}.layer{stage}.0.conv1.weight" for stage in range(1, 5)]
        else:
            resnet = self.config.get("backbone_config") or {}
            if resnet.get("downsample_in_bottleneck", False):
                raise ValueError(
                    f"The DETR checkpoint in {self.directory} has a ResNet with the stride on "
                    "its first 1 x 1 convolution (downsample_in_bottleneck=True); keras-hub's "
                    "ResNetBackbone strides the 3 x 3 convolution."
                )
            stem = f"{source}.embedder.embedder.convolution.weight"
            first_convs = [
                f"{source}.encoder.stages.{stage}.layers.0.layer.0.convolution.weight"
                for stage in range(4)
            ]
        for name in [stem] + first_convs:
            if name not in self.tensors:
                raise ValueError(
                    f"The DETR checkpoint in {self.directory} has no tensor {name!r}: its "
                    "image encoder is not a bottleneck ResNet with a single 7 x 7 stem "
                    "convolution, the one layout keras_seq reads."
                )
        return keras_hub.models.ResNetBackbone(
            input_conv_filters=[self.tensors.shape(stem)[0]],
            input_conv_kernel_sizes=[self.tensors.shape(stem)[-1]],
            stackwise_num_filters=[self.tensors.shape(name)[0] for name in first_convs],
            stackwise_num_blocks=self._resnet_blocks(),
            stackwise_num_strides=[1, 2, 2, 2],
            block_type="bottleneck_block",
            use_pre_activation=False,
            image_shape=(None, None, 3),
            name="resnet_backbone",
        )

    def _load_resnet(self, assignment):
        timm_names = self._timm_layout()
        source = self.encoder_prefix
        if timm_names:
            self.conv(assignment, f"{source}.conv1", "conv1_conv", use_bias=False)
            self.batch_norm(assignment, f"{source}.bn1", "conv1_bn")
        else:
            stem = f"{source}.embedder.embedder"
            self.conv(assignment, f"{stem}.convolution", "conv1_conv", use_bias=False)
            self.batch_norm(assignment, f"{stem}.normalization", "conv1_bn")
        for stage, num_blocks in enumerate(self._resnet_blocks()):
            for block in range(num_blocks):
                target = f"stack{stage}_block{block}"
                if timm_names:
                    prefix = f"{source}.layer{stage + 1}.{block}"
                    convs = [(f"{prefix}.conv{i}", f"{prefix}.bn{i}") for i in (1, 2, 3)]
                    shortcut = (f"{prefix}.downsample.0", f"{prefix}.downsample.1")
                else:
                    prefix = f"{source}.encoder.stages.{stage}.layers.{block}"
                    convs = [
                        (f"{prefix}.layer.{i}.convolution", f"{prefix}.layer.{i}.normalization")
                        for i in (0, 1, 2)
                    ]
                    shortcut = (
                        f"{prefix}.shortcut.convolution",
                        f"{prefix}.shortcut.normalization",
                    )
                for index, (conv, norm) in enumerate(convs, start=1):
                    self.conv(assignment, conv, f"{target}_{index}_conv", use_bias=False)
                    self.batch_norm(assignment, norm, f"{target}_{index}_bn")
                if f"{shortcut[0]}.weight" in self.tensors:
                    self.conv(assignment, shortcut[0], f"{target}_0_conv", use_bias=False)
                    self.batch_norm(assignment, shortcut[1], f"{target}_0_bn")

    # === The transformer ===

    def backbone_config(self):
        config = self.config
        self.require("position_embedding_type", "sine", "2-D sine positions")
        self.require("activation_function", "relu", "ReLU feed-forward networks")
        self.require("num_channels", 3, "RGB images")
        for a, b in (
            ("encoder_attention_heads", "decoder_attention_heads"),
            ("encoder_ffn_dim", "decoder_ffn_dim"),
        ):
            if config.get(a) != config.get(b):
                raise ValueError(
                    f"The DETR checkpoint in {self.directory} has {a}={config.get(a)} and "
                    f"{b}={config.get(b)}; keras_seq's DETR uses one value for both."
                )
        return {
            "image_encoder": self._image_encoder(),
            "image_shape": (None, None, 3),
            "hidden_dim": config["d_model"],
            "num_queries": config["num_queries"],
            "num_encoder_layers": config["encoder_layers"],
            "num_decoder_layers": config["decoder_layers"],
            "num_heads": config["encoder_attention_heads"],
            "intermediate_dim": config["encoder_ffn_dim"],
            "dropout": config.get("dropout", 0.1),
            "activation": "relu",
            "layer_norm_epsilon": 1e-5,
        }

    def _attention(self, assignment, source, target, num_heads):
        self.attention_projections(
            assignment,
            [f"{source}.{name}_proj" for name in ("q", "k", "v", "out")],
            target,
            num_heads,
        )

    def load_backbone(self, assignment):
        prefix, num_heads = self.prefix, self.config["encoder_attention_heads"]
        self._load_resnet(assignment)
        self.conv(assignment, f"{prefix}input_projection", "input_projection")
        table = f"{prefix}query_position_embeddings.weight"
        assignment.set("object_queries/embeddings", self.tensors.take(table), table)
        for index in range(self.config["encoder_layers"]):
            source, target = f"{prefix}encoder.layers.{index}", f"encoder_layer_{index}"
            self._attention(
                assignment, f"{source}.self_attn", f"{target}/self_attention", num_heads
            )
            self.layer_norm(
                assignment, f"{source}.self_attn_layer_norm", f"{target}/self_attention_layer_norm"
            )
            self.dense(assignment, f"{source}.fc1", f"{target}/feedforward/intermediate_dense")
            self.dense(assignment, f"{source}.fc2", f"{target}/feedforward/output_dense")
            self.layer_norm(
                assignment, f"{source}.final_layer_norm", f"{target}/feedforward_layer_norm"
            )
        for index in range(self.config["decoder_layers"]):
            source, target = f"{prefix}decoder.layers.{index}", f"decoder_layer_{index}"
            self._attention(
                assignment, f"{source}.self_attn", f"{target}/self_attention", num_heads
            )
            self.layer_norm(
                assignment, f"{source}.self_attn_layer_norm", f"{target}/self_attention_layer_norm"
            )
            self._attention(
                assignment, f"{source}.encoder_attn", f"{target}/cross_attention", num_heads
            )
            self.layer_norm(
                assignment,
                f"{source}.encoder_attn_layer_norm",
                f"{target}/cross_attention_layer_norm",
            )
            self.dense(assignment, f"{source}.fc1", f"{target}/feedforward/intermediate_dense")
            self.dense(assignment, f"{source}.fc2", f"{target}/feedforward/output_dense")
            self.layer_norm(
                assignment, f"{source}.final_layer_norm", f"{target}/feedforward_layer_norm"
            )
        self.layer_norm(assignment, f"{prefix}decoder.layernorm", "decoder_layer_norm")

    # === The heads ===

    _CLASS_HEAD = ("class_labels_classifier.weight", "class_labels_classifier.bias")

    def task_tensors(self):
        return [
            name
            for name in self.tensors.keys()
            if name.startswith(("class_labels_classifier.", "bbox_predictor."))
        ]

    def task_config(self):
        if "class_labels_classifier.weight" not in self.tensors:
            return {}
        return {"num_classes": self.tensors.shape("class_labels_classifier.weight")[0] - 1}

    def load_task(self, assignment, new_head):
        for index in range(3):
            self.dense(assignment, f"bbox_predictor.layers.{index}", f"box_head_{index}")
        if new_head:
            self.replace_head(assignment, list(self._CLASS_HEAD), "class_head/")
        else:
            self.dense(assignment, "class_labels_classifier", "class_head")

    def label_names(self):
        num_classes = self.tensors.shape("class_labels_classifier.weight")[0] - 1
        return transformers_label_names(self.config, num_classes)

    def preprocessor(self):
        return image_preprocessing.from_transformers(self.directory)
