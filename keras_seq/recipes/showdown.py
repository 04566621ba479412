"""The vanishing-gradient showdown: Elman RNN, LSTM, GRU and a transformer on the adding problem.

The flagship demo of `keras-seq demo`. Each model learns the adding problem
(`keras_seq.data.long_range_tasks.adding_problem_data`) at increasing sequence lengths; the
Elman RNN falls to the no-memory baseline as the span it must bridge grows, the gated cells
hold on longer and the transformer, whose attention reaches every step directly, solves it at
every length. The output directory then holds:

- `results.json`: per run (model, length) the test accuracy and MSE, times, the reload check
  and the hidden-state gradient norms; rewritten as soon as each run finishes;
- `showdown.png`: accuracy against length per model, and ||dL/dh_t|| over t for the
  recurrent models at the longest length (the vanishing gradient picture);
- `models/<model>_T<length>.keras`: each trained model, reloaded once to check that it
  predicts the same;
- `logs/<model>_T<length>/`: TensorBoard logs: Keras' scalars, the gradient norms of
  `GradientNormLogger` (recurrent models) and the attention maps of `AttentionMapLogger`
  (the transformer).

Every file is written atomically (`keras_seq.recipes.outputs`), so an interrupted run keeps
the finished runs' files, and `results.json` says `"interrupted"` (Ctrl-C) or `"failed"`.

Letter legend for shape comments: N examples, T sequence length, D model width.
"""

import copy
import math
import os
import shutil
import time

import keras
import numpy as np

from keras_seq.callbacks.attention_map_logger import AttentionMapLogger
from keras_seq.callbacks.gradient_norm_logger import GradientNormLogger
from keras_seq.callbacks.hidden_state_gradients import hidden_state_gradient_norms
from keras_seq.data.long_range_tasks import ADDING_PROBLEM_BASELINE_ACCURACY
from keras_seq.data.long_range_tasks import ADDING_PROBLEM_BASELINE_MSE
from keras_seq.data.long_range_tasks import ADDING_PROBLEM_TOLERANCE
from keras_seq.data.long_range_tasks import adding_problem_accuracy
from keras_seq.data.long_range_tasks import adding_problem_data
from keras_seq.layers.blocks.transformer_encoder import TransformerEncoder
from keras_seq.layers.embeddings.patch_position_embedding import PatchPositionEmbedding
from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.layers.recurrent.gru_cell import GRUCell
from keras_seq.layers.recurrent.lstm_cell import LSTMCell
from keras_seq.recipes import outputs
from keras_seq.recipes.model_files import sha256_file
from keras_seq.recipes.showdown_report import DISPLAY_NAMES
from keras_seq.recipes.showdown_report import _EpochProgress
from keras_seq.recipes.showdown_report import format_showdown_table  # noqa: F401  (for cli)
from keras_seq.recipes.showdown_report import showdown_figure
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int

MODEL_NAMES = ("elman", "lstm", "gru", "transformer")
RECURRENT_MODELS = ("elman", "lstm", "gru")
RESULTS_FILE = "results.json"
PLOT_FILE = "showdown.png"
# A reloaded model must predict within this of the trained one (measured: exactly equal).
RELOAD_TOLERANCE = 1e-6
# Eager test-set predictions in batches this large: an eager RNN call costs per step, not example.
PREDICT_BATCH_SIZE = 512

