"""Tests for the command line's checks of the `.keras` files it is given
(keras_seq/recipes/model_files.py): a directory, a truncated or corrupt archive, a file
changed since `keras-seq train` recorded its SHA-256; and for `keras-seq generate`'s options
checked against the model's vocabulary.
"""

import hashlib
import json
import zipfile

import pytest

from keras_seq import cli
from keras_seq.recipes import model_files


def write_archive(path, config=b'{"class_name": "Model"}'):
    """A zip archive shaped like a .keras file (config.json and a weights member)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", config)
        archive.writestr("model.weights.h5", bytes(range(256)) * 64)
    return path


def exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_sha256_file(tmp_path):
    path = write_archive(tmp_path / "model.keras")
    assert model_files.sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_model_file_problems(tmp_path):
    good = write_archive(tmp_path / "model.keras")
    assert model_files.model_file_problem(good) is None  # no record beside it: loads as before
    (tmp_path / "dir.keras").mkdir()
    assert model_files.model_file_problem(tmp_path / "dir.keras") == (
        "is a directory, expected a .keras file"
    )
    assert model_files.model_file_problem(tmp_path / "none.keras") == "does not exist"
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[:300])
    assert "truncated or corrupt" in model_files.model_file_problem(truncated)
    # One byte of the weights member changed: its CRC no longer matches.
    data = bytearray(good.read_bytes())
    start = data.index(bytes(range(256)))
    data[start + 10] ^= 0xFF
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(bytes(data))
    assert "model.weights.h5 fails its CRC check" in model_files.model_file_problem(corrupt)
    bare = tmp_path / "bare.keras"
    with zipfile.ZipFile(bare, "w") as archive:
        archive.writestr("other.txt", "x")
    assert "holds no config.json" in model_files.model_file_problem(bare)


def test_recorded_sha256_is_checked(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    model = write_archive(run / "model.keras")
    digest = model_files.sha256_file(model)
    (run / "metrics.json").write_text(json.dumps({"sha256": {"model.keras": digest}}))
    assert model_files.recorded_sha256(model) == (str(run / "metrics.json"), digest)
    assert model_files.model_file_problem(model) is None
    # The demo's results.json records its models/ directory's files.
    (tmp_path / "models").mkdir()
    demo_model = write_archive(tmp_path / "models" / "gru_T10.keras")
    record = {"sha256": {"models/gru_T10.keras": "0" * 64}}
    (tmp_path / "results.json").write_text(json.dumps(record))
    assert "does not match the SHA-256" in model_files.model_file_problem(demo_model)
    # A valid archive rewritten after the record: refused, naming the record.
    write_archive(model, config=b'{"class_name": "Other"}')
    problem = model_files.model_file_problem(model)
    assert "does not match the SHA-256 that" in problem and "metrics.json" in problem
    assert digest[:16] in problem


def test_evaluate_predict_generate_refuse_bad_model_files(tmp_path, capsys):
    (tmp_path / "dir.keras").mkdir()
    (tmp_path / "run").mkdir()
    good = write_archive(tmp_path / "run" / "model.keras")
    (tmp_path / "run" / "metrics.json").write_text(
        json.dumps({"sha256": {"model.keras": "f" * 64}})
    )
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[:200])
    (tmp_path / "text.txt").write_text("some text to fine-tune on\n" * 20)
    cases = [
        (
            ["evaluate", str(tmp_path / "dir.keras"), "--data", "x"],
            "is a directory, expected a .keras file",
        ),
        (["predict", str(truncated), "x"], "truncated or corrupt"),
        (["predict", str(good), "x"], "does not match the SHA-256"),
        (["generate", str(truncated), "--prompt", "1"], "truncated or corrupt"),
        (
            ["generate", str(tmp_path / "dir.keras"), "--prompt", "1"],
            "is a directory, expected a .keras file",
        ),
        (
            [
                "train",
                "char-lm",
                "--data",
                str(tmp_path / "text.txt"),
                "--from",
                str(tmp_path / "dir.keras"),
            ],
            "is a directory, expected a .keras file",
        ),
    ]
    for argv, reason in cases:
        err = exit_2(capsys, argv)
        assert reason in err, err
        assert ("argument --from" if argv[0] == "train" else "argument MODEL") in err, err


def test_generate_options_outside_the_vocabulary_exit_2(tmp_path, capsys):
    import keras_seq

    backbone = keras_seq.models.RNNBackbone(vocabulary_size=12, embedding_dim=4, hidden_dim=8)
    keras_seq.models.RNNCausalLM(backbone).save(tmp_path / "lm.keras")
    model = str(tmp_path / "lm.keras")
    cases = [
        (
            ["--prompt", "3", "--strategy", "top_k", "--top-k", "13"],
            "argument --top-k",
            "at most 12. Received: 13",
        ),
        (
            ["--prompt", "3 4", "--prompt", "2 12"],
            "argument --prompt",
            "token id 12 is outside the model's vocabulary (ids 0 to 11). Received: '2 12'",
        ),
        (
            ["--prompt", "3", "--stop-token-id", "12"],
            "argument --stop-token-id",
            "0 to 11. Received: 12",
        ),
    ]
    for options, named, reason in cases:
        err = exit_2(capsys, ["generate", model, *options, "--max-new-tokens", "2"])
        assert named in err and reason in err, err
    # At the limit it generates.
    argv = ["generate", model, "--prompt", "11", "--strategy", "top_k", "--top-k", "12"]
    assert cli.main(argv + ["--max-new-tokens", "2", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.split()) == 3
