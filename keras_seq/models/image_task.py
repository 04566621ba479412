"""ImageTask: what the image task models share: a checkpoint's preprocessing and label names."""

import keras
import numpy as np
from keras import ops

from keras_seq.models.task import Task
from keras_seq.utils.validation import validate_positive_int


def resolve_preprocessor(preprocessor):
    """`preprocessor` as an `ImagePreprocessor` (an instance or its serialized config), or
    `None`; `TypeError` naming it otherwise."""
    if isinstance(preprocessor, dict):
        preprocessor = keras.saving.deserialize_keras_object(preprocessor)
    if preprocessor is not None and not isinstance(preprocessor, keras.layers.Layer):
        raise TypeError(
            "`preprocessor` must be a keras_seq.layers.ImagePreprocessor (any Keras layer "
            "mapping raw images to the model's inputs), its serialized config, or None. "
            f"Received: preprocessor={preprocessor!r}"
        )
    return preprocessor


def validate_label_names(label_names, num_classes):
    """`label_names` as a list of `num_classes` strings, or `None`."""
    if label_names is None:
        return None
    if not isinstance(label_names, (list, tuple)) or not all(
        isinstance(name, str) for name in label_names
    ):
        raise TypeError(
            f"`label_names` must be a list of strings or None. Received: label_names="
            f"{label_names!r}"
        )
    if num_classes is not None and len(label_names) != num_classes:
        raise ValueError(
            f"`label_names` must name each of the {num_classes} classes (num_classes). "
            f"Received: {len(label_names)} names"
        )
    return list(label_names)


class ImageTask(Task):
    """Base of the image task models (not exported): a `Task` that may carry the
    `preprocessor` (an `ImagePreprocessor`) and `label_names` of the checkpoint it was loaded
    from. Both are constructor arguments, saved in the config and in presets.

    Subclasses call `_set_image_task(preprocessor, label_names, num_classes)` after the
    functional constructor.
    """

    def _set_image_task(self, preprocessor, label_names, num_classes):
        self.preprocessor = resolve_preprocessor(preprocessor)
        self.label_names = validate_label_names(label_names, num_classes)

    def preprocess(self, images):
        """`images` through `preprocessor` (unchanged, as float, without one)."""
        if self.preprocessor is None:
            return ops.convert_to_tensor(images, self.compute_dtype)
        return self.preprocessor(images)

    def label_name(self, index):
        """The name of class `index` (`str(index)` without `label_names`)."""
        return self.label_names[index] if self.label_names else str(index)

    def get_config(self):
        return {
            **super().get_config(),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
            "label_names": None if self.label_names is None else list(self.label_names),
        }


class ImageClassifier(ImageTask):
    """Base of the image classifiers (not exported): `classify` on raw images."""

    def classify(self, images, top_k=1):
        """The `top_k` most probable classes of each image: a list (one per image) of
        `(label, probability)` pairs, most probable first. `images` go through
        `preprocessor` first when the model has one (so uint8 images work)."""
        validate_positive_int("top_k", top_k)
        if top_k > self.num_classes:
            raise ValueError(
                f"`top_k` must be at most num_classes={self.num_classes}. Received: top_k={top_k}"
            )
        logits = self(self.preprocess(images), training=False)
        probabilities = np.asarray(ops.softmax(ops.cast(logits, "float32"), axis=-1))
        ranked = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top_k]
        return [
            [(self.label_name(int(index)), float(row[index])) for index in indices]
            for row, indices in zip(probabilities, ranked)
        ]
