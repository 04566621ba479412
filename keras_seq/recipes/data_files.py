"""The user's data files of `keras-seq train --data`, found and checked from the file system alone.

Standard library only: the command checks `--data` with it before importing TensorFlow (see
`keras_seq.cli`); the recipes read the files (`keras_seq.recipes.text_data`).
"""

import csv
import os

TEXT_SUFFIX = ".txt"
PAIRS_SUFFIX = ".tsv"
# Labeled texts (`bert-classifier`): comma- or tab-separated, told apart by the suffix.
LABELED_TEXT_SUFFIXES = (".csv", ".tsv")
# The header names (any case) of the text column and of the label column of labeled texts.
TEXT_COLUMNS = ("text", "sentence")
LABEL_COLUMNS = ("label", "class")


class DataPathError(ValueError):
    """A data path that cannot be used: `path` (as given, or the file found inside it) and
    `reason` (what is wrong with it, e.g. `"is empty"`)."""

    def __init__(self, path, reason):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"`data`: the path {reason}. Received: data path {self.path!r}")


class FromModelError(ValueError):
    """A model to fine-tune (`from_model`, `--from`) that the recipe cannot use: `source`
    (as given) and `reason` (e.g. `"holds a SwinImageClassifier, not a ViTImageClassifier"`)."""

    def __init__(self, source, reason):
        self.source = os.fspath(source)
        self.reason = reason
        super().__init__(f"`from_model` {reason}. Received: from_model={self.source!r}")


