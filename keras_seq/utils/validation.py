"""Argument validation shared by every keras_seq constructor.

Each helper raises a `ValueError` or `TypeError` whose message names the argument, what was
expected and the value received; none of them clamps or coerces.
"""


def validate_positive_int(name, value):
    """Check that `value` is an int >= 1 (bools rejected) and return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def validate_rate(name, value):
    """Check that `value` is a number in [0, 1) and return it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return value


def validate_positive_float(name, value):
    """Check that `value` is a finite number > 0 and return it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"`{name}` must be a positive float. Received: {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    if not 0.0 < value < float("inf"):
        raise ValueError(f"`{name}` must be a positive, finite float. Received: {name}={value!r}")
    return value


def validate_bool(name, value):
    """Check that `value` is a bool and return it."""
    if not isinstance(value, bool):
        raise TypeError(
            f"`{name}` must be a bool. Received: {name}={value!r} of type {type(value).__name__}"
        )
    return value


def validate_choice(name, value, choices):
    """Check that `value` is one of `choices` and return it."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}. Received: {name}={value!r}")
    return value


def validate_divisible(name, value, divisor_name, divisor):
    """Check that `value` is a multiple of `divisor` (e.g. a width split over heads)."""
    if value % divisor:
        raise ValueError(
            f"`{name}` must be divisible by `{divisor_name}`. Received: "
            f"{name}={value}, {divisor_name}={divisor}"
        )
    return value


def validate_image_shape(image_shape, allow_dynamic=True):
    """Check `(height, width, channels)`: positive ints, spatial `None` if `allow_dynamic`."""
    valid = isinstance(image_shape, (tuple, list)) and len(image_shape) == 3
    if valid:
        for index, size in enumerate(image_shape):
            dynamic = size is None and index < 2 and allow_dynamic
            if not dynamic and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
                valid = False
    if not valid:
        spatial = "positive ints or None" if allow_dynamic else "positive ints"
        raise ValueError(
            "`image_shape` must be (height, width, channels), height and width "
            f"{spatial}, channels a positive int. Received: image_shape={image_shape!r}"
        )
