"""Recipes `vit-digits` and `swin-digits`: vision transformers classify scikit-learn's digits.

The 1,797 8x8 digits bundled with scikit-learn (`keras_seq.data.digits_data`: upsampled
bilinearly to 32x32, split 1,437 / 360 by a seeded permutation; nothing is downloaded) train
a small `ViTImageClassifier` on a `ViTBackbone` (patch 8: 16 patches and the class token) or
a small `SwinImageClassifier` on a `SwinBackbone` (patch 4: an 8x8 map of 4x4 windows, shifted
every second block, then a 4x4 map). The 360 held-out images are the validation set and give
the held-out accuracy.

Outputs beyond the runner's: `predictions.png` (held-out digits with their predicted and
true labels), `confusion_matrix.png`, and in TensorBoard the attention maps of the first
block (ViT: patch-to-patch attention, class token first; Swin: its first windows) on two
held-out images (`AttentionMapLogger`).

With `--data` (`run.data`: a directory with one sub-directory of images per class) the
classifier learns the user's images instead (`keras_seq.recipes.image_data.ImageFolders`):
resized to 32x32 (grayscale when every image is), a seeded fifth validating unless
`--validation-data` gives a directory; the model keeps the class names (`label_names`) and
the resize-and-scale `preprocessor`. With `--from` it fine-tunes a saved classifier or a
`from_preset` handle (`fine_tuning_model`) at that model's image size and normalization.

Settings from integration_tests/test_vision_learning.py, measured on 2 shared CPU cores:
AdamW (weight decay 0.01, clipnorm 1) with one epoch of warm-up then a cosine decay, batch 64
of full batches only; ViT (4 layers, width 64, 4 heads) at 2e-3 for 12 epochs: 0.964
held-out accuracy in 21-31 s; Swin (width 32, depths (2, 2), heads (2, 4), window 4) at
3e-3 for 15 epochs: 0.933 in 30-46 s.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_seq.callbacks.attention_map_logger import AttentionMapLogger
from keras_seq.data.digits import DIGITS_NUM_CLASSES
from keras_seq.data.digits import digits_data
from keras_seq.models.swin.swin_backbone import SwinBackbone
from keras_seq.models.swin.swin_image_classifier import SwinImageClassifier
from keras_seq.models.vit.vit_backbone import ViTBackbone
from keras_seq.models.vit.vit_image_classifier import ViTImageClassifier
from keras_seq.recipes import data_files
from keras_seq.recipes import outputs
from keras_seq.recipes.image_data import ImageFolders
from keras_seq.recipes.image_data import model_image_shape

IMAGE_SIZE = 32
NUM_PLOTTED = 16
# `--quick`: the first training and held-out images of the split.
QUICK_EXAMPLES = {"train": 256, "held_out": 64}


def _vit(quick, image_shape=(IMAGE_SIZE, IMAGE_SIZE, 1), num_classes=DIGITS_NUM_CLASSES, **task):
    backbone = ViTBackbone(
        image_shape=image_shape,
        patch_size=8,
        num_layers=1 if quick else 4,
        hidden_dim=16 if quick else 64,
        num_heads=2 if quick else 4,
        intermediate_dim=32 if quick else 128,
    )
    return ViTImageClassifier(backbone, num_classes=num_classes, **task)


def _swin(quick, image_shape=(IMAGE_SIZE, IMAGE_SIZE, 1), num_classes=DIGITS_NUM_CLASSES, **task):
    backbone = SwinBackbone(
        image_shape=image_shape,
        patch_size=4,
        hidden_dim=8 if quick else 32,
        num_layers=(1, 1) if quick else (2, 2),
        num_heads=(1, 2) if quick else (2, 4),
        window_size=4,
        drop_path_rate=0.0,
    )
    return SwinImageClassifier(backbone, num_classes=num_classes, **task)


def predictions_figure(images, labels, predicted):
    """A grid of digits titled `predicted (true)`, mistakes in red."""
    columns = 8
    rows = math.ceil(len(images) / columns)
    figure = outputs.new_figure(1.4 * columns, 1.6 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, image, label, guess in zip(axes, images, labels, predicted):
        if image.shape[-1] == 1:
            ax.imshow(image[..., 0], cmap="gray_r", vmin=0.0, vmax=1.0)
        else:
            ax.imshow(np.clip(image, 0.0, 1.0))
        ax.set_title(f"{guess} ({label})", color="black" if guess == label else "red")
        ax.axis("off")
    for ax in axes[len(images) :]:
        ax.set_visible(False)
    figure.suptitle("held-out images: predicted (true)")
    return figure


def confusion_figure(labels, predicted, num_classes, class_names=None):
    """The confusion matrix (rows: true label, columns: prediction), with counts; the axes
    show `class_names` when given."""
    matrix = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(matrix, (labels, predicted), 1)
    figure = outputs.new_figure(5.0, 4.5)
    ax = figure.subplots()
    ax.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            color = "white" if count > matrix.max() / 2 else "black"
            ax.text(column, row, str(count), ha="center", va="center", fontsize=7, color=color)
    if class_names is None:
        ax.set_xticks(range(num_classes))
        ax.set_yticks(range(num_classes))
    else:
        ax.set_xticks(range(num_classes), class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(num_classes), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("held-out confusion matrix")
    return figure


def _digits(run):
    """The digits: full training batches, and the held-out images as NumPy arrays."""
    (images, labels), (test_images, test_labels) = digits_data(image_size=IMAGE_SIZE, seed=0)
    if run.quick:
        images, labels = images[: QUICK_EXAMPLES["train"]], labels[: QUICK_EXAMPLES["train"]]
        test_images = test_images[: QUICK_EXAMPLES["held_out"]]
        test_labels = test_labels[: QUICK_EXAMPLES["held_out"]]
    batch_size = min(run.batch_size, len(labels))
    # Full batches only: a smaller last batch would trace the train step a second time.
    batches = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(labels), seed=run.seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
    )
    validation = {
        "validation_data": (test_images, test_labels),
        "validation_batch_size": len(test_labels),
    }
    task = {}
    return batches, len(labels) // batch_size, validation, (test_images, test_labels), task


def load_base_model(model_cls, source, num_classes, label_names):
    """The model `--from` names: a `.keras` file (a `model_cls`), or a preset handle or
    checkpoint for `model_cls.from_preset` with a new head of `num_classes`."""
    if source.endswith(".keras"):
        model = keras.saving.load_model(source, compile=False)
        if not isinstance(model, model_cls):
            raise data_files.FromModelError(
                source,
                f"holds a {type(model).__name__}; this recipe fine-tunes a {model_cls.__name__}",
            )
        return model
    return model_cls.from_preset(source, num_classes=num_classes, label_names=label_names)


def fine_tuning_model(base, num_classes, label_names, preprocessor):
    """A classifier of `base`'s class on `base`'s backbone (its weights shared, not copied)
    with `num_classes` classes, `label_names` and `preprocessor`. The head and the other
    task layers keep `base`'s weights where their shapes still fit: all of them when the
    number of classes is the same, a new head otherwise."""
    config = base.get_config()
    for key in ("name", "trainable", "dtype", "backbone"):
        config.pop(key, None)
    config.update(num_classes=num_classes, label_names=label_names, preprocessor=preprocessor)
    model = type(base)(base.backbone, **config)
    backbone_layers = {id(base.backbone)}
    for layer in model.layers:
        if id(layer) in backbone_layers or not layer.weights:
            continue
        try:
            old = base.get_layer(layer.name)
        except ValueError:
            continue
        old_weights = old.get_weights()
        if [w.shape for w in old_weights] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(old_weights)
    return model


def _user_images(run, model_cls):
    """The `--data` class directories (`keras_seq.recipes.image_data.ImageFolders`): the
    model gets their class names and the preprocessor that resizes and scales raw images.
    With `--from`, images take the size, channels and normalization of that model."""
    base = None
    image_size, channels, normalization = IMAGE_SIZE, None, None
    if run.from_model is not None:
        class_names = data_files.image_folders(run.data)[0]
        with run.scope():
            base = load_base_model(model_cls, run.from_model, len(class_names), class_names)
        image_size, channels = model_image_shape(base.backbone, IMAGE_SIZE)
        normalization = base.preprocessor
    folders = ImageFolders(
        run.data,
        run.validation_data,
        image_size=image_size,
        seed=run.seed,
        channels=channels,
        normalization=normalization,
    )
    run.details["data_images"] = {
        "train": folders.num_train,
        "validation": folders.num_validation,
        "classes": len(folders.class_names),
    }
    validation = {"validation_data": folders.validation(run.batch_size)}
    task = {
        "image_shape": folders.image_shape,
        "num_classes": len(folders.class_names),
        "label_names": folders.class_names,
        "preprocessor": folders.preprocessor,
    }
    if base is not None:
        task = {"base": base, **task}
    steps = folders.num_train // folders.train_batch_size(run.batch_size)
    held_out = folders.validation_arrays(run.batch_size)
    return folders.train(run.batch_size, run.seed), steps, validation, held_out, task


def _train_digits(run, build, model_cls, learning_rate, attention_layer):
    if run.data is None:
        loaded = _digits(run)
    else:
        loaded = _user_images(run, model_cls)
    batches, steps_per_epoch, validation, (test_images, test_labels), task = loaded
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        max(1, (run.epochs - 1) * steps_per_epoch),
        warmup_target=learning_rate,
        warmup_steps=steps_per_epoch,
    )
    with run.scope():
        if "base" in task:
            model = fine_tuning_model(
                task["base"], task["num_classes"], task["label_names"], task["preprocessor"]
            )
        else:
            model = build(run.quick, **task)
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=run.compile_jit(),
        )
    attention_logger = AttentionMapLogger(
        run.log_dir, test_images[:2], [attention_layer], colormap="viridis"
    )
    run.fit(
        model,
        batches,
        shuffle=False,  # `batches` reshuffles
        callbacks=[attention_logger],
        **validation,
    )
    run.save_model(model, probe_inputs=test_images[:8])

    predict_batch = len(test_images) if run.data is None else run.batch_size
    logits = model.predict(test_images, batch_size=predict_batch, verbose=0)
    predicted = np.argmax(np.asarray(logits, "float32"), axis=-1)
    run.report(accuracy=np.mean(predicted == test_labels))
    names = [model.label_name(index) for index in range(model.num_classes)]
    run.save_figure(
        predictions_figure(
            test_images[:NUM_PLOTTED],
            [names[i] for i in test_labels[:NUM_PLOTTED]],
            [names[i] for i in predicted[:NUM_PLOTTED]],
        ),
        "predictions.png",
    )
    run.save_figure(
        confusion_figure(
            test_labels, predicted, model.num_classes, None if run.data is None else names
        ),
        "confusion_matrix.png",
    )


def train_vit_digits(run):
    """Train the `vit-digits` recipe (see the module docstring) for a `RecipeRun`."""
    _train_digits(
        run, _vit, ViTImageClassifier, learning_rate=2e-3, attention_layer="encoder_layer_0"
    )


def train_swin_digits(run):
    """Train the `swin-digits` recipe (see the module docstring) for a `RecipeRun`."""
    _train_digits(
        run, _swin, SwinImageClassifier, learning_rate=3e-3, attention_layer="stage_1_block_0"
    )
