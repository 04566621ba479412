"""The earlier run an output directory holds, for `train_recipe(overwrite=True)` (delete its
outputs) and `train_recipe(resume=True)` (take over its record up to its backup's epoch).

`keras_seq.recipes.registry` tells from the file system whether a directory holds a run
(`previous_run`, before anything is imported); `keras.callbacks.BackupAndRestore` restores
the weights and optimizer state from its `BACKUP_DIR`.
"""

import json
import logging
import os
import shutil

from keras_seq.recipes import registry

logger = logging.getLogger(__name__)


def _read_json(path):
    """The JSON content of `path`, or `None` when it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def remove_previous_run(output_dir):
    """Delete the outputs of the run in `output_dir` (`overwrite=True`): the files its
    `metrics.json` lists, its model and its backup. Its TensorBoard logs stay (each run
    logs into its own subdirectory)."""
    record = _read_json(os.path.join(output_dir, registry.METRICS_FILE)) or {}
    names = set(record.get("files") or []) | {registry.MODEL_FILE, registry.METRICS_FILE}
    for name in names:
        path = os.path.join(output_dir, name)
        if isinstance(name, str) and os.path.basename(name) == name and os.path.isfile(path):
            os.remove(path)
    shutil.rmtree(os.path.join(output_dir, registry.BACKUP_DIR), ignore_errors=True)


def continue_previous_run(run):
    """Take over the record of the run being resumed (`resume=True`) up to the epoch its
    backup holds: history, finished epochs and files."""
    metadata = _read_json(os.path.join(run.path(registry.BACKUP_DIR), "training_metadata.json"))
    epoch = int((metadata or {}).get("epoch", 0))
    record = _read_json(run.path(registry.METRICS_FILE)) or {}
    # One entry per finished epoch: cut the epochs after the backup, pad the missing ones.
    run.history = {
        key: (list(values) + [None] * epoch)[:epoch]
        for key, values in (record.get("history") or {}).items()
    }
    run.epochs_completed = epoch
    run.model_epoch = record.get("model_epoch")
    run.files = [name for name in record.get("files") or [] if name != registry.METRICS_FILE]
    run.details["resumed_from_epoch"] = epoch
    logger.info("resuming after epoch %d", epoch)
