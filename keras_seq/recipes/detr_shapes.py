"""Recipe `detr-shapes`: a tiny DETR detects synthetic shapes.

48x48 images with 1 to 3 shapes of 3 classes (circle, square, triangle; 8 to 16 pixels) on
textured backgrounds (`keras_seq.data.shapes_detection_data`; nothing is downloaded) train a
`DETRObjectDetector` on a `DETRBackbone` whose image encoder is four convolutions (stride 8: a
6x6 map of 36 tokens), width 64, 2 encoder and 2 decoder layers, 8 object queries, with
`DETRLoss` (Hungarian matching, the paper's weights). The held-out score is COCO mAP
(`keras_seq.metrics.evaluate_detection`) on 200 images of another seed: `map` (IoU 0.5:0.95)
and `map_50`.

Outputs beyond the runner's: `detections.png` (held-out images with the ground truth dashed
and the detections scoring at least 0.5 drawn with their class and score) and, in
TensorBoard, the cross-attention of the last decoder layer from each object query over the
image tokens (`AttentionMapLogger`).

Settings from integration_tests/test_detr_learning.py, measured on 2 CPU cores: 2,000
images, AdamW 5e-4 constant (weight decay 1e-4, global clipnorm 1), batch 32 of full batches,
XLA: held-out mAP@0.5 0.20 / 0.30 / 0.40 / 0.47 after 20 / 30 / 40 / 60 epochs, 60 epochs in
about 3 minutes. This recipe (validation every 5 epochs): mAP@0.5 0.505 (mAP 0.267) on its
held-out images, in 174 s (7.5-8 minutes while other jobs shared the 2 cores). DETR converges
slowly: fewer epochs detect little.
"""

import math

import keras

from keras_seq.callbacks.attention_map_logger import AttentionMapLogger
from keras_seq.data.shapes_detection import SHAPES_CLASSES
from keras_seq.data.shapes_detection import shapes_detection_data
from keras_seq.losses.detr_loss import DETRLoss
from keras_seq.metrics.detection_evaluation import evaluate_detection
from keras_seq.models.detr.detr_backbone import DETRBackbone
from keras_seq.models.detr.detr_object_detector import DETRObjectDetector
from keras_seq.recipes import outputs

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
# Validation loss and attention maps every this many epochs (of 60 by default): each
# validation pass matches 200 images.
VALIDATION_FREQUENCY = 5
SCORE_THRESHOLD = 0.5
NUM_PLOTTED = 6
COLORS = ("tab:red", "tab:blue", "tab:green")


def _image_encoder(width):
    return keras.Sequential(
        [
            keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        ],
        name="image_encoder",
    )


# Images for training and for each of validation and held-out data; model width and depth.
SIZES = {
    "quick": {"train": 64, "held_out": 32, "hidden_dim": 16, "layers": 1},
    "full": {"train": 2000, "held_out": 200, "hidden_dim": 64, "layers": 2},
}


def detections_figure(images, detections, truth):
    """Images with ground-truth boxes (dashed) and detections above `SCORE_THRESHOLD`.

    `detections` and `truth` hold pixel `(x_min, y_min, x_max, y_max)` boxes."""
    columns = 3
    rows = math.ceil(len(images) / columns)
    figure = outputs.new_figure(3.0 * columns, 3.1 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    from matplotlib.patches import Rectangle

    for index, (ax, image) in enumerate(zip(axes, images)):
        ax.imshow(image)
        for box, label in zip(truth["boxes"][index], truth["labels"][index]):
            if label >= 0:
                x0, y0, x1, y1 = box
                ax.add_patch(
                    Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ls="--", ec="w")
                )
        for box, label, score in zip(
            detections["boxes"][index], detections["labels"][index], detections["scores"][index]
        ):
            if score >= SCORE_THRESHOLD:
                x0, y0, x1, y1 = box
                color = COLORS[int(label) % len(COLORS)]
                ax.add_patch(
                    Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.5)
                )
                ax.text(
                    x0,
                    y0 - 1,
                    f"{SHAPES_CLASSES[label]} {score:.2f}",
                    color=color,
                    fontsize=7,
                    bbox={"facecolor": "white", "alpha": 0.7, "pad": 0.5, "linewidth": 0},
                )
        ax.axis("off")
    for ax in axes[len(images) :]:
        ax.set_visible(False)
    figure.suptitle(f"held-out detections (score >= {SCORE_THRESHOLD}); truth dashed")
    return figure


def train_detr_shapes(run):
    """Train the `detr-shapes` recipe (see the module docstring) for a `RecipeRun`."""
    sizes = SIZES["quick" if run.quick else "full"]
    images, targets = shapes_detection_data(sizes["train"], seed=0, **DATA)
    validation = shapes_detection_data(sizes["held_out"], seed=1, **DATA)
    test_images, test_targets = shapes_detection_data(sizes["held_out"], seed=2, **DATA)
    # Full batches only: a smaller last batch would trace (and compile) a second train step.
    batch_size = min(run.batch_size, len(images))
    used = len(images) // batch_size * batch_size
    images, targets = images[:used], {key: value[:used] for key, value in targets.items()}

    width = sizes["hidden_dim"]
    with run.scope():
        backbone = DETRBackbone(
            image_encoder=_image_encoder(width),
            image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
            hidden_dim=width,
            num_queries=8,
            num_encoder_layers=sizes["layers"],
            num_decoder_layers=sizes["layers"],
            num_heads=4 if width % 4 == 0 else 1,
            intermediate_dim=2 * width,
            dropout=0.0,
        )
        model = DETRObjectDetector(backbone, num_classes=NUM_CLASSES)
        model.compile(
            keras.optimizers.AdamW(5e-4, weight_decay=1e-4, global_clipnorm=1.0),
            loss=DETRLoss(),
            # XLA by default, as measured; the quick run skips its compilation time.
            jit_compile=run.compile_jit(default=None if run.quick else True),
        )
    attention_logger = AttentionMapLogger(
        run.log_dir,
        test_images[:2],
        [f"decoder_layer_{sizes['layers'] - 1}/cross_attention"],
        every_n_epochs=min(VALIDATION_FREQUENCY, run.epochs),
        colormap="viridis",
    )
    run.fit(
        model,
        images,
        targets,
        batch_size=batch_size,
        validation_data=validation,
        validation_batch_size=len(validation[0]),
        # The first and last epochs and every VALIDATION_FREQUENCY-th.
        validation_freq=sorted(
            {1, run.epochs} | set(range(VALIDATION_FREQUENCY, run.epochs, VALIDATION_FREQUENCY))
        ),
        callbacks=[attention_logger],
    )
    run.save_model(model, probe_inputs=test_images[:8])

    scores, predictions = evaluate_detection(
        model,
        (test_images, test_targets),
        batch_size=len(test_images),
        num_classes=NUM_CLASSES,
        return_predictions=True,
    )
    detections, truth = predictions["detections"], predictions["ground_truth"]
    run.report(map=scores["map"], map_50=scores["map_50"], map_75=scores["map_75"])
    plotted = slice(0, NUM_PLOTTED)
    run.save_figure(
        detections_figure(
            test_images[plotted],
            {key: value[plotted] for key, value in detections.items()},
            {key: value[plotted] for key, value in truth.items()},
        ),
        "detections.png",
    )
