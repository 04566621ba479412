"""Tests for `keras-seq train --data` (keras_seq/cli/) on the user's own files, and the
modules that find and stream them (keras_seq/recipes/data_files.py, text_data.py).

Each test writes its tiny data set into `tmp_path`; the end-to-end runs go through `cli.main`
with `--quick` and recompute the recorded scores from the saved model.
"""

import json
import math
import os
import shutil

import keras
import numpy as np
import pytest

from keras_seq import cli
from keras_seq.recipes import data_files
from keras_seq.recipes import text_data
from keras_seq.recipes.runner import train_recipe

WORDS = ("alpha", "beta", "gamma", "délta", "zeta")


def write_text(path, num_lines, seed=0):
    """A few lines of random words (one non-ASCII character among them); returns the text."""
    rng = np.random.default_rng(seed)
    text = "\n".join(" ".join(rng.choice(WORDS, size=6)) for _ in range(num_lines)) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def expected_windows(texts, vocabulary, length):
    """Windows of L + 1 characters overlapping by one, per text, with NumPy."""
    rows = []
    for text in texts:
        ids = [vocabulary.token_id(character) for character in text]
        for start in range(0, (len(ids) - 1) // length * length, length):
            rows.append(ids[start : start + length + 1])
    return np.asarray(rows, "int32")


def usage_error(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: keras-seq train" in err
    return err


# --- finding the files ---------------------------------------------------------------------


def test_text_files_takes_files_and_directories_in_order(tmp_path):
    write_text(tmp_path / "corpus" / "b.txt", 2)
    write_text(tmp_path / "corpus" / "a" / "z.txt", 2)
    write_text(tmp_path / "corpus" / "notes.md", 2)
    write_text(tmp_path / "single.text", 2)
    files = data_files.text_files([tmp_path / "single.text", tmp_path / "corpus"])
    relative = [os.path.relpath(path, tmp_path) for path in files]
    assert relative == [
        "single.text",
        os.path.join("corpus", "a", "z.txt"),
        os.path.join("corpus", "b.txt"),
    ]
    assert data_files.text_files(str(tmp_path / "single.text")) == [str(tmp_path / "single.text")]


@pytest.mark.parametrize(
    "layout, culprit, reason",
    [
        ({"empty.txt": ""}, "empty.txt", "is empty"),
        ({"dir/empty.txt": "", "dir/full.txt": "abc"}, "dir/empty.txt", "is empty"),
        ({"dir/notes.md": "abc"}, "dir", "holds no .txt file"),
        ({}, "missing.txt", "does not exist"),
    ],
)
def test_text_files_errors_name_the_path(layout, culprit, reason, tmp_path):
    for name, text in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "dir").mkdir(exist_ok=True)
    given = culprit.split("/")[0]
    with pytest.raises(data_files.DataPathError, match="`data`") as error_info:
        data_files.text_files(tmp_path / given)
    assert error_info.value.path == str(tmp_path / culprit)
    assert reason in error_info.value.reason
    assert repr(str(tmp_path / culprit)) in str(error_info.value)


# --- streaming the text ---------------------------------------------------------------------


def test_char_windows_vocabulary_split_and_shuffle(tmp_path):
    texts = [write_text(tmp_path / "a.txt", 12, seed=1), write_text(tmp_path / "b.txt", 9, 2)]
    length = 16
    windows = text_data.CharWindows([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], length)
    assert windows.vocabulary.characters == sorted(set("".join(texts)))
    assert windows.vocabulary.special_tokens == []
    expected = expected_windows(texts, windows.vocabulary, length)
    validation_rows = expected[:: text_data.VALIDATION_EVERY]
    train_rows = np.delete(expected, np.s_[:: text_data.VALIDATION_EVERY], axis=0)
    assert (windows.num_train, windows.num_validation) == (len(train_rows), len(validation_rows))

    batches = list(windows.validation(4, lambda ids: ids).as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), validation_rows[:, :-1])
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), validation_rows[:, 1:])
    np.testing.assert_array_equal(windows.validation_inputs(2), validation_rows[:2, :-1])

    def epoch(seed):
        dataset = windows.train(8, seed, lambda ids: {"token_ids": ids})
        return np.concatenate([x["token_ids"] for x, _ in dataset.as_numpy_iterator()])

    first = epoch(seed=3)
    assert len(first) == windows.steps_per_epoch(8) * 8 == len(train_rows) // 8 * 8
    assert windows.train(8, 0, lambda ids: ids).cardinality() == len(train_rows) // 8
    assert windows.validation(4, lambda ids: ids).cardinality() == len(batches)
    # Every training window once at most, from the training set only; the seed fixes the order.
    train_set = {tuple(row) for row in train_rows[:, :-1]}
    assert {tuple(row) for row in first} <= train_set and len({tuple(r) for r in first}) == len(
        first
    )
    np.testing.assert_array_equal(first, epoch(seed=3))
    assert not np.array_equal(first, epoch(seed=4))


