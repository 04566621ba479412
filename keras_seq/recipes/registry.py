"""The training recipes of `keras-seq train`: their names, defaults and where each one lives.

This module imports neither TensorFlow nor Keras, so that the command line can check a recipe
name and its options before paying for them; `load_recipe` imports the recipe's module.
"""

import collections
import importlib
import json
import os

from keras_seq.recipes import caption_files
from keras_seq.recipes import data_files
from keras_seq.recipes import detection_files
from keras_seq.recipes import model_files
from keras_seq.recipes import model_sources

Recipe = collections.namedtuple(
    "Recipe",
    ["name", "module", "function", "summary", "epochs", "batch_size", "models", "data"],
    defaults=(None,),
)
Recipe.__doc__ = """One training recipe.

`module` and `function` name the function `train(run)` that trains it (see
`keras_seq.recipes.runner.RecipeRun`); `epochs` and `batch_size` are its defaults, chosen so
that it learns in a few CPU minutes; `models` lists the architectures `--model` chooses from,
the first being the default; `data` is the kind of the user's data `--data` takes
(a key of `DATA_KINDS`: `"text"`, `"images"`, `"pairs"`, `"labeled_text"`, `"captions"`,
`"detection"`),
or `None` for built-in data only.
"""

RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "char-lm",
            "keras_seq.recipes.char_lm",
            "train_char_lm",
            "character language model (LSTM or GPT) on a synthetic grammar corpus; with "
            "--data and --from a GPT-2 checkpoint, that subword model fine-tuned",
            epochs=6,
            batch_size=32,
            models=("rnn", "gpt"),
            data="text",
        ),
        Recipe(
            "seq2seq-attention",
            "keras_seq.recipes.seq2seq_attention",
            "train_seq2seq_attention",
            "encoder-decoder (LSTM with Bahdanau attention, or Transformer) translating dates "
            "to ISO 8601",
            epochs=6,
            batch_size=64,
            models=("bahdanau", "transformer"),
            data="pairs",
        ),
        Recipe(
            "bert-classifier",
            "keras_seq.recipes.text_classification",
            "train_bert_classifier",
            "small BERT text classifier on synthetic movie-review sentences (positive or "
            "negative), WordPiece vocabulary built from the data",
            epochs=4,
            batch_size=32,
            models=("bert",),
            data="labeled_text",
        ),
        Recipe(
            "vit-digits",
            "keras_seq.recipes.digits_classification",
            "train_vit_digits",
            "small ViT image classifier on scikit-learn's 8x8 digits (upsampled)",
            epochs=12,
            batch_size=64,
            models=("vit",),
            data="images",
        ),
        Recipe(
            "swin-digits",
            "keras_seq.recipes.digits_classification",
            "train_swin_digits",
            "small Swin image classifier on scikit-learn's 8x8 digits (upsampled)",
            epochs=15,
            batch_size=64,
            models=("swin",),
            data="images",
        ),
        Recipe(
            "detr-shapes",
            "keras_seq.recipes.detr_shapes",
            "train_detr_shapes",
            "tiny DETR detecting synthetic shapes (mAP on held-out images)",
            epochs=60,
            batch_size=32,
            models=("detr",),
            data="detection",
        ),
        Recipe(
            "captioning-shapes",
            "keras_seq.recipes.captioning_shapes",
            "train_captioning_shapes",
            "image captioner (transformer or attention LSTM decoder) describing synthetic shapes",
            epochs=15,
            batch_size=64,
            models=("transformer", "rnn"),
            data="captions",
        ),
    )
}

STRATEGIES = ("default", "mirrored")
MIXED_PRECISION = ("none", "auto", "mixed_float16", "mixed_bfloat16")
DEFAULT_OUTPUT_ROOT = "keras_seq_runs"
# A run's model file, and the directory of `keras.callbacks.BackupAndRestore` inside its output
# directory: the last finished epoch's weights and optimizer state, deleted when the run completes.
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
BACKUP_DIR = "backup"
# The words of a captioner trained on the user's captions, beside its model.
CAPTION_VOCABULARY_FILE = "caption_vocabulary.json"
# What `--data` takes, per kind of data.
DATA_KINDS = {
    "text": "text files, or directories of .txt files",
    "images": "a directory with one sub-directory of images per class",
    "pairs": "tab-separated files (source TAB target per line), or directories of .tsv files",
    "labeled_text": "CSV (.csv) or tab-separated (.tsv) files with a header row naming a text "
    "column (text or sentence) and a label column (label or class), or directories of them",
    "captions": "an image directory and a captions file: COCO captions .json, or .tsv with "
    "file_name TAB caption per line",
    "detection": "an image directory and COCO detection annotations (.json: images with "
    "width and height, annotations with bbox [x, y, width, height], categories)",
}


