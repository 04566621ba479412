"""
Title: Object detection with DETR
Author: keras_seq contributors
Date created: 2026/11/22
Last modified: 2026/12/06
Description: Train a small DETR on synthetic shapes: box algebra, Hungarian matching, the
    DETR loss, post-processing, COCO mAP, and the data as a TensorFlow Datasets builder.
Accelerator: None
"""

"""
## Introduction

DETR (Carion et al., 2020) treats detection as set prediction. A convolutional network (the
image encoder) turns the image into a grid of features; a transformer encoder mixes them; a
transformer decoder reads them with a fixed number of learned *object queries*, and each
query predicts one box and one class, or "no object". There are no anchors and no
non-maximum suppression: during training each real object is assigned to exactly one query
by an optimal one-to-one matching (the Hungarian algorithm), and the loss scores the matched
pairs; the unmatched queries learn to say "no object".

keras_seq has every part:

- `keras_seq.models.DETRBackbone`: image encoder, transformer and object queries; and
  `keras_seq.models.DETRObjectDetector`, which puts the class and box heads on it;
- `keras_seq.ops`: box conversions, IoU and generalized IoU, `linear_sum_assignment` and
  `hungarian_match` (exact, batched, compiled with XLA: no SciPy in the training step);
- `keras_seq.losses.DETRLoss`: matching, cross-entropy, L1 and GIoU box losses;
- `keras_seq.metrics.mean_average_precision`: COCO's mAP;
- `keras_seq.data.shapes_detection_data`: a synthetic detection set, also as COCO files
  and a TensorFlow Datasets builder.

DETR is known to converge slowly; a small model on small images learns the shapes in a few
minutes on a CPU. Set `KERAS_SEQ_GUIDE_FAST=1` to run a few training steps only.
"""

"""
## Setup
"""

import os  # noqa: E402  (keras.io guides open with text cells)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import itertools  # noqa: E402
import tempfile  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
keras.utils.set_random_seed(0)
directory = tempfile.mkdtemp()

"""
## Boxes

DETR predicts boxes as normalized `(center_x, center_y, width, height)` in [0, 1]; IoU and
drawing want corners `(x_min, y_min, x_max, y_max)`. Intersection over union (IoU) is 0 for
all boxes that do not overlap, near or far, so it gives no gradient there. Generalized IoU
(Rezatofighi et al., 2019) subtracts the share of the smallest enclosing box that the union
leaves empty: it lies in (-1, 1], equals IoU for a box that encloses the other, and keeps
falling as disjoint boxes move apart.
"""

reference = np.array([[0.3, 0.3, 0.2, 0.2]], "float32")  # cx, cy, w, h
others = np.array(
    [
        [0.3, 0.3, 0.2, 0.2],  # the same box
        [0.35, 0.3, 0.2, 0.2],  # shifted by a quarter of its width
        [0.3, 0.3, 0.4, 0.4],  # twice as large, around it
        [0.55, 0.3, 0.2, 0.2],  # disjoint, close
        [0.85, 0.3, 0.2, 0.2],  # disjoint, far
    ],
    "float32",
)
corners = keras_seq.ops.box_cxcywh_to_xyxy(others)
np.testing.assert_allclose(keras_seq.ops.box_xyxy_to_cxcywh(corners), others, atol=1e-6)
iou = np.asarray(keras_seq.ops.box_iou(keras_seq.ops.box_cxcywh_to_xyxy(reference), corners))[0]
giou = np.asarray(
    keras_seq.ops.generalized_box_iou(keras_seq.ops.box_cxcywh_to_xyxy(reference), corners)
)[0]
for box, a, b in zip(others, iou, giou):
    print(f"box {box}: IoU {a:.3f}  GIoU {b:+.3f}")
assert np.all(giou <= iou + 1e-6) and iou[3] == iou[4] == 0.0 and giou[4] < giou[3] < 0.0

"""
## Data: synthetic shapes

`keras_seq.data.shapes_detection_data` draws circles, squares and triangles (here 1 to 3
per 48 x 48 image, 8 to 16 pixels wide) on textured backgrounds. Targets are padded to the
most objects per image: boxes `(N, 3, 4)` in DETR's normalized format and labels `(N, 3)`,
`-1` in the padding slots.
"""

