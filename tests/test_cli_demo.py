"""Tests for `keras-seq demo` (keras_seq/cli/): arguments, what it prints, exit codes.

The showdown itself (files, numbers, the story of the quick run) is tested in
tests/recipes/test_showdown.py, on a run of the installed command, `keras-seq demo --quick`.
Here `run_showdown` is swapped for a one-run version (GRU at T=8, one epoch, progress shown)
so the command's plumbing is checked in seconds.
"""

import json
import re

import pytest

from keras_seq import cli
from keras_seq.recipes import showdown

real_run_showdown = showdown.run_showdown


@pytest.fixture
def calls(monkeypatch):
    """The arguments `keras-seq demo` passes to `run_showdown`, which runs one tiny run."""
    received = []

    def tiny_run_showdown(output_dir, **kwargs):
        received.append(dict(kwargs, output_dir=output_dir))
        kwargs.update(sequence_lengths=[8], models=["gru"], epochs=1)
        return real_run_showdown(output_dir, **kwargs)

    monkeypatch.setattr(showdown, "run_showdown", tiny_run_showdown)
    return received


def test_demo_prints_the_table_and_where_outputs_are(calls, tmp_path, capsys):
    output_dir = tmp_path / "out"
    assert cli.main(["demo", "--quick", "--seed", "3", "--output-dir", str(output_dir)]) == 0
    assert len(calls) == 1
    assert calls[0]["quick"] is True and calls[0]["seed"] == 3
    assert calls[0]["output_dir"] == str(output_dir)
    out = capsys.readouterr().out
    # Captured stdout is not a terminal: the progress is a plain line per epoch.
    assert calls[0]["progress"] is True
    assert "\r" not in out and "\x1b[" not in out
    assert re.search(r"^1/1 - .*epoch - loss: \S+ - accuracy: \S+$", out, re.MULTILINE), out
    results = json.loads((output_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["seed"] == 3
    accuracy = results["accuracy"]["gru"]["8"]
    assert showdown.format_showdown_table(results) in out
    assert f"{accuracy:.3f}" in out
    assert f"Plot: {output_dir / 'showdown.png'}" in out
    assert f"tensorboard --logdir {output_dir / 'logs'}" in out
    assert (output_dir / "showdown.png").is_file()


def test_demo_defaults(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo"]) == 0
    assert calls[0]["quick"] is False and calls[0]["seed"] == 0
    assert calls[0]["output_dir"] == "keras_seq_runs/demo"
    assert (tmp_path / "keras_seq_runs" / "demo" / "results.json").is_file()


def test_interrupted_demo_exits_130_and_says_where_outputs_are(monkeypatch, tmp_path, capsys):
    def interrupted(output_dir, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(showdown, "run_showdown", interrupted)
    assert cli.main(["demo", "--output-dir", str(tmp_path)]) == 130
    assert f"Interrupted: the finished runs are in {tmp_path}" in capsys.readouterr().err


def test_a_failed_demo_raises_its_error(monkeypatch, tmp_path):
    def failing(output_dir, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(showdown, "run_showdown", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        cli.main(["demo", "--output-dir", str(tmp_path)])


@pytest.mark.parametrize(
    "options, named, value",
    [
        (["--output-dir", "FILE"], "--output-dir", "notes.txt"),
        (["--output-dir", "FILE/sub"], "--output-dir", "sub"),
        (["--seed", "-1"], "--seed", "-1"),
        (["--seed", "x"], "--seed", "'x'"),
        (["--epochs", "3"], "--epochs", "--epochs"),
    ],
)
def test_demo_usage_errors_exit_2(options, named, value, calls, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a directory")
    options = [o.replace("FILE", str(tmp_path / "notes.txt")) for o in options]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", *options])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: keras-seq demo" in err
    assert named in err and value in err
    assert calls == []  # nothing ran