def as_path_list(paths):
    """`paths` (one path or a list of paths) as a list of `str` paths."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [os.fspath(path) for path in paths]


def text_files(paths, suffix=TEXT_SUFFIX):
    """The text files of `paths`, in order: each path is a text file, or a directory whose
    files ending in `suffix` (a str or a tuple of them; `.txt` by default; in its
    sub-directories too, sorted by path) are taken.

    Raises:
        DataPathError: naming the path that does not exist, the directory that holds no
            `.txt` file, or the file that is empty.

    Example:
    ```python
    import os
    import tempfile

    from keras_seq.recipes.data_files import text_files

    directory = tempfile.mkdtemp()
    for name, text in (("b.txt", "world"), ("a.txt", "hello "), ("notes.md", "skipped")):
        with open(os.path.join(directory, name), "w") as file:
            file.write(text)
    files = text_files(directory)
    assert [os.path.basename(path) for path in files] == ["a.txt", "b.txt"]
    ```
    """
    paths = as_path_list(paths)
    if not paths:
        raise DataPathError("''", "names no file: give at least one path")
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(
                os.path.join(root, name)
                for root, _, names in os.walk(path)
                for name in names
                if name.endswith(suffix) and not name.startswith(".")
            )
            if not found:
                shown = suffix if isinstance(suffix, str) else " or ".join(suffix)
                raise DataPathError(path, f"is a directory that holds no {shown} file")
            files += found
        elif os.path.isfile(path):
            files.append(path)
        elif os.path.exists(path):
            raise DataPathError(path, "is not a file or a directory")
        else:
            raise DataPathError(path, "does not exist")
    for path in files:
        if not os.access(path, os.R_OK):
            raise DataPathError(path, "is not readable")
        if os.path.getsize(path) == 0:
            raise DataPathError(path, "is empty")
    return files


def read_pairs(files):
    """The `(source, target)` pairs of tab-separated files: one pair per line, source, a
    tab, then target (split at the first tab); blank lines are skipped.

    Raises:
        DataPathError: naming the file and the line number of a line without a tab, with an
            empty source or target, or the file that is not UTF-8.

    Example:
    ```python
    import os
    import tempfile

    from keras_seq.recipes.data_files import read_pairs

    path = os.path.join(tempfile.mkdtemp(), "pairs.tsv")
    with open(path, "w", encoding="utf-8") as file:
        file.write("good morning\\tbonjour\\n\\nthank you\\tmerci\\n")
    assert read_pairs([path]) == [("good morning", "bonjour"), ("thank you", "merci")]
    ```
    """
    pairs = []
    for path in as_path_list(files):
        try:
            with open(path, encoding="utf-8", newline="") as file:
                for number, line in enumerate(file, start=1):
                    line = line.rstrip("\r\n")
                    if not line.strip():
                        continue
                    source, tab, target = line.partition("\t")
                    if not tab:
                        raise DataPathError(
                            path, f"has no tab on line {number} (each line: source TAB target)"
                        )
                    if not source or not target:
                        side = "source" if not source else "target"
                        raise DataPathError(path, f"has an empty {side} on line {number}")
                    pairs.append((source, target))
        except UnicodeDecodeError as error:
            raise DataPathError(path, f"is not UTF-8 text ({error.reason})") from None
    return pairs


def _column(header, names, path):
    """The index of the one column of `header` named one of `names` (any case)."""
    found = [index for index, name in enumerate(header) if name.strip().lower() in names]
    if len(found) != 1:
        columns = ", ".join(repr(name) for name in header)
        wanted = " or ".join(names)
        problem = "has no" if not found else "has more than one"
        raise DataPathError(
            path,
            f"{problem} {wanted} column in its header row (line 1: {columns}); the header "
            f"names a text column ({' or '.join(TEXT_COLUMNS)}) and a label column "
            f"({' or '.join(LABEL_COLUMNS)})",
        )
    return found[0]


def read_labeled_text(files):
    """The `(text, label)` rows of CSV (`.csv`) or tab-separated (`.tsv`) files with a header
    row that names a text column (`TEXT_COLUMNS`: `text` or `sentence`, any case) and a
    label column (`LABEL_COLUMNS`: `label` or `class`); other columns are ignored. CSV
    fields may be quoted (`"a, b"`, as `csv` reads them); TSV fields are taken as written,
    quotes included. Blank lines are skipped. Labels are kept as written
    (strings).

    Raises:
        DataPathError: naming the file (and `file:line`) of a row whose number of fields
            differs from the header's, an empty text or label, a header without the two
            columns, a file of another suffix, or one that is not UTF-8.

    Example:
    ```python
    import os
    import tempfile

    from keras_seq.recipes.data_files import read_labeled_text

    path = os.path.join(tempfile.mkdtemp(), "reviews.csv")
    with open(path, "w", encoding="utf-8") as file:
        file.write('id,Text,label\\n1,"great, really",pos\\n2,dull,neg\\n')
    assert read_labeled_text([path]) == [("great, really", "pos"), ("dull", "neg")]
    ```
    """
    rows = []
    for path in as_path_list(files):
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in LABELED_TEXT_SUFFIXES:
            raise DataPathError(
                path, f"must end in {' or '.join(LABELED_TEXT_SUFFIXES)} (comma or tab separated)"
            )
        name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8", newline="") as file:
                if suffix == ".tsv":  # fields as written, quotes included
                    reader = csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
                else:
                    reader = csv.reader(file)
                header = next(reader, None)
                if not header:
                    raise DataPathError(path, "has no header row (line 1)")
                text_index = _column(header, TEXT_COLUMNS, path)
                label_index = _column(header, LABEL_COLUMNS, path)
                for row in reader:
                    number = reader.line_num
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue
                    if len(row) != len(header):
                        raise DataPathError(
                            path,
                            f"has {len(row)} field(s) on line {number} ({name}:{number}); "
                            f"the header row has {len(header)}",
                        )
                    text, label = row[text_index], row[label_index].strip()
                    for column, value in ((header[text_index], text), (header[label_index], label)):
                        if not value.strip():
                            raise DataPathError(
                                path,
                                f"has an empty {column.strip()} on line {number} ({name}:{number})",
                            )
                    rows.append((text, label))
        except UnicodeDecodeError as error:
            raise DataPathError(path, f"is not UTF-8 text ({error.reason})") from None
        except csv.Error as error:
            raise DataPathError(path, f"is not valid CSV ({error})") from None
    return rows


def class_names(labels):
    """The sorted distinct `labels` (strings): as numbers when every label is an integer
    (`"2"` before `"10"`), else as text."""
    names = sorted(set(labels))
    try:
        return sorted(names, key=int)
    except ValueError:
        return names


# The image files `keras.utils.image_dataset_from_directory` reads.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def image_folders(directory):
    """The images of `directory` in the layout of `keras.utils.image_dataset_from_directory`:
    one sub-directory per class (the class names, sorted), holding that class's images
    (`IMAGE_SUFFIXES`, in its sub-directories too).

    Returns:
        `(class_names, files, labels)`: the sorted class names, and every image's path and
        class index, class by class.

    Raises:
        DataPathError: naming the path that does not exist or is not a directory, the
            directory with fewer than two class directories, or the class directory that
            holds no image.

    Example:
    ```python
    import os
    import tempfile

    from keras_seq.recipes.data_files import image_folders

    directory = tempfile.mkdtemp()
    for name in ("dog/1.png", "cat/a.jpg", "cat/b.png", "cat/notes.txt"):
        os.makedirs(os.path.dirname(os.path.join(directory, name)), exist_ok=True)
        open(os.path.join(directory, name), "wb").close()
    class_names, files, labels = image_folders(directory)
    assert class_names == ["cat", "dog"] and labels == [0, 0, 1]
    assert [os.path.basename(path) for path in files] == ["a.jpg", "b.png", "1.png"]
    ```
    """
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise DataPathError(directory, "does not exist")
    if not os.path.isdir(directory):
        raise DataPathError(
            directory, "is not a directory (it must hold one sub-directory of images per class)"
        )
    class_names = sorted(
        name
        for name in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, name)) and not name.startswith(".")
    )
    if len(class_names) < 2:
        raise DataPathError(
            directory,
            f"holds {len(class_names)} class sub-directories; it needs one sub-directory of "
            "images per class, and at least 2 classes",
        )
    files, labels = [], []
    for label, name in enumerate(class_names):
        class_directory = os.path.join(directory, name)
        found = sorted(
            os.path.join(root, file_name)
            for root, _, names in os.walk(class_directory)
            for file_name in names
            if file_name.lower().endswith(IMAGE_SUFFIXES) and not file_name.startswith(".")
        )
        if not found:
            raise DataPathError(
                class_directory,
                f"is a class directory that holds no image ({', '.join(IMAGE_SUFFIXES)})",
            )
        files += found
        labels += [label] * len(found)
    return class_names, files, labels
