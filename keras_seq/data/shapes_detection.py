"""Synthetic object detection for DETR: flat-coloured shapes on textured backgrounds.

Nothing is downloaded: every image is drawn with NumPy from a fixed seed. Each image holds a
few shapes (`SHAPES_CLASSES`) in saturated, distinct colours on a muted background made of a
smooth gradient, soft blobs, optional stripes and pixel noise. Shapes never touch (a gap of
at least one pixel, also diagonally) and the boxes of two shapes overlap with an IoU of at
most `MAX_BOX_IOU`, so every shape stays whole and visible, and each box is the tight box of
the shape's rasterized pixels: exact, not estimated.

Letter legend for shape comments: N examples, H height, W width, K `max_objects`,
S object size.
"""

import functools

import numpy as np

from keras_seq.utils.validation import validate_int
from keras_seq.utils.validation import validate_int_pair
from keras_seq.utils.validation import validate_non_negative_int
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_seed

SHAPES_CLASSES = ("circle", "square", "triangle", "cross", "ring")
MIN_OBJECT_SIZE = 6  # Below this a ring, a circle and a cross look alike.
MAX_BOX_IOU = 0.3  # The largest IoU between the boxes of two shapes of one image.
BACKGROUND_MAX_SPREAD = 48 / 255  # Background pixels: max minus min channel at most this.
OBJECT_MIN_SPREAD = 0.36  # Shape colours: max minus min channel (saturation x value) at least.
_ATTEMPTS_PER_OBJECT = 100
_ATTEMPTS_PER_IMAGE = 20


