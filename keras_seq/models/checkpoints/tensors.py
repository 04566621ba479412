"""CheckpointTensors: the tensors of a safetensors checkpoint, read lazily, each accounted for.

Converters take tensors by name; whatever a converter has not taken when it finishes is an
error naming it, so no tensor of a checkpoint is ever dropped without a decision.
"""

import json
import os

import numpy as np
from safetensors import safe_open

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


class NamedTensors:
    """Tensors by name whose use is accounted for (not exported): the bookkeeping shared by
    `CheckpointTensors` (safetensors files) and `KerasHubVariables` (a loaded keras-hub
    model). A subclass sets `_names` and implements `_read(name)`, `_shape(name)` and
    `close()`; `what` and `noun` word its error messages.
    """

    noun = "tensor"

    def __init__(self, directory, what):
        self.directory = directory
        self.what = what  # e.g. "The checkpoint in DIR", the subject of error messages.
        self._names = set()
        self._used = set()
        self._skipped = {}

    def __contains__(self, name):
        return name in self._names

    def keys(self):
        return sorted(self._names)

    def shape(self, name):
        """The shape of `name` without reading it."""
        self._check_known(name)
        return tuple(self._shape(name))

    def take(self, name):
        """`name` as a NumPy array (float values as float32), marked used."""
        self._check_known(name)
        value = np.asarray(self._read(name))
        if np.issubdtype(value.dtype, np.floating) and value.dtype != np.float32:
            value = value.astype("float32")
        self._used.add(name)
        return value

    def skip(self, names, reason):
        """Mark `names` as deliberately not loaded, for `reason` (shown by `skipped`)."""
        for name in names:
            self._check_known(name)
            self._skipped[name] = reason

    @property
    def skipped(self):
        """`{name: reason}` of the names marked with `skip`."""
        return dict(self._skipped)

    def unused(self):
        """Names neither taken nor skipped, sorted."""
        return sorted(self._names - self._used - set(self._skipped))

    def check_all_used(self, what="the model"):
        """`ValueError` naming every tensor that was neither taken nor skipped."""
        unused = self.unused()
        if unused:
            raise ValueError(
                f"{self.what} has {len(unused)} {self.noun}(s) that {what} has no place for, "
                f"so loading it would lose them: {unused}"
            )

    def _check_known(self, name):
        if name not in self._names:
            raise ValueError(
                f"{self.what} has no {self.noun} {name!r}, which the converter needs: it does "
                "not match the architecture its config describes."
            )


class CheckpointTensors(NamedTensors):
    """The tensors of `model.safetensors` (or of the shards of `model.safetensors.index.json`)
    in `directory`, opened with safetensors' NumPy reader: a tensor is read from disk only when
    a converter takes it, so loading needs little more memory than the model's weights (no
    torch involved). What this adds to `safetensors.safe_open`: sharded checkpoints behind one
    mapping, and the bookkeeping of which tensors were used (`NamedTensors`).

    `take(name)` returns a tensor as a NumPy array and marks it used; `skip(names, reason)`
    marks tensors deliberately left out (a head that is replaced, say) and remembers why;
    `check_all_used()` raises `ValueError` naming every tensor neither taken nor skipped.
    """

    def __init__(self, directory):
        directory = os.fspath(directory)
        index_path = os.path.join(directory, INDEX_FILE)
        single_path = os.path.join(directory, SINGLE_FILE)
        if os.path.exists(single_path):
            files = {}
            with safe_open(single_path, framework="numpy") as handle:
                for name in handle.keys():
                    files[name] = single_path
        elif os.path.exists(index_path):
            with open(index_path) as file:
                weight_map = json.load(file).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ValueError(
                    f"The checkpoint index {index_path} has no `weight_map` (a dict from tensor "
                    "name to shard file)."
                )
            files = {name: os.path.join(directory, shard) for name, shard in weight_map.items()}
            missing = sorted({path for path in files.values() if not os.path.exists(path)})
            if missing:
                raise FileNotFoundError(
                    f"The checkpoint index {index_path} names shard files that are not in the "
                    f"directory: {missing}"
                )
        else:
            raise FileNotFoundError(
                f"No weights in {directory}: expected {SINGLE_FILE} or {INDEX_FILE} "
                f"(found: {sorted(os.listdir(directory))})"
            )
        super().__init__(directory, f"The checkpoint in {directory}")
        self._files = files
        self._names = set(files)
        self._handles = {}

    def _shape(self, name):
        return self._handle(name).get_slice(name).get_shape()

    def _read(self, name):
        return self._handle(name).get_tensor(name)

    def close(self):
        for handle in self._handles.values():
            handle.__exit__(None, None, None)
        self._handles = {}

    def _handle(self, name):
        path = self._files[name]
        if path not in self._handles:
            handle = safe_open(path, framework="numpy")
            self._handles[path] = handle.__enter__()
        return self._handles[path]
