"""The `keras-seq` command line (the console script's entry point is `main`).

Each subcommand is one function decorated with `@subcommand(...)`: the decorator declares the
subcommand's name, help and arguments, and the function receives the parsed `argparse.Namespace`
and returns an exit code. Adding a subcommand (`demo`, `train`, `generate`, ...) means writing one
such function in this module.

Start-up stays light: this module imports the standard library and the stdlib-only tables it
describes the subcommands with (`keras_seq.recipes.registry`, `keras_seq.decoding_options`,
and `keras_seq.recipes.model_sources`, which checks the MODEL of `generate`),
and in the `keras-seq` process the package leaves its subpackages out
(`keras_seq.subpackages`), so `--help`, `--version` and usage errors answer without importing
TensorFlow. A subcommand imports what it runs after its own checks, inside a
`with quiet_tensorflow():` block, which hides TensorFlow's C++ log lines (its start-up lines
among them) unless the block raises; there `import_subpackages()` imports every subpackage,
so that every class a `.keras` file names is registered.
"""

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import sys
import textwrap

from keras_seq.decoding_options import OPTION_DEFAULTS
from keras_seq.decoding_options import STRATEGY_OPTIONS
from keras_seq.recipes import data_files
from keras_seq.recipes import model_sources
from keras_seq.recipes import registry
from keras_seq.stderr_capture import quiet_stderr
from keras_seq.subpackages import import_subpackages
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


class UsageError(Exception):
    """A bad option found by a subcommand after parsing: `main` reports it as `argparse`
    does (the subcommand's usage, the message, exit code 2). The message should start with
    `argument --option:` and end with the value received."""


def _number_type(convert, accept, requirement):
    """An `argparse` type: `convert(text)` when `accept` takes it, else an error saying
    what it `must be` and the text received."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}. Received: {text!r}")
        return value

    return parse


positive_int = _number_type(int, lambda value: value >= 1, "a positive integer")
non_negative_int = _number_type(int, lambda value: value >= 0, "a non-negative integer")
positive_float = _number_type(float, lambda value: 0.0 < value < float("inf"), "a positive number")
probability = _number_type(float, lambda value: 0.0 < value <= 1.0, "a number in (0, 1]")
finite_float = _number_type(float, math.isfinite, "a finite number")


# Hides TensorFlow's C++ log lines written inside the block unless it raises (see its
# docstring).
quiet_tensorflow = quiet_stderr


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


@contextlib.contextmanager
def _progress_to_stdout():
    """Show the recipes' progress lines (`logging` INFO of `keras_seq.recipes`) on stdout."""
    recipe_logger = logging.getLogger("keras_seq.recipes")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous_level = recipe_logger.level
    recipe_logger.addHandler(handler)
    recipe_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        recipe_logger.removeHandler(handler)
        recipe_logger.setLevel(previous_level)


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
        import_subpackages()
        from keras_seq.recipes.showdown import format_showdown_table
        from keras_seq.recipes.showdown import run_showdown

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


@contextlib.contextmanager
def _data_errors():
    """A data file found unusable while it is read (not UTF-8 text, too short, ...) is a
    usage error of `--data` naming it; a model to fine-tune of the wrong class one of
    `--from`."""
    try:
        yield
    except data_files.DataPathError as error:
        raise UsageError(
            f"argument --data: the path {error.reason}. Received: {error.path!r}"
        ) from None
    except data_files.FromModelError as error:
        raise UsageError(
            f"argument --from: the model {error.reason}. Received: {error.source!r}"
        ) from None


