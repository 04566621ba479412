"""Synthetic image captioning: the shapes of `shapes_detection_data`, described in words.

Each image is drawn by the shapes detection generator (same seed, same images) and its
caption is a deterministic function of the shapes' classes and boxes, written in a tiny
grammar: "a circle at the top left and a ring at the center". The shapes' colours are random
hues, so the captions name where the shapes are, not their colour.

Letter legend for shape comments: N examples, H height, W width, T caption length in tokens.
"""

import numpy as np

from keras_seq.data.shapes_detection import SHAPES_CLASSES
from keras_seq.data.shapes_detection import _generate_examples
from keras_seq.data.teacher_forcing import teacher_forcing_inputs
from keras_seq.utils.validation import validate_positive_int

CAPTION_PAD_ID = 0
CAPTION_START_ID = 1
CAPTION_END_ID = 2
# The 3x3 grid of positions, by row (top, middle, bottom) then column (left, center, right).
CAPTION_POSITIONS = (
    ("top", "left"),
    ("top",),
    ("top", "right"),
    ("left",),
    ("center",),
    ("right",),
    ("bottom", "left"),
    ("bottom",),
    ("bottom", "right"),
)
SHAPES_CAPTION_VOCABULARY = (
    ("<pad>", "<start>", "<end>", "a", "and", "at", "the", "no", "shapes")
    + SHAPES_CLASSES
    + ("top", "bottom", "left", "right", "center")
)
CAPTION_WORDS_PER_OBJECT = 6  # "a circle at the top left"
_WORD_IDS = {word: index for index, word in enumerate(SHAPES_CAPTION_VOCABULARY)}
_EMPTY_CAPTION = "no shapes"


def shapes_caption_length(max_objects):
    """Tokens of the longest caption of `max_objects` shapes, its end token included:
    `CAPTION_WORDS_PER_OBJECT * max_objects + (max_objects - 1) + 1` (the "and"s and end)."""
    max_objects = validate_positive_int("max_objects", max_objects)
    return (CAPTION_WORDS_PER_OBJECT + 1) * max_objects


def _caption(pixel_boxes, labels, height, width):
    """The caption of one image from its pixel boxes `(M, 4)` `(y0, x0, y1, x1)` (stops
    exclusive) and labels `(M,)`; shapes ordered by box centre, left to right, then top
    to bottom, then drawing order."""
    if len(labels) == 0:
        return _EMPTY_CAPTION
    phrases = []
    twice_centers = [(int(x0 + x1), int(y0 + y1)) for y0, x0, y1, x1 in pixel_boxes]
    order = sorted(range(len(labels)), key=lambda i: (twice_centers[i], i))
    for index in order:
        twice_x, twice_y = twice_centers[index]
        # Third of the image holding the centre, in exact integers: 3 * cx // W, cx < W.
        column = 3 * twice_x // (2 * width)
        row = 3 * twice_y // (2 * height)
        position = " ".join(CAPTION_POSITIONS[3 * row + column])
        phrases.append(f"a {SHAPES_CLASSES[labels[index]]} at the {position}")
    return " and ".join(phrases)


