"""Tests for `keras-seq train` (keras_seq/cli/) and the recipes behind it (keras_seq/recipes).

Each recipe runs with `--quick` through `cli.main` in this process, into `tmp_path`; the tests
check its outputs and recompute its held-out score from the saved `model.keras`, so that the
reloaded model, the score in `metrics.json` and the data all agree. The learning itself (the
default epochs) is checked in integration_tests/test_recipes.py.
"""

import contextlib
import glob
import hashlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from matplotlib import image as matplotlib_image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from keras_seq import cli
from keras_seq.data.char_corpus import CHAR_CORPUS_VOCABULARY
from keras_seq.data.char_corpus import char_corpus_data
from keras_seq.data.date_translation import DATE_TARGET_LENGTH
from keras_seq.data.date_translation import date_translation_data
from keras_seq.data.date_translation import decode_dates
from keras_seq.data.date_translation import encode_dates
from keras_seq.data.digits import digits_data
from keras_seq.data.shapes_captioning import CAPTION_END_ID
from keras_seq.data.shapes_captioning import shapes_captioning_data
from keras_seq.data.shapes_detection import shapes_detection_data
from keras_seq.metrics.mean_average_precision import mean_average_precision
from keras_seq.recipes import captioning_shapes
from keras_seq.recipes import char_lm
from keras_seq.recipes import detr_shapes
from keras_seq.recipes import digits_classification
from keras_seq.recipes import outputs
from keras_seq.recipes import registry
from keras_seq.recipes import runner
from keras_seq.recipes import seq2seq_attention
from keras_seq.recipes.runner import train_recipe