def test_char_windows_errors_name_the_file(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ole\n".encode("latin-1") * 10)
    with pytest.raises(data_files.DataPathError, match="not UTF-8") as error_info:
        text_data.CharWindows([str(tmp_path / "latin1.txt")], 8)
    assert error_info.value.path == str(tmp_path / "latin1.txt")
    (tmp_path / "short.txt").write_text("just a few words")
    with pytest.raises(data_files.DataPathError, match="too little text") as error_info:
        text_data.CharWindows([str(tmp_path / "short.txt")], 32)
    assert str(tmp_path / "short.txt") in str(error_info.value)


# --- the command line -----------------------------------------------------------------------


@pytest.mark.slow  # a quick char-lm run with its plots and samples: about 3 s
@pytest.mark.parametrize("model_name", ["rnn", "gpt"])
def test_train_char_lm_on_own_text(model_name, tmp_path, capsys):
    texts = [
        write_text(tmp_path / "corpus" / f"{name}.txt", 15, seed)
        for seed, name in [(0, "a"), (1, "b")]
    ]
    output_dir = tmp_path / "run"
    argv = ["train", "char-lm", "--model", model_name, "--data", str(tmp_path / "corpus")]
    assert cli.main([*argv, "--quick", "--output-dir", str(output_dir)]) == 0
    out = capsys.readouterr().out
    assert "held-out: perplexity" in out
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["options"]["data"] == [str(tmp_path / "corpus")]
    assert metrics["details"]["data_files"] == 2
    # The vocabulary is the data's, saved beside the model.
    vocabulary = json.loads((output_dir / "vocabulary.json").read_text())
    assert vocabulary["source"]["characters"] == sorted(set("".join(texts)))
    assert "vocabulary.json" in metrics["files"]
    # The held-out perplexity is the validation windows', recomputed from the saved model.
    windows = text_data.CharWindows(data_files.text_files(tmp_path / "corpus"), 32)
    rows = expected_windows(texts, windows.vocabulary, 32)[:: text_data.VALIDATION_EVERY]
    assert metrics["details"]["data_windows"]["validation"] == len(rows)
    model = keras.saving.load_model(output_dir / "model.keras")
    inputs = rows[:, :-1]
    if model_name == "gpt":
        inputs = {"token_ids": inputs, "padding_mask": np.ones_like(inputs)}
    logits = np.asarray(model.predict(inputs, verbose=0), "float64")
    logits -= logits.max(axis=-1, keepdims=True)
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probabilities, rows[:, 1:, None], axis=-1)
    assert metrics["held_out"]["perplexity"] == pytest.approx(math.exp(-picked.mean()), rel=1e-4)
    # `keras-seq generate` reads the saved vocabulary, non-ASCII characters included.
    assert cli.main(["generate", str(output_dir / "model.keras"), "--prompt", "dél"]) == 0
    assert capsys.readouterr().out.startswith("dél")


def test_train_recipe_data_option(tmp_path):
    with pytest.raises(ValueError, match="`data`: the path must be one image directory and one"):
        train_recipe("detr-shapes", output_dir=tmp_path / "out", data=tmp_path)
    with pytest.raises(ValueError, match="`data`: the path does not exist"):
        train_recipe("char-lm", output_dir=tmp_path / "out", data=tmp_path / "missing.txt")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "layout, given, culprit, reason",
    [
        ({"empty.txt": ""}, "empty.txt", "empty.txt", "is empty"),
        ({"corpus/notes.md": "x"}, "corpus", "corpus", "holds no .txt file"),
        ({}, "nothing.txt", "nothing.txt", "does not exist"),
        ({"short.txt": "too short"}, "short.txt", "short.txt", "holds too little text"),
        ({"latin1.txt": b"caf\xe9\n" * 40}, "latin1.txt", "latin1.txt", "is not UTF-8 text"),
    ],
)
def test_train_data_errors_exit_2_naming_the_path(layout, given, culprit, reason, tmp_path, capsys):
    for name, content in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content)
    argv = ["train", "char-lm", "--quick", "--data", str(tmp_path / given)]
    err = usage_error(capsys, [*argv, "--output-dir", str(tmp_path / "run")])
    assert "argument --data" in err and reason in err and repr(str(tmp_path / culprit)) in err


def test_every_recipe_takes_data_of_its_kind(tmp_path, capsys):
    from keras_seq.recipes import registry

    assert registry.recipes_with_data() == list(registry.RECIPES)
    (tmp_path / "a.txt").write_text("some text")
    err = usage_error(capsys, ["train", "detr-shapes", "--data", str(tmp_path / "a.txt")])
    assert "argument --data" in err and "one annotations file (.json)" in err


def test_train_help_shows_data(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--data PATH" in out and "char-lm --data" in out


# --- output directories that hold a run -----------------------------------------------------


class _InterruptAfter(keras.callbacks.Callback):
    """Keeps the history and weights at the end of epoch `epochs`, then raises
    KeyboardInterrupt."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            self.weights = self.model.get_weights()
            raise KeyboardInterrupt


def fake_run(output_dir, backup=False):
    """An output directory as a run leaves it: finished, or interrupted (with a backup)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "model.keras").write_bytes(b"previous model")
    (output_dir / "metrics.json").write_text(
        '{"recipe": "char-lm", "model": "rnn", "files": ["model.keras", "metrics.json"]}'
    )
    if backup:
        (output_dir / "backup").mkdir()
        (output_dir / "backup" / "training_metadata.json").write_text('{"epoch": 1}')