def get_recipe(name):
    """The `Recipe` called `name`; a `ValueError` naming the known recipes otherwise.

    Example:
    ```python
    from keras_seq.recipes import registry

    recipe = registry.get_recipe("char-lm")
    assert recipe.models == ("rnn", "gpt") and recipe.epochs >= 1
    assert registry.default_output_dir(recipe, "gpt").endswith("char-lm-gpt")
    assert "swin-digits" in registry.recipes_with_data()
    ```
    """
    if name not in RECIPES:
        raise ValueError(
            f"Unknown recipe. Choose from {', '.join(RECIPES)}. Received: recipe={name!r}"
        )
    return RECIPES[name]


def load_recipe(recipe):
    """Import the recipe's module and return its training function `train(run)`."""
    module = importlib.import_module(recipe.module)
    return getattr(module, recipe.function)


def default_output_dir(recipe, model=None):
    """`keras_seq_runs/<recipe>`, or `keras_seq_runs/<recipe>-<model>` for a model other
    than the recipe's default, relative to the working directory."""
    name = recipe.name
    if model is not None and model != recipe.models[0]:
        name = f"{name}-{model}"
    return os.path.join(DEFAULT_OUTPUT_ROOT, name)


def output_dir_problem(path):
    """Why `path` cannot be an output directory (a message), or `None` when it can.

    It can if it is a directory, or if it can be created: its nearest existing ancestor is
    a writable directory. Nothing is created.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        if not os.path.isdir(path):
            return "exists and is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return "is a directory that is not writable"
        return None
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"cannot be created: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: {parent} is not writable"
    return None


def previous_run(output_dir):
    """What `output_dir` holds of an earlier run: `"resumable"` (the backup of a run that
    did not complete, `BACKUP_DIR`), `"finished"` (a `model.keras` without a backup), or
    `None` (neither)."""
    output_dir = os.fspath(output_dir)
    backup = os.path.join(output_dir, BACKUP_DIR)
    if os.path.isdir(backup) and os.listdir(backup):
        return "resumable"
    if os.path.exists(os.path.join(output_dir, MODEL_FILE)):
        return "finished"
    return None


def _recorded_run(output_dir):
    """`(recipe, model)` that the `metrics.json` of `output_dir` records, or `None`."""
    try:
        with open(os.path.join(output_dir, METRICS_FILE), encoding="utf-8") as file:
            record = json.load(file)
        return record["recipe"], record["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def previous_run_problem(
    output_dir, overwrite=False, resume=False, flags=False, recipe=None, model=None
):
    """Why a run cannot go into `output_dir` as asked: `(argument, message)`, or `None`.

    Without `overwrite` or `resume`, a directory holding an earlier run (`previous_run`) is
    refused; `resume` needs one that did not complete, of the same `recipe` (a `Recipe`)
    and `model` (its default when `None`) when they are given. `flags` spells the options
    as on the command line (`--overwrite`) rather than as arguments (`overwrite=True`).
    """
    overwrite_name, resume_name = (
        ("--overwrite", "--resume") if flags else ("overwrite=True", "resume=True")
    )
    previous = previous_run(output_dir)
    if resume:
        if previous == "finished":
            return (
                "resume",
                f"the run in {os.fspath(output_dir)} completed: there is nothing to resume "
                f"(no {BACKUP_DIR}/ directory); pass {overwrite_name} to train it again",
            )
        if previous is None:
            return (
                "resume",
                f"{os.fspath(output_dir)} holds no run to resume (no {BACKUP_DIR}/ "
                "directory of an interrupted run)",
            )
        recorded = _recorded_run(output_dir)
        if recipe is not None and recorded is not None:
            asked = (recipe.name, model or recipe.models[0])
            if tuple(recorded) != asked:
                return (
                    "resume",
                    f"the run in {os.fspath(output_dir)} trains recipe {recorded[0]} with "
                    f"model {recorded[1]}, not {asked[0]} with {asked[1]}: resume it with "
                    "the same recipe and model",
                )
    elif previous and not overwrite:
        return (
            "output_dir",
            f"the directory already holds a previous run ({MODEL_FILE}); pass "
            f"{overwrite_name} to replace it or {resume_name} to continue it",
        )
    return None


def validate_train_options(
    recipe,
    epochs=None,
    batch_size=None,
    output_dir=None,
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
):
    """Check the options of one training run; raise a `ValueError` naming the bad one.

    Arguments as in `keras_seq.recipes.runner.train_recipe`, with `recipe` a `Recipe`.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        if value is not None and value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    if output_dir is not None:
        if not isinstance(output_dir, (str, os.PathLike)) or not os.fspath(output_dir):
            raise ValueError(
                f"`output_dir` must be a non-empty path. Received: output_dir={output_dir!r}"
            )
        problem = output_dir_problem(output_dir)
        if problem:
            raise ValueError(
                f"`output_dir` {problem}. Received: output_dir={os.fspath(output_dir)!r}"
            )
    if strategy not in STRATEGIES:
        raise ValueError(
            f"`strategy` must be one of {list(STRATEGIES)}. Received: strategy={strategy!r}"
        )
    if mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"`mixed_precision` must be one of {list(MIXED_PRECISION)}. Received: "
            f"mixed_precision={mixed_precision!r}"
        )
    if jit_compile is not None and not isinstance(jit_compile, bool):
        raise ValueError(
            f"`jit_compile` must be a bool or None. Received: jit_compile={jit_compile!r}"
        )
    if not isinstance(quick, bool):
        raise ValueError(f"`quick` must be a bool. Received: quick={quick!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")
    if model is not None and model not in recipe.models:
        raise ValueError(
            f"`model` must be one of {list(recipe.models)} for recipe {recipe.name!r}. "
            f"Received: model={model!r}"
        )
    if data is not None:
        find_data_files(recipe, data)
    if validation_data is not None:
        if data is None:
            raise ValueError(
                "`validation_data` needs `data` (the built-in data has its own). Received: "
                f"validation_data={validation_data!r}"
            )
        find_validation_files(recipe, validation_data)
    if from_model is not None:
        check_from_model(recipe, from_model, data)
    for name, value in (("overwrite", overwrite), ("resume", resume)):
        if not isinstance(value, bool):
            raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")
    if overwrite and resume:
        raise ValueError(
            "`overwrite` and `resume` exclude each other. Received: overwrite=True, resume=True"
        )
    if output_dir is not None:
        check_previous_run(output_dir, overwrite, resume, recipe=recipe, model=model)