def shapes_captions(
    num_examples,
    image_size=32,
    min_objects=1,
    max_objects=3,
    num_classes=5,
    min_object_size=None,
    max_object_size=None,
    seed=0,
):
    """Images of synthetic shapes and their captions, as strings.

    The images are those of `shapes_detection_data` with the same arguments and seed
    (default object sizes). The caption names each shape, ordered by the centre of its
    box, left to right (then top to bottom), as `"a {class} at the {position}"` joined
    by `" and "`, where the position is the cell of a 3x3 grid holding the box centre:
    `"top left"`, `"top"`, `"top right"`, `"left"`, `"center"`, `"right"`,
    `"bottom left"`, `"bottom"`, `"bottom right"`. An image without shapes is
    `"no shapes"`. Every word is in `SHAPES_CAPTION_VOCABULARY`.

    Args:
        num_examples: int. Number of images N.
        image_size: int or `(height, width)`, each at least 6. Defaults to `32`.
        min_objects: int >= 0. Fewest shapes in an image. Defaults to `1`.
        max_objects: int >= `min_objects`, at least 1. Most shapes in an image.
            Defaults to `3`.
        num_classes: int in [1, 5]. Draws from the first `num_classes` classes of
            `SHAPES_CLASSES`. Defaults to `5`.
        min_object_size: optional int in [6, min(height, width)]. Smallest shape (the side
            of its frame) in pixels. Defaults to `max(6, min(height, width) // 8)` (6 for
            32x32).
        max_object_size: optional int in [`min_object_size`, min(height, width)]. Largest
            shape. Defaults to `max(min_object_size, 3 * min(height, width) // 8)` (12 for
            32x32).
        seed: int >= 0. Seed of the NumPy generators. Defaults to `0`.

    Returns:
        `(images, captions)`: `images` float32 `(N, H, W, 3)` in [0, 1] and `captions` a
        list of N strings.

    Example:
    ```python
    images, captions = keras_seq.data.shapes_captions(2, seed=0)
    assert images.shape == (2, 32, 32, 3)
    assert all(caption.startswith("a ") for caption in captions)
    ```
    """
    height, width, examples = _generate_examples(
        num_examples,
        image_size,
        min_objects=min_objects,
        max_objects=max_objects,
        num_classes=num_classes,
        min_object_size=min_object_size,
        max_object_size=max_object_size,
        seed=seed,
    )
    images = np.empty((num_examples, height, width, 3), dtype=np.float32)  # (N, H, W, 3)
    captions = []
    for index, (image, pixel_boxes, labels, _) in enumerate(examples):
        images[index] = image.astype(np.float32) / np.float32(255)
        captions.append(_caption(pixel_boxes.tolist(), labels.tolist(), height, width))
    return images, captions


def encode_captions(captions, length=None):
    """Caption strings -> int32 ids `(len(captions), length)`: the words' ids in
    `SHAPES_CAPTION_VOCABULARY`, then `CAPTION_END_ID`, right-padded with 0.

    Args:
        captions: sequence of strings of words of `SHAPES_CAPTION_VOCABULARY`, separated
            by single spaces.
        length: optional int. Tokens per row, the end token included. Defaults to the
            longest caption plus one.

    Returns:
        int32 array `(len(captions), length)`.

    Example:
    ```python
    ids = keras_seq.data.encode_captions(["a ring at the top", "no shapes"])
    assert ids.tolist() == [[3, 13, 5, 6, 14, 2], [7, 8, 2, 0, 0, 0]]
    assert keras_seq.data.decode_captions(ids) == ["a ring at the top", "no shapes"]
    ```
    """
    rows = []
    for caption in captions:
        if not isinstance(caption, str):
            raise TypeError(
                f"`captions` must be a sequence of strings. Received: an element {caption!r}"
            )
        words = caption.split(" ")
        unknown = [w for w in words if w not in _WORD_IDS or _WORD_IDS[w] < 3]
        if unknown:
            raise ValueError(
                "`captions` may only hold words of SHAPES_CAPTION_VOCABULARY (special "
                f"tokens excluded), separated by single spaces. Received: {unknown[0]!r} "
                f"in caption {caption!r}"
            )
        rows.append([_WORD_IDS[word] for word in words] + [CAPTION_END_ID])
    longest = max((len(row) for row in rows), default=1)
    if length is None:
        length = longest
    length = validate_positive_int("length", length)
    if length < longest:
        raise ValueError(
            f"`length` must fit the longest caption and its end token ({longest} tokens). "
            f"Received: length={length}"
        )
    ids = np.full((len(rows), length), CAPTION_PAD_ID, dtype=np.int32)  # (N, T)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = row
    return ids