@pytest.mark.parametrize(
    "backup, options, named, expected",
    [
        (False, [], "--output-dir", "already holds a previous run"),
        (True, [], "--output-dir", "already holds a previous run"),
        (False, ["--resume"], "--resume", "there is nothing to resume"),
        (None, ["--resume"], "--resume", "holds no run to resume"),
        (False, ["--resume", "--overwrite"], "--resume", "not allowed with argument --overwrite"),
        (True, ["--resume", "--model", "gpt"], "--resume", "trains recipe char-lm with model rnn"),
    ],
)
def test_train_refuses_a_directory_holding_a_run(
    backup, options, named, expected, tmp_path, capsys
):
    output_dir = tmp_path / "run"
    if backup is None:
        output_dir.mkdir()
    else:
        fake_run(output_dir, backup)
    argv = ["train", "char-lm", "--quick", "--output-dir", str(output_dir), *options]
    err = usage_error(capsys, argv)
    assert f"argument {named}" in err and expected in err
    if not options:
        assert "--overwrite" in err and "--resume" in err and repr(str(output_dir)) in err
    if backup is not None:
        assert (output_dir / "model.keras").read_bytes() == b"previous model"  # untouched


def test_train_output_dir_empty_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = usage_error(capsys, ["train", "char-lm", "--quick", "--output-dir", ""])
    assert "argument --output-dir: the path is empty. Received: ''" in err
    assert os.listdir(tmp_path) == []  # not the default directory


def test_train_recipe_refuses_a_directory_holding_a_run(tmp_path):
    fake_run(tmp_path / "run")
    with pytest.raises(ValueError, match="`output_dir`.*overwrite=True.*resume=True"):
        train_recipe("char-lm", output_dir=tmp_path / "run", quick=True)
    with pytest.raises(ValueError, match="`resume`.*nothing to resume.*Received: resume=True"):
        train_recipe("char-lm", output_dir=tmp_path / "run", quick=True, resume=True)
    with pytest.raises(ValueError, match="`overwrite` and `resume` exclude each other"):
        train_recipe("char-lm", output_dir=tmp_path, overwrite=True, resume=True)
    with pytest.raises(ValueError, match="`resume` must be a bool"):
        train_recipe("char-lm", output_dir=tmp_path, resume="yes")
    assert (tmp_path / "run" / "model.keras").read_bytes() == b"previous model"


@pytest.mark.slow  # three quick char-lm runs: about 8 s
def test_resume_continues_an_interrupted_run_and_overwrite_replaces(tmp_path, capsys):
    output_dir = tmp_path / "run"
    interrupt = _InterruptAfter(2)
    with pytest.raises(KeyboardInterrupt):
        train_recipe("char-lm", output_dir=output_dir, epochs=3, quick=True, callbacks=[interrupt])
    first = json.loads((output_dir / "metrics.json").read_text())
    assert first["status"] == "interrupted" and first["epochs_completed"] == 2
    assert (output_dir / "backup").is_dir()

    # --resume: the third epoch starts from the backup of the second (weights and optimizer).
    argv = ["train", "char-lm", "--quick", "--epochs", "3", "--output-dir", str(output_dir)]
    assert cli.main([*argv, "--resume"]) == 0
    assert "resuming after epoch 2" in capsys.readouterr().out
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 3
    assert metrics["details"]["resumed_from_epoch"] == 2
    assert metrics["history"]["loss"][:2] == first["history"]["loss"]
    assert len(metrics["history"]["loss"]) == len(metrics["history"]["val_loss"]) == 3
    assert not (output_dir / "backup").exists()  # deleted once the run completed
    model = keras.saving.load_model(output_dir / "model.keras")
    steps = int(model.optimizer.iterations) // 3
    assert steps >= 1 and int(model.optimizer.iterations) == 3 * steps
    assert len(glob_runs(output_dir)) == 2  # TensorBoard: one subdirectory per run

    # A completed run is refused, then replaced with --overwrite.
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert "--overwrite" in capsys.readouterr().err
    argv = ["train", "char-lm", "--quick", "--epochs", "1", "--output-dir", str(output_dir)]
    assert cli.main([*argv, "--overwrite"]) == 0
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and "resumed_from_epoch" not in metrics["details"]
    assert int(keras.saving.load_model(output_dir / "model.keras").optimizer.iterations) == steps


def glob_runs(output_dir):
    return sorted((output_dir / "logs").glob("run-*"))


# --- images ---------------------------------------------------------------------------------

CLASSES = ("circle", "square", "stripes")


def write_images(directory, per_class, seed=0, gray=False, classes=CLASSES):
    """PNG images of a few sizes, one sub-directory per class (the class brightens one
    channel); returns `{path: uint8 array}`."""
    rng = np.random.default_rng(seed)
    images = {}
    for index, name in enumerate(classes):
        (directory / name).mkdir(parents=True, exist_ok=True)
        for number in range(per_class):
            shape = (20 + number, 24, 1 if gray else 3)
            pixels = (rng.random(shape) * 80).astype("uint8")
            pixels[..., index % shape[-1]] += 150
            path = directory / name / f"{number}.png"
            keras.utils.save_img(path, pixels, scale=False)
            images[str(path)] = pixels
    return images


