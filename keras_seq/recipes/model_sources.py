"""Which model `keras-seq generate` is given, told from the file system alone.

Standard library only: the command checks MODEL with it before importing TensorFlow (see
`keras_seq.cli`). `keras_seq.recipes.generate_text` loads the model.
"""

import json
import os
import re
import zipfile

from keras_seq.recipes import model_files

HF_PREFIX = "hf://"


class GenerateOptionError(ValueError):
    """A bad option of `keras-seq generate`; the message starts with `argument NAME:` (the
    command-line name) and ends with the value received."""


# transformers' `model_type` of encoder-decoder checkpoints (those with `is_encoder_decoder`
# in their config.json are recognized as well); keras_seq reads Marian's.
SEQ2SEQ_MODEL_TYPES = ("marian", "t5", "mt5", "bart", "mbart", "pegasus", "m2m_100", "nllb")
READABLE_SEQ2SEQ_MODEL_TYPES = ("marian",)
# The backbones of a keras_seq preset (its config.json) that generate through a seq2seq task.
SEQ2SEQ_BACKBONES = ("keras_seq>TransformerSeq2SeqBackbone",)
KERAS_HUB_PREFIX = "kaggle://"
# A keras-hub preset name: lower-case words joined by underscores (`gpt2_base_en`).
_KERAS_HUB_NAME = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")


def model_source(model_path):
    """What `model_path` names, from the file system alone (no model is loaded):
    `"keras_file"` (a `.keras` file), `"directory"` (a checkpoint or preset directory with a
    `config.json`), `"hf"` (an `hf://owner/name[@revision]` handle) or `"keras_hub"` (a
    keras-hub preset name such as `gpt2_base_en`, or a `kaggle://` handle).

    Raises:
        GenerateOptionError: anything else, or a directory holding a sequence-to-sequence
            checkpoint keras_seq does not read (`checkpoint_task`).
    """
    model_path = os.fspath(model_path)
    if model_path.startswith(HF_PREFIX):
        repo_id, _, revision = model_path[len(HF_PREFIX) :].partition("@")
        parts = repo_id.split("/")
        if len(parts) != 2 or not all(parts) or (revision == "" and "@" in model_path):
            raise GenerateOptionError(
                "argument MODEL: a Hugging Face handle is hf://owner/name or "
                f"hf://owner/name@revision. Received: {model_path!r}"
            )
        return "hf"
    if (
        os.path.isdir(model_path)
        and model_path.endswith(".keras")
        and not os.path.isfile(os.path.join(model_path, "config.json"))
    ):
        raise GenerateOptionError(
            "argument MODEL: the path is a directory, expected a .keras file (or a "
            f"checkpoint directory with a config.json). Received: {model_path!r}"
        )
    if os.path.isdir(model_path):
        checkpoint_task(model_path, directory_config(model_path))
        return "directory"
    if os.path.isfile(model_path) and model_path.endswith(".keras"):
        problem = model_files.model_file_problem(model_path)
        if problem:
            raise GenerateOptionError(
                f"argument MODEL: the path {problem}. Received: {model_path!r}"
            )
        return "keras_file"
    if not os.path.exists(model_path) and (
        model_path.startswith(KERAS_HUB_PREFIX) or _KERAS_HUB_NAME.match(model_path)
    ):
        return "keras_hub"
    reason = (
        "is not a .keras file or a checkpoint directory"
        if os.path.exists(model_path)
        else "does not exist (nor is it a keras-hub preset name such as gpt2_base_en)"
    )
    raise GenerateOptionError(f"argument MODEL: the path {reason}. Received: {model_path!r}")


def directory_config(directory):
    path = os.path.join(directory, "config.json")
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise GenerateOptionError(
            "argument MODEL: the directory holds no readable config.json: it is not a "
            f"checkpoint or a preset. Received: {directory!r}"
        )
    return config


def checkpoint_task(model_path, config):
    """`"seq2seq"` when `config` (a checkpoint or preset directory's config.json) describes
    a model `TransformerSeq2SeqLM.from_preset` reads (a transformers Marian checkpoint, a
    keras_seq preset of a `TransformerSeq2SeqBackbone`), else `"causal_lm"` (read with
    `GPTCausalLM.from_preset`).

    Raises:
        GenerateOptionError: another transformers encoder-decoder checkpoint (T5, BART, ...).
    """
    model_type = config.get("model_type")
    if model_type in READABLE_SEQ2SEQ_MODEL_TYPES or config.get("registered_name") in (
        SEQ2SEQ_BACKBONES
    ):
        return "seq2seq"
    if config.get("is_encoder_decoder") or model_type in SEQ2SEQ_MODEL_TYPES:
        raise GenerateOptionError(
            f"argument MODEL: a sequence-to-sequence checkpoint of model_type {model_type!r} "
            "is not supported: keras-seq generate reads GPT-2 and Marian checkpoints, "
            "keras_seq and keras-hub presets of their families, and .keras files. Received: "
            f"{model_path!r}"
        )
    return "causal_lm"


def keras_file_has_tokenizer(path):
    """Whether the `.keras` file at `path` holds a task with a `tokenizer` (read from the
    archive's config.json, without loading the model). `False` when it cannot tell."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False  # loading the model reports what is wrong
    inner = config.get("config") if isinstance(config, dict) else None
    return isinstance(inner, dict) and bool(inner.get("tokenizer"))
