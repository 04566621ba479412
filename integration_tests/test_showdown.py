"""The full vanishing-gradient showdown (`keras-seq demo`) tells its story.

On the adding problem at lengths 10, 25, 50 and 100: the Elman RNN learns something at the
shortest length and falls to the no-memory baseline beyond it; the LSTM and the GRU stay well
above it up to the longest length; the transformer solves every length. The gradient that
reaches the first step of the longest sequence is vanishingly small for the Elman RNN and
not for the gated cells. Every saved model reloads with identical predictions.

Measured on 2 shared (busy) CPU cores, TensorFlow 2.21 / Keras 3.15.1: see the numbers below.
"""

import numpy as np
import pytest

from keras_seq.data.long_range_tasks import ADDING_PROBLEM_BASELINE_ACCURACY
from keras_seq.recipes.showdown import FULL_SETTINGS
from keras_seq.recipes.showdown import run_showdown
from keras_seq.recipes.showdown_report import format_showdown_table


@pytest.mark.slow
def test_full_showdown_tells_the_story(tmp_path):
    results = run_showdown(tmp_path, progress=False)
    table = format_showdown_table(results)
    accuracy = results["accuracy"]
    lengths = [str(length) for length in FULL_SETTINGS["sequence_lengths"]]
    shortest, longest = lengths[0], lengths[-1]
    assert results["status"] == "completed", table
    assert len(results["runs"]) == 16
    assert all(run["reload_ok"] for run in results["runs"])

    # The Elman RNN learns the short task, then loses it as the span grows, down to the
    # baseline (always predicting 1 scores 0.078).
    assert accuracy["elman"][shortest] > 0.5, table
    assert accuracy["elman"][lengths[1]] < accuracy["elman"][shortest] - 0.3, table
    for length in lengths[2:]:
        assert accuracy["elman"][length] < 2 * ADDING_PROBLEM_BASELINE_ACCURACY, table
    # The gated cells hold on far longer; the transformer solves every length.
    for name in ("lstm", "gru"):
        assert accuracy[name][shortest] > 0.9, table
        assert accuracy[name][longest] > accuracy["elman"][longest] + 0.3, table
    for length in lengths:
        assert accuracy["transformer"][length] > 0.85, table

    # The vanishing gradient at the longest length: ||dL/dh_t|| over the first ten steps
    # relative to the last ten.
    ratios = {}
    for run in results["runs"]:
        norms = run["hidden_state_gradient_norms"]
        if run["sequence_length"] == int(longest) and norms is not None:
            ratios[run["model"]] = float(np.mean(norms[:10]) / np.mean(norms[-10:]))
    assert ratios["elman"] < 1e-4, ratios
    assert min(ratios["lstm"], ratios["gru"]) > 1e-2, ratios
