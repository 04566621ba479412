"""`keras-seq train`: a recipe on built-in data or the user's own."""

import argparse
import contextlib
import sys

from keras_seq.cli.base import UsageError
from keras_seq.cli.base import argument
from keras_seq.cli.base import non_negative_int
from keras_seq.cli.base import positive_int
from keras_seq.cli.base import progress_to_stdout
from keras_seq.cli.base import quiet_tensorflow
from keras_seq.cli.base import require_tensorflow_backend
from keras_seq.cli.base import subcommand
from keras_seq.recipes import data_files
from keras_seq.recipes import registry
from keras_seq.recipes import train_summary
from keras_seq.subpackages import import_subpackages


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
        "`keras-seq train seq2seq-attention --data pairs.tsv` (source TAB target per line; "
        "--model transformer for a TransformerSeq2SeqLM instead of the LSTM), "
        "`keras-seq train bert-classifier --data reviews.csv` (a header row naming a text "
        "column, text or sentence, and a label column, label or class; .tsv files are "
        "tab-separated; the labels' names are saved as classes.json, the WordPiece "
        "vocabulary is built from the texts and kept in the model), `keras-seq train "
        "captioning-shapes --data images/ captions.json` (COCO captions, or a .tsv of "
        "file_name TAB caption; the words are saved as caption_vocabulary.json), `keras-seq "
        "train detr-shapes --data images/ instances.json` (COCO detection annotations; the "
        "category names are saved with the model). "
        "The output directory receives model.keras, metrics.json (options, per-epoch and "
        "final metrics, held-out scores, times), TensorBoard logs under logs/ and PNG plots; "
        "the text recipes also write vocabulary.json for `keras-seq generate`. The model and "
        "metrics.json are rewritten atomically after every epoch, so an interrupted run "
        "keeps the outputs of its last finished epoch, and --resume continues it. An output "
        "directory that holds an earlier run is refused unless --overwrite or --resume is "
        "given.\n\nrecipes:\n" + train_summary.recipe_table()
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
            "(char-lm, seq2seq-attention: one it saved, vocabulary.json beside it, its class "
            "choosing the architecture; char-lm also a GPTCausalLM saved with its tokenizer, "
            "or a GPT-2 checkpoint directory (Hugging Face transformers, keras_seq or keras-hub "
            "preset): the text is then cut into the tokenizer's subword ids and the model is "
            "saved with its tokenizer, no vocabulary.json; "
            "bert-classifier: a BERTTextClassifier with its tokenizer; captioning-shapes: "
            "one it saved with --data, caption_vocabulary.json beside it; detr-shapes: a "
            "DETRObjectDetector), or for vit-digits, swin-digits, bert-classifier and "
            "detr-shapes a checkpoint or preset handle of from_preset (a new head when the "
            "classes differ)",
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
            "(every tenth pair validates); bert-classifier: .csv or .tsv files with a header "
            "row naming a text and a label column, or directories of them (a fifth of the "
            "rows validates); captioning-shapes: an image directory and a captions file, "
            "COCO captions .json or .tsv with file_name TAB caption per line (a fifth of the "
            "images validates; images that do not decode are skipped with a warning); "
            "detr-shapes: an image directory and COCO detection annotations (.json; every box "
            "inside its image; a fifth of the images validates)",
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
        require_tensorflow_backend(
            f"keras-seq train {recipe.name}",
            "its recipe streams tf.data pipelines, trains under a tf.distribute strategy and "
            "writes TensorBoard logs",
        )
        import_subpackages()
        from keras_seq.recipes.runner import train_recipe

        # Ctrl-C: the runner has marked metrics.json "interrupted"; the message is printed
        # after the block, whose stderr is dropped.
        with contextlib.suppress(KeyboardInterrupt), progress_to_stdout(), _data_errors():
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
    print(train_summary.format_train_summary(metrics))
    return 0
