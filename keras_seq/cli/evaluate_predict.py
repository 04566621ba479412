"""`keras-seq evaluate` and `keras-seq predict` on a model saved by `keras-seq train`."""

import json
import os

from keras_seq.cli.base import UsageError
from keras_seq.cli.base import argument
from keras_seq.cli.base import positive_int
from keras_seq.cli.base import probability
from keras_seq.cli.base import quiet_tensorflow
from keras_seq.cli.base import require_tensorflow_backend
from keras_seq.cli.base import subcommand
from keras_seq.recipes import model_files
from keras_seq.recipes import model_sources
from keras_seq.recipes import registry
from keras_seq.subpackages import import_subpackages


def _check_saved_model(model_path):
    """MODEL of `evaluate` / `predict`, from the file system alone (before TensorFlow): a
    readable `.keras` archive whose SHA-256 matches the record beside it, if any."""
    problem = model_files.model_file_problem(model_path)
    if problem:
        raise UsageError(f"argument MODEL: the path {problem}. Received: {model_path!r}")


@subcommand(
    "evaluate",
    help="evaluate a model saved by `keras-seq train` on your data",
    description=(
        "Load a model saved by `keras-seq train` (RUN_DIR/model.keras; a text model needs the "
        "vocabulary.json beside it) and score it on --data, given as for training: an image "
        "classifier on a directory with one sub-directory of images per class (named as its "
        "classes): accuracy, top-5 accuracy and loss; a text classifier (bert-classifier) on "
        ".csv or .tsv files of labeled texts (labels named as the classes.json beside it): "
        "the same scores; a captioner (captioning-shapes --data) on an image directory and "
        "a captions file: loss and perplexity per word, word accuracy and exact match of "
        "greedy captions; a detector (detr-shapes --data) on an image directory and COCO "
        "annotations: COCO mAP (IoU 0.5:0.95, 0.5, 0.75) and recall; a language model "
        "(char-lm) on text "
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
        require_tensorflow_backend(
            "keras-seq evaluate", "it reads images with tf.io and scores with TensorFlow ops"
        )
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
    help="classify images or texts, continue text or translate lines with a model saved by "
    "`keras-seq train`",
    description=(
        "Load a model saved by `keras-seq train` (RUN_DIR/model.keras; a text generation "
        "model needs the vocabulary.json beside it) and print one line per input: an image "
        "classifier takes image files and prints the most probable classes with their "
        "probabilities; a text classifier takes texts and prints them likewise (class names "
        "from the classes.json beside it); a captioner takes image files and prints their "
        "greedy captions; a detector takes image files and prints their boxes (class, score, "
        "pixel corners), and with --output writes them as JSON and drawn on a PNG; a "
        "language model takes prompts and prints each "
        "with its greedy continuation; a seq2seq model takes source lines and prints their "
        "greedy translations. "
        "`keras-seq generate` offers the other decoding strategies."
    ),
    arguments=[
        argument("model_path", metavar="MODEL", help="a saved model (RUN_DIR/model.keras)"),
        argument(
            "inputs", metavar="INPUTS", nargs="+", help="image files, texts, prompts or lines"
        ),
        argument(
            "--top-k",
            type=positive_int,
            help="classifiers: classes per input (default: 5, or fewer classes)",
        ),
        argument(
            "--max-new-tokens",
            type=positive_int,
            help="text models: tokens to generate (default: the vocabulary file's)",
        ),
        argument(
            "--score-threshold",
            type=probability,
            help="detectors: the least score of a detection shown (default: 0.5)",
        ),
        argument(
            "--output",
            metavar="FILE.json",
            help="detectors: also write the detections to this new JSON file, and the images "
            "with their boxes to a PNG of the same name beside it",
        ),
    ],
)
def predict_command(args):
    if args.output is not None:
        png = os.path.splitext(args.output)[0] + ".png"
        if not args.output.endswith(".json"):
            problem = "must end in .json"
        elif os.path.exists(args.output) or os.path.exists(png):
            problem = f"or {os.path.basename(png)} beside it exists: choose a new name"
        else:
            problem = registry.output_dir_problem(os.path.dirname(os.path.abspath(args.output)))
        if problem:
            raise UsageError(f"argument --output: the path {problem}. Received: {args.output!r}")
    _check_saved_model(args.model_path)
    with quiet_tensorflow():
        require_tensorflow_backend(
            "keras-seq predict", "it reads images with tf.io and runs TensorFlow ops"
        )
        import_subpackages()
        from keras_seq.recipes import evaluate_model

        try:
            lines = evaluate_model.predict_saved_model(
                args.model_path,
                args.inputs,
                top_k=args.top_k,
                max_new_tokens=args.max_new_tokens,
                score_threshold=args.score_threshold,
                output=args.output,
            )
        except model_sources.GenerateOptionError as error:
            raise UsageError(str(error)) from None
    for line in lines:
        print(line)
    return 0
