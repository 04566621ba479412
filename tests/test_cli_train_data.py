"""Tests for `keras-seq train --data` (keras_seq/cli.py) on the user's own files, and the
modules that find and stream them (keras_seq/recipes/data_files.py, text_data.py).

Each test writes its tiny data set into `tmp_path`; the end-to-end runs go through `cli.main`
with `--quick` and recompute the recorded scores from the saved model.
"""

import json
import math
import os

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
    assert metrics["options"]["data"] == [
        str(tmp_path / "corpus" / "a.txt"),
        str(tmp_path / "corpus" / "b.txt"),
    ]
    # The vocabulary is the data's, saved beside the model.
    vocabulary = json.loads((output_dir / "vocabulary.json").read_text())
    assert vocabulary["source"]["characters"] == sorted(set("".join(texts)))
    assert "vocabulary.json" in metrics["files"]
    # The held-out perplexity is the validation windows', recomputed from the saved model.
    windows = text_data.CharWindows(metrics["options"]["data"], 32)
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
    with pytest.raises(ValueError, match="`data` is not taken by recipe 'detr-shapes'"):
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


def test_train_data_on_a_recipe_without_it_exits_2(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("some text")
    err = usage_error(capsys, ["train", "detr-shapes", "--data", str(tmp_path / "a.txt")])
    assert "argument --data" in err and "detr-shapes" in err and "char-lm" in err


def test_train_help_shows_data(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--data PATH" in out and "char-lm --data" in out
