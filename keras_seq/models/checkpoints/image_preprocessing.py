"""The `ImagePreprocessor` of a checkpoint, from Hugging Face's `preprocessor_config.json`,
timm's `pretrained_cfg` or a keras-hub `ImageConverter`."""

from keras_seq.layers.preprocessing.image_preprocessor import ImagePreprocessor
from keras_seq.models.checkpoints import handles

# PIL's resampling filter numbers, as Hugging Face image processors store them.
_PIL_FILTERS = {0: "nearest", 2: "bilinear", 3: "bicubic"}
_TIMM_INTERPOLATIONS = {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic"}
_KERAS_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
# The pixel scale of our preprocessor when keras-hub's scale is per channel: keras-hub folds
# 1 / 255 and the standard deviations into one scale, and this recovers the deviations.
_PIXEL_SCALE = 1.0 / 255.0


def _unsupported(source, field, value):
    return ValueError(
        f"The checkpoint's preprocessing ({source}) sets {field}={value!r}, which "
        "keras_seq.layers.ImagePreprocessor cannot reproduce."
    )


def from_transformers(directory):
    """The `ImagePreprocessor` of `directory/preprocessor_config.json`, or `None` without one.

    Reads ViT / Swin-style processors (`size` as height and width, or DETR's
    `shortest_edge` / `longest_edge`), `do_rescale` / `rescale_factor`, `do_normalize` /
    `image_mean` / `image_std`; `ValueError` for a setting it cannot reproduce (a center
    crop, another resampling filter).
    """
    config = handles.read_json(directory, "preprocessor_config.json")
    if config is None:
        return None
    source = f"{directory}/preprocessor_config.json"
    if config.get("do_center_crop"):
        raise _unsupported(source, "do_center_crop", True)
    arguments = {}
    if config.get("do_resize", True) and "size" in config:
        size = config["size"]
        if isinstance(size, int):
            size = {"height": size, "width": size}
        if "height" in size and "width" in size:
            arguments.update(image_size=(size["height"], size["width"]), resize="exact")
        elif "shortest_edge" in size:
            arguments.update(
                resize="shortest_edge",
                shortest_edge=size["shortest_edge"],
                longest_edge=size.get("longest_edge"),
            )
        else:
            raise _unsupported(source, "size", size)
        resample = config.get("resample", 2)
        if resample not in _PIL_FILTERS:
            raise _unsupported(source, "resample", resample)
        arguments["interpolation"] = _PIL_FILTERS[resample]
    arguments["scale"] = (
        config.get("rescale_factor", 1 / 255) if config.get("do_rescale", True) else 1.0
    )
    if config.get("do_normalize", True):
        arguments.update(mean=config.get("image_mean"), std=config.get("image_std"))
    return ImagePreprocessor(**arguments, name="preprocessor")


def from_timm(pretrained_cfg, source):
    """The `ImagePreprocessor` of timm's `pretrained_cfg` (its evaluation transform: resize the
    shorter side to `input_size / crop_pct`, center-crop `input_size`, scale to [0, 1],
    normalize with `mean` / `std`), or `None` without one."""
    if not pretrained_cfg:
        return None
    crop_mode = pretrained_cfg.get("crop_mode", "center")
    if crop_mode != "center":
        raise _unsupported(source, "crop_mode", crop_mode)
    interpolation = pretrained_cfg.get("interpolation", "bicubic")
    if interpolation not in _TIMM_INTERPOLATIONS:
        raise _unsupported(source, "interpolation", interpolation)
    input_size = pretrained_cfg.get("input_size", (3, 224, 224))
    return ImagePreprocessor(
        image_size=tuple(input_size[1:]),
        resize="center_crop",
        crop_fraction=pretrained_cfg.get("crop_pct", 0.875),
        interpolation=_TIMM_INTERPOLATIONS[interpolation],
        mean=list(pretrained_cfg.get("mean", (0.485, 0.456, 0.406))),
        std=list(pretrained_cfg.get("std", (0.229, 0.224, 0.225))),
        name="preprocessor",
    )


def fit_to_image_shape(preprocessor, image_shape):
    """`preprocessor` (an instance or its serialized config) producing images of
    `image_shape[:2]`: a checkpoint's preprocessing for a model loaded at another image size
    (an `image_shape` override). Unchanged without a fixed size on either side."""
    if preprocessor is None or image_shape is None:
        return preprocessor
    height, width = image_shape[0], image_shape[1]
    serialized = isinstance(preprocessor, dict)
    config = dict(preprocessor["config"] if serialized else preprocessor.get_config())
    if height is None or width is None or config.get("image_size") is None:
        return preprocessor
    config["image_size"] = (height, width)
    if serialized:
        return {**preprocessor, "config": config}
    return type(preprocessor).from_config(config)


def _channels(value):
    """A keras-hub scale or offset (a float or a per-channel list) as a list of floats."""
    if isinstance(value, (list, tuple)):
        return [float(item) for item in value]
    return [float(value)]


def from_keras_hub(converter, source):
    """The `ImagePreprocessor` doing what keras-hub's `ImageConverter` `converter` does.

    keras-hub resizes to `image_size` (with `crop_to_aspect_ratio`, its default, after
    cropping the central region of the target's aspect ratio), then computes `pixels * scale
    + offset`, both a float or per channel. Ours computes `(pixels * scale - mean) / std`: a
    float `scale` maps to ours with `mean = -offset`; a per-channel one to `scale = 1 / 255`,
    `std = (1 / 255) / scale` and `mean = -offset * std` (the ImageNet mean and deviations,
    for keras-hub's ImageNet presets). A square crop is our `"center_crop"` (crop fraction
    1), no crop our `"exact"`; our resize antialiases when shrinking, keras-hub's does not by
    default, so resized pixels agree closely, not exactly. `ValueError` for what we cannot
    reproduce: padding to the aspect ratio, cropping to a non-square one, another
    interpolation, channels-first images, a scale that is not positive.
    """
    if converter.data_format != "channels_last":
        raise _unsupported(source, "data_format", converter.data_format)
    if converter.pad_to_aspect_ratio:
        raise _unsupported(source, "pad_to_aspect_ratio", True)
    arguments = {}
    image_size = converter.image_size
    if image_size is not None:
        image_size = tuple(int(size) for size in image_size)
        if converter.interpolation not in _KERAS_INTERPOLATIONS:
            raise _unsupported(source, "interpolation", converter.interpolation)
        arguments["interpolation"] = converter.interpolation
        if converter.crop_to_aspect_ratio and image_size[0] != image_size[1]:
            raise _unsupported(source, "crop_to_aspect_ratio", f"True with image_size={image_size}")
        resize = "center_crop" if converter.crop_to_aspect_ratio else "exact"
        arguments.update(image_size=image_size, resize=resize, crop_fraction=1.0)
    scale = [1.0] if converter.scale is None else _channels(converter.scale)
    offset = None if converter.offset is None else _channels(converter.offset)
    if any(value <= 0 for value in scale):
        raise _unsupported(source, "scale", converter.scale)
    if len(scale) == 1:
        arguments["scale"] = scale[0]
        if offset is not None:
            arguments["mean"] = [-value for value in offset]
    else:
        std = [_PIXEL_SCALE / value for value in scale]
        arguments.update(scale=_PIXEL_SCALE, std=std)
        if offset is not None:
            if len(offset) == 1:
                offset = offset * len(std)
            if len(offset) != len(std):
                raise _unsupported(source, "offset", converter.offset)
            arguments["mean"] = [-value * deviation for value, deviation in zip(offset, std)]
    return ImagePreprocessor(**arguments, name="preprocessor")
