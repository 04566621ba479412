"""What `keras-seq train` prints about the recipes: the table of `--help` and the summary of a
finished run. Standard library only, like `keras_seq.recipes.registry`.
"""

import os
import textwrap

from keras_seq.recipes.registry import DATA_KINDS
from keras_seq.recipes.registry import MODEL_FILE
from keras_seq.recipes.registry import RECIPES


def recipe_table(width=79):
    """The recipes as an indented table: name, summary, `--model` choices, default epochs."""
    column = max(len(name) for name in RECIPES) + 4
    rows = []
    for recipe in RECIPES.values():
        models = f"--model {'|'.join(recipe.models)}; " if len(recipe.models) > 1 else ""
        data = f"; --data: {DATA_KINDS[recipe.data]}" if recipe.data else ""
        rows.append(
            textwrap.fill(
                f"{recipe.summary}; {models}{recipe.epochs} epochs{data}",
                width,
                initial_indent=f"  {recipe.name:<{column - 2}}",
                subsequent_indent=" " * column,
            )
        )
    return "\n".join(rows)


def _format_number(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_train_summary(metrics):
    """The lines `keras-seq train` prints after a run, from its `metrics.json` content."""
    lines = [
        f"{metrics['recipe']} ({metrics['model']}): {metrics['epochs_completed']} epochs in "
        f"{metrics['time_seconds']:.0f} s",
    ]
    for section in ("train", "validation", "held_out"):
        values = metrics.get(section) or {}
        if values:
            text = ", ".join(f"{k} {_format_number(v)}" for k, v in values.items())
            lines.append(f"  {section.replace('_', '-')}: {text}")
    output_dir = metrics["options"]["output_dir"]
    lines.append(f"  outputs in {output_dir}: {', '.join(metrics['files'])}")
    lines.append(f"  TensorBoard: tensorboard --logdir {os.path.join(output_dir, 'logs')}")
    model_path = os.path.join(output_dir, MODEL_FILE)
    # A text model's vocabulary.json, or a subword tokenizer saved in the model (char-lm --from
    # a GPT-2 checkpoint).
    tokens = (metrics.get("details") or {}).get("tokens", "characters")
    if "vocabulary.json" in metrics["files"] or tokens != "characters":
        lines.append(f"  generate: keras-seq generate {model_path} --prompt TEXT")
    recipe = RECIPES.get(metrics["recipe"])
    if recipe is not None and recipe.data:
        inputs = "IMAGE" if recipe.data == "images" else "TEXT"
        data = {
            "labeled_text": "FILE.csv",
            "captions": "DIR CAPTIONS.json",
            "detection": "DIR ANNOTATIONS.json",
        }.get(recipe.data, "PATH")
        if recipe.data in ("captions", "detection"):
            inputs = "IMAGE"
        lines.append(
            f"  evaluate: keras-seq evaluate {model_path} --data {data}; "
            f"predict: keras-seq predict {model_path} {inputs} ..."
        )
    return "\n".join(lines)
