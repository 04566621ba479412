"""`keras-seq info` and `keras-seq demo`."""

import contextlib
import json
import os
import platform
import sys

from keras_seq.cli.base import UsageError
from keras_seq.cli.base import argument
from keras_seq.cli.base import keras_backend_line
from keras_seq.cli.base import non_negative_int
from keras_seq.cli.base import quiet_tensorflow
from keras_seq.cli.base import subcommand
from keras_seq.recipes import registry
from keras_seq.subpackages import import_subpackages
from keras_seq.version import __version__


def _module_version(module_name):
    """The `__version__` of an importable module, or `None` when it is not installed."""
    try:
        module = __import__(module_name)
    except ImportError:
        return None
    return getattr(module, "__version__", None)


def _devices(backend):
    """The devices the backend sees, as `{"name", "device_type"}` dicts."""
    if backend == "tensorflow":
        import tensorflow as tf

        return [
            {"name": device.name, "device_type": device.device_type}
            for device in tf.config.list_physical_devices()
        ]
    if backend == "torch":  # keras.distribution has no PyTorch implementation
        import torch

        names = ["cpu:0"] + [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    else:
        import keras

        names = keras.distribution.list_devices()
    # Named "cpu:0", "cuda:0", "gpu:0"...: the type is the part before the colon.
    return [{"name": name, "device_type": name.split(":")[0].upper()} for name in names]


def collect_info():
    """Versions, Keras backend and visible devices, as a JSON-serializable dict.

    TensorFlow's version is `None` when it is not installed (another Keras backend runs).
    """
    with quiet_tensorflow():
        import keras

        backend = keras.backend.backend()
        devices = _devices(backend)
    return {
        "keras_seq": __version__,
        "tensorflow": _module_version("tensorflow"),
        "keras": keras.__version__,
        "keras_hub": _module_version("keras_hub"),
        "numpy": _module_version("numpy"),
        "python": platform.python_version(),
        "backend": backend,
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
        "Keras backend (KERAS_BACKEND) and the devices it sees. TensorFlow's C++ log lines written "
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


@subcommand(
    "demo",
    help="the vanishing-gradient showdown: Elman, LSTM, GRU and a transformer on the adding "
    "problem at growing lengths",
    description=(
        "Train an Elman RNN, an LSTM, a GRU and a small transformer on the adding problem "
        "(built-in data) at increasing sequence lengths; print the accuracy table, and write "
        "showdown.png (accuracy against length, and the norm of dL/dh_t over time steps), "
        "TensorBoard logs (gradient norms over time steps, attention maps), every model as "
        ".keras (reloaded and checked) and results.json, updated after every finished run. "
        "A few CPU minutes; --quick runs a sub-minute version."
    ),
    arguments=[
        argument(
            "--quick",
            action="store_true",
            help="lengths 10 and 50 only, fewer updates: under a minute",
        ),
        argument(
            "--output-dir",
            metavar="DIR",
            default=os.path.join(registry.DEFAULT_OUTPUT_ROOT, "demo"),
            help="where outputs go (default: %(default)s)",
        ),
        argument(
            "--seed",
            type=non_negative_int,
            default=0,
            help="seed of data and initialization (default: %(default)s)",
        ),
    ],
)
def demo_command(args):
    problem = registry.output_dir_problem(args.output_dir)
    if problem:
        raise UsageError(
            f"argument --output-dir: the path {problem}. Received: {args.output_dir!r}"
        )
    results = None
    with quiet_tensorflow():
        backend_line = keras_backend_line()
        import_subpackages()
        from keras_seq.recipes.showdown import format_showdown_table
        from keras_seq.recipes.showdown import run_showdown

        print(backend_line)
        with contextlib.suppress(KeyboardInterrupt):
            results = run_showdown(
                args.output_dir, quick=args.quick, seed=args.seed, progress=True, log=print
            )
    if results is None:
        print(f"\nInterrupted: the finished runs are in {args.output_dir}", file=sys.stderr)
        return 130
    print(format_showdown_table(results))
    print(f"Plot: {results['plot_path']}")
    print(f"TensorBoard: tensorboard --logdir {os.path.join(args.output_dir, 'logs')}")
    print(f"Models and results.json: {args.output_dir}")
    return 0