# The two settings. Both train every model with the same data, batch size and number of
# updates; Adam with a cosine-decayed learning rate and global gradient clipping.
# Measured (2 CPU cores): the number of updates is what gets the LSTM off the plateau at
# T=100; at this size a step costs little more at batch 256 than at 64, but 1,280 steps of
# 64 took the LSTM to 0.85-0.94 test accuracy (seeds 0-2) where 512 steps of 256 gave 0.24.
# The transformer at T=100 reached 0.73-0.99 with a peak learning rate of 0.005 and
# 0.99-1.0 with 0.01.
FULL_SETTINGS = {
    "sequence_lengths": [10, 25, 50, 100],
    "num_train": 8192,
    "num_test": 1000,
    "batch_size": 64,
    "epochs": 10,
    "units": 32,
    "hidden_dim": 32,
    "num_heads": 2,
    "intermediate_dim": 64,
    "learning_rates": {"elman": 0.02, "lstm": 0.02, "gru": 0.02, "transformer": 0.01},
    "global_clipnorm": 1.0,
    "probe_size": 32,
}
# Quick (`--quick`, the tests): T=10 and T=50, 512 updates of 64 (2 epochs of 16,384).
# Measured (2 quiet CPU cores, seeds 0/1/2): at T=50 the Elman RNN scores 0.11/0.07/0.11
# (0.39/0.51/0.43 at T=10), the LSTM 0.61/0.66/0.68, the GRU 0.92/0.97/0.97, the
# transformer 0.95/0.91/1.00; ||dL/dh_t|| over the first 5 steps relative to the last 5:
# Elman 7e-12/4e-7/3e-5, LSTM 0.28/0.14/0.21, GRU 0.24/0.21/0.42; 42/44/42 s wall with
# imports (runs alone 35-36 s, 38-40 CPU s). 384 updates left the LSTM at 0.10-0.36; at 512,
# clipping at 0.5 instead of 1.0 took it from 0.45-0.74 to 0.61-0.68. At T=30-40 the Elman
# RNN still partly learns in this budget and its gradient need not vanish (ratio up to 0.7).
# 32 units beat 16 and 64; per CPU second, batches of 64 beat 128.
QUICK_SETTINGS = {
    "sequence_lengths": [10, 50],
    "num_train": 16384,
    "num_test": 256,
    "batch_size": 64,
    "epochs": 2,
    "units": 32,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
    "learning_rates": {"elman": 0.02, "lstm": 0.02, "gru": 0.02, "transformer": 0.01},
    "global_clipnorm": 0.5,
    "probe_size": 16,
}


def showdown_settings(quick=False):
    """The hyper-parameters of `run_showdown`: a fresh copy of the full or the quick set.

    Args:
        quick: bool. `QUICK_SETTINGS` instead of `FULL_SETTINGS`. Defaults to `False`.

    Returns:
        dict: `sequence_lengths`, `num_train` and `num_test` (examples per length),
        `batch_size`, `epochs` (per run), `units` (recurrent state size), `hidden_dim`,
        `num_heads` and `intermediate_dim` (transformer), `learning_rates` (peak of the
        cosine decay, per model), `global_clipnorm` and `probe_size` (examples of the
        gradient-norm and attention probes).

    Example:
    ```python
    from keras_seq.recipes.showdown import showdown_settings

    settings = showdown_settings(quick=True)
    assert settings["sequence_lengths"] == [10, 50]
    ```
    """
    validate_bool("quick", quick)
    settings = QUICK_SETTINGS if quick else FULL_SETTINGS
    return copy.deepcopy(settings)


def build_showdown_model(
    model_name, sequence_length, units=32, hidden_dim=32, num_heads=2, intermediate_dim=64
):
    """One contestant of the showdown, uncompiled: `(N, T, 2)` adding-problem inputs to `(N, 1)`.

    The recurrent models are `keras.layers.RNN` (layer name `"rnn"`) over a keras_seq cell
    (`ElmanCell`, `LSTMCell` or `GRUCell`), whose last output goes through a `Dense(1)`. The
    transformer is a one-block ViT for sequences: each step embedded by a `Dense`, a learned
    class token prepended and learned positions added (`PatchPositionEmbedding` on a
    `1 x sequence_length` grid), one pre-norm `TransformerEncoder` (layer name `"encoder"`),
    and the class token's output read by a `Dense(1)`. The class token is the pooling: its
    query learns to attend to the two marked steps. (Mean pooling over the steps was measured
    worse here: it adds the mean of all values to the output, noise that the model must
    first learn to cancel.)

    Args:
        model_name: str. One of `MODEL_NAMES`: `"elman"`, `"lstm"`, `"gru"`,
            `"transformer"`; also the model's name.
        sequence_length: int >= 2. Number of time steps T.
        units: int. State size of the recurrent cells. Defaults to `32`.
        hidden_dim: int. Width of the transformer. Defaults to `32`.
        num_heads: int. Attention heads of the transformer; must divide `hidden_dim`.
            Defaults to `2`.
        intermediate_dim: int. Feed-forward width of the transformer. Defaults to `64`.

    Returns:
        A functional `keras.Model`.

    Example:
    ```python
    from keras_seq.recipes.showdown import build_showdown_model

    model = build_showdown_model("lstm", sequence_length=20, units=8)
    assert model(np.zeros((3, 20, 2), "float32")).shape == (3, 1)
    ```
    """
    _validate_model_name("model_name", model_name)
    _validate_sequence_length("sequence_length", sequence_length)
    for name, value in zip(
        ("units", "hidden_dim", "num_heads", "intermediate_dim"),
        (units, hidden_dim, num_heads, intermediate_dim),
    ):
        validate_positive_int(name, value)
    if hidden_dim % num_heads:
        raise ValueError(
            "`hidden_dim` must be divisible by `num_heads`. "
            f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
        )
    inputs = keras.Input((sequence_length, 2), name="inputs")
    if model_name in RECURRENT_MODELS:
        cell = {"elman": ElmanCell, "lstm": LSTMCell, "gru": GRUCell}[model_name](units)
        features = keras.layers.RNN(cell, name="rnn")(inputs)  # (N, units)
    else:
        x = keras.layers.Dense(hidden_dim, name="embedding")(inputs)  # (N, T, D)
        x = keras.layers.Reshape((1, sequence_length, hidden_dim), name="grid")(x)  # (N, 1, T, D)
        x = PatchPositionEmbedding((1, sequence_length), name="position_embedding")(x)
        # x: (N, 1 + T, D), the class token first.
        x = TransformerEncoder(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            normalize_first=True,
            name="encoder",
        )(x)
        x = keras.layers.Cropping1D((0, sequence_length), name="class_token")(x)  # (N, 1, D)
        features = keras.layers.Flatten(name="pool")(x)  # (N, D)
    prediction = keras.layers.Dense(1, name="head")(features)  # (N, 1)
    return keras.Model(inputs, prediction, name=model_name)


