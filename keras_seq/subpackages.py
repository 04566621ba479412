"""What `import keras_seq` imports, and when: its subpackages, at once or on first use.

Keras finds the classes a `.keras` file names (`"keras_seq>TransformerEncoder"`) only once
the modules that define them have run, so `import keras_seq` imports every subpackage
(`import_subpackages`), and with them Keras and TensorFlow, TensorFlow's start-up lines kept
off stderr (`keras_seq.stderr_capture.quiet_tensorflow_start_up`).

One process is the exception: the `keras-seq` command (`started_as_command`: its console
script, or `python -m keras_seq`), whose `--help`, `--version` and usage errors must answer
without TensorFlow. There `keras_seq/__init__.py` leaves the subpackages out; the first access
to one of them as an attribute (`keras_seq.layers`) imports them all, and `keras_seq.cli`
imports them before a subcommand's work. Any other process, the `keras-seq` command's
subcommands included, sees every class registered. This module imports nothing but the
standard library.
"""

import importlib
import ntpath
import re
import sys

from keras_seq.stderr_capture import quiet_tensorflow_start_up

# What `import keras_seq` imports (and `keras_seq.<name>` refers to). `keras_seq.recipes`,
# behind the command line, is imported where it is used.
SUBPACKAGES = (
    "callbacks",
    "data",
    "generation",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "schedules",
    "testing",
    "utils",
)
COMMAND = "keras-seq"
# The console script's file name: `keras-seq`, or on Windows `keras-seq.exe` or
# `keras-seq-script.py(w)`.
_SCRIPT_NAME = re.compile(re.escape(COMMAND) + r"(\.exe|-script\.pyw?)?", re.IGNORECASE)
_COMMAND_MODULES = ("keras_seq", "keras_seq.cli")


def import_subpackages():
    """Import every subpackage of `SUBPACKAGES` (a no-op once done), TensorFlow's start-up
    lines kept off stderr: afterwards every keras_seq class is registered with Keras."""
    with quiet_tensorflow_start_up():
        for name in SUBPACKAGES:
            importlib.import_module(f"keras_seq.{name}")


def _module_run_with_dash_m(orig_argv):
    """The module of `python [options] -m MODULE ...`, or `None` (call it when
    `sys.argv[0] == "-m"`, which says that `-m` is how Python was started)."""
    for index, argument in enumerate(orig_argv[1:], start=1):
        if argument == "-m":
            return orig_argv[index + 1] if index + 1 < len(orig_argv) else None
        if argument.startswith("-m"):
            return argument[2:]
    return None


def started_as_command(argv=None, orig_argv=None):
    """Whether this process is the `keras-seq` command, as seen while `keras_seq` is imported.

    Args:
        argv: list of str or `None`. `sys.argv` when `None`.
        orig_argv: list of str or `None`. `sys.orig_argv` (the interpreter's command line)
            when `None`.

    Returns:
        bool. `True` for the console script (`sys.argv[0]` names `keras-seq`) and for
        `python -m keras_seq` / `python -m keras_seq.cli` (`sys.argv[0]` is `"-m"` while
        the package is imported).

    Example:
    ```python
    from keras_seq.subpackages import started_as_command

    assert started_as_command(["/venv/bin/keras-seq", "--help"], [])
    assert started_as_command(["-m", "--help"], ["python", "-m", "keras_seq", "--help"])
    assert not started_as_command(["-m"], ["python", "-m", "pytest"])
    assert not started_as_command(["train.py"], ["python", "train.py"])
    ```
    """
    argv = getattr(sys, "argv", []) if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if not argv:
        return False
    if _SCRIPT_NAME.fullmatch(ntpath.basename(argv[0])):  # splits at "/" and "\\"
        return True
    return argv[0] == "-m" and _module_run_with_dash_m(orig_argv) in _COMMAND_MODULES
