"""DETRObjectDetector: DETR's class and box heads on a `DETRBackbone`, its set loss and
post-processing.

Letter legend for shape comments: B batch, Q queries, L decoder layers, C classes (with "no
object"), D width.
"""

import keras
import numpy as np
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.detr.detr_backbone import DETRBackbone
from keras_seq.models.image_task import ImageTask
from keras_seq.ops.boxes import box_cxcywh_to_xyxy
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_positive_int


def _is_detr_backbone(model):
    try:
        outputs = model.output
    except (AttributeError, ValueError):  # a subclassed model, not a functional one
        return False
    hidden = outputs.get("decoder_hidden_states") if isinstance(outputs, dict) else None
    # (B, L, Q, D) with a static number of layers L
    return (
        isinstance(hidden, keras.KerasTensor)
        and len(hidden.shape) == 4
        and hidden.shape[1] is not None
    )


@keras_seq_export
class DETRObjectDetector(ImageTask):
    """DETR object detector: a class head and a box head on every decoder layer's output.

    From each of the backbone's normalized decoder states, a linear class head gives logits
    over `num_classes + 1` classes (the last is "no object") and a 3-layer MLP (ReLU, ReLU,
    sigmoid) gives normalized `(cx, cy, w, h)` boxes; both heads are shared by the decoder
    layers (Carion et al., 2020). The last layer's predictions are the outputs, the earlier
    layers' the auxiliary outputs of `DETRLoss`. Trains with `model.fit` on padded targets and
    `compile(loss=keras_seq.losses.DETRLoss())`: `compute_loss` gives that loss all outputs
    and targets at once. `postprocess` turns outputs into scored boxes in pixels. What keras_hub
    and Keras lack: a DETR at all (keras-hub #2043 is open), exact batched matching that
    compiles with XLA, padding masks for batches of differently sized images.

    Args:
        backbone: a `DETRBackbone`, or its config from `keras.saving.serialize_keras_object`;
            any functional model with the same inputs (images, or a dict with `"images"` and
            `"padding_mask"`) whose output is a dict with `"decoder_hidden_states"`
            `(batch_size, num_decoder_layers, num_queries, hidden_dim)` (a static number of
            layers) plugs in. Its weights are shared, not copied.
        num_classes: int. Object classes (without "no object").
        preprocessor: a `keras_seq.layers.ImagePreprocessor` (or its config) turning raw
            images into the backbone's inputs; set by `from_preset` from a checkpoint's
            preprocessing. Defaults to `None`.
        label_names: list of `num_classes` strings (a checkpoint's `id2label`). Defaults to
            `None`.
        **kwargs: base model arguments (`name`, `dtype`); `dtype` defaults to the backbone's
            dtype policy.

    Call arguments:
        inputs: the backbone's inputs: float `(batch_size, height, width, channels)` images
            or, with a padding mask, a dict `{"images": ..., "padding_mask": ...}`.

    Returns:
        A dict: `"logits"` `(batch_size, num_queries, num_classes + 1)`, `"boxes"`
        `(batch_size, num_queries, 4)` normalized `(cx, cy, w, h)` relative to each
        image's real (unpadded) size, and with more than one decoder layer `"aux_logits"` /
        `"aux_boxes"` with the earlier layers' predictions on axis 1.

    Example:
    ```python
    image_encoder = keras.Sequential(
        [keras.layers.Conv2D(16, 3, strides=4, activation="relu"),
         keras.layers.Conv2D(32, 3, strides=2, activation="relu")]
    )
    backbone = keras_seq.models.DETRBackbone(
        image_encoder=image_encoder, image_shape=(64, 64, 3), hidden_dim=32, num_queries=5,
        num_encoder_layers=1, num_decoder_layers=2, num_heads=2, intermediate_dim=64,
    )
    model = keras_seq.models.DETRObjectDetector(backbone, num_classes=3)
    outputs = model(np.zeros((2, 64, 64, 3), "float32"))
    assert outputs["logits"].shape == (2, 5, 4) and outputs["aux_boxes"].shape == (2, 1, 5, 4)
    detections = model.postprocess(outputs, image_sizes=[(64, 64), (48, 64)])
    assert detections["boxes"].shape == (2, 5, 4)  # (x_min, y_min, x_max, y_max) pixels
    ```

    References:
        - [Carion et al., 2020](https://arxiv.org/abs/2005.12872) (DETR)
    """

    backbone_cls = DETRBackbone

    def __init__(self, backbone, num_classes, preprocessor=None, label_names=None, **kwargs):
        backbone = self.resolve_backbone(
            backbone,
            _is_detr_backbone,
            'a DETRBackbone (or a functional model whose output dict has "decoder_hidden_states")',
        )
        validate_positive_int("num_classes", num_classes)
        # The head has (at least) one weight per class.
        check_model_size(type(self).__name__, {"num_classes": num_classes}, [(1, "num_classes")])
        kwargs.setdefault("dtype", backbone.dtype_policy)
        dtype = kwargs["dtype"]

        # === Layers ===
        self.class_head = keras.layers.Dense(num_classes + 1, dtype=dtype, name="class_head")
        hidden_dim = backbone.output["decoder_hidden_states"].shape[-1]
        self.box_head = [
            keras.layers.Dense(hidden_dim, activation="relu", dtype=dtype, name="box_head_0"),
            keras.layers.Dense(hidden_dim, activation="relu", dtype=dtype, name="box_head_1"),
            keras.layers.Dense(4, activation="sigmoid", dtype=dtype, name="box_head_2"),
        ]

        # === Functional model ===
        inputs = backbone.input
        hidden_states = backbone(inputs)["decoder_hidden_states"]  # (B, L, Q, D)
        all_logits, all_boxes = [], []
        for index in range(hidden_states.shape[1]):
            hidden = hidden_states[:, index]  # (B, Q, D)
            boxes = hidden
            for layer in self.box_head:
                boxes = layer(boxes)
            all_logits.append(self.class_head(hidden))  # (B, Q, C)
            all_boxes.append(boxes)  # (B, Q, 4)
        outputs = {"logits": all_logits[-1], "boxes": all_boxes[-1]}
        if len(all_logits) > 1:
            outputs["aux_logits"] = ops.stack(all_logits[:-1], axis=1)  # (B, L - 1, Q, C)
            outputs["aux_boxes"] = ops.stack(all_boxes[:-1], axis=1)  # (B, L - 1, Q, 4)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.num_classes = num_classes
        self._set_image_task(preprocessor, label_names, num_classes)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """A set loss (`keras.losses.Loss`) gets all outputs and targets at once.

        Keras pairs one loss with each output; DETR's loss needs the whole dict of
        predictions and of targets, so a single `Loss` given to `compile` is called on the
        two dicts directly, and the model's additional losses (`self.losses`: regularizers,
        `add_loss`) are added as Keras adds them. Lists or dicts of losses keep Keras' own
        behaviour.
        """
        if not isinstance(self.loss, keras.losses.Loss):
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        losses = [self.loss(y, y_pred, sample_weight)]
        # Each additional loss summed, as Keras' own `compute_loss` does.
        losses += [ops.sum(loss) for loss in self.losses]
        return ops.sum(ops.stack([ops.cast(loss, "float32") for loss in losses]))

    def _static_image_size(self):
        """`(height, width)` of the images input, `None` where dynamic."""
        images = self.input["images"] if isinstance(self.input, dict) else self.input
        return images.shape[1], images.shape[2]

    def postprocess(self, outputs, image_sizes=None):
        """Boxes in pixels, scores and labels from the model's outputs (DETR's PostProcess).

        Each query's label is its most probable real class and its score that class'
        probability (the softmax includes "no object", so background queries score low);
        boxes are converted to `(x_min, y_min, x_max, y_max)` and scaled by each image's
        real size. Pure `keras.ops`; the result feeds
        `keras_seq.metrics.mean_average_precision` directly.

        Args:
            outputs: the model's output dict (`"logits"` and `"boxes"` are used).
            image_sizes: optional `(batch_size, 2)` real `(height, width)` of each image,
                in pixels. Defaults to the static size of the images input; required when
                it has `None` sizes.

        Returns:
            dict `{"boxes": (batch_size, num_queries, 4), "scores": (batch_size,
            num_queries), "labels": int32 (batch_size, num_queries)}`.
        """
        if image_sizes is None:
            height, width = self._static_image_size()
            if height is None or width is None:
                raise ValueError(
                    "`image_sizes` is required when the model's images input has `None` "
                    f"sizes. Received: image_sizes=None, image size {(height, width)}"
                )
            image_sizes = np.array([[height, width]], "float32")
        image_sizes = ops.cast(ops.convert_to_tensor(image_sizes), "float32")
        if len(image_sizes.shape) != 2 or image_sizes.shape[-1] != 2:
            raise ValueError(
                "`image_sizes` must be (batch_size, 2) pixel sizes (height, width). "
                f"Received: image_sizes.shape={tuple(image_sizes.shape)}"
            )
        probabilities = ops.softmax(ops.cast(outputs["logits"], "float32"), axis=-1)
        scores = ops.max(probabilities[..., :-1], axis=-1)
        labels = ops.cast(ops.argmax(probabilities[..., :-1], axis=-1), "int32")
        boxes = box_cxcywh_to_xyxy(ops.cast(outputs["boxes"], "float32"))
        # (B, 2) (height, width) -> (B, 1, 4) scale (width, height, width, height)
        scale = ops.concatenate([image_sizes[:, ::-1], image_sizes[:, ::-1]], axis=-1)
        return {"boxes": boxes * scale[:, None, :], "scores": scores, "labels": labels}

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