@subcommand(
    "train",
    help="train a recipe on built-in data or your own and save the model, logs, plots and metrics",
    description=(
        "Train one of the built-in recipes on data generated locally (nothing is downloaded), "
        "or with --data on your own: `keras-seq train char-lm --data corpus.txt` (text files, "
        "or directories of .txt files; the vocabulary is the data's characters, saved as "
        "vocabulary.json), `keras-seq train vit-digits --data DIR` (one sub-directory of "
        "images per class; the class names are saved with the model), "
        "`keras-seq train seq2seq-attention --data pairs.tsv` (source TAB target per line). "
        "The output directory receives model.keras, metrics.json (options, per-epoch and "
        "final metrics, held-out scores, times), TensorBoard logs under logs/ and PNG plots; "
        "the text recipes also write vocabulary.json for `keras-seq generate`. The model and "
        "metrics.json are rewritten atomically after every epoch, so an interrupted run "
        "keeps the outputs of its last finished epoch, and --resume continues it. An output "
        "directory that holds an earlier run is refused unless --overwrite or --resume is "
        "given.\n\nrecipes:\n" + registry.recipe_table()
    ),
    arguments=[
        argument("recipe", metavar="RECIPE", choices=list(registry.RECIPES), help="recipe name"),
        argument(
            "--model",
            help="the recipe's architecture (see the list above; default: the first)",
        ),
        argument("--epochs", type=positive_int, help="epochs (default: the recipe's)"),
        argument(
            "--batch-size", type=positive_int, help="global batch size (default: the recipe's)"
        ),
        argument(
            "--output-dir",
            metavar="DIR",
            help=f"where outputs go (default: {registry.DEFAULT_OUTPUT_ROOT}/RECIPE)",
        ),
        argument(
            "--strategy",
            choices=registry.STRATEGIES,
            default="default",
            help="'mirrored': tf.distribute.MirroredStrategy over every visible device "
            "(default: %(default)s)",
        ),
        argument(
            "--mixed-precision",
            nargs="?",
            const="auto",
            default="none",
            choices=registry.MIXED_PRECISION,
            metavar="POLICY",
            help="train under a mixed dtype policy: mixed_float16, mixed_bfloat16, or auto "
            "(the flag alone: mixed_float16 with a GPU, mixed_bfloat16 without); "
            "default: %(default)s",
        ),
        argument(
            "--jit-compile",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="compile the train step with XLA, or not (default: the recipe's choice)",
        ),
        argument(
            "--from",
            dest="from_model",
            metavar="MODEL",
            help="with --data: fine-tune this model instead of building one: a .keras file "
            "(char-lm, seq2seq-attention: one it saved, vocabulary.json beside it), or for "
            "vit-digits and "
            "swin-digits a preset or checkpoint handle of from_preset (a new head when the "
            "number of classes differs)",
        ),
        argument(
            "--overwrite",
            action="store_true",
            help="replace the run that --output-dir already holds (without it, or --resume, "
            "such a directory is refused)",
        ),
        argument(
            "--resume",
            action="store_true",
            help="continue the interrupted run in --output-dir from its last finished epoch "
            "(weights and optimizer state from its backup/ directory); give the same options",
        ),
        argument(
            "--data",
            nargs="+",
            metavar="PATH",
            help="train on your own data instead of the built-in data; char-lm: UTF-8 text "
            "files or directories of .txt files (every tenth window of text validates); "
            "vit-digits, swin-digits: one directory with a sub-directory of images per class "
            "(a fifth of them validates, unless --validation-data); seq2seq-attention: "
            "tab-separated files, source TAB target per line, or directories of .tsv files "
            "(every tenth pair validates)",
        ),
        argument(
            "--validation-data",
            metavar="DIR",
            help="vit-digits, swin-digits with --data: validation images, one sub-directory "
            "per class (the same classes)",
        ),
        argument(
            "--quick",
            action="store_true",
            help="tiny model (and tiny built-in data; --data is used whole): a smoke test",
        ),
        argument(
            "--seed",
            type=non_negative_int,
            default=0,
            help="seed of initialization and shuffling (default: %(default)s)",
        ),
    ],
)
def train_command(args):
    recipe = registry.RECIPES[args.recipe]
    if args.model is not None and args.model not in recipe.models:
        raise UsageError(
            f"argument --model: recipe {recipe.name} has models {', '.join(recipe.models)}. "
            f"Received: {args.model!r}"
        )
    if args.data is not None:
        if not recipe.data:
            raise UsageError(
                f"argument --data: recipe {recipe.name} trains on built-in data; recipes that "
                f"take --data: {', '.join(registry.recipes_with_data())}. "
                f"Received: {' '.join(args.data)!r}"
            )
        if recipe.data == "images" and len(args.data) != 1:
            raise UsageError(
                f"argument --data: recipe {recipe.name} takes one directory (one "
                f"sub-directory of images per class). Received: {' '.join(args.data)!r}"
            )
        with _data_errors():
            registry.find_data_files(recipe, args.data)
    if args.validation_data is not None:
        if recipe.data != "images" or args.data is None:
            raise UsageError(
                "argument --validation-data: only for vit-digits and swin-digits with --data. "
                f"Received: {args.validation_data!r}"
            )
        with _data_errors():
            registry.find_validation_files(recipe, args.validation_data)
    if args.from_model is not None:
        problem = registry.from_model_problem(recipe, args.from_model, args.data)
        if problem:
            raise UsageError(f"argument --from: the model {problem}. Received: {args.from_model!r}")
    output_dir = args.output_dir
    if output_dir is None:
        output_dir = registry.default_output_dir(recipe, args.model)
    problem = registry.output_dir_problem(output_dir) if output_dir else "is empty"
    if problem:
        raise UsageError(f"argument --output-dir: the path {problem}. Received: {output_dir!r}")
    if args.overwrite and args.resume:
        raise UsageError("argument --resume: not allowed with argument --overwrite")
    problem = registry.previous_run_problem(
        output_dir,
        overwrite=args.overwrite,
        resume=args.resume,
        flags=True,
        recipe=recipe,
        model=args.model,
    )
    if problem:
        name, message = problem
        raise UsageError(
            f"argument --{name.replace('_', '-')}: {message}. Received: {output_dir!r}"
        )
    metrics = None
    with quiet_tensorflow():
        import_subpackages()
        from keras_seq.recipes.runner import train_recipe

        # Ctrl-C: the runner has marked metrics.json "interrupted"; the message is printed
        # after the block, whose stderr is dropped.
        with contextlib.suppress(KeyboardInterrupt), _progress_to_stdout(), _data_errors():
            metrics = train_recipe(
                recipe.name,
                output_dir=output_dir,
                epochs=args.epochs,
                batch_size=args.batch_size,
                strategy=args.strategy,
                mixed_precision=args.mixed_precision,
                jit_compile=args.jit_compile,
                quick=args.quick,
                seed=args.seed,
                model=args.model,
                data=args.data,
                validation_data=args.validation_data,
                from_model=args.from_model,
                overwrite=args.overwrite,
                resume=args.resume,
                verbose="auto",  # plain lines, not a bar's \r updates, unless on a terminal
            )
    if metrics is None:
        print(
            f"\nInterrupted: the outputs of the finished epochs are in {output_dir} "
            "(metrics.json says how far it got); the same command with --resume continues "
            "the run.",
            file=sys.stderr,
        )
        return 130
    print(registry.format_train_summary(metrics))
    return 0


