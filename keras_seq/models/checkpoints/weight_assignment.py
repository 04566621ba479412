"""WeightAssignment: set a model's variables by path, each exactly once, shapes checked."""

import numpy as np


class WeightAssignment:
    """The variables of `model` by `variable.path` (e.g. `encoder_layer_0/self_attention/
    query_dense/kernel`), to be set by a converter.

    `set(path, value)` checks the shape (a mismatch is a `ValueError` naming the variable, the
    checkpoint tensor and both shapes) and assigns; `check_all_set()` raises `ValueError` naming
    every variable not set, so nothing is left with its random initial value. Variables
    under a prefix passed to `leave(prefix, reason)` (a new classification head) are exempt,
    and so are the paths in `exclude` (a task's backbone, set by its own assignment).
    """

    def __init__(self, model, exclude=()):
        self.model = model
        exclude = set(exclude)
        self._variables = {
            variable.path: variable for variable in model.weights if variable.path not in exclude
        }
        self._set = set()
        self._left = {}

    def __contains__(self, path):
        return path in self._variables

    def paths(self, prefix=""):
        return sorted(path for path in self._variables if path.startswith(prefix))

    def shape(self, path):
        return tuple(self._variable(path, None).shape)

    def set(self, path, value, source=None):
        """Assign `value` to the variable at `path`; `source` names the checkpoint tensor(s)
        for error messages."""
        variable = self._variable(path, source)
        value = np.asarray(value)
        if value.shape != tuple(variable.shape):
            raise ValueError(
                f"Shape mismatch: checkpoint tensor {source!r} has shape {value.shape} after "
                f"conversion, but the model's variable {path!r} has shape "
                f"{tuple(variable.shape)}. The checkpoint's config and weights disagree, or an "
                "override changed the architecture."
            )
        if path in self._set:
            raise ValueError(f"The converter set the variable {path!r} twice ({source!r}).")
        variable.assign(value.astype(variable.dtype))
        self._set.add(path)

    def leave(self, prefix, reason):
        """Exempt the variables whose path starts with `prefix` from `check_all_set`."""
        for path in self.paths(prefix):
            self._left[path] = reason

    def check_all_set(self):
        missing = sorted(set(self._variables) - self._set - set(self._left))
        if missing:
            raise ValueError(
                f"{len(missing)} variable(s) of model '{self.model.name}' have no tensor in "
                f"the checkpoint, so they would stay random: {missing}"
            )

    def _variable(self, path, source):
        if path not in self._variables:
            raise ValueError(
                f"The converter maps checkpoint tensor {source!r} to {path!r}, which model "
                f"'{self.model.name}' does not have. Its variables: {sorted(self._variables)}"
            )
        return self._variables[path]
