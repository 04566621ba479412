"""The `.keras` files the command line writes and reads: their SHA-256, and what is wrong with
one before Keras opens it.

Standard library only: the command checks a MODEL (or `--from`) with it before importing
TensorFlow. `keras-seq train` records the SHA-256 of the `model.keras` it writes in
`metrics.json` (`"sha256": {"model.keras": ...}`), and `keras-seq demo` those of its models
in `results.json`; `model_file_problem` checks a file against the record beside it, so that a
model changed or damaged since it was written is refused with a clear message rather than
loaded. A file without a record (one written elsewhere, or by an earlier version) is checked
only for being a readable `.keras` archive.
"""

import hashlib
import json
import os
import zipfile

# The JSON files beside a model that may record its SHA-256, and the key they use.
RECORD_FILES = ("metrics.json", "results.json")
RECORD_KEY = "sha256"
_CHUNK = 1 << 20


def sha256_file(path):
    """The SHA-256 of the file at `path`, as a hexadecimal string.

    Example:
    ```python
    import hashlib
    import tempfile

    from keras_seq.recipes.model_files import sha256_file

    with tempfile.NamedTemporaryFile(delete=False) as file:
        file.write(b"keras")
    assert sha256_file(file.name) == hashlib.sha256(b"keras").hexdigest()
    ```
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_sha256(path):
    """`(record_file, sha256)` that a JSON file of `RECORD_FILES` beside `path` records for
    it (under `RECORD_KEY`, by its path relative to that directory, e.g. `model.keras` or
    `models/lstm_T10.keras`), or `None`. The record may be one directory up (the demo's
    `models/` directory)."""
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    for base in (directory, os.path.dirname(directory)):
        relative = os.path.relpath(path, base).replace(os.sep, "/")
        for name in RECORD_FILES:
            record_path = os.path.join(base, name)
            try:
                with open(record_path, encoding="utf-8") as file:
                    record = json.load(file)
                value = record[RECORD_KEY][relative]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if isinstance(value, str):
                return record_path, value
    return None


def model_file_problem(path):
    """Why the `.keras` file `path` cannot be loaded (a phrase such as `"does not exist"`,
    to follow "the path"), or `None`: not a file, not a zip archive (truncated or
    corrupt), a damaged member, or a SHA-256 other than the one recorded beside it."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return "is a directory, expected a .keras file"
    if not os.path.exists(path):
        return "does not exist"
    if not os.path.isfile(path):
        return "is not a file, expected a .keras file"
    if not path.endswith(".keras"):
        return "is not a .keras file"
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return (
            "is not a readable .keras file (a zip archive): it is truncated or corrupt "
            f"({type(error).__name__}: {error})"
        )
    if damaged is not None:
        return f"is a corrupt .keras file: its member {damaged} fails its CRC check"
    if "config.json" not in names:
        return "is not a .keras file: the archive holds no config.json"
    record = recorded_sha256(path)
    if record is not None:
        record_path, expected = record
        actual = sha256_file(path)
        if actual != expected:
            return (
                f"does not match the SHA-256 that {record_path} records for it (recorded "
                f"{expected[:16]}..., found {actual[:16]}...): it was changed or damaged "
                "after keras-seq wrote it"
            )
    return None