def _validate_arguments(
    num_examples,
    image_size,
    min_objects,
    max_objects,
    num_classes,
    min_object_size,
    max_object_size,
    seed,
):
    """Check every argument; return `(height, width, min_object_size, max_object_size)`."""
    validate_positive_int("num_examples", num_examples)
    pair = validate_int_pair("image_size", image_size, minimum=MIN_OBJECT_SIZE)
    height, width = int(pair[0]), int(pair[1])
    validate_non_negative_int("min_objects", min_objects)
    validate_positive_int("max_objects", max_objects)
    if min_objects > max_objects:
        raise ValueError(
            "`min_objects` must not exceed `max_objects`. Received: "
            f"min_objects={min_objects}, max_objects={max_objects}"
        )
    validate_int("num_classes", num_classes)
    if not 1 <= num_classes <= len(SHAPES_CLASSES):
        raise ValueError(
            f"`num_classes` must be an int in [1, {len(SHAPES_CLASSES)}] (the first "
            f"`num_classes` of {SHAPES_CLASSES}). Received: num_classes={num_classes!r}"
        )
    side = min(height, width)
    if min_object_size is None:
        min_object_size = max(MIN_OBJECT_SIZE, side // 8)
    if max_object_size is None:
        max_object_size = max(min_object_size, side * 3 // 8)
    for name, size in (("min_object_size", min_object_size), ("max_object_size", max_object_size)):
        validate_int(name, size)
        if not MIN_OBJECT_SIZE <= size <= side:
            raise ValueError(
                f"`{name}` must be an int in [{MIN_OBJECT_SIZE}, min(height, width)] = "
                f"[{MIN_OBJECT_SIZE}, {side}] pixels. Received: {name}={size!r}, "
                f"image_size={image_size!r}"
            )
    if min_object_size > max_object_size:
        raise ValueError(
            "`min_object_size` must not exceed `max_object_size`. Received: "
            f"min_object_size={min_object_size}, max_object_size={max_object_size}"
        )
    validate_seed("seed", seed, allow_none=False)
    return height, width, int(min_object_size), int(max_object_size)


@functools.lru_cache(maxsize=512)  # bounded: large images have many sizes
def _shape(class_id, size, rotation):
    """Rasterize one shape: `(mask (S, S), dilated mask (S + 2, S + 2), tight box, area)`.

    A pixel belongs to the shape when its centre does. The tight box is `(row_start,
    column_start, row_stop, column_stop)` of the mask, stops exclusive.
    """
    centers = np.arange(size) + 0.5  # pixel centres, (S,)
    y, x = centers[:, None], centers[None, :]  # (S, 1), (1, S)
    middle = size / 2
    distance = np.hypot(y - middle, x - middle)  # (S, S)
    name = SHAPES_CLASSES[class_id]
    if name == "circle":
        mask = distance <= middle
    elif name == "square":
        mask = np.ones((size, size), dtype=bool)
    elif name == "triangle":  # apex at the top, the base filling the bottom row
        mask = np.abs(x - middle) <= (y + 0.5) / size * middle + 1e-9
    elif name == "cross":
        thickness = max(2, round(size / 3))
        start = (size - thickness) // 2
        bar = (centers >= start) & (centers < start + thickness)  # (S,)
        mask = bar[:, None] | bar[None, :]
    else:  # ring
        thickness = max(2, round(size / 5))
        mask = (distance <= middle) & (distance > middle - thickness)
    mask = np.rot90(mask, rotation).copy()
    padded = np.pad(mask, 1)  # (S + 2, S + 2)
    dilated = padded.copy()  # 3x3 dilation: shapes must not touch, not even diagonally
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            dilated |= np.roll(np.roll(padded, dy, axis=0), dx, axis=1)
    rows, columns = np.nonzero(mask)
    box = (rows.min(), columns.min(), rows.max() + 1, columns.max() + 1)
    mask.flags.writeable = dilated.flags.writeable = False  # shared through the cache
    return mask, dilated, tuple(int(v) for v in box), int(mask.sum())


def _background(rng, height, width):
    """A muted texture, float32 `(H, W, 3)` in [0, 1]: gradient, blobs, stripes and noise.

    Each pattern is a map `(H, W)` with a colour `(3,)` (a grey level plus a small tint);
    the image is the sum of maps times colours, plus noise, with the channel spread clipped.
    """
    y = ((np.arange(height) + 0.5) / height)[:, None]  # (H, 1)
    x = ((np.arange(width) + 0.5) / width)[None, :]  # (1, W)
    angle = rng.uniform(0, 2 * np.pi)
    maps = [np.ones((height, width)), (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)]
    colors = [rng.uniform(0.2, 0.8) + rng.uniform(-0.06, 0.06, size=3)]  # the base colour
    colors.append(np.full(3, rng.uniform(-0.4, 0.4)))  # a grey gradient
    for _ in range(rng.integers(2, 6)):  # soft blobs, separable Gaussians
        center_y, center_x = rng.uniform(0, 1, size=2)
        scale = 2 * rng.uniform(0.08, 0.3) ** 2
        maps.append(np.exp(-((y - center_y) ** 2) / scale) * np.exp(-((x - center_x) ** 2) / scale))
        colors.append(rng.uniform(-0.25, 0.25) + rng.uniform(-0.05, 0.05, size=3))
    if rng.random() < 0.5:  # soft-edged stripes
        angle = rng.uniform(0, np.pi)
        cycles = rng.uniform(3, 10)
        phase = rng.uniform(0, 2 * np.pi)
        along = x * np.cos(angle) + y * np.sin(angle)  # (H, W)
        maps.append(np.clip(2.5 * np.sin(2 * np.pi * cycles * along + phase), -1, 1))
        colors.append(rng.uniform(0.03, 0.12) + rng.uniform(-0.02, 0.02, size=3))
    maps = np.stack(maps, axis=-1).astype(np.float32).reshape(-1, len(maps))  # (H * W, P)
    image = (maps @ np.stack(colors).astype(np.float32)).reshape(height, width, 3)
    noise = rng.standard_normal(size=(height, width, 3), dtype=np.float32)
    image += np.float32(rng.uniform(0.01, 0.04)) * noise
    # Mute: clip each channel to within `limit` of the pixel's mean (leaving room for the
    # rounding to uint8), then to [0, 1]; neither clip can widen the channel spread.
    mean = ((image[..., 0] + image[..., 1] + image[..., 2]) / np.float32(3))[..., None]
    limit = np.float32((BACKGROUND_MAX_SPREAD - 1.5 / 255) / 2)
    image -= mean
    np.clip(image, -limit, limit, out=image)
    image += mean
    return np.clip(image, 0, 1, out=image)


def _colors(rng, count):
    """`count` saturated colours with well separated hues, uint8 `(count, 3)`."""
    slots = (np.arange(count) + rng.uniform(-0.25, 0.25, size=count)) / max(count, 1)
    hue = (rng.uniform(0, 1) + rng.permutation(slots)) % 1.0  # (count,)
    low = np.sqrt(OBJECT_MIN_SPREAD)  # HSV: max minus min channel = saturation x value
    saturation = rng.uniform(low, 1.0, size=count)
    value = rng.uniform(low, 1.0, size=count)
    sector = np.floor(hue * 6).astype(int) % 6
    fraction = hue * 6 - np.floor(hue * 6)
    p = value * (1 - saturation)
    q = value * (1 - saturation * fraction)
    t = value * (1 - saturation * (1 - fraction))
    choices = np.stack(
        [
            np.stack([value, t, p], -1),
            np.stack([q, value, p], -1),
            np.stack([p, value, t], -1),
            np.stack([p, q, value], -1),
            np.stack([t, p, value], -1),
            np.stack([value, p, q], -1),
        ]
    )  # (6, count, 3)
    rgb = choices[sector, np.arange(count)]  # (count, 3)
    return np.round(rgb * 255).astype(np.uint8)


def _box_iou(box, boxes):
    """IoU of one pixel box `(y0, x0, y1, x1)` with each of `boxes` `(M, 4)`."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    height = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    width = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    intersection = np.maximum(height, 0) * np.maximum(width, 0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return intersection / (area + areas - intersection)


def _place(rng, num_objects, height, width, num_classes, min_object_size, max_object_size):
    """Draw positions; return lists of `(class_id, size, rotation, top, left)` and boxes."""
    occupied = np.zeros((height + 2, width + 2), dtype=bool)  # dilated shapes, 1 px border
    objects, boxes = [], []
    for _ in range(num_objects):
        class_id = int(rng.integers(num_classes))  # kept when the placement is redrawn
        rotation = int(rng.integers(4))
        for _ in range(_ATTEMPTS_PER_OBJECT):
            u = rng.random(3)
            size = min_object_size + int(u[0] * (max_object_size - min_object_size + 1))
            top = int(u[1] * (height - size + 1))
            left = int(u[2] * (width - size + 1))
            mask, dilated, (y0, x0, y1, x1), _ = _shape(class_id, size, rotation)
            box = (top + y0, left + x0, top + y1, left + x1)
            if boxes and _box_iou(box, boxes).max() > MAX_BOX_IOU:
                continue
            # `occupied` is offset by one pixel: the window of the mask starts at top + 1.
            if occupied[top + 1 : top + 1 + size, left + 1 : left + 1 + size][mask].any():
                continue
            occupied[top : top + size + 2, left : left + size + 2] |= dilated
            objects.append((class_id, size, rotation, top, left))
            boxes.append(box)
            break
        else:
            return None
    return objects, boxes


def _generate_examples(
    num_examples,
    image_size=64,
    min_objects=0,
    max_objects=4,
    num_classes=5,  # len(SHAPES_CLASSES)
    min_object_size=None,
    max_object_size=None,
    seed=0,
):
    """Validate the arguments now; return `(height, width, examples)`.

    `examples` yields, per example in order, `(image uint8 (H, W, 3), pixel boxes int
    (M, 4) (y0, x0, y1, x1) stops exclusive, labels int (M,), areas int (M,))`. Example `i`
    depends only on `(seed, i)` and the other arguments, so a longer run starts with the
    examples of a shorter one.
    """
    height, width, min_object_size, max_object_size = _validate_arguments(
        num_examples,
        image_size,
        min_objects,
        max_objects,
        num_classes,
        min_object_size,
        max_object_size,
        seed,
    )
    examples = _examples(
        num_examples,
        (height, width),
        min_objects,
        max_objects,
        num_classes,
        (min_object_size, max_object_size),
        seed,
    )
    return height, width, examples


def _examples(num_examples, image_size, min_objects, max_objects, num_classes, sizes, seed):
    height, width = image_size
    min_object_size, max_object_size = sizes
    for index in range(num_examples):
        rng = np.random.default_rng([seed, index])
        num_objects = int(rng.integers(min_objects, max_objects + 1))
        for _ in range(_ATTEMPTS_PER_IMAGE):
            placed = _place(
                rng, num_objects, height, width, num_classes, min_object_size, max_object_size
            )
            if placed is not None:
                break
        else:
            raise ValueError(
                f"Could not place {num_objects} shapes of {min_object_size} to "
                f"{max_object_size} pixels in a {height}x{width} image without touching or a "
                f"box IoU above {MAX_BOX_IOU}. Reduce `max_objects` or `max_object_size`, or "
                f"increase `image_size`. Received: max_objects={max_objects}, "
                f"max_object_size={max_object_size}, image_size={(height, width)}"
            )
        objects, boxes = placed
        image = np.round(_background(rng, height, width) * 255).astype(np.uint8)  # (H, W, 3)
        colors = _colors(rng, num_objects)  # (M, 3)
        labels, areas = [], []
        for (class_id, size, rotation, top, left), color in zip(objects, colors):
            mask, _, _, area = _shape(class_id, size, rotation)
            image[top : top + size, left : left + size][mask] = color
            labels.append(class_id)
            areas.append(area)
        yield (
            image,
            np.asarray(boxes, dtype=np.int64).reshape(-1, 4),
            np.asarray(labels, dtype=np.int64),
            np.asarray(areas, dtype=np.int64),
        )


def _pixel_boxes_to_cxcywh(boxes, height, width):
    """Pixel boxes `(y0, x0, y1, x1)` (stops exclusive) -> normalized float32 `(cx, cy, w, h)`.

    The corners are divided by the image size in float64 and rounded to float32 first, then
    centre and size are computed in float32: the same arithmetic as `detection_targets` on
    a tfds `BBoxFeature`, so both give bit-identical boxes.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    y0 = (boxes[:, 0] / height).astype(np.float32)
    x0 = (boxes[:, 1] / width).astype(np.float32)
    y1 = (boxes[:, 2] / height).astype(np.float32)
    x1 = (boxes[:, 3] / width).astype(np.float32)
    half = np.float32(0.5)
    return np.stack([(x0 + x1) * half, (y0 + y1) * half, x1 - x0, y1 - y0], axis=-1)


def shapes_detection_data(
    num_examples,
    image_size=64,
    min_objects=0,
    max_objects=4,
    num_classes=5,  # len(SHAPES_CLASSES)
    min_object_size=None,
    max_object_size=None,
    seed=0,
):
    """Synthetic object-detection images and padded DETR targets.

    Each image holds a number of shapes drawn uniformly from `[min_objects, max_objects]`
    (zero allowed), each of a class drawn uniformly from the first `num_classes` of
    `SHAPES_CLASSES` (`"circle"`, `"square"`, `"triangle"` (pointing up, down, left or
    right), `"cross"`, `"ring"`), with a size (the side of its square frame, which is also
    its box) uniform in `[min_object_size, max_object_size]` pixels and a uniform
    position. Size and position are redrawn (class and orientation kept) while the shape
    would touch another, also diagonally, or its box would have an IoU above
    `MAX_BOX_IOU` (0.3) with another box, which favours smaller shapes in crowded
    images. Shapes are flat, saturated and distinct in colour (max minus min
    channel at least about 90/255); the background is a muted texture (a gradient, soft
    blobs, sometimes stripes, pixel noise; max minus min channel at most 48/255), so
    every shape is whole and visible. Pixel values are multiples of 1/255, so the images
    survive a PNG round trip exactly (see `write_shapes_detection_files`).

    Example `i` depends only on `seed`, `i` and the other arguments: the same seed gives
    the same data, and the first examples of a longer run equal a shorter run's.

    Args:
        num_examples: int. Number of images N.
        image_size: int or `(height, width)`, each at least 6. Defaults to `64`.
        min_objects: int >= 0. Fewest shapes in an image. Defaults to `0`.
        max_objects: int >= `min_objects`, at least 1. Most shapes in an image K, and the
            number of target slots. Defaults to `4`.
        num_classes: int in [1, 5]. Draws from the first `num_classes` classes of
            `SHAPES_CLASSES`. Defaults to `5`.
        min_object_size: optional int in [6, min(height, width)]. Smallest frame side in
            pixels. Defaults to `max(6, min(height, width) // 8)` (8 for 64x64).
        max_object_size: optional int in [`min_object_size`, min(height, width)]. Largest
            frame side. Defaults to `max(min_object_size, 3 * min(height, width) // 8)`
            (24 for 64x64).
        seed: int >= 0. Seed of the NumPy generators. Defaults to `0`.

    Returns:
        `(images, targets)`: `images` float32 `(N, H, W, 3)` in [0, 1]; `targets` is
        `{"boxes": float32 (N, K, 4), "labels": int32 (N, K)}`. Boxes are DETR's
        normalized `(center_x, center_y, width, height)` in [0, 1] relative to the image,
        the tight box of the shape's pixels (a box covering pixel columns `x0 .. x1 - 1`
        has width `(x1 - x0) / W`). Objects fill the first slots in the order they were
        drawn; padding slots have label -1 and box `(0, 0, 0, 0)`.

    Raises:
        ValueError: for an invalid argument, or when `max_objects` shapes of these sizes
            cannot be placed apart in the image (reduce `max_objects` or
            `max_object_size`).

    Example:
    ```python
    images, targets = keras_seq.data.shapes_detection_data(8, image_size=32, max_objects=3)
    assert images.shape == (8, 32, 32, 3) and targets["boxes"].shape == (8, 3, 4)
    labels = targets["labels"]  # -1 marks a padding slot
    assert ((labels == -1) == np.all(targets["boxes"] == 0, axis=-1)).all()
    num_objects = (labels >= 0).sum(axis=1)  # shapes per image, 0 to 3
    ```
    """
    height, width, examples = _generate_examples(
        num_examples,
        image_size,
        min_objects,
        max_objects,
        num_classes,
        min_object_size,
        max_object_size,
        seed,
    )
    images = np.empty((num_examples, height, width, 3), dtype=np.float32)  # (N, H, W, 3)
    boxes = np.zeros((num_examples, max_objects, 4), dtype=np.float32)  # (N, K, 4)
    labels = np.full((num_examples, max_objects), -1, dtype=np.int32)  # (N, K)
    for index, (image, pixel_boxes, example_labels, _) in enumerate(examples):
        images[index] = image.astype(np.float32) / np.float32(255)
        count = len(example_labels)
        boxes[index, :count] = _pixel_boxes_to_cxcywh(pixel_boxes, height, width)
        labels[index, :count] = example_labels
    return images, {"boxes": boxes, "labels": labels}
