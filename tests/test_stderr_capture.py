"""Tests for keras_seq/stderr_capture.py: TensorFlow's start-up lines off stderr.

`import keras_seq` runs in fresh processes (this one imported TensorFlow long ago), with the
environment a user has: conftest.py's `TF_CPP_MIN_LOG_LEVEL` removed.
"""

import os
import subprocess
import sys

import pytest

from keras_seq.stderr_capture import hide_log_lines
from keras_seq.stderr_capture import remove_hidden_log_lines

NOTE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
INFO = "I0000 00:00:1796588311.945531    4956 port.cc:153] oneDNN custom operations are on."
WARNING = "W0000 00:00:1796588311.987294    4956 cuda_dnn.cc:8579] a warning"
ERROR = "E0000 00:00:1796588311.987294    4956 cuda_fft.cc:485] an error"
FATAL = "F0000 00:00:1796588311.987294    4956 main.cc:1] a fatal error"
PYTHON = "/site-packages/x.py:3: UserWarning: a Python warning"
START_UP_LINES = ("absl::InitializeLog", "oneDNN custom operations", "Could not find cuda")
# `import keras_seq` first, then what it left: the log level and a registered class.
PROBE = (
    "import os, keras_seq, keras; "
    "print(os.environ['TF_CPP_MIN_LOG_LEVEL']); "
    "print(keras.saving.get_registered_object('keras_seq>TransformerEncoder').__name__)"
)


def import_keras_seq(tmp_path, log_level):
    """`import keras_seq` in a fresh process, with `TF_CPP_MIN_LOG_LEVEL` unset (`None`)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if log_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = log_level
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize(
    "level, kept",
    [
        (0, [NOTE, INFO, WARNING, ERROR, FATAL, PYTHON]),
        (1, [WARNING, ERROR, FATAL, PYTHON]),
        (2, [ERROR, FATAL, PYTHON]),
        (3, [FATAL, PYTHON]),
        (4, [FATAL, PYTHON]),
    ],
)
def test_remove_hidden_log_lines(level, kept):
    text = "".join(f"{line}\n" for line in (NOTE, INFO, WARNING, ERROR, FATAL, PYTHON))
    assert remove_hidden_log_lines(text, level) == "".join(f"{line}\n" for line in kept)


def test_hide_log_lines_writes_back_the_other_lines(capfd):
    with hide_log_lines(1):
        os.write(2, f"{NOTE}\n{INFO}\n{PYTHON}\n".encode())
        sys.stderr.write("through sys.stderr\n")
    # (Under capfd, sys.stderr may bypass file descriptor 2: the order is not checked.)
    assert sorted(capfd.readouterr().err.splitlines()) == sorted([PYTHON, "through sys.stderr"])


def test_hide_log_lines_writes_back_everything_on_error(capfd):
    with pytest.raises(RuntimeError, match="boom"):
        with hide_log_lines(1):
            os.write(2, f"{INFO}\n".encode())
            raise RuntimeError("boom")
    assert capfd.readouterr().err == f"{INFO}\n"


def test_import_keras_seq_hides_tensorflow_start_up_lines(tmp_path):
    result = import_keras_seq(tmp_path, log_level=None)
    assert result.stdout.split() == ["1", "TransformerEncoder"]
    for text in START_UP_LINES:
        assert text not in result.stderr, result.stderr
    assert not [line for line in result.stderr.splitlines() if line.startswith("I0000")]


def test_import_keras_seq_keeps_the_users_log_level(tmp_path):
    # TF_CPP_MIN_LOG_LEVEL=0 asks for every line: TensorFlow's start-up lines stay.
    result = import_keras_seq(tmp_path, log_level="0")
    assert result.stdout.split() == ["0", "TransformerEncoder"]
    assert any(text in result.stderr for text in START_UP_LINES), result.stderr