IMAGE_SIZE = 48
NUM_CLASSES = 3
DATA = {
    "image_size": IMAGE_SIZE,
    "min_objects": 1,
    "max_objects": 3,
    "num_classes": NUM_CLASSES,
    "min_object_size": 8,
    "max_object_size": IMAGE_SIZE // 3,
}
CLASSES = keras_seq.data.SHAPES_CLASSES[:NUM_CLASSES]
train_x, train_y = keras_seq.data.shapes_detection_data(64 if FAST else 2000, seed=0, **DATA)
test_x, test_y = keras_seq.data.shapes_detection_data(32 if FAST else 200, seed=1, **DATA)
print("images", train_x.shape, "boxes", train_y["boxes"].shape, "labels", train_y["labels"].shape)
for box, label in zip(train_y["boxes"][0], train_y["labels"][0]):
    print(f"  {CLASSES[label] if label >= 0 else '(padding)':>9}: {np.round(box, 3)}")

"""
## The model

A `DETRBackbone` takes any Keras model with one 4-D output as its `image_encoder` (the
default is a ResNet-50 without weights; a Swin stage works too), and a `DETRObjectDetector`
puts the prediction heads on the backbone. Here four convolutions with a total stride of 8 turn a
48 x 48 image into a 6 x 6 grid: 36 tokens. The settings come from
`integration_tests/test_detr_learning.py`: width 64, two encoder and two decoder layers, 8
object queries.
"""


def small_image_encoder():
    return keras.Sequential(
        [
            keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        ],
        name="image_encoder",
    )


backbone = keras_seq.models.DETRBackbone(
    image_encoder=small_image_encoder(),
    image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
    hidden_dim=64,
    num_queries=8,
    num_encoder_layers=2,
    num_decoder_layers=2,
    num_heads=4,
    intermediate_dim=128,
    dropout=0.0,
)
model = keras_seq.models.DETRObjectDetector(backbone, num_classes=NUM_CLASSES)
print("parameters:", f"{model.count_params():,}")
outputs = model(train_x[:4])
print({name: tuple(value.shape) for name, value in outputs.items()})

"""
The logits have `num_classes + 1` columns, the last one for "no object". With more than one
decoder layer, the earlier layers' predictions come too (`aux_*`, a layer axis after the
batch): the loss applies to each of them, which helps the decoder train.

For reference, `keras_seq.models.DETRObjectDetector.from_preset("detr_resnet50")` is the
original model (ResNet-50, width 256, 6 + 6 layers, 100 queries), with random weights.

## Hungarian matching

`keras_seq.ops.linear_sum_assignment(cost, target_mask)` gives every real target its own
query so that the total cost is the smallest possible, for a whole batch at once, in
`keras.ops` with static shapes (it compiles with XLA). It returns a one-hot
`(batch, queries, targets)` matrix. Check it against brute force, which tries every way of
giving the targets distinct queries:
"""

rng = np.random.default_rng(0)
cost = rng.uniform(size=(16, 6, 3)).astype("float32")  # 16 problems: 6 queries, 3 targets
target_mask = np.ones((16, 3), bool)
target_mask[::2, 2] = False  # every other problem has a padded third target
assignment = np.asarray(keras_seq.ops.linear_sum_assignment(cost, target_mask))
for problem, chosen, mask in zip(cost, assignment, target_mask):
    real = np.flatnonzero(mask)
    best = min(
        sum(problem[query, target] for query, target in zip(queries, real))
        for queries in itertools.permutations(range(6), len(real))
    )
    assert np.all(chosen.sum(axis=0) == mask) and np.all(chosen.sum(axis=1) <= 1)
    np.testing.assert_allclose(np.sum(chosen * problem), best, rtol=1e-5)
print("linear_sum_assignment equals brute force on 16 problems")

"""
`keras_seq.ops.hungarian_match` builds DETR's matching cost from the predictions (class
probability, L1 box distance and GIoU, weighted 1, 5 and 2) and solves it. On the untrained
model, for the first image:
"""


