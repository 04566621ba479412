"""The user's annotated images of `keras-seq train detr-shapes --data DIR ANNOTATIONS.json`.

Standard library only: the command checks `--data` with it before importing TensorFlow.
`--data` is one image directory and one COCO detection annotations file, in either order:
`{"images": [{"id", "file_name", "width", "height"}, ...], "annotations": [{"id",
"image_id", "category_id", "bbox": [x, y, width, height]}, ...], "categories": [{"id",
"name"}, ...]}` (other keys ignored), boxes in pixels from the top left corner as in COCO's
`instances_*.json`. Crowd annotations (`"iscrowd": 1`) are left out; an image without
annotations is a background image. Every box must lie inside its image (a tolerance of
`BOX_TOLERANCE` pixels for rounding) and have a positive width and height; a box that does
not is an error naming the file and the annotation id.
"""

import json
import os

from keras_seq.recipes.caption_files import split_data_paths
from keras_seq.recipes.data_files import DataPathError

BOX_TOLERANCE = 1.0


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _load(path):
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
    except UnicodeDecodeError as error:
        raise DataPathError(path, f"is not UTF-8 text ({error.reason})") from None
    except ValueError as error:
        raise DataPathError(path, f"is not valid JSON ({error})") from None
    if not isinstance(record, dict) or not all(
        isinstance(record.get(key), list) for key in ("images", "annotations", "categories")
    ):
        raise DataPathError(
            path,
            'is not a COCO detection file: it needs the lists "images", "annotations" and '
            '"categories"',
        )
    return record


def _categories(record, path):
    categories = {}
    for index, category in enumerate(record["categories"]):
        if not isinstance(category, dict) or "id" not in category or "name" not in category:
            raise DataPathError(
                path, f'has a category (categories[{index}]) without "id" or "name"'
            )
        categories[category["id"]] = str(category["name"])
    if not categories:
        raise DataPathError(path, "lists no category")
    return categories


def _images(record, path, directory):
    images = {}
    for index, image in enumerate(record["images"]):
        keys = ("id", "file_name", "width", "height")
        if not isinstance(image, dict) or not all(key in image for key in keys):
            raise DataPathError(
                path,
                f'has an image (images[{index}]) without "id", "file_name", "width" or "height"',
            )
        file_path = os.path.join(directory, image["file_name"])
        if not os.path.isfile(file_path):
            raise DataPathError(
                path,
                f"names the image {image['file_name']!r} (image id {image['id']}), which "
                f"{directory} does not hold",
            )
        images[image["id"]] = {
            "path": file_path,
            "width": image["width"],
            "height": image["height"],
            "boxes": [],
            "labels": [],
        }
    return images


def read_detection_data(data):
    """The annotated images of `--data` (see the module docstring).

    Returns:
        `(class_names, images)`: the category names in the order of their ids (class index
        `i` is the `i`-th category), and a list of dicts, in the order of `"images"`:
        `"path"`, `"width"`, `"height"` (as the file declares them), `"boxes"` (pixel
        `[x_min, y_min, x_max, y_max]` lists) and `"labels"` (class indices).

    Raises:
        DataPathError: naming the annotations file and the annotation id of a box outside
            its image, of zero size, of an unknown category or image, or naming the image
            file that does not exist.

    Example:
    ```python
    import json
    import os
    import tempfile

    from keras_seq.recipes.detection_files import read_detection_data

    directory = tempfile.mkdtemp()
    open(os.path.join(directory, "a.png"), "wb").close()
    path = os.path.join(directory, "instances.json")
    with open(path, "w") as file:
        json.dump(
            {
                "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
                "annotations": [{"id": 5, "image_id": 1, "category_id": 3, "bbox": [2, 1, 4, 6]}],
                "categories": [{"id": 3, "name": "cat"}, {"id": 1, "name": "dog"}],
            },
            file,
        )
    class_names, images = read_detection_data([directory, path])
    assert class_names == ["dog", "cat"]
    assert images[0]["boxes"] == [[2, 1, 6, 7]] and images[0]["labels"] == [1]
    ```
    """
    directory, path = split_data_paths(data, what="annotations file", suffixes=(".json",))
    record = _load(path)
    categories = _categories(record, path)
    order = sorted(categories, key=lambda key: (str(type(key)), key))
    index = {category: position for position, category in enumerate(order)}
    images = _images(record, path, directory)
    if not images:
        raise DataPathError(path, "lists no image")
    for position, annotation in enumerate(record["annotations"]):
        if not isinstance(annotation, dict):
            raise DataPathError(path, f"has an annotation that is not an object (#{position})")
        where = f"annotation id {annotation.get('id', f'#{position}')}"
        if annotation.get("iscrowd", 0):
            continue
        image = images.get(annotation.get("image_id"))
        if image is None:
            raise DataPathError(
                path, f'has an annotation of an image id that "images" does not list ({where})'
            )
        if annotation.get("category_id") not in index:
            raise DataPathError(
                path,
                f"has an annotation of category id {annotation.get('category_id')!r}, which "
                f'"categories" does not list ({where})',
            )
        box = annotation.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(_number(v) for v in box):
            raise DataPathError(path, f"has a bbox that is not [x, y, width, height] ({where})")
        x, y, width, height = box
        name = os.path.basename(image["path"])
        if width <= 0 or height <= 0:
            raise DataPathError(
                path, f"has a box of width {width} and height {height} in {name} ({where})"
            )
        if (
            x < -BOX_TOLERANCE
            or y < -BOX_TOLERANCE
            or x + width > image["width"] + BOX_TOLERANCE
            or y + height > image["height"] + BOX_TOLERANCE
        ):
            raise DataPathError(
                path,
                f"has a box [x, y, width, height] = {box} outside its image {name} of "
                f"{image['width']}x{image['height']} pixels ({where})",
            )
        image["boxes"].append([x, y, x + width, y + height])
        image["labels"].append(index[annotation["category_id"]])
    return [categories[key] for key in order], list(images.values())
