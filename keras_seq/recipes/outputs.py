"""Files of a recipe run, each written atomically: a temporary file in the same directory, then
`os.replace`. An interrupted run therefore leaves every file it finished intact and never a
half-written one (a reader sees the old file or the new one).

Plots use matplotlib's object-oriented `Figure` (the Agg canvas, no pyplot state, no display).
"""

import contextlib
import json
import math
import os
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it goes.

    `suffix` ends the temporary name (Keras needs `.keras` to save a model).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=f".partial{suffix}", dir=directory
    )
    os.close(handle)
    try:
        yield temporary
        # `mkstemp` creates the file readable by its owner only; give it the permissions of
        # a file created with `open` (0o666 less the umask), which `os.replace` keeps.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _umask():
    mask = os.umask(0)  # The only way to read it is to set it.
    os.umask(mask)
    return mask


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"Not JSON serializable: {value!r} of type {type(value).__name__}")


def write_json(path, value):
    """Write `value` as indented JSON (NumPy scalars and arrays as numbers and lists)."""
    text = json.dumps(value, indent=2, default=_json_default, allow_nan=True) + "\n"
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)


def save_model(model, path):
    """`model.save(path)` through a temporary `.keras` file."""
    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)


def new_figure(width=6.0, height=4.0):
    """A matplotlib `Figure` of `width` x `height` inches, not attached to pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure, path, dpi=100):
    """Write `figure` as a PNG."""
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)


def training_curves_figure(history, title):
    """One panel per metric of a history dict (`{name: [value or None per epoch]}`): the
    training values and, where there are `val_*` entries, the validation values."""
    names = [name for name in history if not name.startswith("val_")]
    names = names or ["loss"]
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = new_figure(4.0 * columns, 3.0 * rows)
    figure.suptitle(title)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        for key, label in ((name, "training"), (f"val_{name}", "validation")):
            points = [(i + 1, v) for i, v in enumerate(history.get(key) or []) if v is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return figure
