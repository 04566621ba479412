"""The common runner of the training recipes: options, outputs and the per-epoch record.

`train_recipe(name, ...)` sets up what every recipe shares (seed, dtype policy,
`tf.distribute` strategy, output directory) and calls the recipe's `train(run)` function with a
`RecipeRun`, through which the recipe fits, saves its model and plots, and reports its held-out
metrics. The output directory then holds:

- `model.keras`: the trained model (after every epoch the latest one, see below);
- `metrics.json`: status, options, per-epoch history (one value per epoch, `null` where
  a metric was not computed that epoch), the last training and validation metrics, the
  held-out metrics of the recipe, times, the reload check and the SHA-256 of `model.keras`
  (`"sha256"`, checked by the command line before it loads the model);
- `logs/<run>/`: TensorBoard logs of this run (Keras' scalars plus the recipe's
  `GenerationLogger` / `AttentionMapLogger` output), one subdirectory per run so that
  reruns into the same directory show as separate runs;
- `training_curves.png` and the recipe's own plots;
- while training, `backup/`: the last finished epoch's weights and optimizer state
  (`keras.callbacks.BackupAndRestore`), deleted when the run completes; `resume=True`
  continues an interrupted run from it.

A directory that holds an earlier run is refused unless `overwrite=True` (replace it) or
`resume=True` (continue it).

Every file is written atomically (`keras_seq.recipes.outputs`). After each epoch the model and
`metrics.json` (status `"running"`) are rewritten, so a run stopped by Ctrl-C or a crash
leaves the last finished epoch's model and record intact; `metrics.json` then says
`"interrupted"` or `"failed"`.
"""

import contextlib
import datetime
import logging
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_seq.recipes import model_files
from keras_seq.recipes import outputs
from keras_seq.recipes import previous_run
from keras_seq.recipes import registry
from keras_seq.recipes.registry import default_output_dir
from keras_seq.recipes.registry import find_data_files
from keras_seq.recipes.registry import get_recipe
from keras_seq.recipes.registry import load_recipe
from keras_seq.recipes.registry import validate_train_options
from keras_seq.utils.fit_checks import check_fit_data
from keras_seq.utils.multi_worker import apply_multi_worker_fixes
from keras_seq.version import __version__

logger = logging.getLogger(__name__)

MODEL_FILE = registry.MODEL_FILE
METRICS_FILE = registry.METRICS_FILE
CURVES_FILE = "training_curves.png"


def _float(value):
    return float(np.asarray(value))


