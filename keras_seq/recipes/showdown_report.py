"""The report side of the vanishing-gradient showdown: its figure, its tables, its progress bar.

`keras_seq.recipes.showdown.run_showdown` trains the contestants and calls these to draw
`showdown.png` after every finished run (and, with `progress=True`, to show a progress bar
over the epochs of each run); `keras-seq demo` prints the table at the end. The figure and
the table read nothing but the results dict, so they also work on a `results.json` read back
from disk, partial or complete: `format_showdown_table(json.load(file))`.
"""

import keras
import numpy as np

from keras_seq.data.long_range_tasks import ADDING_PROBLEM_BASELINE_ACCURACY
from keras_seq.data.long_range_tasks import ADDING_PROBLEM_BASELINE_MSE
from keras_seq.data.long_range_tasks import ADDING_PROBLEM_TOLERANCE
from keras_seq.recipes import outputs
from keras_seq.recipes.runner import progress_verbose

DISPLAY_NAMES = {"elman": "Elman RNN", "lstm": "LSTM", "gru": "GRU", "transformer": "Transformer"}
_TABLE_KEYS = ("models", "sequence_lengths", "accuracy", "mse")  # what the table reads


def showdown_figure(results):
    """The `showdown.png` figure of (partial) `run_showdown` results: a matplotlib `Figure`.

    Left: test accuracy against sequence length per model, with the always-predict-1
    baseline. Right: ||dL/dh_t|| against t (log scale) for the trained recurrent models (the
    runs with `hidden_state_gradient_norms`) at the longest length that has any: where the
    Elman RNN's gradient vanishes toward early steps, the gated cells' stays up.

    Args:
        results: dict. What `run_showdown` returns, or the content of its `results.json`.

    Returns:
        A `matplotlib.figure.Figure` (not attached to pyplot), 11 x 4.2 inches.

    Example:
    ```python
    from keras_seq.recipes.showdown_report import showdown_figure

    norms = list(np.logspace(-6, -2, 10))  # ||dL/dh_t||, vanishing toward t = 1
    runs = [{"model": "elman", "sequence_length": 10, "accuracy": 0.3,
             "hidden_state_gradient_norms": norms}]
    results = {"models": ["elman"], "sequence_lengths": [10], "runs": runs,
               "accuracy_tolerance": 0.04, "baselines": {"accuracy": 0.0784}}
    figure = showdown_figure(results)  # figure.savefig("showdown.png")
    ```
    """
    figure = outputs.new_figure(11.0, 4.2)
    accuracy_axes, gradient_axes = figure.subplots(1, 2)
    for name in results["models"]:
        points = sorted(
            (run["sequence_length"], run["accuracy"])
            for run in results["runs"]
            if run["model"] == name
        )
        if points:
            lengths, accuracies = zip(*points)
            accuracy_axes.plot(lengths, accuracies, marker="o", label=DISPLAY_NAMES.get(name, name))
    accuracy_axes.axhline(
        results["baselines"]["accuracy"], color="gray", linestyle="--", label="always predict 1"
    )
    accuracy_axes.set_xscale("log")
    lengths = results["sequence_lengths"]
    accuracy_axes.set_xticks(lengths, [str(length) for length in lengths])
    accuracy_axes.minorticks_off()
    accuracy_axes.set_ylim(-0.02, 1.02)
    accuracy_axes.set_xlabel("sequence length T")
    accuracy_axes.set_ylabel(f"test accuracy (|error| < {results['accuracy_tolerance']})")
    accuracy_axes.set_title("Adding problem: accuracy against length")
    accuracy_axes.grid(alpha=0.3)
    accuracy_axes.legend()

    curves = [run for run in results["runs"] if run["hidden_state_gradient_norms"] is not None]
    if curves:
        longest = max(run["sequence_length"] for run in curves)
        for run in curves:
            if run["sequence_length"] == longest:
                norms = np.asarray(run["hidden_state_gradient_norms"], "float64")
                gradient_axes.plot(
                    np.arange(1, len(norms) + 1),
                    norms,
                    label=DISPLAY_NAMES.get(run["model"], run["model"]),
                )
        gradient_axes.set_yscale("log")
        gradient_axes.set_title(f"Gradient reaching each step after training, T={longest}")
        gradient_axes.legend()
    else:
        gradient_axes.set_title("Gradient reaching each step (no recurrent runs yet)")
    gradient_axes.set_xlabel("time step t")
    gradient_axes.set_ylabel("||dL/dh_t|| (mean over the probe batch)")
    gradient_axes.grid(alpha=0.3, which="both")
    return figure


