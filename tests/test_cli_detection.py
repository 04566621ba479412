"""Tests for `keras-seq train detr-shapes --data DIR ANNOTATIONS.json` (keras_seq/cli/,
keras_seq/recipes/detection_files.py, detr_shapes.py, detection_results.py) and for `keras-seq
evaluate` / `predict` with a detector.

Each test writes a handful of small PNG images and their COCO annotations into `tmp_path`.
"""

import json

import keras
import numpy as np
import pytest

from keras_seq import cli
from keras_seq.recipes import data_files
from keras_seq.recipes import detection_files


def write_detection_data(directory, count=6, categories=((1, "red"), (2, "green"))):
    """`count` PNG images of 20 rows and 24 + i columns, each with one filled box of one
    category; returns the annotations path and its content."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for index in range(count):
        width, height = 24 + index, 20
        pixels = (rng.random((height, width, 3)) * 50).astype("uint8")
        category, _ = categories[index % len(categories)]
        x, y, w, h = 3 + index % 3, 4, 8, 7
        pixels[y : y + h, x : x + w, category % 3] = 230
        keras.utils.save_img(directory / f"{index}.png", pixels, scale=False)
        images.append({"id": index, "file_name": f"{index}.png", "width": width, "height": height})
        annotations.append(
            {"id": 100 + index, "image_id": index, "category_id": category, "bbox": [x, y, w, h]}
        )
    record = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": key, "name": name} for key, name in categories],
    }
    path = directory.parent / "instances.json"
    path.write_text(json.dumps(record))
    return path, record


def exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_read_detection_data(tmp_path):
    path, record = write_detection_data(tmp_path / "images", count=3)
    record["categories"].reverse()  # class order follows the category ids, not the list
    record["annotations"].append(
        {"id": 9, "image_id": 0, "category_id": 2, "bbox": [0, 0, 24, 20], "iscrowd": 1}
    )
    path.write_text(json.dumps(record))
    class_names, images = detection_files.read_detection_data([path, tmp_path / "images"])
    assert class_names == ["red", "green"]
    assert [image["path"] for image in images] == [
        str(tmp_path / "images" / f"{i}.png") for i in range(3)
    ]
    # COCO [x, y, w, h] -> corners; the crowd annotation is left out.
    assert [image["boxes"] for image in images] == [
        [[3, 4, 11, 11]],
        [[4, 4, 12, 11]],
        [[5, 4, 13, 11]],
    ]
    assert [image["labels"] for image in images] == [[0], [1], [0]]


@pytest.mark.parametrize(
    "change, reason",
    [
        (
            lambda r: r["annotations"][1].update(bbox=[20, 4, 8, 7]),
            "outside its image 1.png of 25x20 pixels (annotation id 101)",
        ),
        (
            lambda r: r["annotations"][0].update(bbox=[3, 4, 0, 7]),
            "has a box of width 0 and height 7 in 0.png (annotation id 100)",
        ),
        (
            lambda r: r["annotations"][0].update(bbox=[3, 4, 7]),
            "bbox that is not [x, y, width, height] (annotation id 100)",
        ),
        (
            lambda r: r["annotations"][0].update(category_id=5),
            'category id 5, which "categories" does not list (annotation id 100)',
        ),
        (
            lambda r: r["annotations"][0].update(image_id=50),
            'image id that "images" does not list (annotation id 100)',
        ),
        (
            lambda r: r["images"][0].update(file_name="gone.png"),
            "names the image 'gone.png' (image id 0)",
        ),
        (lambda r: r["images"][0].pop("width"), 'without "id", "file_name", "width" or "height"'),
        (lambda r: r.pop("categories"), 'needs the lists "images", "annotations" and "categories"'),
    ],
)
def test_detection_errors_name_file_and_annotation(change, reason, tmp_path, capsys):
    path, record = write_detection_data(tmp_path / "images", count=2)
    change(record)
    path.write_text(json.dumps(record))
    with pytest.raises(data_files.DataPathError) as error_info:
        detection_files.read_detection_data([tmp_path / "images", path])
    assert reason in error_info.value.reason and error_info.value.path == str(path)
    err = exit_2(capsys, ["train", "detr-shapes", "--data", str(tmp_path / "images"), str(path)])
    assert "argument --data" in err and reason in err, err


def test_detection_arrays_normalize_boxes(tmp_path):
    from keras_seq.layers import ImagePreprocessor
    from keras_seq.recipes import detr_shapes

    path, record = write_detection_data(tmp_path / "images", count=3)
    _, entries = detection_files.read_detection_data([tmp_path / "images", path])
    (tmp_path / "images" / "2.png").write_bytes(b"broken")
    images, targets, skipped = detr_shapes.detection_arrays(
        entries, ImagePreprocessor(image_size=(16, 16), dtype="float32")
    )
    assert images.shape == (2, 16, 16, 3) and 0.0 <= images.min() and images.max() <= 1.0
    assert skipped == [str(tmp_path / "images" / "2.png")]
    for row, image in enumerate(record["images"][:2]):
        x, y, w, h = record["annotations"][row]["bbox"]
        expected = [
            (x + w / 2) / image["width"],
            (y + h / 2) / image["height"],
            w / image["width"],
            h / image["height"],
        ]
        np.testing.assert_allclose(targets["boxes"][row, 0], expected, rtol=1e-6)
    assert targets["labels"].tolist() == [[0], [1]]
    # An image whose size differs from its annotations' is an error naming it.
    record["images"][0]["width"] = 30
    path.write_text(json.dumps(record))
    _, entries = detection_files.read_detection_data([tmp_path / "images", path])
    with pytest.raises(
        data_files.DataPathError, match="is 24x20 pixels; its annotations say 30x20"
    ):
        detr_shapes.detection_arrays(entries, ImagePreprocessor(image_size=(16, 16)))


def test_predict_output_is_checked_before_loading(tmp_path, capsys):
    model_path = tmp_path / "model.keras"
    model_path.write_bytes(b"not loaded")
    (tmp_path / "taken.png").write_bytes(b"mine")
    for output, reason in (
        (tmp_path / "out.txt", "must end in .json"),
        (tmp_path / "taken.json", "taken.png beside it exists"),
    ):
        err = exit_2(capsys, ["predict", str(model_path), "x.png", "--output", str(output)])
        assert "argument --output" in err and reason in err, err
    assert (tmp_path / "taken.png").read_bytes() == b"mine"


@pytest.mark.slow  # two quick DETR runs, evaluate and predict: about 40 s on 2 shared cores
def test_train_detector_on_own_images_then_from(tmp_path, capsys):
    path, record = write_detection_data(tmp_path / "images", count=8)
    argv = ["train", "detr-shapes", "--data", str(tmp_path / "images"), str(path), "--quick"]
    assert cli.main(argv + ["--epochs", "2", "--output-dir", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["details"]["data_images"] == {
        "train": 6,
        "validation": 2,
        "boxes": 8,
        "classes": 2,
        "skipped_images": 0,
    }
    assert metrics["details"]["reload_max_abs_diff"] < 1e-5
    model_path = str(tmp_path / "run" / "model.keras")
    model = keras.saving.load_model(model_path)
    assert model.label_names == ["red", "green"] and model.preprocessor is not None
    # evaluate: the library's COCO mAP on the images through the model's preprocessor.
    argv = ["evaluate", model_path, "--data", str(tmp_path / "images"), str(path), "--json"]
    assert cli.main(argv) == 0
    scores = json.loads(capsys.readouterr().out)
    from keras_seq.metrics import evaluate_detection

    pixels = np.stack(
        [
            np.asarray(
                model.preprocessor(
                    keras.utils.img_to_array(
                        keras.utils.load_img(tmp_path / "images" / f"{i}.png")
                    )[None]
                )
            )[0]
            for i in range(8)
        ]
    )
    boxes = np.asarray(
        [
            [
                [
                    (a["bbox"][0] + a["bbox"][2] / 2) / im["width"],
                    (a["bbox"][1] + a["bbox"][3] / 2) / im["height"],
                    a["bbox"][2] / im["width"],
                    a["bbox"][3] / im["height"],
                ]
            ]
            for a, im in zip(record["annotations"], record["images"])
        ],
        "float32",
    )
    labels = np.asarray([[a["category_id"] - 1] for a in record["annotations"]], "int32")
    expected = evaluate_detection(
        model, (pixels, {"boxes": boxes, "labels": labels}), num_classes=2
    )
    assert scores["examples"] == 8
    for key in ("map", "map_50", "map_75", "mar_100"):
        assert scores[key] == pytest.approx(expected[key], abs=1e-6), key
    # predict: boxes in each image's pixels, the JSON and a PNG beside it.
    images = [str(tmp_path / "images" / "0.png"), str(tmp_path / "images" / "1.png")]
    output = tmp_path / "found.json"
    argv = ["predict", model_path, *images, "--score-threshold", "0.01", "--output", str(output)]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    found = json.loads(output.read_text())
    assert (tmp_path / "found.png").stat().st_size > 0 and len(lines) == 2
    for path_, image, line, result in zip(images, record["images"], lines, found["images"]):
        assert line.split(": ", 1)[0] == path_
        for detection in result["detections"]:
            x0, y0, x1, y1 = detection["box"]
            assert (
                -0.1 <= x0 <= x1 <= image["width"] + 0.1
                and -0.1 <= y0 <= y1 <= image["height"] + 0.1
            )
            assert detection["score"] >= 0.01 and detection["label"] in ("red", "green")
    # --from the saved detector on three categories: a new class head, the backbone kept.
    path3, _ = write_detection_data(
        tmp_path / "three", count=6, categories=((1, "red"), (2, "green"), (3, "blue"))
    )
    argv = ["train", "detr-shapes", "--data", str(tmp_path / "three"), str(path3), "--quick"]
    argv += ["--epochs", "1", "--from", model_path, "--output-dir", str(tmp_path / "tuned")]
    assert cli.main(argv) == 0
    capsys.readouterr()
    tuned = keras.saving.load_model(tmp_path / "tuned" / "model.keras")
    assert tuned.num_classes == 3 and tuned.label_names == ["red", "green", "blue"]
    assert tuned.get_layer("class_head").kernel.shape[-1] == 4


@pytest.mark.slow  # a quick run from a DETR checkpoint: about 80 s on 2 shared cores
def test_train_detector_from_a_checkpoint(tmp_path, capsys):
    import os

    checkpoint = os.path.join(
        os.path.dirname(__file__), "models", "checkpoint_fixtures", "hf_detr_resnet_backbone"
    )
    path, _ = write_detection_data(tmp_path / "images", count=5)
    argv = ["train", "detr-shapes", "--data", str(tmp_path / "images"), str(path), "--quick"]
    argv += ["--epochs", "1", "--from", checkpoint, "--output-dir", str(tmp_path / "run")]
    assert cli.main(argv) == 0
    capsys.readouterr()
    with open(os.path.join(checkpoint, "preprocessor_config.json")) as file:
        preprocessing = json.load(file)
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    # A new head for the two categories, the checkpoint's normalization at a fixed size.
    assert model.num_classes == 2 and model.label_names == ["red", "green"]
    assert model.preprocessor.image_size == (48, 48)
    np.testing.assert_allclose(model.preprocessor.mean, preprocessing["image_mean"], rtol=1e-6)
    np.testing.assert_allclose(model.preprocessor.std, preprocessing["image_std"], rtol=1e-6)