def run_showdown(
    output_dir,
    quick=False,
    seed=0,
    progress=True,
    log=None,
    sequence_lengths=None,
    models=None,
    epochs=None,
):
    """Train Elman RNN, LSTM, GRU and a transformer on the adding problem at growing lengths.

    For each length (in increasing order) and each model: fresh adding-problem data
    (training set from `seed`, test set from `seed + 1`), a model from
    `build_showdown_model`, Adam with a cosine-decayed learning rate and
    `global_clipnorm`, and `fit` with TensorBoard logging, `GradientNormLogger` (recurrent
    models) or `AttentionMapLogger` (the transformer). Then the test accuracy (the fraction
    of examples with |error| < 0.04) and MSE, ||dL/dh_t|| of the trained recurrent models on
    a probe batch, the model saved to `.keras` and reloaded to check its predictions, and
    `results.json` and `showdown.png` rewritten, before the next run starts. The file layout
    is described in the module docstring.

    The full run (four lengths, 10 to 100) takes about five CPU minutes; `quick=True` (T=10
    and T=50, smaller models and fewer updates) under a minute, and tells the same story.

    Args:
        output_dir: str or path. Directory of the outputs; created if needed. Files of an
            earlier run there are overwritten.
        quick: bool. The quick settings (`QUICK_SETTINGS`) instead of the full ones
            (`FULL_SETTINGS`). Defaults to `False`.
        seed: int >= 0. Seeds the data sets and the models' initialization. Defaults to `0`.
        progress: bool. Show a Keras progress bar (`keras.utils.Progbar`, on stdout) over
            the epochs of each run; when stdout is not a terminal, one plain line per epoch
            instead. Defaults to `True`.
        log: callable taking a str, or `None`. Receives a line when each run starts and
            when it finishes (e.g. `print`, or `logging.getLogger(...).info`). Defaults to
            `None`: no lines.
        sequence_lengths: list of ints >= 2, or `None`. Overrides the settings' lengths;
            run in increasing order. Defaults to `None`.
        models: list of str, or `None`. A subset of `MODEL_NAMES` to train, in that order.
            Defaults to `None`: all four.
        epochs: int or `None`. Overrides the settings' epochs per run. Defaults to `None`.

    Returns:
        The content of `results.json`: a dict with `status` (`"completed"`), `settings`,
        `sequence_lengths`, `models`, `runs` (one dict per run: `model`,
        `sequence_length`, `accuracy`, `mse`, `epochs`, `num_parameters`,
        `train_seconds`, `seconds`, `cpu_seconds`, `model_path`, `log_dir`,
        `reload_max_abs_diff`, `reload_ok`, `hidden_state_gradient_norms` (a list over t,
        `None` for the transformer)), `accuracy` and `mse` (`{model: {str(length):
        value}}`), `baselines`, `plot_path`, `output_dir` and total times. Format it with
        `format_showdown_table` (of `keras_seq.recipes.showdown_report`, also found here).

    Example:
    ```python
    import tempfile

    from keras_seq.recipes.showdown import run_showdown
    from keras_seq.recipes.showdown_report import format_showdown_table

    results = run_showdown(
        tempfile.mkdtemp(), quick=True, progress=False, sequence_lengths=[8],
        models=["gru"], epochs=1,
    )
    table = format_showdown_table(results)  # accuracy and MSE against length
    ```
    """
    output_dir = _validate_output_dir(output_dir)
    validate_bool("quick", quick)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")
    validate_bool("progress", progress)
    if log is not None and not callable(log):
        raise TypeError(
            "`log` must be a callable taking a str (e.g. `print`), or `None`. "
            f"Received: log={log!r} of type {type(log).__name__}"
        )
    settings = showdown_settings(quick)
    if sequence_lengths is not None:
        settings["sequence_lengths"] = _validate_sequence_lengths(sequence_lengths)
    model_names = list(MODEL_NAMES) if models is None else _validate_models(models)
    if epochs is not None:
        settings["epochs"] = validate_positive_int("epochs", epochs)
    log = log or (lambda line: None)

    os.makedirs(os.path.join(output_dir, "models"), exist_ok=True)
    os.makedirs(os.path.join(output_dir, "logs"), exist_ok=True)
    results = {
        "task": "adding_problem",
        "status": "running",
        "quick": quick,
        "seed": int(seed),
        "settings": settings,
        "sequence_lengths": settings["sequence_lengths"],
        "models": model_names,
        "accuracy_tolerance": ADDING_PROBLEM_TOLERANCE,
        "baselines": {
            "accuracy": ADDING_PROBLEM_BASELINE_ACCURACY,
            "mse": ADDING_PROBLEM_BASELINE_MSE,
        },
        "runs": [],
        "sha256": {},  # of each model file, checked by the command line before it loads one
        "accuracy": {},
        "mse": {},
        "output_dir": os.path.abspath(output_dir),
        "plot_path": None,
        "seconds": 0.0,
        "cpu_seconds": 0.0,
        "keras_version": keras.__version__,
    }
    start, cpu_start = time.time(), time.process_time()
    plan = [(length, name) for length in settings["sequence_lengths"] for name in model_names]
    try:
        for index, (length, name) in enumerate(plan):
            log(f"[{index + 1}/{len(plan)}] {DISPLAY_NAMES[name]}, sequence length {length}")
            run = _train_one(output_dir, name, length, settings, int(seed), progress)
            results["runs"].append(run)
            relative = os.path.relpath(run["model_path"], output_dir).replace(os.sep, "/")
            results["sha256"][relative] = sha256_file(run["model_path"])
            results["accuracy"].setdefault(name, {})[str(length)] = run["accuracy"]
            results["mse"].setdefault(name, {})[str(length)] = run["mse"]
            results["seconds"] = time.time() - start
            results["cpu_seconds"] = time.process_time() - cpu_start
            outputs.save_figure(showdown_figure(results), os.path.join(output_dir, PLOT_FILE))
            results["plot_path"] = os.path.abspath(os.path.join(output_dir, PLOT_FILE))
            outputs.write_json(os.path.join(output_dir, RESULTS_FILE), results)
            log(
                f"  accuracy {run['accuracy']:.3f}, MSE {run['mse']:.4f}, "
                f"{run['seconds']:.1f} s; reloaded {run['model_path']} "
                f"(max |difference| {run['reload_max_abs_diff']:.1e})"
            )
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            results["status"] = "interrupted"
        else:
            results["status"] = "failed"
            results["error"] = repr(error)
        results["seconds"] = time.time() - start
        results["cpu_seconds"] = time.process_time() - cpu_start
        outputs.write_json(os.path.join(output_dir, RESULTS_FILE), results)
        raise
    results["status"] = "completed"
    outputs.write_json(os.path.join(output_dir, RESULTS_FILE), results)
    return results