def decode_captions(ids):
    """Token ids `(batch_size, length)` (e.g. from `generate`) -> caption strings.

    Each row stops at its first `CAPTION_END_ID`; padding and start tokens are skipped.

    Args:
        ids: int array `(batch_size, length)` of ids of `SHAPES_CAPTION_VOCABULARY`.

    Returns:
        List of `batch_size` strings.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            "`ids` must be a 2-D int array `(batch_size, length)`. Received: ids of shape "
            f"{ids.shape} and dtype {ids.dtype}"
        )
    if ids.size and (ids.min() < 0 or ids.max() >= len(SHAPES_CAPTION_VOCABULARY)):
        raise ValueError(
            f"`ids` must lie in [0, {len(SHAPES_CAPTION_VOCABULARY)}), the ids of "
            f"SHAPES_CAPTION_VOCABULARY. Received: ids from {ids.min()} to {ids.max()}"
        )
    captions = []
    for row in ids.tolist():
        words = []
        for token in row:
            if token == CAPTION_END_ID:
                break
            if token not in (CAPTION_PAD_ID, CAPTION_START_ID):
                words.append(SHAPES_CAPTION_VOCABULARY[token])
        captions.append(" ".join(words))
    return captions


def shapes_captioning_data(
    num_examples,
    image_size=32,
    min_objects=1,
    max_objects=3,
    num_classes=5,
    min_object_size=None,
    max_object_size=None,
    seed=0,
):
    """Shapes captioning examples for `fit` on `RNNImageCaptioner` / `TransformerImageCaptioner`.

    The images and captions of `shapes_captions` (same arguments), the captions encoded
    with `encode_captions` to `shapes_caption_length(max_objects)` tokens (`<pad>` 0,
    `<start>` 1, `<end>` 2, then the words; vocabulary size
    `len(SHAPES_CAPTION_VOCABULARY)`) and shifted right behind the start token for
    teacher forcing (`teacher_forcing_inputs`).

    Args:
        num_examples, image_size, min_objects, max_objects, num_classes,
            min_object_size, max_object_size, seed: as in `shapes_captions`.

    Returns:
        `(inputs, targets)`: `inputs` is `{"images": float32 (N, H, W, 3) in [0, 1],
        "target_in": int32 (N, T)}` and `targets` int32 `(N, T)`, with
        `T = shapes_caption_length(max_objects)` (7 per shape).

    Example:
    ```python
    inputs, targets = keras_seq.data.shapes_captioning_data(8, seed=0)
    model = keras_seq.models.RNNImageCaptioner(
        keras_seq.models.CaptioningCNNBackbone(image_shape=(32, 32, 3)),
        vocabulary_size=len(keras_seq.data.SHAPES_CAPTION_VOCABULARY),
        hidden_dim=16,
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    model.fit(inputs, targets, epochs=1, verbose=0)
    token_ids = model.generate(inputs["images"], max_new_tokens=targets.shape[1], stop_token_id=2)
    captions = keras_seq.data.decode_captions(np.asarray(token_ids))  # untrained: any words
    assert keras_seq.data.decode_captions(targets[:1])[0].startswith("a ")
    ```
    """
    images, captions = shapes_captions(
        num_examples,
        image_size=image_size,
        min_objects=min_objects,
        max_objects=max_objects,
        num_classes=num_classes,
        min_object_size=min_object_size,
        max_object_size=max_object_size,
        seed=seed,
    )
    target_in, targets = _caption_targets(captions, max_objects)
    return {"images": images, "target_in": target_in}, targets


def _caption_targets(captions, max_objects):
    """`(target_in, targets)`, int32 `(N, shapes_caption_length(max_objects))` each."""
    targets = encode_captions(captions, length=shapes_caption_length(max_objects))  # (N, T)
    # `teacher_forcing_inputs` shifts the target; its "source" slot is not used here.
    inputs = teacher_forcing_inputs(targets, targets, start_token_id=CAPTION_START_ID)
    return inputs["target_in"], targets