def from_model_source(from_model):
    """`from_model` as stored in a run's options: a `.keras` path made absolute, a preset
    handle unchanged, or `None`."""
    if from_model is None:
        return None
    from_model = os.fspath(from_model)
    if from_model.endswith(".keras") or os.path.isdir(from_model):
        return os.path.abspath(from_model)
    return from_model


def from_model_problem(recipe, from_model, data=None):
    """Why `from_model` (the model to fine-tune: a `.keras` file or a preset handle) cannot
    be used for `recipe` with `data`: a reason such as `"does not exist"`, or `None`."""
    if not recipe.data:
        return (
            f"is not taken by recipe {recipe.name}; recipes that fine-tune: "
            f"{', '.join(recipes_with_data())}"
        )
    if data is None:
        return "needs data to fine-tune on (--data)"
    if from_model.endswith(".keras"):
        problem = model_files.model_file_problem(from_model)
        if problem:
            return problem
        directory = os.path.dirname(os.path.abspath(from_model))
        vocabulary = os.path.join(directory, "vocabulary.json")
        with_tokenizer = recipe.data == "text" and model_sources.keras_file_has_tokenizer(
            from_model
        )
        if recipe.data in ("text", "pairs") and not os.path.isfile(vocabulary) and not (
            with_tokenizer
        ):
            tokenizer = " (nor a tokenizer in it)" if recipe.data == "text" else ""
            return (
                f"has no vocabulary.json beside it{tokenizer}: recipe {recipe.name} fine-tunes "
                f"a model that `keras-seq train {recipe.name}` saved"
            )
        words = os.path.join(directory, CAPTION_VOCABULARY_FILE)
        if recipe.data == "captions" and not os.path.isfile(words):
            return (
                f"has no {CAPTION_VOCABULARY_FILE} beside it: recipe {recipe.name} fine-tunes "
                f"a model that `keras-seq train {recipe.name} --data` saved"
            )
    elif recipe.data == "text" and os.path.isdir(from_model):
        if not os.path.isfile(os.path.join(from_model, "config.json")):
            return "is a directory without a config.json: not a GPT-2 checkpoint"
    elif recipe.data == "text":
        return (
            f"must be a .keras file saved by `keras-seq train {recipe.name}` (with its "
            "vocabulary.json), a GPTCausalLM saved with its tokenizer, or a GPT-2 checkpoint "
            "directory (Hugging Face transformers or a keras_seq / keras-hub preset)"
        )
    elif recipe.data in ("pairs", "captions"):
        vocabulary = CAPTION_VOCABULARY_FILE if recipe.data == "captions" else "vocabulary.json"
        return (
            f"must be a .keras file saved by `keras-seq train {recipe.name}` (with its "
            f"{vocabulary})"
        )
    return None