@pytest.mark.parametrize(
    "layout, given, culprit, reason",
    [
        (["only/a.png"], ".", ".", "holds 1 class sub-directories"),
        (["a/1.png", "b/notes.txt"], ".", "b", "holds no image"),
        ([], "missing", "missing", "does not exist"),
        (["a/1.png", "b/1.png"], "a/1.png", "a/1.png", "is not a directory"),
    ],
)
def test_image_folders_errors_name_the_path(layout, given, culprit, reason, tmp_path):
    for name in layout:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(data_files.DataPathError, match=reason) as error_info:
        data_files.image_folders(os.path.join(tmp_path, given))
    assert os.path.normpath(error_info.value.path) == os.path.normpath(tmp_path / culprit)


def test_image_folders_pipeline(tmp_path):
    from keras_seq.recipes import image_data

    images = write_images(tmp_path / "train", per_class=5, gray=True)
    folders = image_data.ImageFolders(tmp_path / "train", image_size=16, seed=1)
    assert folders.class_names == list(CLASSES)
    assert folders.channels == 1 and folders.image_shape == (16, 16, 1)
    assert (folders.num_train, folders.num_validation) == (12, 3)  # a fifth validates
    pixels, labels = folders.validation_arrays()
    assert pixels.shape == (3, 16, 16, 1) and pixels.dtype == "float32"
    # The pipeline's pixels are what the model's preprocessor makes of the raw image.
    files, _ = folders._validation
    raw = images[files[0]][None]
    np.testing.assert_allclose(pixels[0], np.asarray(folders.preprocessor(raw))[0], atol=1e-6)
    assert labels[0] == CLASSES.index(os.path.basename(os.path.dirname(files[0])))
    # The split follows the seed; training batches are full and reshuffled with the seed.
    other = image_data.ImageFolders(tmp_path / "train", image_size=16, seed=2)
    assert other._validation != folders._validation
    batches = list(folders.train(5, seed=0).as_numpy_iterator())
    assert [len(y) for _, y in batches] == [5, 5]


def test_image_folders_skip_unreadable_images_with_a_warning(tmp_path, caplog):
    from keras_seq.recipes import image_data

    images = write_images(tmp_path / "train", per_class=2)
    (tmp_path / "train" / "square" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "train" / "circle" / "empty.jpg").write_bytes(b"")
    with caplog.at_level("WARNING", logger="keras_seq.recipes"):
        folders = image_data.ImageFolders(tmp_path / "train", validation_split=1.0)
    assert "skipped 2 unreadable images: empty.jpg, broken.png" in caplog.text
    assert sorted(folders._validation[0]) == sorted(images)
    assert [os.path.basename(path) for path in folders.skipped] == ["empty.jpg", "broken.png"]
    # A class left without a readable image is an error naming its directory.
    for path in (tmp_path / "train" / "circle").glob("*.png"):
        path.unlink()
    with pytest.raises(data_files.DataPathError, match="holds no readable image") as error_info:
        image_data.ImageFolders(tmp_path / "train", validation_split=1.0)
    assert error_info.value.path == str(tmp_path / "train" / "circle")
    # Nothing readable at all: an error naming the first file.
    for path in (tmp_path / "train").glob("*/*.png"):
        path.write_bytes(b"x")
    with pytest.raises(data_files.DataPathError, match="is not a readable image"):
        image_data.ImageFolders(tmp_path / "train")
    for path in (tmp_path / "train").glob("*/*"):
        path.unlink()
    write_images(tmp_path / "train", per_class=2)
    write_images(tmp_path / "validation", per_class=1, classes=("circle", "square"))
    with pytest.raises(data_files.DataPathError, match="must be the same") as error_info:
        image_data.ImageFolders(tmp_path / "train", tmp_path / "validation")
    assert error_info.value.path == str(tmp_path / "validation")