METRICS_KEYS = {
    "recipe",
    "model",
    "status",
    "epochs_completed",
    "model_epoch",
    "train",
    "validation",
    "held_out",
    "history",
    "time_seconds",
    "train_seconds",
    "num_parameters",
    "num_replicas",
    "options",
    "files",
    "details",
    "versions",
    "sha256",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def train(tmp_path, capsys, *options):
    """Run `keras-seq train ... --quick` into `tmp_path / "run"`; return the output directory
    and its metrics.json after checking what every recipe writes."""
    output_dir = tmp_path / "run"
    assert cli.main(["train", *options, "--quick", "--output-dir", str(output_dir)]) == 0
    out = capsys.readouterr().out
    # Captured stdout is not a terminal: `fit` writes a line per epoch, not a bar's `\r`
    # updates and colour codes.
    assert "\r" not in out and "\x1b[" not in out, repr(out)
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert set(metrics) == METRICS_KEYS
    assert metrics["status"] == "completed"
    assert metrics["recipe"] == options[0]
    assert metrics["epochs_completed"] == metrics["model_epoch"] == metrics["options"]["epochs"]
    assert metrics["options"]["quick"] is True
    # The SHA-256 of the model file as written, which the command checks before loading it.
    model_bytes = (output_dir / "model.keras").read_bytes()
    assert metrics["sha256"] == {"model.keras": hashlib.sha256(model_bytes).hexdigest()}
    assert metrics["options"]["output_dir"] == str(output_dir.resolve())
    assert metrics["details"]["reload_max_abs_diff"] == 0.0
    assert metrics["num_parameters"] > 0
    assert metrics["history"]["loss"] and all(math.isfinite(v) for v in metrics["history"]["loss"])
    assert metrics["train"]["loss"] == metrics["history"]["loss"][-1]
    assert metrics["validation"]["loss"] == metrics["history"]["val_loss"][-1]
    # Every listed file exists, nothing half-written is left, plots are PNG images.
    listed = set(metrics["files"])
    assert {"model.keras", "metrics.json", "training_curves.png"} <= listed
    assert listed == {path.name for path in output_dir.iterdir() if path.is_file()}
    assert not [name for name in os.listdir(output_dir) if "partial" in name]
    for name in listed:
        if name.endswith(".png"):
            assert (output_dir / name).read_bytes()[:8] == PNG_SIGNATURE
            assert matplotlib_image.imread(output_dir / name).shape[-1] in (3, 4)
    # The summary names the held-out scores and the output directory.
    assert "held-out:" in out and str(output_dir.resolve()) in out
    for key in metrics["held_out"]:
        assert key in out
    return output_dir, metrics


def event_tags(output_dir):
    """`{subdirectory: tensor tags}` of the run's TensorBoard logs (one run)."""
    (run_dir,) = glob.glob(os.path.join(output_dir, "logs", "run-*"))
    tags = {}
    for sub in sorted(os.listdir(run_dir)):
        accumulator = EventAccumulator(os.path.join(run_dir, sub))
        accumulator.Reload()
        tags[sub] = set(accumulator.Tags()["tensors"])  # TF 2 summaries land under "tensors"
    return tags


def log_softmax(logits):
    logits = np.asarray(logits, "float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def generate_output(capsys, *argv):
    assert cli.main(["generate", *argv]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("model_name", ["rnn", "gpt"])
def test_char_lm(model_name, tmp_path, capsys):
    output_dir, metrics = train(tmp_path, capsys, "char-lm", "--model", model_name)
    assert {"vocabulary.json", "samples.txt"} <= set(metrics["files"])
    tags = event_tags(output_dir)
    assert {"epoch_loss", "epoch_perplexity"} <= tags["train"]
    assert "generation/samples" in tags["generation"]
    # The held-out perplexity, recomputed from the saved model with NumPy.
    sizes = char_lm.SIZES["quick"]
    inputs, targets = char_corpus_data(
        sizes["validation_sentences"], sizes["sequence_length"], seed=2
    )
    model = keras.saving.load_model(output_dir / "model.keras")
    model_inputs = inputs
    if model_name == "gpt":
        model_inputs = {"token_ids": inputs, "padding_mask": np.ones_like(inputs)}
    log_probabilities = log_softmax(model.predict(model_inputs, verbose=0))
    picked = np.take_along_axis(log_probabilities, targets[..., None], axis=-1)
    perplexity = math.exp(-picked.mean())
    assert metrics["held_out"]["perplexity"] == pytest.approx(perplexity, rel=1e-4)
    assert metrics["held_out"]["bigram_perplexity"] > 1.0

    # `keras-seq generate` on the saved model, with vocabulary.json found beside it.
    prompt = "the cat "
    ids = CHAR_CORPUS_VOCABULARY.encode([prompt])
    greedy = generate_output(capsys, str(output_dir / "model.keras"), "--prompt", prompt)
    default_tokens = json.loads((output_dir / "vocabulary.json").read_text())["max_new_tokens"]
    assert default_tokens == (16 if model_name == "gpt" else 100)  # GPT: 32 positions - 16
    expected = model.generate(ids, default_tokens, jit_compile=False)
    assert greedy == CHAR_CORPUS_VOCABULARY.decode(np.asarray(expected))
    assert greedy[0].startswith(prompt)
    sampled = generate_output(
        capsys,
        str(output_dir / "model.keras"),
        *("--prompt", prompt, "--prompt", "a dog"),
        *("--strategy", "top_k", "--top-k", "5", "--seed", "3", "--max-new-tokens", "6"),
    )
    expected = model.generate(ids, 6, strategy="top_k", top_k=5, seed=3, jit_compile=False)
    assert len(sampled) == 2 and sampled[1].startswith("a dog")
    assert sampled[0] == CHAR_CORPUS_VOCABULARY.decode(np.asarray(expected))[0]
    assert len(sampled[0]) == len(prompt) + 6


def test_seq2seq_attention(tmp_path, capsys):
    output_dir, metrics = train(tmp_path, capsys, "seq2seq-attention")
    assert {"vocabulary.json", "attention.png", "translations.txt"} <= set(metrics["files"])
    tags = event_tags(output_dir)
    assert "attention/decoder_layer_0/example_0" in tags["attention"]
    # The held-out exact match, recomputed from the saved model.
    inputs, targets = date_translation_data(
        seq2seq_attention.SIZES["quick"]["held_out"], split="test", seed=2
    )
    model = keras.saving.load_model(output_dir / "model.keras")
    generated = np.asarray(
        model.generate(inputs["source"], max_new_tokens=DATE_TARGET_LENGTH, stop_token_id=2)
    )
    exact = np.mean(np.all(generated == targets, axis=1))
    assert metrics["held_out"]["exact_match"] == pytest.approx(exact)
    assert 0.0 <= metrics["held_out"]["character_accuracy"] <= 1.0

    # Greedy `keras-seq generate` equals `model.generate` on the padded source.
    prompts = ["Tuesday, March 3, 1998", "03/03/98"]
    lines = generate_output(
        capsys, str(output_dir / "model.keras"), "--prompt", prompts[0], "--prompt", prompts[1]
    )
    expected = model.generate(
        encode_dates(prompts), DATE_TARGET_LENGTH, stop_token_id=2, jit_compile=False
    )
    assert lines == decode_dates(np.asarray(expected))
    beam = generate_output(
        capsys, str(output_dir / "model.keras"), "--prompt", prompts[0], "--strategy", "beam"
    )
    expected = model.generate(
        encode_dates(prompts[:1]),
        DATE_TARGET_LENGTH,
        strategy="beam",
        stop_token_id=2,
        jit_compile=False,
    )
    assert beam == decode_dates(np.asarray(expected))


@pytest.mark.parametrize(
    "recipe, attention_tag",
    [
        ("vit-digits", "attention/encoder_layer_0/example_0"),
        ("swin-digits", "attention/stage_1_block_0/window_0"),
    ],
)
def test_digits_classification(recipe, attention_tag, tmp_path, capsys):
    output_dir, metrics = train(tmp_path, capsys, recipe)
    assert {"predictions.png", "confusion_matrix.png"} <= set(metrics["files"])
    tags = event_tags(output_dir)
    assert {"epoch_loss", "epoch_accuracy"} <= tags["train"]
    assert attention_tag in tags["attention"]
    _, (images, labels) = digits_data(image_size=digits_classification.IMAGE_SIZE, seed=0)
    count = digits_classification.QUICK_EXAMPLES["held_out"]
    model = keras.saving.load_model(output_dir / "model.keras")
    predicted = np.argmax(model.predict(images[:count], verbose=0), axis=-1)
    assert metrics["held_out"]["accuracy"] == pytest.approx(np.mean(predicted == labels[:count]))


def test_detr_shapes(tmp_path, capsys):
    output_dir, metrics = train(tmp_path, capsys, "detr-shapes")
    assert "detections.png" in metrics["files"]
    assert (
        "attention/decoder_layer_0/cross_attention/example_0" in event_tags(output_dir)["attention"]
    )
    images, targets = shapes_detection_data(
        detr_shapes.SIZES["quick"]["held_out"], seed=2, **detr_shapes.DATA
    )
    model = keras.saving.load_model(output_dir / "model.keras")
    detections = model.postprocess(model.predict(images, verbose=0))
    detections = {key: np.asarray(value) for key, value in detections.items()}
    # Ground truth as pixel corners, converted here with NumPy.
    center, size = targets["boxes"][..., :2], targets["boxes"][..., 2:]
    corners = np.concatenate([center - size / 2, center + size / 2], axis=-1)
    truth = {"boxes": corners * detr_shapes.IMAGE_SIZE, "labels": targets["labels"]}
    scores = mean_average_precision(detections, truth, num_classes=detr_shapes.NUM_CLASSES)
    for key in ("map", "map_50", "map_75"):
        assert metrics["held_out"][key] == pytest.approx(scores[key], abs=1e-6)


def test_captioning_shapes(tmp_path, capsys):
    output_dir, metrics = train(tmp_path, capsys, "captioning-shapes", "--model", "rnn")
    assert {"captions.png", "captions.txt"} <= set(metrics["files"])
    assert "generation/samples" in event_tags(output_dir)["generation"]
    inputs, targets = shapes_captioning_data(
        captioning_shapes.SIZES["quick"]["held_out"], seed=2, **captioning_shapes.DATA
    )
    model = keras.saving.load_model(output_dir / "model.keras")
    generated = np.asarray(
        model.generate(inputs["images"], targets.shape[1], stop_token_id=CAPTION_END_ID)
    )
    assert metrics["held_out"]["exact_match"] == pytest.approx(
        np.mean(np.all(generated == targets, axis=1))
    )
    assert metrics["held_out"]["word_accuracy"] == pytest.approx(
        np.mean((generated == targets)[targets > 0])
    )


@pytest.mark.parametrize(
    "jit_compile",
    [
        pytest.param(None, id="default"),
        # XLA compiles the bfloat16 LSTM's train step under MirroredStrategy: about 50 s.
        pytest.param(True, id="jit_compile", marks=pytest.mark.slow),
    ],
)
def test_options_reach_the_run(jit_compile, tmp_path, capsys):
    before = keras.config.dtype_policy().name
    options = ["--strategy", "mirrored", "--mixed-precision", "mixed_bfloat16"]
    options += ["--epochs", "2", "--batch-size", "16", "--seed", "7"]
    options += ["--jit-compile"] if jit_compile else []
    output_dir, metrics = train(tmp_path, capsys, "char-lm", *options)
    assert metrics["options"] == {
        "epochs": 2,
        "batch_size": 16,
        "strategy": "mirrored",
        "mixed_precision": "mixed_bfloat16",
        "jit_compile": jit_compile,
        "quick": True,
        "seed": 7,
        "model": "rnn",
        "data": None,
        "validation_data": None,
        "from_model": None,
        "output_dir": str(output_dir.resolve()),
    }
    assert len(metrics["history"]["loss"]) == 2
    assert metrics["num_replicas"] >= 1
    assert metrics["details"]["jit_compile"] is bool(jit_compile)  # Keras' "auto": off on CPU
    assert keras.config.dtype_policy().name == before  # restored after the run
    model = keras.saving.load_model(output_dir / "model.keras")
    # The optimizer took 2 epochs of steps of 16 windows.
    inputs, _ = char_corpus_data(char_lm.SIZES["quick"]["sentences"], 32, seed=0)
    assert int(model.optimizer.iterations) == 2 * math.ceil(len(inputs) / 16)
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert all(weight.dtype == "float32" for weight in model.weights)


class _InterruptAfter(keras.callbacks.Callback):
    """Keeps the weights at the end of epoch `epochs`, then raises KeyboardInterrupt."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs
        self.weights = None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            self.weights = self.model.get_weights()
            raise KeyboardInterrupt


def test_interrupted_run_keeps_finished_outputs(tmp_path):
    interrupt = _InterruptAfter(2)
    with pytest.raises(KeyboardInterrupt):
        train_recipe("char-lm", output_dir=tmp_path, epochs=4, quick=True, callbacks=[interrupt])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
    assert metrics["epochs_completed"] == metrics["model_epoch"] == 2
    assert len(metrics["history"]["loss"]) == 2
    assert "error" not in metrics
    # The model of the last finished epoch, exactly.
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    for saved, kept in zip(reloaded.get_weights(), interrupt.weights):
        np.testing.assert_array_equal(saved, kept)
    assert (tmp_path / "training_curves.png").read_bytes()[:8] == PNG_SIGNATURE
    assert not [name for name in os.listdir(tmp_path) if "partial" in name]


@pytest.mark.slow  # a fresh process (TensorFlow import) and a few epochs: 20-40 s
def test_ctrl_c_exits_130_and_keeps_finished_outputs(tmp_path):
    command = [sys.executable, "-m", "keras_seq", "train", "char-lm", "--quick"]
    command += ["--epochs", "200", "--output-dir", str(tmp_path)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.time() + 240
    epochs = 0
    while epochs < 2 and process.poll() is None and time.time() < deadline:
        time.sleep(0.5)
        with contextlib.suppress(OSError, ValueError):
            epochs = json.loads((tmp_path / "metrics.json").read_text())["epochs_completed"]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Interrupted" in err and str(tmp_path) in err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
    assert 2 <= metrics["epochs_completed"] < 200
    # Ctrl-C may land while the model of the last epoch is being written (atomically).
    assert metrics["epochs_completed"] - metrics["model_epoch"] in (0, 1)
    assert isinstance(keras.saving.load_model(tmp_path / "model.keras"), keras.Model)


def test_atomic_path_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "metrics.json"
    outputs.write_json(path, {"epoch": 1})
    with pytest.raises(RuntimeError, match="crash"):
        with outputs.atomic_path(path) as temporary:
            with open(temporary, "w") as file:
                file.write('{"epoch": 2, "trunc')
            raise RuntimeError("crash")
    assert json.loads(path.read_text()) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]
    outputs.write_json(path, {"epoch": 2, "value": np.float32(0.5), "ids": np.arange(2)})
    assert json.loads(path.read_text()) == {"epoch": 2, "value": 0.5, "ids": [0, 1]}


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_files_get_the_permissions_of_open(umask, tmp_path):
    # mkstemp makes owner-only files; outputs must be readable as files written with `open`
    # are (e.g. by a TensorBoard or a colleague reading a shared run directory).
    previous = os.umask(umask)
    try:
        with open(tmp_path / "reference.txt", "w") as file:
            file.write("x")
        outputs.write_json(tmp_path / "metrics.json", {"epoch": 1})
    finally:
        os.umask(previous)
    expected = os.stat(tmp_path / "reference.txt").st_mode & 0o777
    assert expected == 0o666 & ~umask
    assert os.stat(tmp_path / "metrics.json").st_mode & 0o777 == expected


def test_every_recipe_loads():
    assert list(registry.RECIPES) == [
        "char-lm",
        "seq2seq-attention",
        "bert-classifier",
        "vit-digits",
        "swin-digits",
        "detr-shapes",
        "captioning-shapes",
    ]
    for recipe in registry.RECIPES.values():
        assert callable(registry.load_recipe(recipe)), recipe.name
        assert recipe.epochs >= 1 and recipe.batch_size >= 1 and recipe.models


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_verbose():
    assert runner.progress_verbose(_Terminal()) == 1  # a bar updated in place
    assert runner.progress_verbose(io.StringIO()) == 2  # a line per epoch
    assert runner.progress_verbose(object()) == 2  # a stream without isatty


def test_default_output_dir():
    recipe = registry.get_recipe("char-lm")
    assert registry.default_output_dir(recipe) == os.path.join("keras_seq_runs", "char-lm")
    assert registry.default_output_dir(recipe, "rnn") == os.path.join("keras_seq_runs", "char-lm")
    assert registry.default_output_dir(recipe, "gpt") == os.path.join(
        "keras_seq_runs", "char-lm-gpt"
    )


def test_output_dir_problem(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert registry.output_dir_problem(tmp_path) is None
    assert registry.output_dir_problem(tmp_path / "new" / "deeper") is None
    assert "not a directory" in registry.output_dir_problem(a_file)
    assert "cannot be created" in registry.output_dir_problem(a_file / "sub")
    assert not os.path.exists(tmp_path / "new")  # nothing is created


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"batch_size": -2}, "batch_size"),
        ({"strategy": "tpu"}, "strategy"),
        ({"mixed_precision": "float8"}, "mixed_precision"),
        ({"jit_compile": "yes"}, "jit_compile"),
        ({"quick": 1}, "quick"),
        ({"seed": -1}, "seed"),
        ({"model": "gpt"}, "model"),
        ({"output_dir": ""}, "output_dir"),
    ],
)
def test_validate_train_options(kwargs, match):
    with pytest.raises(ValueError, match=f"`{match}`.*Received: {match}="):
        registry.validate_train_options(registry.get_recipe("seq2seq-attention"), **kwargs)


def test_train_recipe_rejects_before_writing(tmp_path):
    with pytest.raises(ValueError, match="Unknown recipe.*Received: recipe='char-rnn'"):
        train_recipe("char-rnn", output_dir=tmp_path / "out")
    with pytest.raises(ValueError, match="`epochs`"):
        train_recipe("char-lm", output_dir=tmp_path / "out", epochs=-1)
    assert not (tmp_path / "out").exists()


def test_train_help_lists_every_recipe(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in registry.RECIPES:
        assert f"\n  {name} " in out
    assert "--mixed-precision" in out and "--jit-compile" in out


@pytest.mark.parametrize(
    "argv, named, value",
    [
        (["train", "char-rnn"], "RECIPE", "char-rnn"),
        (["train"], "RECIPE", "required"),
        (["train", "char-lm", "--epochs", "-1"], "--epochs", "-1"),
        (["train", "char-lm", "--epochs", "0"], "--epochs", "0"),
        (["train", "char-lm", "--epochs", "two"], "--epochs", "two"),
        (["train", "char-lm", "--batch-size", "0"], "--batch-size", "0"),
        (["train", "char-lm", "--seed", "-3"], "--seed", "-3"),
        (["train", "char-lm", "--strategy", "tpu"], "--strategy", "tpu"),
        (["train", "char-lm", "--mixed-precision", "float8"], "--mixed-precision", "float8"),
        (["train", "char-lm", "--model", "transformer"], "--model", "transformer"),
        (["train", "vit-digits", "--model", "rnn"], "--model", "rnn"),
    ],
)
def test_train_usage_errors_exit_2(argv, named, value, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output directory would be created here
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: keras-seq train" in err
    assert named in err and value in err
    assert os.listdir(tmp_path) == []


def test_train_rejects_output_dir_that_is_a_file(capsys, tmp_path):
    a_file = tmp_path / "results"
    a_file.write_text("not a directory")
    for path in (a_file, a_file / "sub"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["train", "char-lm", "--quick", "--output-dir", str(path)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "argument --output-dir" in err and repr(str(path)) in err
    assert a_file.read_text() == "not a directory"