@subcommand(
    "generate",
    help="generate text from a saved language or seq2seq model (.keras) or a GPT-2 / Marian "
    "checkpoint",
    description=(
        "Load a causal language model (RNNCausalLM, GPTCausalLM) or a sequence-to-sequence "
        "model (RNNSeq2SeqLM, TransformerSeq2SeqLM; their deprecated 0.1 classes too) saved "
        "as .keras, or a checkpoint: GPT-2 with GPTCausalLM.from_preset, Marian translation "
        "(opus-mt) with TransformerSeq2SeqLM.from_preset (a Hugging Face transformers "
        "directory, a keras_seq preset directory, or an hf://owner/name handle, downloaded "
        "into huggingface_hub's cache; a keras-hub GPT-2 preset directory, name such as "
        "gpt2_base_en, or kaggle:// handle), and print one line per --prompt: "
        "a language model's prompt and continuation, a seq2seq model's output. A model with "
        "a tokenizer (a checkpoint's tokenizer files, or one saved with the model) encodes "
        "and decodes the text, and decodes as the checkpoint's generation config says "
        "(Marian: beam search) unless --strategy and its options are given. Otherwise text is "
        "encoded and decoded with vocabulary.json (written by `keras-seq train char-lm` and "
        "`seq2seq-attention` beside model.keras, or given with --vocabulary); without one, "
        "prompts and outputs are token ids separated by spaces. Other sequence-to-sequence "
        "checkpoints (T5, BART, ...) are not supported."
    ),
    arguments=[
        argument(
            "model_path",
            metavar="MODEL",
            help="a saved model (RUN_DIR/model.keras), a checkpoint or preset directory, "
            "hf://owner/name[@revision], or a keras-hub preset name or kaggle:// handle",
        ),
        argument(
            "--prompt",
            action="append",
            help="text to continue or translate (repeat for several prompts)",
        ),
        argument(
            "--prompts-file",
            metavar="FILE",
            help="more prompts, one per line (- reads standard input); empty lines are "
            "skipped",
        ),
        argument(
            "--vocabulary",
            metavar="PATH",
            help="vocabulary.json (default: the one beside MODEL, if any; not for a model "
            "with a tokenizer)",
        ),
        argument(
            "--max-new-tokens",
            type=positive_int,
            help="tokens to generate (default: the vocabulary file's, else the "
            "checkpoint's generation config, else 32)",
        ),
        argument(
            "--strategy",
            choices=list(STRATEGY_OPTIONS),
            help="decoding strategy (default: the checkpoint's generation config, else greedy)",
        ),
        argument(
            "--temperature",
            type=positive_float,
            help=f"sampling temperature ({OPTION_DEFAULTS['temperature']})",
        ),
        argument(
            "--top-k",
            type=positive_int,
            help=f"top_k: sample among the k best ({OPTION_DEFAULTS['top_k']})",
        ),
        argument(
            "--top-p",
            type=probability,
            help=f"top_p: nucleus probability ({OPTION_DEFAULTS['top_p']})",
        ),
        argument(
            "--num-beams",
            type=positive_int,
            help=f"beam: beam width ({OPTION_DEFAULTS['num_beams']})",
        ),
        argument(
            "--length-penalty",
            type=finite_float,
            help=f"beam: length exponent ({OPTION_DEFAULTS['length_penalty']})",
        ),
        argument(
            "--early-stopping",
            choices=["exact", "false", "true"],
            help="beam: when a search ends; exact: never misses a better hypothesis; false "
            "/ true: Hugging Face's early_stopping rules; a checkpoint may set its own "
            f"({OPTION_DEFAULTS['early_stopping']})",
        ),
        argument("--seed", type=non_negative_int, help="sampling seed (default: random)"),
        argument(
            "--jit-compile",
            action="store_true",
            help="compile the decoding loop with XLA: a few seconds once, faster per token "
            "(pays off for long outputs; default: off)",
        ),
        argument(
            "--stop-token-id",
            type=non_negative_int,
            help="stop at this token id (default: the tokenizer's end token, else the "
            "vocabulary file's, else none)",
        ),
        argument(
            "--repetition-penalty",
            type=positive_float,
            help="divide (multiply) the positive (negative) score of every token already in "
            "the prompt or output by this, as Hugging Face does (default: off)",
        ),
        argument(
            "--no-repeat-ngram-size",
            type=positive_int,
            help="never repeat an n-gram of this size (default: off)",
        ),
        argument(
            "--min-new-tokens",
            type=non_negative_int,
            help="no stop token before this many new tokens (default: 0)",
        ),
        argument(
            "--stream",
            action="store_true",
            help="print the text as the tokens come, one prompt after the other (greedy and "
            "sampling strategies)",
        ),
    ],
)
def generate_command(args):
    # MODEL first, from the file system alone (no TensorFlow yet); the other checks need
    # the library (the vocabulary's classes, the decoding options' table).
    try:
        model_sources.model_source(args.model_path)
    except model_sources.GenerateOptionError as error:
        raise UsageError(str(error)) from None
    args.prompt = list(args.prompt or []) + _read_prompts_file(args.prompts_file)
    if not args.prompt:
        raise UsageError(
            "argument --prompt: at least one prompt is required (--prompt TEXT, or "
            "--prompts-file FILE). Received: none"
        )
    with quiet_tensorflow():
        import_subpackages()
        from keras_seq.recipes import generate_text

    options = {
        name: getattr(args, name)
        for name in (
            "temperature",
            "top_k",
            "top_p",
            "num_beams",
            "length_penalty",
            "early_stopping",
            "seed",
        )
        if getattr(args, name) is not None
    }
    if "early_stopping" in options:
        options["early_stopping"] = {"exact": "exact", "false": False, "true": True}[
            options["early_stopping"]
        ]
    processing = {
        name: getattr(args, name)
        for name in ("repetition_penalty", "no_repeat_ngram_size", "min_new_tokens")
        if getattr(args, name) is not None
    }
    try:
        vocabulary = generate_text.check_generate_options(
            args.model_path, args.strategy, options, args.vocabulary, args.prompt
        )
        with quiet_tensorflow():
            texts = generate_text.generate_from_saved_model(
                args.model_path,
                args.prompt,
                vocabulary=vocabulary,
                max_new_tokens=args.max_new_tokens,
                stop_token_id=args.stop_token_id,
                strategy=args.strategy,
                jit_compile=args.jit_compile,
                **options,
                **processing,
                **({"write": _write_flushed} if args.stream else {}),
            )
    except generate_text.GenerateOptionError as error:
        raise UsageError(str(error)) from None
    if not args.stream:
        for text in texts:
            print(text)
    return 0