def _train_one(output_dir, name, length, settings, seed, progress):
    """Train, evaluate, probe, save and reload one model; its entry of `results["runs"]`."""
    start, cpu_start = time.time(), time.process_time()
    run_name = f"{name}_T{length}"
    log_dir = os.path.join(output_dir, "logs", run_name)
    model_path = os.path.join(output_dir, "models", f"{run_name}.keras")
    # An earlier run's events in the same directory would mix with this run's in TensorBoard.
    shutil.rmtree(log_dir, ignore_errors=True)
    x_train, y_train = adding_problem_data(settings["num_train"], length, seed=seed)
    x_test, y_test = adding_problem_data(settings["num_test"], length, seed=seed + 1)
    x_probe, y_probe = x_test[: settings["probe_size"]], y_test[: settings["probe_size"]]

    keras.utils.set_random_seed(seed)
    model = build_showdown_model(
        name,
        length,
        units=settings["units"],
        hidden_dim=settings["hidden_dim"],
        num_heads=settings["num_heads"],
        intermediate_dim=settings["intermediate_dim"],
    )
    epochs = settings["epochs"]
    steps = epochs * math.ceil(settings["num_train"] / settings["batch_size"])
    learning_rate = keras.optimizers.schedules.CosineDecay(settings["learning_rates"][name], steps)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=settings["global_clipnorm"]),
        loss="mse",
        metrics=[adding_problem_accuracy],
    )
    every = max(1, epochs // 4)  # about four TensorBoard images per run
    callbacks = [keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False)]
    if name in RECURRENT_MODELS:
        callbacks.append(
            GradientNormLogger(
                log_dir, x_probe, y_probe, every_n_epochs=every, recurrent_layer_names=["rnn"]
            )
        )
    else:
        callbacks.append(
            AttentionMapLogger(log_dir, x_probe[:2], layer_names=["encoder"], every_n_epochs=every)
        )
    if progress:
        callbacks.append(_EpochProgress(epochs))
    fit_start = time.time()
    model.fit(
        x_train,
        y_train,
        batch_size=settings["batch_size"],
        epochs=epochs,
        callbacks=callbacks,
        verbose=0,
    )
    train_seconds = time.time() - fit_start

    predictions = _predict(model, x_test)  # (N, 1)
    errors = predictions[:, 0] - y_test[:, 0]
    norms = None
    if name in RECURRENT_MODELS:
        norms = hidden_state_gradient_norms(model, x_probe, y_probe, "rnn").tolist()

    outputs.save_model(model, model_path)
    reloaded = keras.saving.load_model(model_path)
    reloaded_predictions = _predict(reloaded, x_test)
    difference = float(np.max(np.abs(reloaded_predictions - predictions)))
    return {
        "model": name,
        "sequence_length": length,
        "accuracy": float(np.mean(np.abs(errors) < ADDING_PROBLEM_TOLERANCE)),
        "mse": float(np.mean(np.square(errors))),
        "epochs": epochs,
        "num_parameters": int(model.count_params()),
        "train_seconds": train_seconds,
        "seconds": time.time() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "model_path": os.path.abspath(model_path),
        "log_dir": os.path.abspath(log_dir),
        "reload_max_abs_diff": difference,
        "reload_ok": bool(difference <= RELOAD_TOLERANCE),
        "hidden_state_gradient_norms": norms,
    }


