"""A tiny GPT config and a helper that edits the config of a saved `.keras` file."""

import json
import zipfile

TINY_GPT = {
    "vocabulary_size": 20,
    "num_layers": 2,
    "hidden_dim": 8,
    "num_heads": 2,
    "intermediate_dim": 16,
    "sequence_length": 16,
}


def edit_backbone_config(source, target, **changes):
    """Copy the `.keras` file `source` to `target` with the backbone config's `changes`."""
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["backbone"]["config"].update(changes)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target
