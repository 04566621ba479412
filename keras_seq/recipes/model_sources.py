"""Which model `keras-seq generate` is given, told from the file system alone.

Standard library only: the command checks MODEL with it before importing TensorFlow (see
`keras_seq.cli`). `keras_seq.recipes.generate_text` loads the model.
"""

import json
import os
import zipfile

HF_PREFIX = "hf://"


class GenerateOptionError(ValueError):
    """A bad option of `keras-seq generate`; the message starts with `argument NAME:` (the
    command-line name) and ends with the value received."""


# transformers' `model_type` of encoder-decoder checkpoints (those with `is_encoder_decoder`
# in their config.json are recognized as well).
SEQ2SEQ_MODEL_TYPES = ("marian", "t5", "mt5", "bart", "mbart", "pegasus", "m2m_100", "nllb")


def model_source(model_path):
    """What `model_path` names, from the file system alone (no model is loaded):
    `"keras_file"` (a `.keras` file), `"directory"` (a checkpoint or preset directory with a
    `config.json`) or `"hf"` (an `hf://owner/name[@revision]` handle).

    Raises:
        GenerateOptionError: anything else, or a directory holding a sequence-to-sequence
            checkpoint (`seq2seq_checkpoint_error`).
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
    if os.path.isdir(model_path):
        config = directory_config(model_path)
        seq2seq_checkpoint_error(model_path, config)
        return "directory"
    if os.path.isfile(model_path) and model_path.endswith(".keras"):
        return "keras_file"
    reason = (
        "is not a .keras file or a checkpoint directory"
        if os.path.exists(model_path)
        else "does not exist"
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


def seq2seq_checkpoint_error(model_path, config):
    """Raise `GenerateOptionError` when `config` (a directory's config.json) describes a
    transformers encoder-decoder checkpoint (Marian, T5, BART, ...): `keras-seq generate`
    loads checkpoints with `GPTCausalLM.from_preset`, and `TransformerSeq2SeqLM.from_preset`
    reads no such checkpoint yet."""
    model_type = config.get("model_type")
    if config.get("is_encoder_decoder") or model_type in SEQ2SEQ_MODEL_TYPES:
        raise GenerateOptionError(
            f"argument MODEL: a sequence-to-sequence checkpoint (model_type {model_type!r}) is "
            "not supported yet by keras-seq generate, which reads GPT-2 checkpoints, keras_seq "
            "presets of GPTCausalLM and .keras files (in Python, "
            "keras_seq.models.TransformerSeq2SeqLM.from_preset reads Marian checkpoints and its "
            f"generate() translates strings). Received: {model_path!r}"
        )


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
