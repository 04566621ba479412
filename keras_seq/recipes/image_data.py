"""The user's images for `keras-seq train vit-digits --data DIR` (and `swin-digits`).

`ImageFolders` reads a directory in the layout of `keras.utils.image_dataset_from_directory`
(one sub-directory per class; `keras_seq.recipes.data_files.image_folders` finds the files),
skips the images that do not decode (a warning counts and names them; a class left without
images is an error), and streams them with `tf.data`: decoded, then resized and scaled to
[0, 1] by an `ImagePreprocessor`, the same layer the trained classifier keeps as its
`preprocessor`, so that `classify` on raw images sees what training saw. Validation images
come from a second directory with the same classes, or from a seeded split of the first.
"""

import logging
import os

import keras
import numpy as np
import tensorflow as tf

from keras_seq.layers.preprocessing.image_preprocessor import ImagePreprocessor
from keras_seq.recipes.data_files import DataPathError
from keras_seq.recipes.data_files import image_folders

logger = logging.getLogger(__name__)

VALIDATION_SPLIT = 0.2
# Names listed in the warning about skipped images; the others are counted.
LISTED_SKIPPED = 10


def decode_image_file(path, channels=0):
    """The decoded image of the file `path` (`uint8` tensor `(H, W, C)`), or `None` when it
    does not decode."""
    try:
        return tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        return None


def skipped_images_message(skipped):
    """`"skipped 2 unreadable images: a.jpg, b.png"` (the first `LISTED_SKIPPED` names)."""
    names = [os.path.basename(path) for path in skipped[:LISTED_SKIPPED]]
    more = f", and {len(skipped) - LISTED_SKIPPED} more" if len(skipped) > LISTED_SKIPPED else ""
    noun = "image" if len(skipped) == 1 else "images"
    return f"skipped {len(skipped)} unreadable {noun}: {', '.join(names)}{more}"


def readable_images(paths, what="images"):
    """The paths of `paths` whose files decode as images, and the set of their channels.
    Those that do not are skipped with a warning that counts and names them
    (`skipped_images_message`); when none decodes, a `DataPathError` names the first."""
    readable, skipped, channels = [], [], set()
    for path in paths:
        image = decode_image_file(path)
        if image is None:
            skipped.append(path)
        else:
            readable.append(path)
            channels.add(int(image.shape[-1]))
    if skipped:
        if not readable:
            raise DataPathError(skipped[0], f"is not a readable image, nor any of the {what}")
        logger.warning("%s (%s)", skipped_images_message(skipped), what)
    return readable, channels, skipped


def read_images(paths, image_size, channels=3, what="images"):
    """The images of the files `paths` that decode, as float32 `(N, H, W, channels)` in
    [0, 1] at `image_size` `(H, W)` (resized with antialiasing), and their paths; the others
    are skipped as `readable_images` says."""
    readable, _, _ = readable_images(paths, what)
    pixels = []
    for path in readable:
        image = tf.cast(decode_image_file(path, channels), "float32")[None] / 255.0
        image = keras.ops.image.resize(image, tuple(image_size), antialias=True)
        pixels.append(np.clip(np.asarray(image[0], "float32"), 0.0, 1.0))  # (H, W, C)
    return np.stack(pixels), readable


def _relabel(directory, folder_names, files, labels, label_names):
    """Labels as indices of a model's `label_names`; a class directory it does not know is a
    `DataPathError` naming it."""
    indices = []
    for name in folder_names:
        if name not in label_names:
            raise DataPathError(
                os.path.join(os.fspath(directory), name),
                f"is a class the model does not know (its classes: {', '.join(label_names)})",
            )
        indices.append(label_names.index(name))
    return files, [indices[label] for label in labels]


def _kept(files, labels, readable, directory=None, class_names=None):
    """The files (and labels) of `readable`; with `directory`, a class left without an
    image is a `DataPathError` naming its directory."""
    kept = [(path, label) for path, label in zip(files, labels) if path in readable]
    if directory is not None:
        for label in sorted(set(labels) - {label for _, label in kept}):
            raise DataPathError(
                os.path.join(os.fspath(directory), class_names[label]),
                "is a class directory that holds no readable image",
            )
    return [path for path, _ in kept], [label for _, label in kept]


def model_image_shape(backbone, default_size=32):
    """`((height, width), channels)` of the images a backbone takes (`default_size` for a
    backbone of any size)."""
    height, width, channels = tuple(backbone.input_shape[1:])
    if height is None or width is None:
        height = width = default_size
    return (height, width), channels


