"""`keras-seq demo --quick`, the installed command, end to end in a fresh process.

What a user runs first (the README's main command, quick): exit code 0, the accuracy table on
stdout, none of TensorFlow's start-up lines on stderr, and the outputs: results.json telling
the story, showdown.png, a reloadable .keras per run, TensorBoard event files. About 40-60 s
on 2 CPU cores.
"""

import json
import os
import shutil
import subprocess
import sys

import keras
import pytest

from keras_seq.recipes.showdown import QUICK_SETTINGS


def _command():
    script = shutil.which("keras-seq", path=os.path.dirname(sys.executable)) or shutil.which(
        "keras-seq"
    )
    # Without the console script (package not installed), the same entry point.
    return (
        [script] if script else [sys.executable, "-c", "import keras_seq_launcher as l; l.main()"]
    )


def test_quick_demo_end_to_end(tmp_path):
    output_dir = tmp_path / "demo"
    result = subprocess.run(
        [*_command(), "demo", "--quick", "--output-dir", str(output_dir)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "absl::InitializeLog" not in result.stderr and "I0000" not in result.stderr
    out = result.stdout
    lengths = QUICK_SETTINGS["sequence_lengths"]
    assert "Test accuracy" in out and f"T={lengths[-1]}" in out
    for name in ("Elman RNN", "LSTM", "GRU", "Transformer"):
        assert name in out

    results = json.loads((output_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["quick"] is True
    assert len(results["runs"]) == 4 * len(lengths)
    longest = str(lengths[-1])
    accuracy = {name: results["accuracy"][name][longest] for name in results["models"]}
    assert accuracy["elman"] < min(accuracy["lstm"], accuracy["gru"], accuracy["transformer"])
    assert (output_dir / "showdown.png").stat().st_size > 10_000
    for run in results["runs"]:
        assert run["reload_ok"], run
        assert os.path.isfile(run["model_path"])
        events = [f for _, _, files in os.walk(run["log_dir"]) for f in files]
        assert any(f.startswith("events.out.tfevents") for f in events), run["log_dir"]
    model = keras.saving.load_model(results["runs"][0]["model_path"])
    assert model.input_shape[1] == lengths[0]


@pytest.mark.parametrize("argv", [["demo", "--output-dir", "/dev/null/x"], ["demo", "--seed=-2"]])
def test_demo_usage_errors_exit_2(argv, tmp_path):
    result = subprocess.run(
        [*_command(), *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert "usage: keras-seq demo" in result.stderr
    assert argv[-1].split("=")[-1] in result.stderr