def check_from_model(recipe, from_model, data=None):
    """`from_model_problem` as a `ValueError` naming `from_model`."""
    if not isinstance(from_model, (str, os.PathLike)) or not os.fspath(from_model):
        raise ValueError(
            f"`from_model` must be a path or a preset handle. Received: from_model={from_model!r}"
        )
    problem = from_model_problem(recipe, os.fspath(from_model), data)
    if problem:
        raise ValueError(f"`from_model` {problem}. Received: from_model={from_model!r}")


def check_previous_run(output_dir, overwrite=False, resume=False, recipe=None, model=None):
    """`previous_run_problem` as a `ValueError` naming the argument."""
    problem = previous_run_problem(
        output_dir, overwrite=overwrite, resume=resume, recipe=recipe, model=model
    )
    if problem:
        name, message = problem
        value = resume if name == "resume" else os.fspath(output_dir)
        raise ValueError(f"`{name}`: {message}. Received: {name}={value!r}")


def recipes_with_data():
    """The names of the recipes that take the user's data (`--data`)."""
    return [name for name, recipe in RECIPES.items() if recipe.data]


def find_data_files(recipe, data):
    """The data files of `data` (a path or a list of paths) for `recipe`: a `ValueError`
    when the recipe trains on built-in data only, a `data_files.DataPathError` (a
    `ValueError`) naming the path that cannot be used."""
    if not recipe.data:
        raise ValueError(
            f"`data` is not taken by recipe {recipe.name!r}, which trains on built-in data; "
            f"recipes that take data: {', '.join(recipes_with_data())}. Received: data={data!r}"
        )
    if recipe.data == "text":
        return data_files.text_files(data)
    if recipe.data == "labeled_text":
        files = data_files.text_files(data, suffix=data_files.LABELED_TEXT_SUFFIXES)
        rows = data_files.read_labeled_text(files)
        labels = {label for _, label in rows}
        if len(rows) < 2 or len(labels) < 2:
            raise data_files.DataPathError(
                " ".join(files),
                f"holds {len(rows)} row(s) of {len(labels)} label(s): training needs at least "
                "2 rows (one of them for validation) and 2 labels",
            )
        return files
    if recipe.data == "detection":
        images = detection_files.read_detection_data(data)[1]
        if len(images) < 2:
            raise data_files.DataPathError(
                " ".join(data_files.as_path_list(data)),
                "annotates 1 image: training needs at least 2 (one of them for validation)",
            )
        return [
            os.path.abspath(path)
            for path in caption_files.split_data_paths(data, "annotations file", (".json",))
        ]
    if recipe.data == "captions":
        examples = caption_files.read_captions(data)
        if len({image for image, _ in examples}) < 2:
            raise data_files.DataPathError(
                " ".join(data_files.as_path_list(data)),
                "captions 1 image: training needs at least 2 (one of them for validation)",
            )
        return [os.path.abspath(path) for path in caption_files.split_data_paths(data)]
    if recipe.data == "pairs":
        files = data_files.text_files(data, suffix=data_files.PAIRS_SUFFIX)
        count = len(data_files.read_pairs(files))
        if count < 2:
            raise data_files.DataPathError(
                " ".join(files),
                f"holds {count} pair(s): training needs at least 2 (one of them for validation)",
            )
        return files
    return _image_directory(data, "data")


def _image_directory(data, name):
    """The one class directory of `data` (a path or a list of one path), checked."""
    paths = data_files.as_path_list(data)
    if len(paths) != 1:
        raise ValueError(
            f"`{name}` must be one directory (one sub-directory of images per class). "
            f"Received: {name}={data!r}"
        )
    data_files.image_folders(paths[0])
    return os.path.abspath(paths[0])


def find_validation_files(recipe, validation_data):
    """The validation class directory of `validation_data` for `recipe` (a recipe whose
    data is `"images"`), checked as `find_data_files` checks the data."""
    if recipe.data != "images":
        raise ValueError(
            f"`validation_data` is not taken by recipe {recipe.name!r}. Received: "
            f"validation_data={validation_data!r}"
        )
    return _image_directory(validation_data, "validation_data")
