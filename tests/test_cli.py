"""Tests for the `keras-seq` command line (keras_seq/cli.py)."""

import json
import os
import platform
import shutil
import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_seq
from keras_seq import cli

INFO_KEYS = [
    "keras_seq",
    "tensorflow",
    "keras",
    "keras_hub",
    "numpy",
    "python",
    "backend",
    "devices",
]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"keras-seq {keras_seq.__version__}"


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: keras-seq")
    assert "info" in out


def test_info_json(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert list(info) == INFO_KEYS
    assert info["keras_seq"] == keras_seq.__version__
    assert info["tensorflow"] == tf.__version__
    assert info["keras"] == keras.__version__
    assert info["keras_hub"] == keras_hub.__version__
    assert info["numpy"] == np.__version__
    assert info["python"] == platform.python_version()
    assert info["backend"] == keras.backend.backend() == "tensorflow"
    expected_devices = [
        {"name": d.name, "device_type": d.device_type} for d in tf.config.list_physical_devices()
    ]
    assert info["devices"] == expected_devices
    assert any(d["device_type"] == "CPU" for d in info["devices"])


def test_info_text_is_aligned(capsys):
    assert cli.main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == INFO_KEYS
    value_columns = {len(line) - len(line.split(None, 1)[1]) for line in lines}
    assert len(value_columns) == 1, lines
    assert f"keras_seq   {keras_seq.__version__}" in lines
    assert "backend     tensorflow" in lines


def test_info_leaves_no_captured_stderr_behind(capfd):
    # `quiet_tensorflow` swaps file descriptor 2; it must be restored afterwards.
    assert cli.main(["info"]) == 0
    os.write(2, b"after info\n")
    assert "after info" in capfd.readouterr().err


def test_quiet_tensorflow_replays_output_on_error(capfd):
    with pytest.raises(RuntimeError, match="boom"):
        with cli.quiet_tensorflow():
            os.write(2, b"explains the failure\n")
            raise RuntimeError("boom")
    assert "explains the failure" in capfd.readouterr().err


@pytest.mark.parametrize(
    "argv, named",
    [
        (["frobnicate"], "frobnicate"),
        (["--bogus"], "--bogus"),
        (["--bogus", "info"], "--bogus"),
        (["info", "--jsn"], "--jsn"),
        ([], "COMMAND"),
    ],
)
def test_usage_errors_exit_2_naming_the_culprit(argv, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: keras-seq" in err
    assert named in err


def test_every_subcommand_has_help(capsys):
    parser = cli.build_parser()
    for name, help_text, *_ in cli._SUBCOMMANDS:
        assert help_text, name
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: keras-seq {name}")


def test_python_dash_m(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_seq", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"keras-seq {keras_seq.__version__}"


def test_console_script_version(tmp_path):
    # Prefer the script next to this interpreter (a venv's bin/), then PATH.
    script = shutil.which("keras-seq", path=os.path.dirname(sys.executable)) or shutil.which(
        "keras-seq"
    )
    if script is None:
        pytest.skip(
            "the `keras-seq` console script is not installed next to this Python or on PATH; "
            "install the package with `pip install -e .` to create it"
        )
    # TF_CPP_MIN_LOG_LEVEL=2 (set by conftest.py) does not hide TensorFlow's start-up lines;
    # the entry point (keras_seq_launcher) imports the package inside a capture that does.
    result = subprocess.run(
        [script, "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"keras-seq {keras_seq.__version__}"
    assert "absl::InitializeLog" not in result.stderr, result.stderr
    assert "I0000" not in result.stderr, result.stderr


def test_launcher_runs_the_command_line(capsys):
    import keras_seq_launcher

    assert keras_seq_launcher.main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["keras_seq"] == keras_seq.__version__
    with pytest.raises(SystemExit) as exit_info:
        keras_seq_launcher.main(["train", "no-such-recipe"])
    assert exit_info.value.code == 2
    assert "no-such-recipe" in capsys.readouterr().err
