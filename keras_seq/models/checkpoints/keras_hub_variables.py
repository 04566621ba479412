"""KerasHubVariables: the variables of a loaded keras-hub model as checkpoint tensors, each
accounted for.

The keras-hub converters load a keras-hub model through keras-hub's own `from_preset` and read
its variables by `variable.path`; this gives them `CheckpointTensors`' interface, so that the
loader's checks (every tensor used or skipped with a reason, every weight set) apply unchanged.
"""

import numpy as np
from keras import ops


class KerasHubVariables:
    """The variables of keras-hub models by `variable.path` (e.g.
    `vit_encoder/transformer_block_1/ln_1/gamma`), with `CheckpointTensors`' interface.

    `take(name)` returns a variable's value as a NumPy array (float values as float32) and
    marks it used; `skip(names, reason)` marks variables deliberately left out;
    `check_all_used()` raises `ValueError` naming every variable neither taken nor skipped.
    `add(variables)` adds more (a task's head, loaded after its backbone); two different
    variables with one path are a `ValueError`, since a converter could not tell them apart.
    `close()` drops the references to the variables (the names and the bookkeeping stay).

    Args:
        variables: the variables to expose (e.g. a keras-hub backbone's `weights`).
        directory: the preset's directory or handle, named in error messages.
    """

    def __init__(self, variables, directory):
        self.directory = directory
        self._variables = {}
        self._names = set()
        self._used = set()
        self._skipped = {}
        self.add(variables)

    def add(self, variables):
        """Expose `variables` too (by path); returns their paths."""
        paths = []
        for variable in variables:
            path = variable.path
            existing = self._variables.get(path)
            if existing is not None and existing is not variable:
                raise ValueError(
                    f"The keras-hub model of {self.directory} has two variables at the path "
                    f"{path!r}, so they cannot be told apart by name."
                )
            self._variables[path] = variable
            self._names.add(path)
            paths.append(path)
        return paths

    def __contains__(self, name):
        return name in self._names

    def keys(self):
        return sorted(self._names)

    def shape(self, name):
        """The shape of variable `name` without reading it."""
        self._check_known(name)
        return tuple(self._variable(name).shape)

    def take(self, name):
        """Variable `name` as a NumPy array (float values as float32), marked used."""
        self._check_known(name)
        value = np.asarray(ops.convert_to_numpy(self._variable(name)))
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
        """`{name: reason}` of the variables marked with `skip`."""
        return dict(self._skipped)

    def unused(self):
        """Names neither taken nor skipped, sorted."""
        return sorted(self._names - self._used - set(self._skipped))

    def check_all_used(self, what="the model"):
        """`ValueError` naming every variable that was neither taken nor skipped."""
        unused = self.unused()
        if unused:
            raise ValueError(
                f"The keras-hub model of {self.directory} has {len(unused)} variable(s) that "
                f"{what} has no place for, so loading it would lose them: {unused}"
            )

    def close(self):
        self._variables = {}

    def _check_known(self, name):
        if name not in self._names:
            raise ValueError(
                f"The keras-hub model of {self.directory} has no variable {name!r}, which the "
                "converter needs: the model does not match the architecture its config "
                "describes."
            )

    def _variable(self, name):
        if name not in self._variables:
            raise ValueError(
                f"The variables of the keras-hub model of {self.directory} were released "
                f"(`close()`); {name!r} can no longer be read."
            )
        return self._variables[name]
