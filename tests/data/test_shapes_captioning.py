"""Shapes captioning: captions follow from the detection targets of the same seed; encoding."""

import collections

import numpy as np
import pytest

from keras_seq.data.shapes_captioning import CAPTION_END_ID
from keras_seq.data.shapes_captioning import CAPTION_START_ID
from keras_seq.data.shapes_captioning import SHAPES_CAPTION_VOCABULARY
from keras_seq.data.shapes_captioning import decode_captions
from keras_seq.data.shapes_captioning import encode_captions
from keras_seq.data.shapes_captioning import shapes_caption_length
from keras_seq.data.shapes_captioning import shapes_captioning_data
from keras_seq.data.shapes_captioning import shapes_captions
from keras_seq.data.shapes_detection import SHAPES_CLASSES
from keras_seq.data.shapes_detection import shapes_detection_data

ROWS = ("top", "", "bottom")
COLUMNS = ("left", "", "right")


def reference_caption(boxes, labels, height, width):
    """The caption rebuilt from DETR targets (normalized cx, cy, w, h), independently."""
    phrases = []
    for (cx, cy, _, _), label in zip(boxes, labels):
        if label < 0:
            continue
        twice_x = int(round(float(cx) * 2 * width))  # x0 + x1 in pixels, an integer
        twice_y = int(round(float(cy) * 2 * height))
        column = next(c for c in range(3) if twice_x * 3 < (c + 1) * 2 * width)
        row = next(r for r in range(3) if twice_y * 3 < (r + 1) * 2 * height)
        position = " ".join(w for w in (ROWS[row], COLUMNS[column]) if w) or "center"
        phrases.append(((twice_x, twice_y), f"a {SHAPES_CLASSES[label]} at the {position}"))
    phrases.sort(key=lambda item: item[0])  # stable: ties keep drawing order
    return " and ".join(p for _, p in phrases) or "no shapes"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"image_size": (40, 56), "min_objects": 0, "max_objects": 4, "seed": 3},
        {
            "image_size": 48,
            "num_classes": 2,
            "min_object_size": 10,
            "max_object_size": 16,
            "seed": 7,
        },
    ],
)
def test_captions_follow_the_detection_targets(kwargs):
    images, captions = shapes_captions(60, **kwargs)
    detection_images, targets = shapes_detection_data(
        60, **{"image_size": 32, "max_objects": 3, "min_objects": 1, **kwargs}
    )
    np.testing.assert_array_equal(images, detection_images)  # the same images
    height, width = images.shape[1:3]
    for caption, boxes, labels in zip(captions, targets["boxes"], targets["labels"]):
        assert caption == reference_caption(boxes, labels, height, width)
        # The classes named are the detection labels, as a multiset.
        named = collections.Counter(w for w in caption.split() if w in SHAPES_CLASSES)
        assert named == collections.Counter(SHAPES_CLASSES[i] for i in labels if i >= 0)
    if kwargs.get("min_objects") == 0:
        assert "no shapes" in captions


def test_every_position_and_class_occurs():
    _, captions = shapes_captions(300, seed=1)
    text = " ".join(captions)
    for position in ("top left", "top right", "bottom left", "bottom right", "center"):
        assert f"at the {position}" in text
    for name in SHAPES_CLASSES:
        assert f"a {name} at" in text


def test_data_layout_and_round_trip():
    inputs, targets = shapes_captioning_data(40, max_objects=2, seed=2)
    _, captions = shapes_captions(40, max_objects=2, seed=2)
    length = shapes_caption_length(2)
    assert length == 14 and targets.shape == inputs["target_in"].shape == (40, length)
    assert inputs["images"].dtype == np.float32 and inputs["images"].shape == (40, 32, 32, 3)
    assert 0.0 <= inputs["images"].min() and inputs["images"].max() <= 1.0
    assert targets.dtype == inputs["target_in"].dtype == np.int32
    assert decode_captions(targets) == captions
    for caption, row, row_in in zip(captions, targets, inputs["target_in"]):
        words = caption.split(" ")
        expected = [SHAPES_CAPTION_VOCABULARY.index(w) for w in words] + [CAPTION_END_ID]
        expected += [0] * (length - len(expected))
        assert row.tolist() == expected
        shifted = [CAPTION_START_ID] + expected[: len(words)] + [0] * (length - len(words) - 1)
        assert row_in.tolist() == shifted


def test_longest_caption_fits():
    caption = " and ".join(["a triangle at the bottom right"] * 3)
    assert encode_captions([caption]).shape == (1, shapes_caption_length(3))


def test_vocabulary():
    assert SHAPES_CAPTION_VOCABULARY[:3] == ("<pad>", "<start>", "<end>")
    assert len(set(SHAPES_CAPTION_VOCABULARY)) == len(SHAPES_CAPTION_VOCABULARY) == 19


def test_decode_stops_at_end_and_skips_special_tokens():
    ids = np.array([[1, 3, 9, 2, 4, 4], [3, 0, 10, 5, 6, 0]])
    assert decode_captions(ids) == ["a circle", "a square at the"]


def test_seeds():
    first = shapes_captions(20, seed=4)[1]
    assert first == shapes_captions(20, seed=4)[1]
    assert first != shapes_captions(20, seed=5)[1]
    assert shapes_captions(30, seed=4)[1][:20] == first  # example i depends on (seed, i)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"num_examples": 0}, "`num_examples` must be a positive integer"),
        ({"max_objects": 0}, "`max_objects` must be a positive integer"),
        ({"min_objects": 3, "max_objects": 2}, "`min_objects` must not exceed `max_objects`"),
        ({"num_classes": 6}, "`num_classes` must be an int in"),
        ({"image_size": 4}, "`image_size` must be an int"),
        ({"seed": -1}, "`seed` must be a non-negative integer"),
    ],
)
def test_validation_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        shapes_captioning_data(**{"num_examples": 2, **kwargs})


def test_encode_decode_errors():
    with pytest.raises(ValueError, match="`captions` may only hold words.*'hexagon'"):
        encode_captions(["a hexagon at the top"])
    with pytest.raises(ValueError, match="`captions` may only hold words.*'<end>'"):
        encode_captions(["a circle <end>"])
    with pytest.raises(TypeError, match="`captions` must be a sequence of strings"):
        encode_captions([3])
    with pytest.raises(ValueError, match="`length` must fit the longest caption"):
        encode_captions(["a circle at the top"], length=5)
    with pytest.raises(ValueError, match="`ids` must lie in"):
        decode_captions(np.array([[3, 19]]))
    with pytest.raises(ValueError, match="`ids` must be a 2-D int array"):
        decode_captions(np.array([3, 4]))