def format_showdown_table(results):
    """`run_showdown` results as two aligned text tables: accuracy and MSE, model by length.

    Runs that did not happen (an interrupted run, or models / lengths not chosen) show `-`.

    Args:
        results: dict. What `run_showdown` returns, or the content of its `results.json`.

    Returns:
        str, without a trailing newline.

    Example:
    ```python
    from keras_seq.recipes.showdown_report import format_showdown_table

    results = {
        "models": ["elman", "lstm"],
        "sequence_lengths": [10, 50],
        "accuracy": {"elman": {"10": 0.9, "50": 0.08}, "lstm": {"10": 0.95}},
        "mse": {"elman": {"10": 0.0004, "50": 0.16}, "lstm": {"10": 0.0002}},
    }
    table = format_showdown_table(results)
    assert "Elman RNN" in table and "0.080" in table and "-" in table
    ```
    """
    if not isinstance(results, dict) or not set(_TABLE_KEYS) <= set(results):
        raise ValueError(
            "`results` must be the dict returned by `run_showdown` (or its results.json), "
            f"with keys {list(_TABLE_KEYS)}. Received: results={_short_repr(results)}"
        )
    accuracy_title = (
        f"Test accuracy (fraction with |error| < {ADDING_PROBLEM_TOLERANCE}; "
        f"always predicting 1 scores {ADDING_PROBLEM_BASELINE_ACCURACY:.3f})"
    )
    mse_title = f"Test mean squared error (always predicting 1: {ADDING_PROBLEM_BASELINE_MSE:.3f})"
    blocks = []
    for key, title, digits in (("accuracy", accuracy_title, 3), ("mse", mse_title, 4)):
        rows = [["model"] + [f"T={length}" for length in results["sequence_lengths"]]]
        for name in results["models"]:
            values = results[key].get(name, {})
            rows.append(
                [DISPLAY_NAMES.get(name, name)]
                + [
                    "-" if values.get(str(length)) is None else f"{values[str(length)]:.{digits}f}"
                    for length in results["sequence_lengths"]
                ]
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        lines = [
            "  ".join(
                [row[0].ljust(widths[0])]
                + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
            )
            for row in rows
        ]
        blocks.append("\n".join([title] + lines))
    return "\n\n".join(blocks)


def _short_repr(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _EpochProgress(keras.callbacks.Callback):
    """A `keras.utils.Progbar` over the epochs of one run: loss and training accuracy.

    On a terminal the bar is updated in place; elsewhere (a file, a pipe) each epoch is one
    plain line, without `\\r` or colour codes (`progress_verbose`).
    """

    def __init__(self, epochs):
        super().__init__()
        verbose = progress_verbose()
        self.plain_lines = verbose == 2
        self.progbar = keras.utils.Progbar(
            epochs,
            verbose=verbose,
            unit_name="epoch",
            stateful_metrics=["loss", "accuracy"],
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        values = [("loss", float(logs.get("loss", np.nan)))]
        if "adding_problem_accuracy" in logs:
            values.append(("accuracy", float(logs["adding_problem_accuracy"])))
        # With verbose=2 the bar writes a line only when finalized: finalize every epoch.
        self.progbar.update(epoch + 1, values, finalize=True if self.plain_lines else None)
