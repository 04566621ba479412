"""The user's captioned images of `keras-seq train captioning-shapes --data DIR CAPTIONS`.

Standard library only: the command checks `--data` with it before importing TensorFlow.
`--data` is one image directory and one captions file, in either order:

- COCO captions JSON (`.json`): `{"images": [{"id", "file_name"}, ...], "annotations":
  [{"image_id", "caption"}, ...]}` (other keys are ignored), as in COCO's
  `captions_train2017.json`;
- tab-separated (`.tsv`): `file_name TAB caption` per line; blank lines are skipped.

File names are relative to the image directory; an image may have several captions (each is
one training example).
"""

import json
import os
import re

from keras_seq.recipes.data_files import DataPathError
from keras_seq.recipes.data_files import as_path_list

CAPTION_SUFFIXES = (".json", ".tsv")
_WORD = re.compile(r"[\w']+|[^\w\s]")


def caption_words(caption):
    """The words of a caption as the captioning recipe reads them: lowercased, punctuation
    marks as words of their own.

    Example:
    ```python
    from keras_seq.recipes.caption_files import caption_words

    assert caption_words("A dog's ball, red.") == ["a", "dog's", "ball", ",", "red", "."]
    ```
    """
    return _WORD.findall(caption.lower())


def split_data_paths(data, what="captions file", suffixes=CAPTION_SUFFIXES):
    """`(image_directory, file)` of `--data`: one directory and one file ending in one of
    `suffixes` (the captions file: `.json` or `.tsv`), in either order; a `DataPathError`
    naming what is missing or wrong."""
    paths = as_path_list(data)
    directories = [path for path in paths if os.path.isdir(path)]
    files = [path for path in paths if not os.path.isdir(path)]
    for path in files:
        if not os.path.exists(path):
            raise DataPathError(path, "does not exist")
    shown = " or ".join(suffixes)
    if len(paths) != 2 or len(directories) != 1:
        raise DataPathError(
            " ".join(paths), f"must be one image directory and one {what} ({shown})"
        )
    if not files[0].lower().endswith(suffixes):
        raise DataPathError(files[0], f"must be a {what} ending in {shown}")
    return directories[0], files[0]


def _coco_captions(path):
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
    except UnicodeDecodeError as error:
        raise DataPathError(path, f"is not UTF-8 text ({error.reason})") from None
    except ValueError as error:
        raise DataPathError(path, f"is not valid JSON ({error})") from None
    if not isinstance(record, dict) or not all(
        isinstance(record.get(key), list) for key in ("images", "annotations")
    ):
        raise DataPathError(
            path, 'is not a COCO captions file: it needs the lists "images" and "annotations"'
        )
    names = {}
    for index, image in enumerate(record["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DataPathError(path, f'has an image (images[{index}]) without "id" or "file_name"')
        names[image["id"]] = image["file_name"]
    entries = []
    for index, annotation in enumerate(record["annotations"]):
        where = (
            f"annotation id {annotation.get('id', f'#{index}')}"
            if isinstance(annotation, dict)
            else f"annotations[{index}]"
        )
        if not isinstance(annotation, dict) or "image_id" not in annotation:
            raise DataPathError(path, f'has an annotation without "image_id" ({where})')
        if annotation["image_id"] not in names:
            raise DataPathError(
                path,
                f"has an annotation of image_id {annotation['image_id']!r}, an id that "
                f'"images" does not list ({where})',
            )
        caption = annotation.get("caption")
        if not isinstance(caption, str) or not caption_words(caption):
            raise DataPathError(path, f"has an empty or missing caption ({where})")
        entries.append((names[annotation["image_id"]], caption, where))
    return entries


def _tsv_captions(path):
    entries = []
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8", newline="") as file:
            for number, line in enumerate(file, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                file_name, tab, caption = line.partition("\t")
                where = f"line {number} ({name}:{number})"
                if not tab or not file_name:
                    raise DataPathError(path, f"has no file_name TAB caption on {where}")
                if not caption_words(caption):
                    raise DataPathError(path, f"has an empty caption on {where}")
                entries.append((file_name, caption, where))
    except UnicodeDecodeError as error:
        raise DataPathError(path, f"is not UTF-8 text ({error.reason})") from None
    return entries


def read_captions(data):
    """The captioned images of `--data` (see the module docstring): a list of
    `(image_path, caption)`, in the captions file's order.

    Raises:
        DataPathError: naming the captions file and the line or annotation id of an entry
            without a caption or image, and the image file that does not exist.

    Example:
    ```python
    import json
    import os
    import tempfile

    from keras_seq.recipes.caption_files import read_captions

    directory = tempfile.mkdtemp()
    open(os.path.join(directory, "cat.png"), "wb").close()
    path = os.path.join(directory, "captions.json")
    with open(path, "w") as file:
        json.dump(
            {
                "images": [{"id": 7, "file_name": "cat.png"}],
                "annotations": [{"id": 1, "image_id": 7, "caption": "A cat."}],
            },
            file,
        )
    [(image, caption)] = read_captions([directory, path])
    assert image == os.path.join(directory, "cat.png") and caption == "A cat."
    ```
    """
    directory, path = split_data_paths(data)
    if path.lower().endswith(".json"):
        entries = _coco_captions(path)
    else:
        entries = _tsv_captions(path)
    if not entries:
        raise DataPathError(path, "holds no caption")
    examples = []
    for file_name, caption, where in entries:
        image = os.path.join(directory, file_name)
        if not os.path.isfile(image):
            raise DataPathError(
                path, f"names the image {file_name!r} ({where}), which {directory} does not hold"
            )
        examples.append((image, caption))
    return examples