@pytest.mark.slow  # two quick image classifier runs: about 8 s
@pytest.mark.parametrize("recipe", ["vit-digits", "swin-digits"])
def test_train_image_classifier_on_own_images(recipe, tmp_path, capsys):
    write_images(tmp_path / "train", per_class=6, seed=0)
    validation = write_images(tmp_path / "validation", per_class=2, seed=1)
    output_dir = tmp_path / "run"
    argv = ["train", recipe, "--data", str(tmp_path / "train"), "--quick"]
    argv += ["--validation-data", str(tmp_path / "validation"), "--output-dir", str(output_dir)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "held-out: accuracy" in out
    assert f"predict: keras-seq predict {output_dir / 'model.keras'} IMAGE" in out
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["options"]["data"] == str(tmp_path / "train")
    assert metrics["options"]["validation_data"] == str(tmp_path / "validation")
    assert metrics["details"]["data_images"] == {"train": 18, "validation": 6, "classes": 3}
    assert metrics["details"]["reload_max_abs_diff"] == 0.0
    assert {"predictions.png", "confusion_matrix.png"} <= set(metrics["files"])
    # The class names and the preprocessing are saved with the model: it classifies raw
    # images of any size, and its held-out accuracy is the recorded one.
    model = keras.saving.load_model(output_dir / "model.keras")
    assert model.label_names == list(CLASSES)
    correct = [
        model.classify(pixels[None])[0][0][0] == os.path.basename(os.path.dirname(path))
        for path, pixels in validation.items()
    ]
    assert metrics["held_out"]["accuracy"] == pytest.approx(np.mean(correct))


@pytest.mark.parametrize(
    "argv, named, expected",
    [
        (["vit-digits", "--data", "train", "train"], "--data", "takes one directory"),
        (["vit-digits", "--data", "train/circle"], "--data", "holds 0 class"),
        (["char-lm", "--validation-data", "train"], "--validation-data", "only for"),
        (["vit-digits", "--validation-data", "train"], "--validation-data", "with --data"),
        (["swin-digits", "--data", "broken"], "--data", "broken/b/1.png"),
    ],
)
def test_train_image_data_errors_exit_2(argv, named, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "train", per_class=1)
    for name in ("a", "b"):
        (tmp_path / "broken" / name).mkdir(parents=True)
        (tmp_path / "broken" / name / "1.png").write_bytes(b"\x89PNG truncated")
    err = usage_error(capsys, ["train", *argv, "--quick", "--output-dir", "run"])
    assert f"argument {named}" in err and expected in err


# --- fine-tuning a model: --from --------------------------------------------------------------


def tiny_classifier(kind="vit", num_classes=3, label_names=None):
    import keras_seq

    if kind == "vit":
        backbone = keras_seq.models.ViTBackbone(
            image_shape=(16, 16, 3),
            patch_size=8,
            num_layers=1,
            hidden_dim=8,
            num_heads=2,
            intermediate_dim=16,
        )
        model = keras_seq.models.ViTImageClassifier(
            backbone, num_classes=num_classes, label_names=label_names
        )
    else:
        backbone = keras_seq.models.SwinBackbone(
            image_shape=(16, 16, 3),
            patch_size=4,
            hidden_dim=8,
            num_layers=(1,),
            num_heads=(1,),
            window_size=4,
        )
        model = keras_seq.models.SwinImageClassifier(backbone, num_classes=num_classes)
    # Non-zero head weights, so that kept weights are told apart from a new (zero) head.
    for weight in model.get_layer("head").weights:
        weight.assign(np.random.default_rng(0).normal(size=weight.shape))
    return model


def tiny_char_lm(directory, characters="abcdefgh \n"):
    """An RNNCausalLM saved as `keras-seq train char-lm` saves it (vocabulary.json beside)."""
    import keras_seq
    from keras_seq.recipes import vocabulary_file

    vocabulary = keras_seq.data.CharVocabulary(characters, special_tokens=())
    backbone = keras_seq.models.RNNBackbone(
        vocabulary_size=len(vocabulary), embedding_dim=4, hidden_dim=8
    )
    directory.mkdir(parents=True, exist_ok=True)
    keras_seq.models.RNNCausalLM(backbone).save(directory / "model.keras")
    vocabulary_file.write_vocabulary_file(directory / "vocabulary.json", vocabulary)
    return directory / "model.keras"


@pytest.mark.parametrize("num_classes", [3, 2])
def test_fine_tuning_model_keeps_the_backbone_and_the_head_that_fits(num_classes):
    from keras_seq.layers import ImagePreprocessor
    from keras_seq.recipes import digits_classification

    base = tiny_classifier(num_classes=3)
    names = ["x", "y", "z"][:num_classes]
    preprocessor = ImagePreprocessor(image_size=(16, 16))
    model = digits_classification.fine_tuning_model(base, num_classes, names, preprocessor)
    assert type(model) is type(base) and model.backbone is base.backbone
    assert model.label_names == names and model.preprocessor is preprocessor
    assert model.get_config()["pooling"] == base.get_config()["pooling"]
    head = model.get_layer("head").get_weights()
    if num_classes == 3:  # the same classes: the head is kept
        for kept, old in zip(head, base.get_layer("head").get_weights()):
            np.testing.assert_array_equal(kept, old)
    else:  # a new, zero-initialized head of 2 classes
        assert head[0].shape == (8, 2) and not np.any(head[0])


def test_from_model_of_another_class_is_an_error(tmp_path):
    from keras_seq.models import ViTImageClassifier
    from keras_seq.recipes import digits_classification

    tiny_classifier("swin").save(tmp_path / "swin.keras")
    with pytest.raises(data_files.FromModelError, match="holds a SwinImageClassifier"):
        digits_classification.load_base_model(
            ViTImageClassifier, str(tmp_path / "swin.keras"), 3, None
        )


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["char-lm", "--from", "base/model.keras"], "needs data to fine-tune on"),
        (["char-lm", "--data", "a.txt", "--from", "nothing.keras"], "does not exist"),
        (["char-lm", "--data", "a.txt", "--from", "lonely.keras"], "has no vocabulary.json"),
        (["char-lm", "--data", "a.txt", "--from", "hf://owner/gpt"], "must be a .keras file"),
        (["detr-shapes", "--from", "base/model.keras"], "needs data to fine-tune on"),
        (["vit-digits", "--data", "images", "--from", "swin.keras"], "holds a SwinImage"),
        (["seq2seq-attention", "--data", "p.tsv", "--from", "s2s/model.keras"], "outside the"),
        (["seq2seq-attention", "--data", "p.tsv", "--from", "hf://a/b"], "must be a .keras"),
        (["char-lm", "--data", "b.txt", "--from", "base/model.keras"], "outside the model's"),
    ],
)
def test_train_from_errors_exit_2(argv, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_char_lm(tmp_path / "base")
    shutil.copy(tmp_path / "base" / "model.keras", tmp_path / "lonely.keras")  # no vocabulary
    (tmp_path / "a.txt").write_text("abc " * 40)
    (tmp_path / "b.txt").write_text("abc " * 40 + "XYZ")
    write_images(tmp_path / "images", per_class=1)
    tiny_classifier("swin").save(tmp_path / "swin.keras")
    saved_seq2seq(tmp_path / "s2s")
    write_pairs(tmp_path / "p.tsv", [("one", "un"), ("two", "DEUX")])
    err = usage_error(capsys, ["train", *argv, "--quick", "--output-dir", "run"])
    named = "--data" if "outside" in expected else "--from"
    assert f"argument {named}" in err and expected in err
    if "b.txt" in argv:
        assert "['X', 'Y', 'Z']" in err and repr("b.txt") in err


@pytest.mark.slow  # two quick runs: about 6 s
def test_train_from_a_keras_model(tmp_path, capsys):
    # An image classifier: a new head for 2 classes; the base's image size (16) is kept.
    base = tiny_classifier(num_classes=3)
    base.save(tmp_path / "base.keras")
    write_images(tmp_path / "images", per_class=5, classes=("cat", "dog"))
    argv = ["train", "vit-digits", "--data", str(tmp_path / "images"), "--quick"]
    argv += ["--from", str(tmp_path / "base.keras"), "--output-dir", str(tmp_path / "vit")]
    assert cli.main(argv) == 0
    metrics = json.loads((tmp_path / "vit" / "metrics.json").read_text())
    assert metrics["options"]["from_model"] == str(tmp_path / "base.keras")
    model = keras.saving.load_model(tmp_path / "vit" / "model.keras")
    assert model.label_names == ["cat", "dog"] and model.num_classes == 2
    assert tuple(model.backbone.image_shape) == (16, 16, 3)
    assert tuple(model.preprocessor.image_size) == (16, 16)
    assert len(model.classify(np.zeros((1, 40, 30, 3), "uint8"))[0]) == 1

    # A character language model: the base's vocabulary, fine-tuned on new text.
    text = "abc defg h\n" * 20
    (tmp_path / "text.txt").write_text(text)
    base_path = tiny_char_lm(tmp_path / "lm")
    base_weights = keras.saving.load_model(base_path).get_weights()
    argv = ["train", "char-lm", "--data", str(tmp_path / "text.txt"), "--quick"]
    argv += ["--from", str(base_path), "--output-dir", str(tmp_path / "tuned")]
    assert cli.main(argv) == 0
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert metrics["details"]["from_model_class"] == "RNNCausalLM"
    saved = json.loads((tmp_path / "tuned" / "vocabulary.json").read_text())
    assert saved["source"]["characters"] == list("abcdefgh \n")  # the base's, not re-derived
    tuned = keras.saving.load_model(tmp_path / "tuned" / "model.keras")
    assert [w.shape for w in tuned.get_weights()] == [w.shape for w in base_weights]
    assert not all(np.array_equal(a, b) for a, b in zip(tuned.get_weights(), base_weights))


def test_from_a_preset_directory_puts_a_new_head_on_its_backbone(tmp_path):
    from keras_seq.models import ViTImageClassifier
    from keras_seq.recipes import digits_classification

    base = tiny_classifier(num_classes=3)
    base.save_to_preset(str(tmp_path / "preset"))
    model = digits_classification.load_base_model(
        ViTImageClassifier, str(tmp_path / "preset"), 2, ["cat", "dog"]
    )
    assert model.num_classes == 2 and model.label_names == ["cat", "dog"]
    for loaded, saved in zip(model.backbone.get_weights(), base.backbone.get_weights()):
        np.testing.assert_array_equal(loaded, saved)


# --- seq2seq pairs --------------------------------------------------------------------------

NUMBERS = [
    ("one", "un"), ("two", "deux"), ("three", "trois"), ("four", "quatre"), ("five", "cinq"),
    ("six", "six"), ("seven", "sept"), ("eight", "huit"), ("nine", "neuf"), ("ten", "dix"),
    ("eleven", "onze"), ("twelve", "douze"),
]  # fmt: skip


def write_pairs(path, pairs=NUMBERS):
    path.write_text("".join(f"{source}\t{target}\n" for source, target in pairs))
    return path


def test_read_pairs(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("a b\tc\td\r\n\n   \nx\ty\n")
    assert data_files.read_pairs([path]) == [("a b", "c\td"), ("x", "y")]  # the first tab splits
    for text, reason in (
        ("a\tb\nno tab here\n", "has no tab on line 2"),
        ("a\tb\n\nc\t\n", "has an empty target on line 3"),
        ("\tb\n", "has an empty source on line 1"),
    ):
        path.write_text(text)
        with pytest.raises(data_files.DataPathError, match=reason) as error_info:
            data_files.read_pairs(path)
        assert error_info.value.path == str(path)


def test_pairs_data():
    from keras_seq.recipes import seq2seq_attention

    train, validation, (source, target), source_length = seq2seq_attention.pairs_data(NUMBERS)
    assert source.characters == sorted(set("".join(s for s, _ in NUMBERS)))
    assert target.special_tokens == ["<start>", "<end>"]
    assert source_length == len("eleven")
    # Every tenth pair validates: "one" and "eleven".
    assert source.decode(validation[0]["source"]) == ["one", "eleven"]
    assert target.decode(validation[1]) == ["un", "onze"]
    assert len(train[1]) == 10 and train[1].shape[1] == len("quatre") + 1
    np.testing.assert_array_equal(train[0]["target_in"][:, 0], target.start_id)
    shifted = np.where(train[1][:, :-1] == target.end_id, 0, train[1][:, :-1])  # no <end> input
    np.testing.assert_array_equal(train[0]["target_in"][:, 1:], shifted)


@pytest.mark.parametrize(
    "content, reason",
    [
        ("a\tb\nbad line\nc\td\n", "has no tab on line 2"),
        ("a\tb\n", "holds 1 pair(s)"),
        (None, "holds no .tsv file"),
    ],
)
def test_train_pairs_errors_exit_2_naming_file_and_line(content, reason, tmp_path, capsys):
    if content is None:
        path = tmp_path / "corpus"
        path.mkdir()
        (path / "pairs.txt").write_text("a\tb\n")
    else:
        path = tmp_path / "pairs.tsv"
        path.write_text(content)
    argv = ["train", "seq2seq-attention", "--data", str(path), "--quick"]
    err = usage_error(capsys, [*argv, "--output-dir", str(tmp_path / "run")])
    assert "argument --data" in err and reason in err and repr(str(path)) in err


@pytest.mark.slow  # a quick seq2seq run: about 4 s
def test_train_seq2seq_on_own_pairs(tmp_path, capsys):
    write_pairs(tmp_path / "pairs.tsv")
    output_dir = tmp_path / "run"
    argv = ["train", "seq2seq-attention", "--data", str(tmp_path / "pairs.tsv"), "--quick"]
    assert cli.main([*argv, "--output-dir", str(output_dir)]) == 0
    assert "held-out: exact_match" in capsys.readouterr().out
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["details"]["data_pairs"] == {"train": 10, "validation": 2}
    vocabulary = json.loads((output_dir / "vocabulary.json").read_text())
    assert vocabulary["source_length"] == len("eleven") and vocabulary["stop_token_id"] == 2
    assert vocabulary["max_new_tokens"] == len("quatre") + 1
    # The held-out exact match, recomputed from the saved model on the validation pairs.
    from keras_seq.recipes import seq2seq_attention

    _, (inputs, targets), _, _ = seq2seq_attention.pairs_data(NUMBERS)
    model = keras.saving.load_model(output_dir / "model.keras")
    generated = np.asarray(
        model.generate(inputs["source"], targets.shape[1], stop_token_id=2, jit_compile=False)
    )
    assert metrics["held_out"]["exact_match"] == pytest.approx(
        np.mean(np.all(generated == targets, axis=1))
    )
    # `keras-seq generate` translates with the saved vocabularies.
    assert cli.main(["generate", str(output_dir / "model.keras"), "--prompt", "one"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    # --from: fine-tune the saved model, with its vocabularies, on pairs.
    argv = ["train", "seq2seq-attention", "--data", str(tmp_path / "pairs.tsv"), "--quick"]
    argv += ["--from", str(output_dir / "model.keras"), "--output-dir", str(tmp_path / "tuned")]
    assert cli.main(argv) == 0
    tuned = json.loads((tmp_path / "tuned" / "vocabulary.json").read_text())
    assert tuned["source"] == vocabulary["source"] and tuned["target"] == vocabulary["target"]
    assert tuned["source_length"] == vocabulary["source_length"]
    base = keras.saving.load_model(output_dir / "model.keras").get_weights()
    weights = keras.saving.load_model(tmp_path / "tuned" / "model.keras").get_weights()
    assert [w.shape for w in weights] == [w.shape for w in base]


# --- keras-seq evaluate / predict -------------------------------------------------------------


def saved_image_classifier(directory):
    from keras_seq.layers import ImagePreprocessor

    model = tiny_classifier(num_classes=3)
    model = type(model)(
        model.backbone,
        num_classes=3,
        label_names=list(CLASSES),
        preprocessor=ImagePreprocessor(image_size=(16, 16)),
    )
    for weight in model.get_layer("head").weights:
        weight.assign(np.random.default_rng(1).normal(size=weight.shape))
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    return model


def saved_seq2seq(directory):
    import keras_seq
    from keras_seq.recipes import seq2seq_attention
    from keras_seq.recipes import vocabulary_file

    _, _, (source, target), source_length = seq2seq_attention.pairs_data(NUMBERS)
    backbone = keras_seq.models.RNNSeq2SeqBackbone(
        source_vocabulary_size=len(source),
        target_vocabulary_size=len(target),
        embedding_dim=4,
        hidden_dim=8,
        attention="bahdanau",
    )
    model = keras_seq.models.RNNSeq2SeqLM(backbone, start_token_id=target.start_id)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    vocabulary_file.write_vocabulary_file(
        directory / "vocabulary.json",
        source,
        target,
        source_length=source_length,
        stop_token_id=target.end_id,
        max_new_tokens=7,
    )
    return model, source, target


def command_output(capsys, argv):
    assert cli.main(argv) == 0
    return capsys.readouterr().out


def test_evaluate_and_predict_an_image_classifier(tmp_path, capsys):
    model = saved_image_classifier(tmp_path / "run")
    images = write_images(tmp_path / "val", per_class=2, seed=3)
    model_path = str(tmp_path / "run" / "model.keras")
    out = command_output(
        capsys, ["evaluate", model_path, "--data", str(tmp_path / "val"), "--json"]
    )
    scores = json.loads(out)
    assert scores["task"] == "image_classifier" and scores["examples"] == 6
    assert scores["skipped_images"] == 0
    best = {path: model.classify(pixels[None], top_k=3)[0] for path, pixels in images.items()}
    truth = {path: os.path.basename(os.path.dirname(path)) for path in images}
    assert scores["accuracy"] == pytest.approx(np.mean([best[p][0][0] == truth[p] for p in images]))
    assert scores["top_3_accuracy"] == 1.0
    # predict: the top-k classes of raw images (any size), with the model's class names.
    paths = list(images)[:2]
    lines = command_output(capsys, ["predict", model_path, *paths, "--top-k", "2"]).splitlines()
    expected = [
        f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in best[path][:2]) for path in paths
    ]
    assert lines == expected


def test_evaluate_a_language_model(tmp_path, capsys):
    model_path = tiny_char_lm(tmp_path / "run")
    text = "abc defg h\n" * 30
    (tmp_path / "text.txt").write_text(text)
    out = command_output(capsys, ["evaluate", str(model_path), "--data", str(tmp_path), "--json"])
    scores = json.loads(out)
    # The perplexity of every window of 64, recomputed with NumPy.
    from keras_seq.data import CharVocabulary

    vocabulary = CharVocabulary("abcdefgh \n", special_tokens=())
    windows = expected_windows([text], vocabulary, 64)
    model = keras.saving.load_model(model_path)
    logits = np.asarray(model.predict(windows[:, :-1], verbose=0), "float64")
    logits -= logits.max(axis=-1, keepdims=True)
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probabilities, windows[:, 1:, None], axis=-1)
    assert scores["examples"] == len(windows)
    assert scores["perplexity"] == pytest.approx(math.exp(-picked.mean()), rel=1e-4)


def test_predict_with_a_language_model(tmp_path, capsys):
    from keras_seq.data import CharVocabulary

    model_path = tiny_char_lm(tmp_path / "run")
    vocabulary = CharVocabulary("abcdefgh \n", special_tokens=())
    model = keras.saving.load_model(model_path)
    lines = command_output(
        capsys, ["predict", str(model_path), "abc", "h", "--max-new-tokens", "5"]
    ).splitlines()
    expected = model.generate(vocabulary.encode(["abc"]), 5, jit_compile=False)
    assert lines[0] == vocabulary.decode(np.asarray(expected))[0] and len(lines) == 2


def test_evaluate_a_seq2seq_model(tmp_path, capsys):
    model, source, target = saved_seq2seq(tmp_path / "run")
    write_pairs(tmp_path / "pairs.tsv")
    model_path = str(tmp_path / "run" / "model.keras")
    argv = ["evaluate", model_path, "--data", str(tmp_path / "pairs.tsv"), "--json"]
    scores = json.loads(command_output(capsys, argv))
    assert scores["task"] == "seq2seq" and scores["examples"] == len(NUMBERS)
    sources = source.encode([s for s, _ in NUMBERS], length=len("eleven"))
    targets = target.encode([t for _, t in NUMBERS], length=7, add_end=True)
    generated = np.asarray(model.generate(sources, 7, stop_token_id=2, jit_compile=False))
    assert scores["exact_match"] == pytest.approx(np.mean(np.all(generated == targets, axis=1)))
    assert scores["character_accuracy"] == pytest.approx(
        np.mean((generated == targets)[targets > 0])
    )


def test_predict_with_a_seq2seq_model(tmp_path, capsys):
    model, source, target = saved_seq2seq(tmp_path / "run")
    sources = source.encode(["one", "two"], length=len("eleven"))
    generated = np.asarray(model.generate(sources, 7, stop_token_id=2, jit_compile=False))
    model_path = str(tmp_path / "run" / "model.keras")
    lines = command_output(capsys, ["predict", model_path, "one", "two"]).splitlines()
    assert lines == target.decode(generated)


def test_evaluate_and_predict_errors_exit_2(tmp_path, capsys):
    saved_image_classifier(tmp_path / "images")
    write_images(tmp_path / "zoo", per_class=1, classes=("circle", "zebra"))
    model, _, _ = saved_seq2seq(tmp_path / "s2s")
    (tmp_path / "bad.tsv").write_text("one\tun\ntwo deux\n")
    (tmp_path / "lonely").mkdir()
    model.save(tmp_path / "lonely" / "model.keras")
    images = str(tmp_path / "images" / "model.keras")
    cases = [
        (["evaluate", str(tmp_path / "none.keras"), "--data", "x"], "argument MODEL", "does not"),
        (["evaluate", images, "--data", str(tmp_path / "zoo")], "--data", "zebra"),
        (
            [
                "evaluate",
                str(tmp_path / "s2s" / "model.keras"),
                "--data",
                str(tmp_path / "bad.tsv"),
            ],
            "--data",
            "has no tab on line 2",
        ),
        (["predict", str(tmp_path / "lonely" / "model.keras"), "x"], "MODEL", "vocabulary.json"),
        (["predict", images, str(tmp_path / "bad.tsv")], "INPUTS", "not a readable image"),
        (["predict", images, "x.png", "--top-k", "4"], "--top-k", "has 3 classes"),
        (["predict", str(tmp_path / "s2s" / "model.keras"), "ONE"], "INPUTS", "outside"),
    ]
    for argv, named, expected in cases:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"usage: keras-seq {argv[0]}" in err, err
        assert named in err and expected in err, err