def show_matching(outputs, targets, example=0):
    logits = np.asarray(outputs["logits"])[example : example + 1]
    boxes = np.asarray(outputs["boxes"])[example : example + 1]
    labels = targets["labels"][example : example + 1]
    target_boxes = targets["boxes"][example : example + 1]
    match = np.asarray(keras_seq.ops.hungarian_match(logits, boxes, labels, target_boxes))[0]
    cost = np.asarray(keras_seq.ops.detr_matching_cost(logits, boxes, labels, target_boxes))[0]
    real = np.flatnonzero(labels[0] >= 0)
    for target in real:
        query = int(np.argmax(match[:, target]))
        print(
            f"  target {target} ({CLASSES[labels[0, target]]}, box "
            f"{np.round(target_boxes[0, target], 2)}) <- query {query} (box "
            f"{np.round(boxes[0, query], 2)}), cost {cost[query, target]:.3f}"
        )
    # No other one-to-one assignment is cheaper.
    best = min(
        sum(cost[query, target] for query, target in zip(queries, real))
        for queries in itertools.permutations(range(cost.shape[0]), len(real))
    )
    np.testing.assert_allclose(np.sum(match[:, real] * cost[:, real]), best, rtol=1e-5)
    assert np.all(match[:, labels[0] < 0] == 0.0)  # padding slots get no query


show_matching(outputs, {key: value[:4] for key, value in train_y.items()})

"""
## The loss

`keras_seq.losses.DETRLoss` matches every decoder layer's predictions, then adds two
terms: the cross-entropy of each query's class (the target's class for a matched query;
"no object", weighted 0.1, for the others), divided by the total weight of the queries; and
`5 x` the L1 distance plus `2 x (1 - GIoU)` of the matched boxes, divided by the number of
target boxes. `reduction="none"` gives each image's share.
"""

loss = keras_seq.losses.DETRLoss()
batch_targets = {key: value[:4] for key, value in train_y.items()}
total = float(loss(batch_targets, outputs))
per_image = np.asarray(keras_seq.losses.DETRLoss(reduction="none")(batch_targets, outputs))
print(f"loss {total:.3f}; per image {np.round(per_image, 3)}")
np.testing.assert_allclose(per_image.sum(), total, rtol=1e-5)

"""
## Training

`DETRObjectDetector.compute_loss` hands the whole output and target dicts to `DETRLoss`, so a plain
`fit(images, {"boxes", "labels"})` works. The train step compiles with XLA, matching
included. AdamW at a constant 5e-4 with gradient clipping; full batches only, since a
smaller last batch would compile a second train step. (In fast mode the guide runs a few
steps eagerly instead: compiling would take longer than those steps.)
"""

