"""The `keras-seq` command line.

Each subcommand is one function decorated with `@subcommand(...)`: the decorator declares the
subcommand's name, help and arguments, and the function receives the parsed `argparse.Namespace`
and returns an exit code. Adding a subcommand (`demo`, `train`, `generate`, ...) means writing one
such function in this module.

Heavy imports (TensorFlow, Keras) happen inside the subcommand functions, in a
`with quiet_tensorflow():` block, so that `--help`, `--version` and usage errors do not pay for
them and TensorFlow's C++ start-up log lines stay off the terminal.
"""

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile

from keras_seq.version import __version__

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


@contextlib.contextmanager
def quiet_tensorflow():
    """Hide TensorFlow's C++ log lines written inside the block, unless it raises.

    Sets `TF_CPP_MIN_LOG_LEVEL=2` when the user has not set it. That alone is not enough: with
    TensorFlow 2.21 the lines logged while TensorFlow loads ("All log messages before
    absl::InitializeLog() ...", oneDNN, CUDA stubs) ignore it. So the block's writes to file
    descriptor 2 are captured and dropped; if the block raises they are written back, so nothing
    that explains a failure is lost. `TF_CPP_MIN_LOG_LEVEL=0` turns the capture off.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        yield
        return
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)


def _module_version(module_name):
    """The `__version__` of an importable module, or `None` when it is not installed."""
    try:
        module = __import__(module_name)
    except ImportError:
        return None
    return getattr(module, "__version__", None)


def collect_info():
    """Versions, Keras backend and visible devices, as a JSON-serializable dict."""
    with quiet_tensorflow():
        import keras
        import tensorflow as tf

        devices = [
            {"name": device.name, "device_type": device.device_type}
            for device in tf.config.list_physical_devices()
        ]
    return {
        "keras_seq": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": _module_version("keras_hub"),
        "numpy": _module_version("numpy"),
        "python": platform.python_version(),
        "backend": keras.backend.backend(),
        "devices": devices,
    }


def format_info(info):
    """`collect_info()` as aligned `key  value` lines."""
    rows = []
    for key, value in info.items():
        if key == "devices":
            value = ", ".join(f"{d['name']} ({d['device_type']})" for d in value) or "none"
        elif value is None:
            value = "not installed"
        rows.append((key, str(value)))
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


@subcommand(
    "info",
    help="print versions of keras_seq and its dependencies, the Keras backend and devices",
    description=(
        "Print the versions of keras_seq, TensorFlow, Keras, keras-hub, NumPy and Python, the "
        "Keras backend and the devices TensorFlow sees. TensorFlow's C++ log lines written "
        "while it runs are hidden; set TF_CPP_MIN_LOG_LEVEL=0 to see them."
    ),
    arguments=[argument("--json", action="store_true", help="print the same as a JSON object")],
)
def info_command(args):
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    return 0


def build_parser():
    """The `argparse` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Pluggable Keras 3 layers for sequence and vision-transformer models.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    # Not `required=True`: argparse would then report a missing COMMAND before an unknown option
    # (`keras-seq --bogus`); `main` checks both, unknown options first.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, description, arguments, function in _SUBCOMMANDS:
        sub = subparsers.add_parser(
            name, help=help_text, description=description, allow_abbrev=False
        )
        for flags, kwargs in arguments:
            sub.add_argument(*flags, **kwargs)
        sub.set_defaults(handler=function)
    return parser


def main(argv=None):
    """Run `keras-seq` with `argv` (default: `sys.argv[1:]`) and return the exit code.

    `--help`, `--version` and usage errors raise `SystemExit` from `argparse` (code 0 for the first
    two, 2 for usage errors, with a message naming the bad option or value on stderr).
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        names = ", ".join(name for name, *_ in _SUBCOMMANDS)
        parser.error(f"missing COMMAND (choose from {names})")
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
