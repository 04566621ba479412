"""The `shapes_detection` TensorFlow Datasets builder: prepared from local COCO files, loaded
with `tfds.load`, and mapped by `detection_targets` to exactly the generated arrays."""

import ast
import inspect
import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_seq
from keras_seq.data.shapes_detection import SHAPES_CLASSES
from keras_seq.data.shapes_detection import shapes_detection_data
from keras_seq.data.shapes_detection_builder import ShapesDetection
from keras_seq.data.shapes_detection_files import detection_targets
from keras_seq.data.shapes_detection_files import write_shapes_detection_files

KWARGS = {"image_size": 32, "max_objects": 3}
SIZES = {"train": 5, "validation": 3}


@pytest.fixture(scope="module")
def directories(tmp_path_factory):
    """`(manual_dir, data_dir)`, the train and validation files written (seeds 0 and 1)."""
    manual_dir = tmp_path_factory.mktemp("manual")
    for split, num_examples in SIZES.items():
        write_shapes_detection_files(manual_dir, num_examples, split=split, **KWARGS)
    return str(manual_dir), str(tmp_path_factory.mktemp("data"))


def download_config(manual_dir):
    return tfds.download.DownloadConfig(manual_dir=manual_dir)


def as_arrays(dataset):
    """A dataset of `(image, {"boxes", "labels"})` -> NumPy arrays stacked over examples."""
    images, boxes, labels = zip(
        *[(image.numpy(), t["boxes"].numpy(), t["labels"].numpy()) for image, t in dataset]
    )
    return np.stack(images), {"boxes": np.stack(boxes), "labels": np.stack(labels)}


def test_builder_prepares_the_splits_present(directories):
    manual_dir, data_dir = directories
    builder = tfds.builder("shapes_detection", data_dir=data_dir)
    assert isinstance(builder, ShapesDetection) and str(builder.version) == "1.0.0"
    builder.download_and_prepare(download_config=download_config(manual_dir))
    assert {name: split.num_examples for name, split in builder.info.splits.items()} == SIZES
    features = builder.info.features
    assert features["objects"]["label"].names == list(SHAPES_CLASSES)
    assert set(features) == {"image", "image/id", "objects"}
    examples = list(builder.as_dataset(split="train"))
    assert [int(example["image/id"]) for example in examples] == [1, 2, 3, 4, 5]  # in order
    assert examples[0]["image"].dtype == "uint8" and examples[0]["image"].shape == (32, 32, 3)
    bbox = examples[0]["objects"]["bbox"].numpy()  # tfds: (ymin, xmin, ymax, xmax)
    assert (bbox[:, :2] < bbox[:, 2:]).all() and bbox.min() >= 0 and bbox.max() <= 1


@pytest.mark.parametrize("split,seed", [("train", 0), ("validation", 1)])
def test_load_and_map_equal_the_generated_arrays(directories, split, seed):
    manual_dir, data_dir = directories
    dataset = tfds.load(
        "shapes_detection",
        split=split,
        data_dir=data_dir,
        download_and_prepare_kwargs={"download_config": download_config(manual_dir)},
    )
    images, targets = as_arrays(dataset.map(lambda e: detection_targets(e, KWARGS["max_objects"])))
    expected_images, expected = shapes_detection_data(SIZES[split], seed=seed, **KWARGS)
    # Bit for bit: PNG-exact pixels, and the same float32 arithmetic for the boxes.
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(targets["boxes"], expected["boxes"])
    np.testing.assert_array_equal(targets["labels"], expected["labels"])
    assert (expected["labels"] == -1).any() and (expected["labels"] >= 0).any()


def test_missing_files_say_how_to_write_them(tmp_path):
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    builder = tfds.builder("shapes_detection", data_dir=str(tmp_path / "data"))
    # An empty manual directory: tfds's own error, with MANUAL_DOWNLOAD_INSTRUCTIONS.
    with pytest.raises(AssertionError, match="write_shapes_detection_files"):
        builder.download_and_prepare(download_config=download_config(str(manual_dir)))
    (manual_dir / "notes.txt").write_text("no annotations here")
    with pytest.raises(FileNotFoundError, match="No annotations/instances_.*write_shapes"):
        builder.download_and_prepare(download_config=download_config(str(manual_dir)))


def test_keras_seq_data_does_not_import_the_builder():
    """Importing it registers a tfds builder (a side effect) and imports tfds (slow)."""
    data = pathlib.Path(keras_seq.data.__file__).parent
    for path in [data / "__init__.py"] + sorted(data.glob("shapes_detection*.py")):
        if path.name == "shapes_detection_builder.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] + [getattr(node, "module", "")]
                assert not any("shapes_detection_builder" in (n or "") for n in names), path
                assert not any((n or "").startswith("tensorflow_datasets") for n in names), path


def test_docstring_example_runs():
    (code,) = re.findall(r"```python\n(.*?)```", inspect.getdoc(ShapesDetection), re.DOTALL)
    exec(
        compile(code, "ShapesDetection", "exec"), {"np": np, "keras": keras, "keras_seq": keras_seq}
    )
