"""Tests for the `keras-seq` command line (keras_seq/cli/)."""

import ast
import json
import os
import pathlib
import platform
import re
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
from keras_seq.decoding_options import OPTION_DEFAULTS
from keras_seq.decoding_options import STRATEGIES
from keras_seq.recipes import registry

SETUP_PY = pathlib.Path(__file__).resolve().parents[1] / "setup.py"
HEAVY_MODULES = ("tensorflow", "keras", "numpy")

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


def console_script_entry_point():
    """`(module, function)` of the `keras-seq` console script declared in setup.py."""
    for node in ast.walk(ast.parse(SETUP_PY.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            for line in ast.literal_eval(node.value)["console_scripts"]:
                name, target = (part.strip() for part in line.split("=", 1))
                if name == "keras-seq":
                    module, function = target.split(":")
                    return module, function
    raise AssertionError("setup.py declares no `keras-seq` console script")


def write_console_script(directory):
    """A file named `keras-seq` that does what pip's generated console script does (import the
    entry point, call it), and on exit reports which of `HEAVY_MODULES` were imported."""
    module, function = console_script_entry_point()
    script = directory / "keras-seq"
    script.write_text(
        "import atexit\n"
        "import sys\n"
        f"HEAVY = {HEAVY_MODULES!r}\n"
        "atexit.register(lambda: print('imported:', *[m for m in HEAVY if m in sys.modules],"
        " file=sys.stderr))\n"
        f"from {module} import {function}\n"
        f"sys.exit({function}())\n"
    )
    return script


def imported_heavy_modules(stderr):
    (line,) = [line for line in stderr.splitlines() if line.startswith("imported:")]
    return line.split()[1:]


@pytest.mark.parametrize(
    "argv, code, expected",
    [
        (["--help"], 0, ["usage: keras-seq", "demo", "train", "generate", "info"]),
        (["--version"], 0, [f"keras-seq {keras_seq.__version__}"]),
        (["info", "--help"], 0, ["usage: keras-seq info"]),
        (["demo", "--help"], 0, ["usage: keras-seq demo"]),
        (["train", "--help"], 0, ["usage: keras-seq train", *registry.RECIPES]),
        (["generate", "--help"], 0, ["usage: keras-seq generate", ",".join(STRATEGIES)]),
        (["frobnicate"], 2, ["frobnicate"]),
        (["--bogus"], 2, ["--bogus"]),
        (["train", "char-lm", "--epochs", "x"], 2, ["--epochs", "'x'"]),
        (["generate", "model.keras", "--prompt", "a", "--top-p", "2"], 2, ["--top-p", "'2'"]),
        (["generate", "missing.keras", "--prompt", "a"], 2, ["MODEL", "'missing.keras'"]),
        (["evaluate", "missing.keras", "--data", "a"], 2, ["MODEL", "'missing.keras'"]),
        (["predict", "missing.keras", "a.png"], 2, ["MODEL", "'missing.keras'"]),
        (["generate", "hf://owner", "--prompt", "a"], 2, ["MODEL", "'hf://owner'"]),
        (
            ["generate", "t5_checkpoint", "--prompt", "a"],
            2,
            ["MODEL", "model_type 't5'", "not supported"],
        ),
    ],
)
def test_help_version_and_usage_errors_do_not_import_tensorflow(argv, code, expected, tmp_path):
    # The console script of setup.py, in a fresh process: the package leaves its subpackages
    # (and TensorFlow, Keras, NumPy) out until a subcommand runs.
    (tmp_path / "t5_checkpoint").mkdir()
    (tmp_path / "t5_checkpoint" / "config.json").write_text('{"model_type": "t5"}')
    result = subprocess.run(
        [sys.executable, str(write_console_script(tmp_path)), *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == code, result.stderr
    assert imported_heavy_modules(result.stderr) == [], result.stderr
    for text in expected:
        assert text in result.stdout + result.stderr


def test_a_subcommand_imports_the_library(tmp_path):
    result = subprocess.run(
        [sys.executable, str(write_console_script(tmp_path)), "info", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["keras_seq"] == keras_seq.__version__
    assert imported_heavy_modules(result.stderr) == list(HEAVY_MODULES)
    # The subcommand's imports (TensorFlow's start-up lines) run in `quiet_tensorflow`.
    assert [line for line in result.stderr.splitlines() if not line.startswith("imported:")] == []


def test_python_dash_m(tmp_path):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "keras_seq", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"keras-seq {keras_seq.__version__}"
    # `-X importtime` lists every module imported, one per line: "import time: ... | name".
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "keras_seq.cli" in imported
    assert not imported & set(HEAVY_MODULES), sorted(imported & set(HEAVY_MODULES))


def test_generate_help_shows_the_decoding_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    out = re.sub(r"\s+", " ", capsys.readouterr().out)
    for name, default in OPTION_DEFAULTS.items():
        assert re.search(rf"--{name.replace('_', '-')} \S+ [^()]*\({default}\)", out), name


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
    # `--version` does not import TensorFlow.
    result = subprocess.run(
        [script, "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"keras-seq {keras_seq.__version__}"
    assert "absl::InitializeLog" not in result.stderr, result.stderr
    assert "I0000" not in result.stderr, result.stderr
