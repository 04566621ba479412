"""Tests for `keras-seq train captioning-shapes --data DIR CAPTIONS` (keras_seq/cli/,
keras_seq/recipes/caption_files.py, caption_data.py, captioning_shapes.py) and for `keras-seq
evaluate` / `predict` with a captioner.

Each test writes its handful of 16x16 images and their captions into `tmp_path`.
"""

import json

import keras
import numpy as np
import pytest

from keras_seq import cli
from keras_seq.recipes import caption_files
from keras_seq.recipes import data_files

CAPTIONS = {"red": "A red square.", "blue": "a blue circle"}


def write_captioned_images(directory, count=6, broken=False):
    """`count` PNG images (red or blue) and the same captions as COCO JSON and TSV; returns
    `(json_path, tsv_path, [(image_path, caption), ...])`."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations, lines, examples = [], [], [], []
    for index in range(count):
        color = "red" if index % 2 == 0 else "blue"
        pixels = (rng.random((16, 16, 3)) * 60).astype("uint8")
        pixels[..., 0 if color == "red" else 2] += 180
        name = f"{index}.png"
        keras.utils.save_img(directory / name, pixels, scale=False)
        images.append({"id": 10 + index, "file_name": name})
        annotations.append({"id": 100 + index, "image_id": 10 + index, "caption": CAPTIONS[color]})
        lines.append(f"{name}\t{CAPTIONS[color]}")
        examples.append((str(directory / name), CAPTIONS[color]))
    if broken:
        (directory / "broken.png").write_bytes(b"not a png")
        lines.append("broken.png\ta broken image")
    json_path = directory.parent / "captions.json"
    json_path.write_text(json.dumps({"images": images, "annotations": annotations}))
    tsv_path = directory.parent / "captions.tsv"
    tsv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return json_path, tsv_path, examples


def exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_read_captions_coco_json_and_tsv(tmp_path):
    json_path, tsv_path, examples = write_captioned_images(tmp_path / "images")
    assert caption_files.read_captions([tmp_path / "images", json_path]) == examples
    assert caption_files.read_captions([tsv_path, tmp_path / "images"]) == examples
    assert caption_files.caption_words("A red square.") == ["a", "red", "square", "."]


@pytest.mark.parametrize(
    "captions, reason",
    [
        (
            {
                "images": [{"id": 1, "file_name": "0.png"}],
                "annotations": [{"id": 7, "image_id": 2, "caption": "x"}],
            },
            'image_id 2, an id that "images" does not list (annotation id 7)',
        ),
        (
            {
                "images": [{"id": 1, "file_name": "0.png"}],
                "annotations": [{"id": 8, "image_id": 1, "caption": " "}],
            },
            "has an empty or missing caption (annotation id 8)",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "gone.png"}],
                "annotations": [{"id": 9, "image_id": 1, "caption": "a"}],
            },
            "names the image 'gone.png' (annotation id 9)",
        ),
        ({"annotations": []}, 'needs the lists "images" and "annotations"'),
        ("0.png\ta cat\n1.png\n", "has no file_name TAB caption on line 2 (captions.tsv:2)"),
        ("0.png\ta cat\n\n1.png\t  \n", "has an empty caption on line 3 (captions.tsv:3)"),
    ],
)
def test_caption_errors_name_file_and_entry(captions, reason, tmp_path, capsys):
    write_captioned_images(tmp_path / "images", count=2)
    if isinstance(captions, dict):
        path = tmp_path / "captions.json"
        path.write_text(json.dumps(captions))
    else:
        path = tmp_path / "captions.tsv"
        path.write_text(captions)
    with pytest.raises(data_files.DataPathError) as error_info:
        caption_files.read_captions([tmp_path / "images", path])
    assert reason in error_info.value.reason and error_info.value.path == str(path)
    # The command refuses it before training: exit 2 naming --data and the entry.
    err = exit_2(
        capsys, ["train", "captioning-shapes", "--data", str(tmp_path / "images"), str(path)]
    )
    assert "argument --data" in err and reason in err, err


def test_caption_data_layout_errors_exit_2(tmp_path, capsys):
    json_path, _, _ = write_captioned_images(tmp_path / "images", count=2)
    images = str(tmp_path / "images")
    cases = [
        ([images], "must be one image directory and one captions file (.json or .tsv)"),
        ([images, images], "must be one image directory and one captions file"),
        ([images, str(tmp_path / "none.json")], "does not exist"),
        (
            [images, str(tmp_path / "images" / "0.png")],
            "must be a captions file ending in .json or .tsv",
        ),
    ]
    for data, reason in cases:
        err = exit_2(capsys, ["train", "captioning-shapes", "--data", *data])
        assert "argument --data" in err and reason in err, err
    # One captioned image cannot be split into training and validation.
    one = {
        "images": [{"id": 1, "file_name": "0.png"}],
        "annotations": [{"image_id": 1, "caption": "a"}] * 3,
    }
    json_path.write_text(json.dumps(one))
    err = exit_2(capsys, ["train", "captioning-shapes", "--data", images, str(json_path)])
    assert "captions 1 image" in err


def test_caption_vocabulary(tmp_path):
    from keras_seq.recipes.caption_data import CaptionVocabulary

    vocabulary = CaptionVocabulary.from_captions(["a red square .", "a blue square", "A red"])
    # Most frequent first, ties in order of first use, after <pad> <start> <end> <unk>.
    assert vocabulary.tokens == [
        "<pad>",
        "<start>",
        "<end>",
        "<unk>",
        "a",
        "red",
        "square",
        ".",
        "blue",
    ]
    assert vocabulary.max_new_tokens == 5  # four words and <end>
    ids, cut = vocabulary.encode(["A green square", "a red square . a"])
    assert ids.tolist() == [[4, 3, 6, 2, 0], [4, 5, 6, 7, 4]] and cut == 1
    assert vocabulary.decode([[1, 4, 5, 2, 8]]) == ["a red"]
    vocabulary.write(tmp_path / "v.json")
    again = CaptionVocabulary.read(tmp_path / "v.json")
    assert again.tokens == vocabulary.tokens and again.max_new_tokens == 5
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json is not a caption_vocabulary.json"):
        CaptionVocabulary.read(tmp_path / "bad.json")


def saved_captioner(directory, examples):
    import keras_seq
    from keras_seq.recipes import captioning_shapes
    from keras_seq.recipes.caption_data import CaptionVocabulary

    vocabulary = CaptionVocabulary.from_captions([caption for _, caption in examples])
    model = keras_seq.models.TransformerImageCaptioner(
        captioning_shapes._backbone(quick=True, image_size=16),
        vocabulary_size=len(vocabulary),
        hidden_dim=8,
        num_layers=1,
        num_heads=2,
        intermediate_dim=8,
        dropout=0.0,
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    vocabulary.write(directory / "caption_vocabulary.json")
    return model, vocabulary


@pytest.mark.slow  # builds, saves, reloads and decodes with a captioner: about 9 s
def test_evaluate_and_predict_a_captioner(tmp_path, capsys):
    json_path, _, examples = write_captioned_images(tmp_path / "images", count=4)
    model, vocabulary = saved_captioner(tmp_path / "run", examples)
    model_path = str(tmp_path / "run" / "model.keras")
    argv = ["evaluate", model_path, "--data", str(tmp_path / "images"), str(json_path), "--json"]
    assert cli.main(argv) == 0
    scores = json.loads(capsys.readouterr().out)
    # Reference: Keras' masked cross-entropy on the same images (16x16 PNGs: no resizing).
    pixels = np.stack([keras.utils.load_img(path) for path, _ in examples]).astype("float32") / 255
    targets, _ = vocabulary.encode([caption for _, caption in examples])
    target_in = np.concatenate([np.ones((len(targets), 1), "int32"), targets[:, :-1]], axis=1)
    logits = model({"images": pixels, "target_in": target_in})
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    expected = float(loss(targets, logits))
    assert scores["task"] == "captioner" and scores["examples"] == 4
    assert scores["loss"] == pytest.approx(expected, rel=1e-4)
    assert scores["perplexity"] == pytest.approx(np.exp(expected), rel=1e-4)
    generated = np.asarray(
        model.generate(pixels, targets.shape[1], stop_token_id=2, jit_compile=False)
    )
    assert scores["word_accuracy"] == pytest.approx(np.mean((generated == targets)[targets > 0]))
    # predict: one greedy caption per image.
    paths = [path for path, _ in examples[:2]]
    assert cli.main(["predict", model_path, *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{path}: {caption}" for path, caption in zip(paths, vocabulary.decode(generated[:2]))
    ]
    # Errors: --top-k, and a captioner without its vocabulary.
    err = exit_2(capsys, ["predict", model_path, paths[0], "--top-k", "2"])
    assert "argument --top-k" in err
    (tmp_path / "run" / "caption_vocabulary.json").unlink()
    err = exit_2(capsys, ["predict", model_path, paths[0]])
    assert "argument MODEL" in err and "caption_vocabulary.json" in err


@pytest.mark.slow  # two quick captioning runs: about 60 s on 2 shared cores
def test_train_captioner_on_own_images_then_from(tmp_path, capsys):
    json_path, tsv_path, examples = write_captioned_images(
        tmp_path / "images", count=8, broken=True
    )
    argv = ["train", "captioning-shapes", "--data", str(tmp_path / "images"), str(tsv_path)]
    argv += ["--quick", "--output-dir", str(tmp_path / "run")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped 1 unreadable image: broken.png" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    details = metrics["details"]
    assert details["data_captions"]["skipped_images"] == 1
    assert details["data_captions"]["train"] + details["data_captions"]["validation"] == 8
    assert details["reload_max_abs_diff"] < 1e-5
    vocabulary = json.loads((tmp_path / "run" / "caption_vocabulary.json").read_text())
    # The words of the readable images' captions only (not the broken image's).
    assert sorted(vocabulary["words"]) == sorted({".", "a", "blue", "circle", "red", "square"})
    assert metrics["held_out"]["perplexity"] > 1.0
    # --from the saved captioner, on the COCO JSON: same vocabulary, same weights' shapes.
    argv = ["train", "captioning-shapes", "--data", str(tmp_path / "images"), str(json_path)]
    argv += ["--quick", "--from", str(tmp_path / "run" / "model.keras")]
    assert cli.main(argv + ["--output-dir", str(tmp_path / "tuned")]) == 0
    capsys.readouterr()
    tuned = json.loads((tmp_path / "tuned" / "caption_vocabulary.json").read_text())
    assert tuned == vocabulary
    base = keras.saving.load_model(tmp_path / "run" / "model.keras").get_weights()
    weights = keras.saving.load_model(tmp_path / "tuned" / "model.keras").get_weights()
    assert [w.shape for w in weights] == [w.shape for w in base]
    assert any(not np.array_equal(a, b) for a, b in zip(weights, base))