def _write_flushed(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def _read_prompts_file(path):
    """The non-empty lines of `path` (`-`: standard input), without their line ends; `[]`
    for `None`."""
    if path is None:
        return []
    try:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as file:
                lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(
            f"argument --prompts-file: cannot read it ({type(error).__name__}: {error}). "
            f"Received: {path!r}"
        ) from None
    return [line for line in lines if line.strip()]


def _check_saved_model(model_path):
    """MODEL of `evaluate` / `predict`, from the file system alone (before TensorFlow)."""
    if not (os.path.isfile(model_path) and model_path.endswith(".keras")):
        reason = "does not exist" if not os.path.exists(model_path) else "is not a .keras file"
        raise UsageError(f"argument MODEL: the path {reason}. Received: {model_path!r}")


@subcommand(
    "evaluate",
    help="evaluate a model saved by `keras-seq train` on your data",
    description=(
        "Load a model saved by `keras-seq train` (RUN_DIR/model.keras; a text model needs the "
        "vocabulary.json beside it) and score it on --data, given as for training: an image "
        "classifier on a directory with one sub-directory of images per class (named as its "
        "classes): accuracy, top-5 accuracy and loss; a language model (char-lm) on text "
        "files or directories of .txt files: loss and perplexity; a seq2seq model "
        "(seq2seq-attention) on tab-separated pairs: exact match and character accuracy of "
        "greedy decoding."
    ),
    arguments=[
        argument("model_path", metavar="MODEL", help="a saved model (RUN_DIR/model.keras)"),
        argument("--data", nargs="+", metavar="PATH", required=True, help="the data to score"),
        argument(
            "--batch-size", type=positive_int, default=32, help="batch size (default: %(default)s)"
        ),
        argument("--json", action="store_true", help="print the scores as a JSON object"),
    ],
)
def evaluate_command(args):
    _check_saved_model(args.model_path)
    with quiet_tensorflow():
        import_subpackages()
        from keras_seq.recipes import evaluate_model

        try:
            scores = evaluate_model.evaluate_saved_model(
                args.model_path, args.data, batch_size=args.batch_size
            )
        except model_sources.GenerateOptionError as error:
            raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        print(f"{scores['class']} ({scores['task']}) on {scores['examples']} examples")
        for key, value in scores.items():
            if key not in ("model", "task", "class", "data", "examples"):
                print(f"  {key}: {value:.4g}")
    return 0


@subcommand(
    "predict",
    help="classify images, continue text or translate lines with a model saved by "
    "`keras-seq train`",
    description=(
        "Load a model saved by `keras-seq train` (RUN_DIR/model.keras; a text model needs the "
        "vocabulary.json beside it) and print one line per input: an image classifier takes "
        "image files and prints the most probable classes with their probabilities; a "
        "language model takes prompts and prints each with its greedy continuation; a "
        "seq2seq model takes source lines and prints their greedy translations. "
        "`keras-seq generate` offers the other decoding strategies."
    ),
    arguments=[
        argument("model_path", metavar="MODEL", help="a saved model (RUN_DIR/model.keras)"),
        argument("inputs", metavar="INPUTS", nargs="+", help="image files, prompts or lines"),
        argument(
            "--top-k",
            type=positive_int,
            help="image classifier: classes per image (default: 5, or fewer classes)",
        ),
        argument(
            "--max-new-tokens",
            type=positive_int,
            help="text models: tokens to generate (default: the vocabulary file's)",
        ),
    ],
)
def predict_command(args):
    _check_saved_model(args.model_path)
    with quiet_tensorflow():
        import_subpackages()
        from keras_seq.recipes import evaluate_model

        try:
            lines = evaluate_model.predict_saved_model(
                args.model_path,
                args.inputs,
                top_k=args.top_k,
                max_new_tokens=args.max_new_tokens,
            )
        except model_sources.GenerateOptionError as error:
            raise UsageError(str(error)) from None
    for line in lines:
        print(line)
    return 0


def _wrap_description(text, width=79):
    """Wrap each paragraph of `text` (paragraphs are separated by blank lines) to `width`
    columns, except paragraphs whose lines are indented (tables, kept as written)."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines = paragraph.split("\n")
        if any(line.startswith(" ") for line in lines):
            paragraphs.append(paragraph)
        else:
            paragraphs.append(textwrap.fill(" ".join(lines), width))
    return "\n\n".join(paragraphs)


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
            name,
            help=help_text,
            description=_wrap_description(description),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        for flags, kwargs in arguments:
            sub.add_argument(*flags, **kwargs)
        sub.set_defaults(handler=function, subparser=sub)
    return parser


def main(argv=None):
    """Run `keras-seq` with `argv` (default: `sys.argv[1:]`) and return the exit code.

    `--help`, `--version` and usage errors raise `SystemExit` from `argparse` (code 0 for the first
    two, 2 for usage errors, with a message naming the bad option or value on stderr).
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # With the usage of the subcommand they were given to, when there is one.
        culprit = args.subparser if args.command is not None else parser
        culprit.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        names = ", ".join(name for name, *_ in _SUBCOMMANDS)
        parser.error(f"missing COMMAND (choose from {names})")
    try:
        return int(args.handler(args) or 0)
    except UsageError as error:
        args.subparser.error(str(error))


if __name__ == "__main__":
    sys.exit(main())
