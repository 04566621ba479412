"""What `import keras_seq` imports, and when (keras_seq/subpackages.py, keras_seq/__init__.py).

The imports run in fresh processes: this one imported everything long ago.
"""

import os
import subprocess
import sys

import pytest

import keras_seq
from keras_seq.subpackages import SUBPACKAGES
from keras_seq.subpackages import started_as_command

# Run in a fresh process: registration and modules after `import keras_seq`.
PROBE = f"""
import sys

import keras_seq

print("tensorflow" in sys.modules)
print(keras_seq.layers.TransformerEncoder.__name__)
import keras

print(keras.saving.get_registered_object("keras_seq>TransformerEncoder").__name__)
print(all(f"keras_seq.{{name}}" in sys.modules for name in {SUBPACKAGES!r}))
"""


def run(command, cwd):
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    "argv, orig_argv, expected",
    [
        (["/venv/bin/keras-seq", "--help"], ["/venv/bin/python", "/venv/bin/keras-seq"], True),
        ([r"C:\venv\Scripts\keras-seq.exe"], [], True),
        ([r"C:\venv\Scripts\keras-seq-script.py"], [], True),
        (["-m", "--help"], ["python", "-m", "keras_seq", "--help"], True),
        (["-m"], ["python", "-X", "importtime", "-m", "keras_seq.cli"], True),
        (["-m"], ["python", "-mkeras_seq"], True),
        (["-m"], ["python", "-m", "pytest", "keras_seq"], False),
        (["train.py", "-m", "keras_seq"], ["python", "train.py", "-m", "keras_seq"], False),
        (["/venv/bin/keras-seq-other"], [], False),
        (["-c"], ["python", "-c", "import keras_seq"], False),
        ([], [], False),
    ],
)
def test_started_as_command(argv, orig_argv, expected):
    assert started_as_command(argv, orig_argv) is expected


def test_import_keras_seq_imports_every_subpackage():
    # Here: pytest's process, not the command.
    for name in SUBPACKAGES:
        assert f"keras_seq.{name}" in sys.modules
        assert getattr(keras_seq, name) is sys.modules[f"keras_seq.{name}"]
    with pytest.raises(AttributeError, match="no attribute 'no_such_module'"):
        keras_seq.no_such_module  # noqa: B018


def test_subpackages_are_the_package_directories():
    root = os.path.dirname(keras_seq.__file__)
    directories = {
        name for name in os.listdir(root) if os.path.isfile(os.path.join(root, name, "__init__.py"))
    }
    # keras_seq.recipes is behind the command line, imported where it is used; keras_seq.cli
    # is the command line.
    assert set(SUBPACKAGES) == directories - {"recipes", "cli"}


def test_plain_import_registers_every_class(tmp_path):
    result = run([sys.executable, "-c", PROBE], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "TransformerEncoder", "TransformerEncoder", "True"]


def test_command_process_imports_the_subpackages_on_first_use(tmp_path):
    # A process started as `keras-seq` (what `started_as_command` recognises): `import
    # keras_seq` is light, and the first `keras_seq.<subpackage>` imports them all.
    script = tmp_path / "keras-seq"
    script.write_text(PROBE)
    result = run([sys.executable, str(script)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "TransformerEncoder", "TransformerEncoder", "True"]
