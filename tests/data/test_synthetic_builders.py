"""The generated-data TensorFlow Datasets builders: `tfds.load` into a local `data_dir` gives the
generators' arrays bit for bit, with the documented split sizes, seeds and features."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_seq.data.date_translation import DATE_SOURCE_LENGTH
from keras_seq.data.date_translation import DATE_TARGET_LENGTH
from keras_seq.data.date_translation import date_translation_data
from keras_seq.data.date_translation import random_dates
from keras_seq.data.long_range_tasks import adding_problem_data
from keras_seq.data.long_range_tasks import copy_task_data
from keras_seq.data.reversal import reversal_data
from keras_seq.data.shapes_captioning import shapes_captioning_data
from keras_seq.data.shapes_captioning import shapes_captions
from keras_seq.data.synthetic_builders import SPLIT_SEEDS
from keras_seq.data.synthetic_builders import SPLIT_SIZES
from keras_seq.data.synthetic_builders import TINY_SPLIT_SIZES
from keras_seq.data.synthetic_builders import AddingProblem
from keras_seq.data.synthetic_builders import CopyTask
from keras_seq.data.synthetic_builders import DateTranslation
from keras_seq.data.synthetic_builders import Reversal
from keras_seq.data.synthetic_builders import ShapesCaptioning

SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def load(name, split, data_dir, **kwargs):
    """All examples of a split, stacked: `{feature: array}` (or `(inputs, target)` arrays)."""
    dataset = tfds.load(name, split=split, data_dir=data_dir, **kwargs)
    examples = list(tfds.as_numpy(dataset))
    return tf.nest.map_structure(lambda *values: np.stack(values), *examples)


def assert_identical(actual, expected):
    """Same structure, and arrays equal bit for bit with the same dtype."""
    tf.nest.assert_same_structure(actual, expected)
    for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected)):
        assert a.dtype == e.dtype, (a.dtype, e.dtype)
        np.testing.assert_array_equal(a, e)


def test_registered_names_configs_and_split_sizes():
    expected = {
        AddingProblem: ("adding_problem", "length_100"),
        CopyTask: ("copy_task", "length_100"),
        Reversal: ("reversal", "reverse_10"),
        DateTranslation: ("date_translation", "all_formats"),
        ShapesCaptioning: ("shapes_captioning", "image_32"),
    }
    registered = set(tfds.list_builders(with_community_datasets=False))
    for builder_class, (name, default) in expected.items():
        assert builder_class.name == name and name in registered
        assert builder_class.DEFAULT_BUILDER_CONFIG_NAME == default
        configs = {config.name: config for config in builder_class.BUILDER_CONFIGS}
        assert default in configs and configs["tiny"].split_sizes == TINY_SPLIT_SIZES
        assert SPLIT_SEEDS == {"train": 0, "validation": 1, "test": 2}
        for config_name, config in configs.items():
            if config_name == "tiny":
                continue
            if builder_class is DateTranslation:
                assert config.split_sizes == {"train": 20_000, "validation": 1_000, "test": 1_000}
            else:
                assert config.split_sizes == SPLIT_SIZES
    assert "shapes_detection" not in expected  # its own module, with manual files


def test_adding_problem(data_dir):
    builder = tfds.builder("adding_problem/tiny", data_dir=data_dir)
    builder.download_and_prepare()
    assert {s: builder.info.splits[s].num_examples for s in SPLITS} == TINY_SPLIT_SIZES
    features = builder.info.features
    assert features["inputs"].shape == (10, 2) and features["inputs"].dtype == tf.float32
    assert features["target"].shape == (1,) and features["target"].dtype == tf.float32
    for split in SPLITS:
        actual = load("adding_problem/tiny", split, data_dir, as_supervised=True)
        expected = adding_problem_data(TINY_SPLIT_SIZES[split], 10, seed=SPLIT_SEEDS[split])
        assert_identical(actual, expected)


def test_copy_task(data_dir):
    builder = tfds.builder("copy_task/tiny", data_dir=data_dir)
    builder.download_and_prepare()
    assert {s: builder.info.splits[s].num_examples for s in SPLITS} == TINY_SPLIT_SIZES
    assert builder.info.features["inputs"].shape == (11,)  # 3 + 5 + 3
    assert builder.info.features["target"].dtype == tf.int32
    for split in SPLITS:
        actual = load("copy_task/tiny", split, data_dir)
        expected = copy_task_data(
            TINY_SPLIT_SIZES[split], 5, num_symbols=8, copy_length=3, seed=SPLIT_SEEDS[split]
        )
        assert_identical(actual, {"inputs": expected[0], "target": expected[1]})


def test_reversal(data_dir):
    builder = tfds.builder("reversal/tiny", data_dir=data_dir)
    builder.download_and_prepare()
    assert {s: builder.info.splits[s].num_examples for s in SPLITS} == TINY_SPLIT_SIZES
    features = builder.info.features
    assert features["source"].shape == (5,) and features["target"].shape == (6,)
    for split in SPLITS:
        # as_supervised: the nested `({"source", "target_in"}, target)` of the generator.
        actual = load("reversal/tiny", split, data_dir, as_supervised=True)
        expected = reversal_data(
            TINY_SPLIT_SIZES[split], min_length=1, max_length=5, seed=SPLIT_SEEDS[split]
        )
        assert_identical(actual, expected)


def test_date_translation(data_dir):
    builder = tfds.builder("date_translation/tiny", data_dir=data_dir)
    builder.download_and_prepare()
    assert {s: builder.info.splits[s].num_examples for s in SPLITS} == TINY_SPLIT_SIZES
    features = builder.info.features
    assert features["source"].shape == (DATE_SOURCE_LENGTH,)
    assert features["target_in"].shape == (DATE_TARGET_LENGTH,)
    date_splits = {"train": "train", "validation": "test", "test": "test"}
    for split in SPLITS:
        num_examples, seed = TINY_SPLIT_SIZES[split], SPLIT_SEEDS[split]
        actual = load("date_translation/tiny", split, data_dir)
        inputs, targets = date_translation_data(num_examples, split=date_splits[split], seed=seed)
        sources, iso_dates = random_dates(num_examples, split=date_splits[split], seed=seed)
        assert [text.decode() for text in actual.pop("source_text")] == sources
        assert [text.decode() for text in actual.pop("target_text")] == iso_dates
        assert_identical(actual, {**inputs, "target": targets})
    # Held-out days: validation and test dates are every 10th day, never in training.
    for split in ("validation", "test"):
        texts = load("date_translation/tiny", split, data_dir)["target_text"]
        ordinals = [np.datetime64(t.decode(), "D").astype(int) for t in texts]  # days from 1970
        assert all((ordinal + 719163) % 10 == 0 for ordinal in ordinals)  # proleptic ordinal


def test_shapes_captioning(data_dir):
    builder = tfds.builder("shapes_captioning/tiny", data_dir=data_dir)
    builder.download_and_prepare()
    assert {s: builder.info.splits[s].num_examples for s in SPLITS} == TINY_SPLIT_SIZES
    features = builder.info.features
    assert features["image"].shape == (32, 32, 3) and features["target"].shape == (21,)

    def to_model_inputs(example):  # the map the builder's docstring gives
        images = tf.cast(example["image"], "float32") / 255.0
        return {"images": images, "target_in": example["target_in"]}, example["target"]

    for split in ("train", "test"):
        num_examples, seed = TINY_SPLIT_SIZES[split], SPLIT_SEEDS[split]
        dataset = tfds.load("shapes_captioning/tiny", split=split, data_dir=data_dir)
        actual = [tfds.as_numpy(example) for example in dataset.map(to_model_inputs)]
        actual = tf.nest.map_structure(lambda *values: np.stack(values), *actual)
        assert_identical(actual, shapes_captioning_data(num_examples, seed=seed))
        captions = load("shapes_captioning/tiny", split, data_dir)["caption"]
        assert [c.decode() for c in captions] == shapes_captions(num_examples, seed=seed)[1]


def test_reloading_a_prepared_data_dir_does_not_regenerate(data_dir):
    builder = tfds.builder("copy_task/tiny", data_dir=data_dir)
    builder.download_and_prepare()
    first = load("copy_task/tiny", "test", data_dir)
    # A new builder over the same directory reads the prepared files (it is complete).
    assert tfds.builder("copy_task/tiny", data_dir=data_dir).is_prepared()
    assert_identical(load("copy_task/tiny", "test", data_dir), first)