class ImageFolders:
    """Training and validation images of class directories, as `tf.data` pipelines.

    Args:
        directory: path of the training images, one sub-directory per class.
        validation_directory: path or `None`. Validation images with the same class
            sub-directories; `None` takes `VALIDATION_SPLIT` of `directory`'s images, drawn
            with `seed`.
        image_size: int or `(height, width)`. Images are resized to it.
        seed: int. Seed of the validation split; `validation_split=1.0` makes every image of
            `directory` a validation image (evaluation).
        channels: int or `None`. Channels of the pixels (a model's); `None` is 1 when every
            image is grayscale, else 3.
        normalization: an `ImagePreprocessor` or `None`. Its `interpolation`, `scale`,
            `mean` and `std` are kept (a pretrained model's); `None` scales to [0, 1].
        label_names: list of str or `None`. A model's classes: each class directory must be
            one of them, and its images get that class's index (not its sorted position).
        validation_split: float. The fraction of `directory` that validates without
            `validation_directory`. Defaults to `VALIDATION_SPLIT`.

    Attributes:
        class_names: list of str, the class sub-directories in sorted order.
        channels: the `channels` given, else 1 when every image is grayscale, else 3.
        preprocessor: the `ImagePreprocessor` (float32) from decoded images to pixels.
        num_train, num_validation: int. Images of each set.
        skipped: list of str. The image files that do not decode, left out.
    """

    def __init__(
        self,
        directory,
        validation_directory=None,
        image_size=32,
        seed=0,
        channels=None,
        normalization=None,
        label_names=None,
        validation_split=VALIDATION_SPLIT,
    ):
        self.class_names, files, labels = image_folders(directory)
        if label_names is not None:
            files, labels = _relabel(directory, self.class_names, files, labels, label_names)
            self.class_names = list(label_names)
        if validation_directory is not None:
            names, validation_files, validation_labels = image_folders(validation_directory)
            if names != self.class_names:
                raise DataPathError(
                    validation_directory,
                    f"has the classes {names}, and the training data {self.class_names}: "
                    "they must be the same",
                )
        elif validation_split >= 1.0:
            validation_files, validation_labels, files, labels = files, labels, [], []
        else:
            order = np.random.default_rng(seed).permutation(len(files))
            count = max(1, round(len(files) * validation_split))
            if len(files) - count < 1:
                raise DataPathError(
                    directory, f"holds {len(files)} images: too few to keep some for validation"
                )
            chosen = set(order[:count].tolist())
            validation_files = [path for i, path in enumerate(files) if i in chosen]
            validation_labels = [label for i, label in enumerate(labels) if i in chosen]
            files = [path for i, path in enumerate(files) if i not in chosen]
            labels = [label for i, label in enumerate(labels) if i not in chosen]
        readable, decoded, self.skipped = readable_images(
            files + validation_files, f"images of {os.fspath(directory)}"
        )
        readable = set(readable)
        files, labels = _kept(files, labels, readable, directory, self.class_names)
        if validation_directory is not None or validation_split >= 1.0:
            validation_files, validation_labels = _kept(
                validation_files,
                validation_labels,
                readable,
                validation_directory or directory,
                self.class_names,
            )
        else:
            validation_files, validation_labels = _kept(
                validation_files, validation_labels, readable
            )
        if not files and validation_split < 1.0:
            raise DataPathError(directory, "holds no readable image left for training")
        if not validation_files:
            raise DataPathError(
                validation_directory or directory, "holds no readable image left for validation"
            )
        self.channels = channels or (1 if decoded <= {1, 2} else 3)
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        kept = {}
        if normalization is not None:
            kept = {
                key: getattr(normalization, key)
                for key in ("interpolation", "scale", "mean", "std")
            }
        self.preprocessor = ImagePreprocessor(
            image_size=tuple(image_size), dtype="float32", name="preprocessor", **kept
        )
        self._train = (files, labels)
        self._validation = (validation_files, validation_labels)
        self.num_train = len(files)
        self.num_validation = len(validation_files)

    @property
    def image_shape(self):
        """`(height, width, channels)` of the pixels."""
        height, width = self.preprocessor.image_size
        return (height, width, self.channels)

    def train_batch_size(self, batch_size):
        """The batch size of training: `batch_size`, or fewer when there are fewer images."""
        return min(batch_size, self.num_train)

    def train(self, batch_size, seed):
        """Training batches `(pixels, labels)`, reshuffled every epoch with `seed`; full
        batches only (a smaller last batch would trace the train step again)."""
        files, labels = self._train
        return (
            tf.data.Dataset.from_tensor_slices((files, labels))
            .shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
            .map(self._load, tf.data.AUTOTUNE)
            .batch(self.train_batch_size(batch_size), drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )

    def validation(self, batch_size):
        """Validation batches `(pixels, labels)`, in order."""
        files, labels = self._validation
        return (
            tf.data.Dataset.from_tensor_slices((files, labels))
            .map(self._load, tf.data.AUTOTUNE)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    def validation_arrays(self, batch_size=64):
        """Every validation image and label as NumPy arrays `(N, H, W, C)` and `(N,)`."""
        pixels, labels = [], []
        for batch_pixels, batch_labels in self.validation(batch_size).as_numpy_iterator():
            pixels.append(batch_pixels)
            labels.append(batch_labels)
        return np.concatenate(pixels), np.concatenate(labels)

    def _load(self, path, label):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=self.channels, expand_animations=False
        )
        height, width = self.preprocessor.image_size
        # The preprocessor's resize (it needs a static size), then its scaling: the pixels
        # equal `preprocessor(image[None])` on an image of a static size.
        images = keras.ops.image.resize(
            tf.cast(image, "float32")[None],
            (height, width),
            interpolation=self.preprocessor.interpolation,
            antialias=True,
        )
        images = tf.ensure_shape(images, (1, height, width, self.channels))
        return self.preprocessor(images)[0], tf.cast(label, "int32")  # (H, W, C)
