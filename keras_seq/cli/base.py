"""What the subcommands of `keras-seq` share: their registration (`subcommand`, `argument`),
the `UsageError` that `main` reports as `argparse` does, the option types, and the blocks that
hide TensorFlow's log lines and show the recipes' progress.

Standard library only (with `keras_seq.stderr_capture`): `--help` imports it.
"""

import argparse
import contextlib
import logging
import math
import sys

from keras_seq.stderr_capture import quiet_stderr

PROG = "keras-seq"

# (name, help, description, arguments, function) per subcommand, in declaration order.
_SUBCOMMANDS = []


def argument(*flags, **kwargs):
    """One argument for `subcommand(arguments=[...])`: the arguments of `add_argument`."""
    return flags, kwargs


def subcommand(name, help, arguments=(), description=None):
    """Register the decorated function `fn(args) -> int` as the subcommand `name`.

    `help` is the one-line summary in `keras-seq --help`; `description` (default: `help`) heads
    `keras-seq NAME --help`; `arguments` is a list of `argument(...)`.
    """

    def decorator(function):
        _SUBCOMMANDS.append((name, help, description or help, tuple(arguments), function))
        return function

    return decorator


class UsageError(Exception):
    """A bad option found by a subcommand after parsing: `main` reports it as `argparse`
    does (the subcommand's usage, the message, exit code 2). The message should start with
    `argument --option:` and end with the value received."""


class BackendError(Exception):
    """A subcommand that cannot run on the Keras backend in use (`KERAS_BACKEND`): `main`
    prints the message, which names the backend and what needs another, and exits with 1."""


def keras_backend_line():
    """`Keras backend: NAME`, the line a subcommand starts its output with (imports Keras)."""
    import keras

    return f"Keras backend: {keras.backend.backend()}"


def require_tensorflow_backend(what, reason):
    """Raise `BackendError` unless Keras runs on TensorFlow: `what` (e.g. `keras-seq train
    char-lm`) needs it for `reason` (what in it is TensorFlow's own). Imports Keras."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise BackendError(
            f"{what} needs the TensorFlow backend: {reason}. Received: KERAS_BACKEND="
            f"{backend!r}. Run it with KERAS_BACKEND=tensorflow."
        )


def _number_type(convert, accept, requirement):
    """An `argparse` type: `convert(text)` when `accept` takes it, else an error saying
    what it `must be` and the text received."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}. Received: {text!r}")
        return value

    return parse


positive_int = _number_type(int, lambda value: value >= 1, "a positive integer")
non_negative_int = _number_type(int, lambda value: value >= 0, "a non-negative integer")
positive_float = _number_type(float, lambda value: 0.0 < value < float("inf"), "a positive number")
probability = _number_type(float, lambda value: 0.0 < value <= 1.0, "a number in (0, 1]")
finite_float = _number_type(float, math.isfinite, "a finite number")


# Hides TensorFlow's C++ log lines written inside the block unless it raises (see its
# docstring).
quiet_tensorflow = quiet_stderr


@contextlib.contextmanager
def progress_to_stdout():
    """Show the recipes' progress lines (`logging` INFO of `keras_seq.recipes`) on stdout."""
    recipe_logger = logging.getLogger("keras_seq.recipes")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous_level = recipe_logger.level
    recipe_logger.addHandler(handler)
    recipe_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        recipe_logger.removeHandler(handler)
        recipe_logger.setLevel(previous_level)