def _predict(model, inputs, batch_size=PREDICT_BATCH_SIZE):
    """`model`'s outputs on `inputs`, called eagerly batch by batch: NumPy `(N, 1)`.

    Eager calls instead of `model.predict`, whose `tf.function` is traced anew for every
    model (seconds per run here, and TensorFlow's retracing warnings).
    """
    batches = [
        keras.ops.convert_to_numpy(model(inputs[start : start + batch_size], training=False))
        for start in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(batches, axis=0)


def _validate_output_dir(output_dir):
    if not isinstance(output_dir, (str, os.PathLike)) or not os.fspath(output_dir):
        raise TypeError(
            "`output_dir` must be a non-empty str or path. "
            f"Received: output_dir={output_dir!r} of type {type(output_dir).__name__}"
        )
    output_dir = os.fspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(
            "`output_dir` must be a directory (or not exist yet); it is an existing file. "
            f"Received: output_dir={output_dir!r}"
        )
    return output_dir


def _validate_model_name(argument, name):
    if name not in MODEL_NAMES:
        raise ValueError(
            f"`{argument}` must be one of {list(MODEL_NAMES)}. Received: {argument}={name!r}"
        )


def _is_length(value):
    """An int >= 2: the adding problem marks one step in each half."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 2


def _validate_sequence_length(argument, length):
    if not _is_length(length):
        raise ValueError(f"`{argument}` must be an integer >= 2. Received: {argument}={length!r}")


def _validate_sequence_lengths(lengths):
    if (
        not isinstance(lengths, (list, tuple))
        or not lengths
        or not all(_is_length(length) for length in lengths)
        or len(set(lengths)) != len(lengths)
    ):
        raise ValueError(
            "`sequence_lengths` must be a non-empty list of distinct integers >= 2. "
            f"Received: sequence_lengths={lengths!r}"
        )
    return sorted(int(length) for length in lengths)


def _validate_models(models):
    if (
        not isinstance(models, (list, tuple))
        or not models
        or any(name not in MODEL_NAMES for name in models)
        or len(set(models)) != len(models)
    ):
        raise ValueError(
            f"`models` must be a non-empty list of distinct names from {list(MODEL_NAMES)}. "
            f"Received: models={models!r}"
        )
    return [name for name in MODEL_NAMES if name in models]
