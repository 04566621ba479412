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

With `--data DIR ANNOTATIONS.json` (`run.data`: an image directory and COCO detection
annotations, read and checked by `keras_seq.recipes.detection_files`) the detector learns
the user's boxes instead: RGB images resized to 48x48 and scaled to [0, 1] by an
`ImagePreprocessor` that the model keeps (`preprocessor`, with the category names as
`label_names`), so that it detects on raw images; a seeded fifth of the images validates and
gives the held-out mAP. An image file whose size differs from the one its annotations
declare is an error naming it; one that does not decode is skipped with a counted warning.
With `--from` a saved `DETRObjectDetector` (or a `from_preset` handle) is fine-tuned at its
image size, with a new class head when the categories differ.
"""

import logging
import math

import keras
import numpy as np

from keras_seq.callbacks.attention_map_logger import AttentionMapLogger
from keras_seq.data.shapes_detection import SHAPES_CLASSES
from keras_seq.data.shapes_detection import shapes_detection_data
from keras_seq.layers.preprocessing.image_preprocessor import ImagePreprocessor
from keras_seq.losses.detr_loss import DETRLoss
from keras_seq.metrics.detection_evaluation import evaluate_detection
from keras_seq.models.detr.detr_backbone import DETRBackbone
from keras_seq.models.detr.detr_object_detector import DETRObjectDetector
from keras_seq.recipes import outputs
from keras_seq.recipes.data_files import DataPathError
from keras_seq.recipes.data_files import FromModelError
from keras_seq.recipes.detection_files import read_detection_data
from keras_seq.recipes.digits_classification import fine_tuning_model
from keras_seq.recipes.image_data import decode_image_file
from keras_seq.recipes.image_data import model_image_shape
from keras_seq.recipes.image_data import skipped_images_message

logger = logging.getLogger(__name__)

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


def detections_figure(
    images,
    detections,
    truth=None,
    class_names=SHAPES_CLASSES,
    titles=None,
    score_threshold=SCORE_THRESHOLD,
):
    """Images with ground-truth boxes (dashed; `truth` may be `None`) and detections scoring
    at least `score_threshold`, named by `class_names`, each image titled by `titles`.

    `detections` and `truth` hold pixel `(x_min, y_min, x_max, y_max)` boxes."""
    columns = 3
    rows = math.ceil(len(images) / columns)
    figure = outputs.new_figure(3.0 * columns, 3.1 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    from matplotlib.patches import Rectangle

    for index, (ax, image) in enumerate(zip(axes, images)):
        ax.imshow(image)
        if titles is not None:
            ax.set_title(titles[index], fontsize=7)
        for box, label in zip(
            truth["boxes"][index] if truth else [], truth["labels"][index] if truth else []
        ):
            if label >= 0:
                x0, y0, x1, y1 = box
                ax.add_patch(
                    Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ls="--", ec="w")
                )
        for box, label, score in zip(
            detections["boxes"][index], detections["labels"][index], detections["scores"][index]
        ):
            if score >= score_threshold:
                x0, y0, x1, y1 = box
                color = COLORS[int(label) % len(COLORS)]
                ax.add_patch(
                    Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.5)
                )
                ax.text(
                    x0,
                    y0 - 1,
                    f"{class_names[label]} {score:.2f}",
                    color=color,
                    fontsize=7,
                    bbox={"facecolor": "white", "alpha": 0.7, "pad": 0.5, "linewidth": 0},
                )
        ax.axis("off")
    for ax in axes[len(images) :]:
        ax.set_visible(False)
    truth_note = "; truth dashed" if truth else ""
    figure.suptitle(f"detections (score >= {score_threshold}){truth_note}")
    return figure


def load_base_model(source, num_classes, class_names):
    """The detector `--from` names: a `.keras` file of a `DETRObjectDetector`, or a
    `from_preset` handle with a new head of `num_classes`."""
    if source.endswith(".keras"):
        model = keras.saving.load_model(source, compile=False)
        if not isinstance(model, DETRObjectDetector):
            raise FromModelError(
                source,
                f"holds a {type(model).__name__}; recipe detr-shapes fine-tunes a "
                "DETRObjectDetector",
            )
        return model
    return DETRObjectDetector.from_preset(source, num_classes=num_classes, label_names=class_names)


def detection_arrays(entries, preprocessor):
    """`(images, targets, skipped)` of annotated images (`read_detection_data`'s entries):
    images through `preprocessor` `(N, H, W, 3)`, targets `{"boxes": (N, M, 4)` normalized
    `(cx, cy, w, h)`, `"labels": (N, M)` with -1 padding}`, and the files that do not decode
    (left out)."""
    images, kept, skipped = [], [], []
    for entry in entries:
        image = decode_image_file(entry["path"], channels=3)
        if image is None:
            skipped.append(entry["path"])
            continue
        height, width = int(image.shape[0]), int(image.shape[1])
        if (width, height) != (entry["width"], entry["height"]):
            raise DataPathError(
                entry["path"],
                f"is {width}x{height} pixels; its annotations say "
                f"{entry['width']}x{entry['height']}",
            )
        images.append(np.asarray(preprocessor(image[None]), "float32")[0])  # (H, W, 3)
        kept.append(entry)
    if not kept:
        raise DataPathError(skipped[0], "is not a readable image, nor any of the images")
    most = max(1, max(len(entry["labels"]) for entry in kept))
    boxes = np.zeros((len(kept), most, 4), "float32")  # (N, M, 4)
    labels = np.full((len(kept), most), -1, "int32")  # (N, M)
    for row, entry in enumerate(kept):
        for column, ((x0, y0, x1, y1), label) in enumerate(zip(entry["boxes"], entry["labels"])):
            width, height = entry["width"], entry["height"]
            x0, x1 = np.clip([x0, x1], 0, width)
            y0, y1 = np.clip([y0, y1], 0, height)
            boxes[row, column] = [
                (x0 + x1) / 2 / width,
                (y0 + y1) / 2 / height,
                (x1 - x0) / width,
                (y1 - y0) / height,
            ]
            labels[row, column] = label
    return np.stack(images), {"boxes": boxes, "labels": labels}, skipped


def _user_detection(run, preprocessor):
    """The `--data` annotated images: training and held-out arrays, the class names."""
    class_names, entries = read_detection_data(run.data)
    order = np.random.default_rng(run.seed).permutation(len(entries))
    chosen = set(order[: max(1, round(len(entries) * 0.2))].tolist())
    train = [entry for index, entry in enumerate(entries) if index not in chosen]
    held_out = [entry for index, entry in enumerate(entries) if index in chosen]
    images, targets, skipped = detection_arrays(train, preprocessor)
    test_images, test_targets, skipped_test = detection_arrays(held_out, preprocessor)
    if skipped or skipped_test:
        logger.warning(skipped_images_message(skipped + skipped_test))
    run.details["data_images"] = {
        "train": len(images),
        "validation": len(test_images),
        "boxes": int((targets["labels"] >= 0).sum() + (test_targets["labels"] >= 0).sum()),
        "classes": len(class_names),
        "skipped_images": len(skipped) + len(skipped_test),
    }
    return class_names, (images, targets), (test_images, test_targets)


def train_detr_shapes(run):
    """Train the `detr-shapes` recipe (see the module docstring) for a `RecipeRun`."""
    sizes = SIZES["quick" if run.quick else "full"]
    base = None
    image_size = IMAGE_SIZE
    class_names = list(SHAPES_CLASSES[:NUM_CLASSES])
    if run.data is None:
        images, targets = shapes_detection_data(sizes["train"], seed=0, **DATA)
        validation = shapes_detection_data(sizes["held_out"], seed=1, **DATA)
        test_images, test_targets = shapes_detection_data(sizes["held_out"], seed=2, **DATA)
        preprocessor = None
    else:
        if run.from_model is not None:
            names = read_detection_data(run.data)[0]
            with run.scope():
                base = load_base_model(run.from_model, len(names), names)
            image_size = model_image_shape(base.backbone, IMAGE_SIZE)[0][0]
            run.details["from_model_class"] = type(base).__name__
        # A fixed size (the model's, else IMAGE_SIZE: a checkpoint's preprocessing may keep
        # each image's aspect), with a checkpoint's normalization.
        kept = {}
        if base is not None and base.preprocessor is not None:
            kept = {
                key: getattr(base.preprocessor, key)
                for key in ("interpolation", "scale", "mean", "std")
            }
        preprocessor = ImagePreprocessor(
            image_size=(image_size, image_size), dtype="float32", name="preprocessor", **kept
        )
        class_names, (images, targets), validation = _user_detection(run, preprocessor)
        test_images, test_targets = validation
    num_classes = len(class_names)
    # Full batches only: a smaller last batch would trace (and compile) a second train step.
    batch_size = min(run.batch_size, len(images))
    used = len(images) // batch_size * batch_size
    images, targets = images[:used], {key: value[:used] for key, value in targets.items()}

    width = sizes["hidden_dim"]
    with run.scope():
        if base is not None:
            model = fine_tuning_model(base, num_classes, class_names, preprocessor)
        else:
            backbone = DETRBackbone(
                image_encoder=_image_encoder(width),
                image_shape=(image_size, image_size, 3),
                hidden_dim=width,
                num_queries=8,
                num_encoder_layers=sizes["layers"],
                num_decoder_layers=sizes["layers"],
                num_heads=4 if width % 4 == 0 else 1,
                intermediate_dim=2 * width,
                dropout=0.0,
            )
            task = {} if run.data is None else {"label_names": class_names}
            model = DETRObjectDetector(
                backbone, num_classes=num_classes, preprocessor=preprocessor, **task
            )
        model.compile(
            keras.optimizers.AdamW(5e-4, weight_decay=1e-4, global_clipnorm=1.0),
            loss=DETRLoss(),
            # XLA by default, as measured; the quick run skips its compilation time.
            jit_compile=run.compile_jit(default=None if run.quick else True),
        )
    num_layers = model.backbone.get_config().get("num_decoder_layers", sizes["layers"])
    attention_logger = AttentionMapLogger(
        run.log_dir,
        test_images[:2],
        [f"decoder_layer_{num_layers - 1}/cross_attention"],
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
        num_classes=num_classes,
        return_predictions=True,
    )
    detections, truth = predictions["detections"], predictions["ground_truth"]
    run.report(map=scores["map"], map_50=scores["map_50"], map_75=scores["map_75"])
    plotted = slice(0, NUM_PLOTTED)
    run.save_figure(
        detections_figure(
            np.clip(test_images[plotted], 0.0, 1.0),
            {key: value[plotted] for key, value in detections.items()},
            {key: value[plotted] for key, value in truth.items()},
            class_names=class_names,
        ),
        "detections.png",
    )