BATCH_SIZE = 16 if FAST else 32
EPOCHS = 1 if FAST else 40
model.compile(
    optimizer=keras.optimizers.AdamW(5e-4, weight_decay=1e-4, global_clipnorm=1.0),
    loss=keras_seq.losses.DETRLoss(),
    jit_compile=not FAST,
    run_eagerly=FAST,
)
full = len(train_x) // BATCH_SIZE * BATCH_SIZE
history = model.fit(
    train_x[:full],
    {key: value[:full] for key, value in train_y.items()},
    batch_size=BATCH_SIZE,
    epochs=EPOCHS,
    verbose=0,
)
losses = history.history["loss"]
print("losses:", [round(value, 2) for value in losses[:: max(1, len(losses) // 8)]])

"""
## Post-processing and mAP

`postprocess(outputs, image_sizes)` turns the raw outputs into detections: for each query,
its most likely real class, that class' probability as the score, and the box in pixels as
corners. `keras_seq.metrics.mean_average_precision` is COCO's mAP (equal to pycocotools):
`map` averages over IoU thresholds 0.5 to 0.95, `map_50` is at IoU 0.5.
`keras_seq.metrics.evaluate_detection` does the whole loop: predict, post-process, the
targets' boxes in the same pixels, mAP; with `return_predictions=True` it also returns what
it scored.
"""

metrics, predictions = keras_seq.metrics.evaluate_detection(
    model, (test_x, test_y), batch_size=len(test_x), return_predictions=True
)
test_outputs, detections = predictions["outputs"], predictions["detections"]
print(f"held-out mAP {metrics['map']:.3f}, mAP@0.5 {metrics['map_50']:.3f}")
print("per class:", {name: round(float(ap), 3) for name, ap in zip(CLASSES, metrics["per_class"])})
if not FAST:
    # Measured in test_detr_learning: mAP@0.5 0.40 after 40 epochs (untrained: 0.002).
    assert metrics["map_50"] >= 0.25, metrics

"""
The matching on a held-out image, after training: each object now has a query whose box
lies on it.
"""

show_matching(test_outputs, test_y)

"""
Draw a few held-out images with their ground truth (dashed) and the detections scoring at
least 0.5:
"""

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # No display needed.
import matplotlib.pyplot as plt  # noqa: E402

figure, axes = plt.subplots(1, 4, figsize=(12, 3.4))
colors = ("tab:red", "tab:blue", "tab:green")
for index, axis in enumerate(axes):
    axis.imshow(test_x[index])
    axis.set_axis_off()
    truth = predictions["ground_truth"]  # pixel corners
    for (x0, y0, x1, y1), label in zip(truth["boxes"][index], truth["labels"][index]):
        if label >= 0:
            axis.add_patch(
                plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", ec="white")
            )
    for (x0, y0, x1, y1), score, label in zip(
        detections["boxes"][index], detections["scores"][index], detections["labels"][index]
    ):
        if score >= 0.5:
            axis.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colors[label]))
            axis.text(x0, y0, f"{CLASSES[label]} {score:.2f}", color=colors[label], fontsize=7)
figure_path = os.path.join(directory, "detections.png")
figure.savefig(figure_path, bbox_inches="tight")
plt.close(figure)
print("saved", figure_path)

"""
## Saving

The image encoder, the transformer and the heads save to one `.keras` file:
"""

path = os.path.join(directory, "detr.keras")
model.save(path)
reloaded = keras.saving.load_model(path)
reloaded_outputs = reloaded.predict(test_x, batch_size=len(test_x), verbose=0)
for key in test_outputs:
    np.testing.assert_allclose(reloaded_outputs[key], test_outputs[key], atol=1e-5)
print("reloaded: same outputs")

"""
## The data on disk, through TensorFlow Datasets

Real detection sets come as image files and annotations. `write_shapes_detection_files`
writes the synthetic images as PNG files with a COCO annotation file, and the TensorFlow
Datasets builder in `keras_seq.data.shapes_detection_builder` (importing it registers the
name `"shapes_detection"`) reads them from a local "manual" directory: nothing is
downloaded (tfds still prints "Downloading and preparing": it only reads the manual
directory). `detection_targets` maps tfds examples to DETR's padded targets. The result is
the arrays above, exactly:
"""

import tensorflow_datasets as tfds  # noqa: E402

import keras_seq.data.shapes_detection_builder  # noqa: E402, F401  (registers the builder)

tfds.disable_progress_bar()

manual_dir = os.path.join(directory, "manual")
data_dir = os.path.join(directory, "tensorflow_datasets")
num_files = len(test_x)
annotation_file, image_directory = keras_seq.data.write_shapes_detection_files(
    manual_dir, num_files, split="validation", seed=1, **DATA
)
print("wrote", annotation_file, "and", len(os.listdir(image_directory)), "images")
dataset = tfds.load(
    "shapes_detection",
    split="validation",
    data_dir=data_dir,
    download_and_prepare_kwargs={
        "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)
    },
)
dataset = dataset.map(lambda example: keras_seq.data.detection_targets(example, max_objects=3))
images, targets = next(iter(dataset.batch(num_files)))
np.testing.assert_array_equal(images, test_x)
np.testing.assert_array_equal(targets["labels"], test_y["labels"])
np.testing.assert_allclose(targets["boxes"], test_y["boxes"], atol=1e-6)
print("tfds examples equal shapes_detection_data's arrays")

"""
Such a dataset feeds `fit`, `evaluate` and `predict` directly (batched, e.g.
`dataset.batch(32, drop_remainder=True)`).

## Recap

- `DETRObjectDetector(DETRBackbone(image_encoder=..., num_queries=...), num_classes)`: any
  one-output image encoder; outputs logits with a "no object" class and normalized boxes,
  plus every decoder layer's.
- `hungarian_match` / `linear_sum_assignment`: exact one-to-one matching, batched, in
  `keras.ops` (XLA-compatible).
- `DETRLoss`: matching, then cross-entropy, L1 and GIoU; train with `fit`.
- `postprocess`, `mean_average_precision` and `evaluate_detection` for COCO mAP; `box_iou`,
  `generalized_box_iou` and the conversions in `keras_seq.ops`.
- `write_shapes_detection_files` and the `"shapes_detection"` tfds builder for data on
  disk.
"""
