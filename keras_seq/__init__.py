"""keras_seq: pluggable Keras 3 layers for sequence and vision-transformer models.

`import keras_seq` imports every subpackage (`keras_seq.subpackages.SUBPACKAGES`), so that
every class a `.keras` file may name is registered with Keras, and TensorFlow with them,
without its start-up lines on stderr (`keras_seq.stderr_capture`). In the `keras-seq`
command's own process the subpackages are imported on first use instead, so that `--help`
answers without TensorFlow; `keras_seq.subpackages` says how that process is recognised.
"""

from keras_seq import subpackages as _subpackages
from keras_seq.version import __version__


def __getattr__(name):
    # Reached for `keras_seq.<subpackage>` only while the subpackages are not imported (in
    # the `keras-seq` command): import them all, so that every class is registered.
    if name in _subpackages.SUBPACKAGES:
        _subpackages.import_subpackages()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if not _subpackages.started_as_command():
    _subpackages.import_subpackages()