class _EpochRecord(keras.callbacks.Callback):
    """After every epoch: append the logs to the run's history, save the model and rewrite
    `metrics.json`, both atomically."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        # One entry per epoch in every list; `None` where a metric was not computed (e.g.
        # validation every few epochs).
        logs = logs or {}
        done = self.run.epochs_completed
        for key in set(self.run.history) | set(logs):
            values = self.run.history.setdefault(key, [None] * done)
            values.append(_float(logs[key]) if key in logs else None)
        self.run.epochs_completed += 1
        outputs.save_model(self.model, self.run.path(MODEL_FILE))
        self.run.record_sha256(MODEL_FILE)
        self.run.model_epoch = self.run.epochs_completed
        self.run.write_metrics("running")


class RecipeRun:
    """One run of a recipe: its options, strategy and outputs (what `train(run)` gets).

    Attributes set from the options: `recipe` (the `Recipe`), `model_name` (the `--model`
    choice), `output_dir`, `log_dir`, `epochs`, `batch_size`, `quick`, `seed`, `data` (the
    user's data: the files found in the given paths, the image recipes' directory; `None`
    for the recipe's built-in data),
    `validation_data` (the user's validation data, or `None`), `from_model` (the model to
    fine-tune, or `None`), `jit_compile` (`None` lets the
    recipe choose), `mixed_precision` (the dtype policy name,
    or `"none"`), `strategy` (a `tf.distribute.Strategy`) and `verbose` (of `fit`).
    """

    def __init__(self, recipe, model_name, output_dir, options, strategy, callbacks, verbose):
        self.recipe = recipe
        self.model_name = model_name
        self.output_dir = output_dir
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        self.log_dir = os.path.join(output_dir, "logs", f"run-{stamp}")
        self.options = options
        self.epochs = options["epochs"]
        self.batch_size = options["batch_size"]
        self.quick = options["quick"]
        self.seed = options["seed"]
        self.data = options["data"]
        self.validation_data = options["validation_data"]
        self.from_model = options["from_model"]
        self.jit_compile = options["jit_compile"]
        self.mixed_precision = options["mixed_precision"]
        self.strategy = strategy
        self.verbose = verbose
        self.extra_callbacks = list(callbacks or [])
        self.history = {}
        self.epochs_completed = 0
        self.model_epoch = None
        self.held_out = {}
        self.details = {}
        self.files = []
        self.checksums = {}
        self.started = time.time()
        self.train_seconds = None
        self.num_parameters = None

    def path(self, filename):
        """The path of `filename` in the output directory."""
        return os.path.join(self.output_dir, filename)

    def scope(self):
        """The strategy's scope: build and compile models inside it."""
        return self.strategy.scope()

    def compile_jit(self, default=None):
        """The `jit_compile` to pass to `compile`: the option if given, else `default`
        (`None` means Keras' `"auto"`, which is off on CPU-only machines)."""
        value = self.jit_compile if self.jit_compile is not None else default
        return "auto" if value is None else value

    def fit(self, model, x, y=None, callbacks=(), **kwargs):
        """`model.fit` for `self.epochs` epochs with the standard callbacks: TensorBoard
        scalars, the per-epoch model and `metrics.json`, then `callbacks` and the callbacks
        given to `train_recipe`. Returns the Keras `History`."""
        if model.built and model.optimizer is not None and not model.optimizer.built:
            # Built here rather than inside the first traced train step, which would then be
            # traced twice (variables created in the first trace): 3 of 10 s for a small Swin.
            with self.scope():
                model.optimizer.build(model.trainable_variables)
        self.num_parameters = int(model.count_params()) if model.built else None
        standard = [
            keras.callbacks.TensorBoard(log_dir=self.log_dir, write_graph=False),
            _EpochRecord(self),
        ]
        if model.built:
            # The last finished epoch's weights and optimizer state, for `resume=True`:
            # restored when `fit` begins, deleted when it completes.
            standard.insert(0, keras.callbacks.BackupAndRestore(self.path(registry.BACKUP_DIR)))
        kwargs.setdefault("batch_size", None if _is_dataset(x) else self.batch_size)
        check_fit_data(
            model,
            x,
            y,
            kwargs["batch_size"],
            validation_data=kwargs.get("validation_data"),
            validation_batch_size=kwargs.get("validation_batch_size"),
        )
        apply_multi_worker_fixes(model)
        start = time.time()
        try:
            history = model.fit(
                x,
                y,
                epochs=self.epochs,
                callbacks=standard + list(callbacks) + self.extra_callbacks,
                verbose=self.verbose,
                **kwargs,
            )
        finally:
            self.train_seconds = time.time() - start
        self.num_parameters = int(model.count_params())
        self.details["jit_compile"] = bool(model.jit_compile)  # what "auto" resolved to
        return history

    def save_model(self, model, probe_inputs=None):
        """Save `model.keras`; with `probe_inputs`, reload it and record the largest
        difference between the two models' predictions on them (`reload_max_abs_diff`)."""
        path = self.path(MODEL_FILE)
        outputs.save_model(model, path)
        self.record_sha256(MODEL_FILE)
        self.model_epoch = self.epochs_completed
        self.add_file(MODEL_FILE)
        if probe_inputs is None:
            return
        reloaded = keras.saving.load_model(path, compile=False)
        # Predict the same way (XLA or not: results differ in low precision).
        reloaded.compile(jit_compile=model.jit_compile)
        batch_size = len(keras.tree.flatten(probe_inputs)[0])
        expected = model.predict(probe_inputs, batch_size=batch_size, verbose=0)
        actual = reloaded.predict(probe_inputs, batch_size=batch_size, verbose=0)
        difference = max(
            float(np.max(np.abs(np.asarray(a, "float32") - np.asarray(b, "float32"))))
            for a, b in zip(keras.tree.flatten(expected), keras.tree.flatten(actual))
        )
        self.details["reload_max_abs_diff"] = difference
        self.details["reloaded_class"] = type(reloaded).__name__

    def record_sha256(self, filename):
        """Record the SHA-256 of the file `filename` of the output directory (a model) for
        `metrics.json`: the command line checks a model against it before loading it."""
        self.checksums[filename] = model_files.sha256_file(self.path(filename))

    def save_figure(self, figure, filename):
        """Write a matplotlib figure as the PNG `filename` of the output directory."""
        outputs.save_figure(figure, self.path(filename))
        self.add_file(filename)

    def write_json(self, filename, value):
        """Write `value` as the JSON file `filename` of the output directory."""
        outputs.write_json(self.path(filename), value)
        self.add_file(filename)

    def write_text(self, filename, text):
        """Write `text` as the UTF-8 file `filename` of the output directory."""
        with outputs.atomic_path(self.path(filename)) as temporary:
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(text)
        self.add_file(filename)

    def report(self, **metrics):
        """Record held-out metrics (numbers) for `metrics.json` and the summary."""
        self.held_out.update({key: _float(value) for key, value in metrics.items()})

    def add_file(self, filename):
        """List `filename` (written by the recipe itself) in `metrics.json`'s `files`."""
        if filename not in self.files:
            self.files.append(filename)

    def metrics(self, status, error=None):
        """The content of `metrics.json`."""
        last = {}
        for key, values in self.history.items():
            known = [value for value in values if value is not None]
            if known:
                last[key] = known[-1]
        record = {
            "recipe": self.recipe.name,
            "model": self.model_name,
            "status": status,
            "epochs_completed": self.epochs_completed,
            "model_epoch": self.model_epoch,
            "train": {k: v for k, v in last.items() if not k.startswith("val_")},
            "validation": {k[4:]: v for k, v in last.items() if k.startswith("val_")},
            "held_out": dict(self.held_out),
            "history": self.history,
            "time_seconds": time.time() - self.started,
            "train_seconds": self.train_seconds,
            "num_parameters": self.num_parameters,
            "num_replicas": self.strategy.num_replicas_in_sync,
            "options": self.options,
            "files": sorted(set(self.files) | {METRICS_FILE}),
            model_files.RECORD_KEY: dict(self.checksums),
            "details": self.details,
            "versions": {
                "keras_seq": __version__,
                "keras": keras.__version__,
                "tensorflow": tf.__version__,
            },
        }
        if error is not None:
            record["error"] = error
        return record

    def write_metrics(self, status, error=None):
        outputs.write_json(self.path(METRICS_FILE), self.metrics(status, error))

    def write_curves(self):
        if self.history:
            figure = outputs.training_curves_figure(
                self.history, f"{self.recipe.name} ({self.model_name})"
            )
            self.save_figure(figure, CURVES_FILE)


def progress_verbose(stream=None):
    """The `verbose` of `fit` (and `keras.utils.Progbar`) for progress shown on `stream`.

    Args:
        stream: a text stream or `None`. Defaults to `sys.stdout`, where Keras writes.

    Returns:
        `1` on a terminal: a bar updated in place. `2` otherwise (a file, a pipe): plain
        lines, since Keras' bar writes `\\r` updates and colour codes wherever it runs on
        POSIX.

    Example:
    ```python
    import io

    from keras_seq.recipes.runner import progress_verbose

    assert progress_verbose(io.StringIO()) == 2
    ```
    """
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


def _given_data(recipe, data):
    """`data` as recorded in the options: the given paths made absolute (a list; the image
    recipes' one directory as a str)."""
    if data is None:
        return None
    paths = [os.path.abspath(os.fspath(path)) for path in registry.data_files.as_path_list(data)]
    return paths[0] if recipe.data == "images" else paths


def _is_dataset(x):
    return isinstance(x, tf.data.Dataset)


def _strategy(name):
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def resolve_mixed_precision(mixed_precision):
    """The dtype policy name for a `mixed_precision` option: `"auto"` is `"mixed_float16"`
    when TensorFlow sees a GPU and `"mixed_bfloat16"` otherwise; other names pass through."""
    if mixed_precision == "auto":
        has_gpu = bool(tf.config.list_physical_devices("GPU"))
        return "mixed_float16" if has_gpu else "mixed_bfloat16"
    return mixed_precision


def train_recipe(
    name,
    output_dir=None,
    epochs=None,
    batch_size=None,
    strategy="default",
    mixed_precision="none",
    jit_compile=None,
    quick=False,
    seed=0,
    model=None,
    data=None,
    validation_data=None,
    from_model=None,
    overwrite=False,
    resume=False,
    callbacks=None,
    verbose=0,
):
    """Train the recipe `name` (see `keras_seq.recipes.registry.RECIPES`) into `output_dir`.

    Args:
        name: str. A recipe name, e.g. `"char-lm"`.
        output_dir: str, path or `None`. Where the outputs go (created if needed); `None`
            means `keras_seq_runs/<recipe>` in the working directory.
        epochs: int or `None`. `None` uses the recipe's default (1 with `quick=True`).
        batch_size: int or `None`. The global batch size; `None` uses the recipe's default.
        strategy: `"default"` (no distribution) or `"mirrored"` (`tf.distribute.
            MirroredStrategy` over every visible device; one replica on a CPU-only machine).
        mixed_precision: `"none"`, `"mixed_float16"`, `"mixed_bfloat16"` or `"auto"`
            (`mixed_float16` with a GPU, `mixed_bfloat16` without). The global dtype policy
            while the run builds its models; restored afterwards.
        jit_compile: bool or `None`. Compile the train step with XLA; `None` leaves the
            choice to the recipe (Keras' `"auto"` except where XLA is measured faster).
        quick: bool. Tiny data and models, for tests: well under a minute.
        seed: int. Seeds initialization, shuffling and dropout (`keras.utils.
            set_random_seed`); the data sets are fixed.
        model: str or `None`. The recipe's architecture choice; `None` is its default.
        data: path, list of paths or `None`. The user's data for the recipes that take it
            (`keras_seq.recipes.registry.DATA_KINDS` says what each takes): for `char-lm`,
            UTF-8 text files or directories of `.txt` files; for `vit-digits` and
            `swin-digits`, a directory with one sub-directory of images per class; for
            `seq2seq-attention` tab-separated pairs; for `bert-classifier` CSV / TSV files of
            labeled texts; for `captioning-shapes` an image directory and a captions file;
            for `detr-shapes` an image directory and COCO annotations. `None` uses the
            built-in data.
        validation_data: path or `None`. For the image recipes with `data`: a directory of
            validation images with the same classes; `None` keeps a seeded fifth of `data`.
        from_model: str or `None`. Fine-tune this model on `data` instead of building one
            from scratch: a `.keras` file (for the text generation recipes and captioning,
            one they saved, with its vocabulary file beside it; for `char-lm` also a
            `GPTCausalLM` saved with its tokenizer), or for the classifiers and the detector
            also a preset handle or checkpoint of `from_preset`, for `char-lm` a GPT-2
            checkpoint directory (fine-tuned on its tokenizer's ids, saved with it). A classifier or
            detector gets a new head when the classes differ, and keeps its image size,
            channels and normalization.
        overwrite: bool. Replace the run that `output_dir` already holds (its listed files and
            its backup); without it (or `resume`) such a directory is refused. Defaults to
            `False`.
        resume: bool. Continue the run in `output_dir` that did not complete (interrupted
            or failed) from its last finished epoch: `keras.callbacks.BackupAndRestore`
            restores the weights and optimizer state from `output_dir/backup`, and the
            history goes on. Pass the options of the first run. Defaults to `False`.
        callbacks: list of `keras.callbacks.Callback` or `None`. Appended to the recipe's.
        verbose: int or `"auto"`. `fit`'s verbosity (0: silent, 1: progress bars, 2: a line
            per epoch); `"auto"` is `progress_verbose()`: 1 when stdout is a terminal, else 2.
            Defaults to `0`.

    Returns:
        The content of `metrics.json` as a dict (status `"completed"`).

    Raises:
        ValueError: for an unknown recipe or an invalid option, before anything is written.
        KeyboardInterrupt, or the error of a failed run: after `metrics.json` has recorded
        the status (`"interrupted"`, `"failed"`) next to the last finished epoch's model.

    Example:
    ```python
    import tempfile

    from keras_seq.recipes.runner import train_recipe

    output_dir = tempfile.mkdtemp()
    metrics = train_recipe("seq2seq-attention", output_dir=output_dir, quick=True)
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 1
    exact = metrics["held_out"]["exact_match"]  # 0 after one quick epoch; 0.99+ by default
    model = keras.saving.load_model(f"{output_dir}/model.keras")
    ```
    """
    recipe = get_recipe(name)
    validate_train_options(
        recipe,
        epochs=epochs,
        batch_size=batch_size,
        output_dir=output_dir,
        strategy=strategy,
        mixed_precision=mixed_precision,
        jit_compile=jit_compile,
        quick=quick,
        seed=seed,
        model=model,
        data=data,
        validation_data=validation_data,
        from_model=from_model,
        overwrite=overwrite,
        resume=resume,
    )
    model = model or recipe.models[0]
    verbose = progress_verbose() if verbose == "auto" else verbose
    if output_dir is None:
        output_dir = default_output_dir(recipe, model)
        registry.check_previous_run(output_dir, overwrite, resume, recipe=recipe, model=model)
    output_dir = os.fspath(output_dir)
    train = load_recipe(recipe)
    os.makedirs(output_dir, exist_ok=True)
    if overwrite:
        previous_run.remove_previous_run(output_dir)
    options = {
        "epochs": epochs or (1 if quick else recipe.epochs),
        "batch_size": batch_size or recipe.batch_size,
        "strategy": strategy,
        "mixed_precision": resolve_mixed_precision(mixed_precision),
        "jit_compile": jit_compile,
        "quick": quick,
        "seed": seed,
        "model": model,
        "data": _given_data(recipe, data),
        "validation_data": (
            None
            if validation_data is None
            else registry.find_validation_files(recipe, validation_data)
        ),
        "from_model": registry.from_model_source(from_model),
        "output_dir": os.path.abspath(output_dir),
    }
    previous_policy = keras.config.dtype_policy()
    keras.utils.set_random_seed(seed)
    if options["mixed_precision"] != "none":
        keras.config.set_dtype_policy(options["mixed_precision"])
    run = RecipeRun(recipe, model, output_dir, options, _strategy(strategy), callbacks, verbose)
    if data is not None:
        run.data = find_data_files(recipe, data)  # the files found in the given paths
        if isinstance(run.data, list):
            run.details["data_files"] = len(run.data)
    logger.info(
        "%s (%s): %d epochs, batch size %d, outputs in %s",
        recipe.name,
        model,
        run.epochs,
        run.batch_size,
        output_dir,
    )
    if resume:
        previous_run.continue_previous_run(run)
    try:
        run.write_metrics("running")
        train(run)
        run.write_curves()
    except BaseException as error:
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        with contextlib.suppress(Exception):
            run.write_curves()
        run.write_metrics(status, error=None if status == "interrupted" else repr(error))
        raise
    finally:
        keras.config.set_dtype_policy(previous_policy)
    record = run.metrics("completed")
    outputs.write_json(run.path(METRICS_FILE), record)
    return record
