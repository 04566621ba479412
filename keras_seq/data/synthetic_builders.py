"""TensorFlow Datasets builders of the generated tasks, for `tfds.load` with a local `data_dir`.

Five builders, one per synthetic task of `keras_seq.data`: `"adding_problem"`, `"copy_task"`,
`"reversal"`, `"date_translation"` and `"shapes_captioning"`. Each split is made by the
package's generator with a fixed seed (`SPLIT_SEEDS`: train 0, validation 1, test 2) and a
fixed number of examples (`BuilderConfig.split_sizes`), so nothing is downloaded and there
is no manual directory: `tfds.load("adding_problem/length_100", data_dir=...)` generates,
writes and reads the data, and example `i` of a split is example `i` of the generator's
arrays. The configs named `"tiny"` hold a few dozen examples, for smoke tests.

Importing this module registers the builders with TensorFlow Datasets (a side effect), and
`tensorflow_datasets` is slow to import, so `keras_seq.data` does not import it: import it
explicitly, `import keras_seq.data.synthetic_builders`.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from keras_seq.data.date_translation import DATE_SOURCE_LENGTH
from keras_seq.data.date_translation import DATE_TARGET_LENGTH
from keras_seq.data.date_translation import date_translation_data
from keras_seq.data.date_translation import random_dates
from keras_seq.data.long_range_tasks import adding_problem_data
from keras_seq.data.long_range_tasks import copy_task_data
from keras_seq.data.reversal import reversal_data
from keras_seq.data.shapes_captioning import _caption_targets
from keras_seq.data.shapes_captioning import shapes_caption_length
from keras_seq.data.shapes_captioning import shapes_captions

SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 2}
SPLIT_SIZES = {"train": 10_000, "validation": 1_000, "test": 1_000}
TINY_SPLIT_SIZES = {"train": 64, "validation": 16, "test": 16}
_TFDS_SPLITS = {
    "train": tfds.Split.TRAIN,
    "validation": tfds.Split.VALIDATION,
    "test": tfds.Split.TEST,
}


@dataclasses.dataclass(eq=False)
class SyntheticTaskConfig(tfds.core.BuilderConfig):
    """A generated data set's config: the generator's arguments and the split sizes.

    Attributes:
        generator_kwargs: dict. Keyword arguments of the task's generator, besides
            `num_examples` and `seed`.
        split_sizes: dict. Number of examples of each split (`"train"`, `"validation"`,
            `"test"`). Defaults to `SPLIT_SIZES`: 10,000, 1,000 and 1,000.
    """

    generator_kwargs: dict = dataclasses.field(default_factory=dict)
    split_sizes: dict = dataclasses.field(default_factory=lambda: dict(SPLIT_SIZES))


def _config(name, description, split_sizes=None, **generator_kwargs):
    return SyntheticTaskConfig(
        name=name,
        description=description,
        generator_kwargs=generator_kwargs,
        split_sizes=dict(split_sizes or SPLIT_SIZES),
    )


def _int32_sequence(length):
    return tfds.features.Tensor(shape=(length,), dtype=np.int32)


class _SyntheticTask(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared machinery: `_info` from `_features`, one generator call per split, in order."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    DESCRIPTION = ""
    SUPERVISED_KEYS = None

    def _features(self):
        raise NotImplementedError

    def _arrays(self, num_examples, seed, split):
        """`{feature: array or list}`, each of length `num_examples`, for one split."""
        raise NotImplementedError

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict(self._features()),
            supervised_keys=self.SUPERVISED_KEYS,
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download.
        return {
            _TFDS_SPLITS[split]: self._generate_examples(split, num_examples)
            for split, num_examples in self.builder_config.split_sizes.items()
        }

    def _generate_examples(self, split, num_examples):
        arrays = self._arrays(num_examples, SPLIT_SEEDS[split], split)
        for index in range(num_examples):
            yield index, {name: values[index] for name, values in arrays.items()}


class AddingProblem(_SyntheticTask):
    """TensorFlow Datasets builder `"adding_problem"`: `keras_seq.data.adding_problem_data`.

    Configs (10,000 / 1,000 / 1,000 examples for train / validation / test):
    `"length_50"`, `"length_100"` (the default), `"length_200"`, `"length_400"`: the
    sequence length; `"tiny"`: length 10, 64 / 16 / 16 examples.

    Features:
        inputs: float32 `(sequence_length, 2)`, values and markers.
        target: float32 `(1,)`, the sum of the two marked values.

    Supervised keys `("inputs", "target")`: `as_supervised=True` gives `fit`-ready pairs.
    Split `s` is `adding_problem_data(split_sizes[s], sequence_length, seed=SPLIT_SEEDS[s])`.

    Example:
    ```python
    import tempfile

    import tensorflow_datasets as tfds

    import keras_seq.data.synthetic_builders  # registers the builders

    with tempfile.TemporaryDirectory() as data_dir:
        dataset = tfds.load(
            "adding_problem/tiny", split="train", data_dir=data_dir, as_supervised=True
        )
        inputs, target = next(iter(dataset))  # (10, 2), (1,)
    ```
    """

    DESCRIPTION = "The adding problem (Hochreiter & Schmidhuber, 1997), generated by keras_seq."
    SUPERVISED_KEYS = ("inputs", "target")
    BUILDER_CONFIGS = [
        _config(f"length_{length}", f"Sequences of {length} steps.", sequence_length=length)
        for length in (50, 100, 200, 400)
    ] + [_config("tiny", "10 steps, 64/16/16 examples.", TINY_SPLIT_SIZES, sequence_length=10)]
    DEFAULT_BUILDER_CONFIG_NAME = "length_100"

    def _features(self):
        length = self.builder_config.generator_kwargs["sequence_length"]
        return {
            "inputs": tfds.features.Tensor(shape=(length, 2), dtype=np.float32),
            "target": tfds.features.Tensor(shape=(1,), dtype=np.float32),
        }

    def _arrays(self, num_examples, seed, split):
        inputs, targets = adding_problem_data(
            num_examples, seed=seed, **self.builder_config.generator_kwargs
        )
        return {"inputs": inputs, "target": targets}


class CopyTask(_SyntheticTask):
    """TensorFlow Datasets builder `"copy_task"`: `keras_seq.data.copy_task_data`.

    Configs (8 symbols, 10 to copy; 10,000 / 1,000 / 1,000 examples): `"length_10"`,
    `"length_50"`, `"length_100"` (the default), `"length_200"`: the delay
    `sequence_length`; `"tiny"`: delay 5, 3 symbols to copy, 64 / 16 / 16 examples.

    Features:
        inputs: int32 `(copy_length + sequence_length + copy_length,)`.
        target: int32, the same length.

    Supervised keys `("inputs", "target")`. Split `s` is `copy_task_data(split_sizes[s],
    ..., seed=SPLIT_SEEDS[s])`.
    """

    DESCRIPTION = "The copy-memory task (Arjovsky et al., 2016), generated by keras_seq."
    SUPERVISED_KEYS = ("inputs", "target")
    BUILDER_CONFIGS = [
        _config(
            f"length_{length}",
            f"A delay of {length} steps, 10 of 8 symbols to copy.",
            sequence_length=length,
            num_symbols=8,
            copy_length=10,
        )
        for length in (10, 50, 100, 200)
    ] + [
        _config(
            "tiny",
            "A delay of 5 steps, 3 of 8 symbols to copy, 64/16/16 examples.",
            TINY_SPLIT_SIZES,
            sequence_length=5,
            num_symbols=8,
            copy_length=3,
        )
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "length_100"

    def _features(self):
        kwargs = self.builder_config.generator_kwargs
        length = 2 * kwargs["copy_length"] + kwargs["sequence_length"]
        return {"inputs": _int32_sequence(length), "target": _int32_sequence(length)}

    def _arrays(self, num_examples, seed, split):
        inputs, targets = copy_task_data(
            num_examples, seed=seed, **self.builder_config.generator_kwargs
        )
        return {"inputs": inputs, "target": targets}


class Reversal(_SyntheticTask):
    """TensorFlow Datasets builder `"reversal"`: `keras_seq.data.reversal_data`.

    Configs (10 symbols, lengths uniform from 1; 10,000 / 1,000 / 1,000 examples):
    `"reverse_10"` (the default) and `"reverse_20"`, reversal up to 10 or 20 symbols;
    `"copy_20"`, the copy task of the same module; `"tiny"`: reversal up to 5 symbols,
    64 / 16 / 16 examples.

    Features:
        source: int32 `(max_length,)`, right-padded with 0.
        target_in: int32 `(max_length + 1,)`, the teacher-forcing decoder input.
        target: int32 `(max_length + 1,)`.

    Supervised keys `({"source": "source", "target_in": "target_in"}, "target")`: the
    inputs of a `keras_seq.models.RNNSeq2SeqLM`. Split `s` is `reversal_data(split_sizes[s],
    ..., seed=SPLIT_SEEDS[s])`.
    """

    DESCRIPTION = "Symbol sequences and their reversal (or copy), generated by keras_seq."
    SUPERVISED_KEYS = ({"source": "source", "target_in": "target_in"}, "target")
    BUILDER_CONFIGS = [
        _config(
            f"{task}_{length}",
            f"{task.title()} 1 to {length} of 10 symbols.",
            min_length=1,
            max_length=length,
            num_symbols=10,
            task=task,
        )
        for task, length in (("reverse", 10), ("reverse", 20), ("copy", 20))
    ] + [
        _config(
            "tiny",
            "Reverse 1 to 5 of 10 symbols, 64/16/16 examples.",
            TINY_SPLIT_SIZES,
            min_length=1,
            max_length=5,
            num_symbols=10,
            task="reverse",
        )
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "reverse_10"

    def _features(self):
        length = self.builder_config.generator_kwargs["max_length"]
        return {
            "source": _int32_sequence(length),
            "target_in": _int32_sequence(length + 1),
            "target": _int32_sequence(length + 1),
        }

    def _arrays(self, num_examples, seed, split):
        inputs, targets = reversal_data(
            num_examples, seed=seed, **self.builder_config.generator_kwargs
        )
        return {**inputs, "target": targets}


class DateTranslation(_SyntheticTask):
    """TensorFlow Datasets builder `"date_translation"`: `keras_seq.data.date_translation_data`.

    The training split draws from the training days of `random_dates` (`split="train"`),
    validation and test from its held-out days (`split="test"`, every 10th day, never in
    training in any format), all formats. Configs: `"all_formats"` (the default; 20,000 /
    1,000 / 1,000 examples) and `"tiny"` (64 / 16 / 16).

    Features:
        source: int32 `(DATE_SOURCE_LENGTH,)` (29), the characters of the human-readable date.
        target_in: int32 `(DATE_TARGET_LENGTH,)` (11), the teacher-forcing decoder input.
        target: int32 `(DATE_TARGET_LENGTH,)`, the ISO date's characters and the end token.
        source_text: text, e.g. `"Tuesday, March 3, 1998"`.
        target_text: text, e.g. `"1998-03-03"`.

    Supervised keys `({"source": "source", "target_in": "target_in"}, "target")`. Split
    `s` is `date_translation_data(split_sizes[s], split=..., seed=SPLIT_SEEDS[s])`.
    """

    DESCRIPTION = "Human-readable dates and their ISO 8601 form, generated by keras_seq."
    SUPERVISED_KEYS = ({"source": "source", "target_in": "target_in"}, "target")
    BUILDER_CONFIGS = [
        _config(
            "all_formats",
            "Every format of DATE_FORMATS.",
            {"train": 20_000, "validation": 1_000, "test": 1_000},
        ),
        _config("tiny", "Every format, 64/16/16 examples.", TINY_SPLIT_SIZES),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "all_formats"
    DATE_SPLITS = {"train": "train", "validation": "test", "test": "test"}

    def _features(self):
        return {
            "source": _int32_sequence(DATE_SOURCE_LENGTH),
            "target_in": _int32_sequence(DATE_TARGET_LENGTH),
            "target": _int32_sequence(DATE_TARGET_LENGTH),
            "source_text": tfds.features.Text(),
            "target_text": tfds.features.Text(),
        }

    def _arrays(self, num_examples, seed, split):
        date_split = self.DATE_SPLITS[split]
        inputs, targets = date_translation_data(num_examples, split=date_split, seed=seed)
        sources, iso_dates = random_dates(num_examples, split=date_split, seed=seed)
        return {**inputs, "target": targets, "source_text": sources, "target_text": iso_dates}


class ShapesCaptioning(_SyntheticTask):
    """TensorFlow Datasets builder `"shapes_captioning"`: `keras_seq.data.shapes_captioning_data`.

    Configs (10,000 / 1,000 / 1,000 examples): `"image_32"` (the default; 32x32 images,
    1 to 3 shapes) and `"image_64"` (64x64, 1 to 4 shapes); `"tiny"`: 32x32, 1 to 3
    shapes, 64 / 16 / 16 examples.

    Features:
        image: uint8 `(height, width, 3)`, PNG-encoded (exact: the generated pixels are
            multiples of 1/255).
        caption: text, e.g. `"a circle at the top left and a ring at the center"`.
        target_in: int32 `(shapes_caption_length(max_objects),)`, the teacher-forcing
            decoder input.
        target: int32, the same length: the caption's ids and the end token.

    No supervised keys: the images are uint8, and the captioners
    (`keras_seq.models.RNNImageCaptioner`, `TransformerImageCaptioner`) take floats in
    [0, 1]; map each example with
    `lambda e: ({"images": tf.cast(e["image"], "float32") / 255.0, "target_in":
    e["target_in"]}, e["target"])`, which gives the generator's arrays bit for bit.
    """

    DESCRIPTION = "Synthetic shapes and captions saying where they are, generated by keras_seq."
    BUILDER_CONFIGS = [
        _config("image_32", "32x32 images, 1 to 3 shapes.", image_size=32, max_objects=3),
        _config("image_64", "64x64 images, 1 to 4 shapes.", image_size=64, max_objects=4),
        _config(
            "tiny",
            "32x32, 1 to 3 shapes, 64/16/16.",
            TINY_SPLIT_SIZES,
            image_size=32,
            max_objects=3,
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "image_32"

    def _features(self):
        kwargs = self.builder_config.generator_kwargs
        size, length = kwargs["image_size"], shapes_caption_length(kwargs["max_objects"])
        return {
            "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
            "caption": tfds.features.Text(),
            "target_in": _int32_sequence(length),
            "target": _int32_sequence(length),
        }

    def _arrays(self, num_examples, seed, split):
        kwargs = self.builder_config.generator_kwargs
        images, captions = shapes_captions(num_examples, seed=seed, **kwargs)
        # The arrays of `shapes_captioning_data`, from one call of the image generator.
        target_in, targets = _caption_targets(captions, kwargs["max_objects"])
        images = np.round(images * 255).astype(np.uint8)  # exact: pixels are k / 255
        return {"image": images, "caption": captions, "target_in": target_in, "target": targets}
