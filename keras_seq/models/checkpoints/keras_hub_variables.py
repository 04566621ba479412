"""KerasHubVariables: the variables of a loaded keras-hub model as checkpoint tensors, each
accounted for.

The keras-hub converters load a keras-hub model through keras-hub's own `from_preset` and read
its variables by `variable.path`; this gives them `CheckpointTensors`' interface, so that the
loader's checks (every tensor used or skipped with a reason, every weight set) apply unchanged.
"""

from keras import ops

from keras_seq.models.checkpoints.tensors import NamedTensors


class KerasHubVariables(NamedTensors):
    """The variables of keras-hub models by `variable.path` (e.g.
    `vit_encoder/transformer_block_1/ln_1/gamma`), with `CheckpointTensors`' interface
    (`NamedTensors`' bookkeeping: every variable taken or skipped with a reason).

    `add(variables)` adds more (a task's head, loaded after its backbone); two different
    variables with one path are a `ValueError`, since a converter could not tell them apart.
    `close()` drops the references to the variables (the names and the bookkeeping stay).

    Args:
        variables: the variables to expose (e.g. a keras-hub backbone's `weights`).
        directory: the preset's directory or handle, named in error messages.
    """

    noun = "variable"

    def __init__(self, variables, directory):
        super().__init__(directory, f"The keras-hub model of {directory}")
        self._variables = {}
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

    def _shape(self, name):
        return self._variable(name).shape

    def _read(self, name):
        return ops.convert_to_numpy(self._variable(name))

    def close(self):
        self._variables = {}

    def _variable(self, name):
        if name not in self._variables:
            raise ValueError(
                f"The variables of the keras-hub model of {self.directory} were released "
                f"(`close()`); {name!r} can no longer be read."
            )
        return self._variables[name]
