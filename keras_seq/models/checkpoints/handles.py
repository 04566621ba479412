"""Resolve a `from_preset` handle to a local directory, and tell which format it holds."""

import json
import os

HF_PREFIX = "hf://"
# What a model directory on the Hugging Face Hub holds that loading reads: config, weights,
# preprocessing and tokenizer files (never other frameworks' weights).
HF_ALLOW_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.spm", "*.model")


def parse_hf_handle(handle):
    """`hf://owner/name[@revision]` -> `(repo_id, revision or None)`; `ValueError` otherwise."""
    rest = handle[len(HF_PREFIX) :]
    repo_id, _, revision = rest.partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or (revision == "" and "@" in rest):
        raise ValueError(
            "A Hugging Face handle is `hf://owner/name` or `hf://owner/name@revision`. "
            f"Received: preset={handle!r}"
        )
    return repo_id, revision or None


def download_hf(handle):
    """The local snapshot directory of `hf://owner/name[@revision]`.

    Downloaded through `huggingface_hub.snapshot_download` into its cache (only config,
    safetensors, preprocessing and tokenizer files) or, offline (`HF_HUB_OFFLINE=1`, or no
    network), read from that cache; huggingface_hub's own error says what is missing.
    """
    import huggingface_hub

    repo_id, revision = parse_hf_handle(handle)
    return huggingface_hub.snapshot_download(
        repo_id, revision=revision, allow_patterns=list(HF_ALLOW_PATTERNS)
    )


def read_json(directory, filename):
    """The JSON file `filename` in `directory`, or `None` if there is none."""
    path = os.path.join(directory, filename)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        try:
            return json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None


def directory_format(directory):
    """`(format, config)` of a model directory, from its `config.json`: `"keras"` (a Keras /
    keras-hub preset: `registered_name`), `"transformers"` (`model_type`) or `"timm"`
    (`architecture`). `ValueError` naming what was found otherwise."""
    config = read_json(directory, "config.json")
    if config is None:
        raise ValueError(
            f"{directory} is not a model directory: it has no config.json. Expected a Hugging "
            "Face transformers or timm checkpoint, or a Keras preset. Found: "
            f"{sorted(os.listdir(directory))}"
        )
    if not isinstance(config, dict):
        raise ValueError(f"{directory}/config.json must hold a JSON object. Received: {config!r}")
    if "registered_name" in config:
        return "keras", config
    if "model_type" in config:
        return "transformers", config
    if "architecture" in config:
        return "timm", config
    raise ValueError(
        f"Cannot tell the format of {directory}: its config.json has none of `registered_name` "
        "(Keras preset), `model_type` (Hugging Face transformers) or `architecture` (timm). "
        f"Its keys: {sorted(config)}"
    )


def resolve(handle):
    """`(kind, location)` for a handle that is not a built-in preset name: `("directory",
    path)` for a local directory or a downloaded `hf://` snapshot, `("keras_hub", handle)` for
    anything else (a keras-hub preset name or `kaggle://` handle, resolved by keras-hub)."""
    if isinstance(handle, os.PathLike):
        handle = os.fspath(handle)
    if not isinstance(handle, str) or not handle:
        raise TypeError(
            "`preset` must be a preset name, a local directory or a handle such as "
            f"`hf://owner/name`. Received: preset={handle!r}"
        )
    if handle.startswith(HF_PREFIX):
        return "directory", download_hf(handle)
    if os.path.isdir(handle):
        return "directory", handle
    if os.path.exists(handle):
        raise ValueError(
            f"`preset` must be a directory (a checkpoint or preset), not a file. Received: "
            f"preset={handle!r}"
        )
    return "keras_hub", handle
