"""Argument validation shared by every keras_seq constructor and function.

One rule for every argument:

- A value of the wrong type raises `TypeError`; a value of the right type that is out of
  range, of the wrong length or not among the choices raises `ValueError`.
- Integers are Python ints and NumPy integers; bools (Python's and NumPy's) are never
  integers. Floats are any real number (Python or NumPy, ints included), never a bool.
- Counts and sizes are positive; ids, seeds and other "from zero" values are non-negative;
  rates and probabilities are floats in an interval stated in the message.
- The message names the argument, says what was expected and shows the value received, e.g.
  "`num_heads` must be a positive integer. Received: num_heads=0"; a `TypeError` also names
  the type received.

Each helper returns the value it checked; none of them clamps or rounds. A Python value comes
back as the same object; a NumPy scalar comes back as the equal Python number, which the caller
stores (`units = validate_positive_int("units", units)`): Keras (`keras.layers.RNN`'s output
size, `keras.random.SeedGenerator`) and JSON configs take Python numbers only.
"""

import math
import numbers

import numpy as np


def is_integer(value):
    """Whether `value` is a Python or NumPy integer (bools are not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    """Whether `value` is a Python or NumPy real number, integers included (bools are not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _python(value):
    """A NumPy scalar as the equal Python scalar; any other value as is."""
    return value.item() if isinstance(value, np.generic) else value


def _type_error(name, value, expected):
    return TypeError(
        f"`{name}` must be {expected}. Received: {name}={value!r} of type {type(value).__name__}"
    )


def _value_error(name, value, expected):
    return ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")


def _validate_integer(name, value, expected, minimum=None):
    if not is_integer(value):
        raise _type_error(name, value, expected)
    if minimum is not None and value < minimum:
        raise _value_error(name, value, expected)
    return _python(value)


def validate_int(name, value):
    """Check that `value` is an integer of any sign (e.g. an `ignore_index` of -100)."""
    return _validate_integer(name, value, "an integer")


def validate_positive_int(name, value):
    """Check that `value` is an integer >= 1 (a count, a size, a dimension)."""
    return _validate_integer(name, value, "a positive integer", minimum=1)


def validate_non_negative_int(name, value):
    """Check that `value` is an integer >= 0 (a token id, a number that may be zero)."""
    return _validate_integer(name, value, "a non-negative integer", minimum=0)


def validate_seed(name, value, allow_none=True):
    """Check a random seed: a non-negative integer, or `None` (a fresh seed) if `allow_none`.

    Non-negative because NumPy's generators reject negative seeds; one rule for layers and
    data builders alike.
    """
    if value is None and allow_none:
        return value
    expected = "None or a non-negative integer" if allow_none else "a non-negative integer"
    return _validate_integer(name, value, expected, minimum=0)


def _validate_real(name, value, expected, within):
    if not is_real(value):
        raise _type_error(name, value, expected)
    if not within(value):  # NaN fails every comparison, so it is rejected here too
        raise _value_error(name, value, expected)
    return _python(value)


def validate_float(name, value):
    """Check that `value` is a finite real number of any sign (e.g. a length penalty)."""
    return _validate_real(name, value, "a finite float", math.isfinite)


def validate_positive_float(name, value):
    """Check that `value` is a finite real number > 0 (a scale, an epsilon, a temperature)."""
    return _validate_real(name, value, "a positive, finite float", lambda x: 0.0 < x < float("inf"))


def validate_non_negative_float(name, value):
    """Check that `value` is a finite real number >= 0 (e.g. a loss weight that may be off)."""
    return _validate_real(
        name, value, "a non-negative, finite float", lambda x: 0.0 <= x < float("inf")
    )


def validate_rate(name, value):
    """Check that `value` is a real number in [0, 1) (a dropout rate: 1 would drop everything)."""
    return _validate_real(name, value, "a float in [0, 1)", lambda x: 0.0 <= x < 1.0)


def validate_fraction(name, value, include_zero=True):
    """Check that `value` is a real number in [0, 1], or in (0, 1] without `include_zero`."""
    if include_zero:
        return _validate_real(name, value, "a float in [0, 1]", lambda x: 0.0 <= x <= 1.0)
    return _validate_real(name, value, "a float in (0, 1]", lambda x: 0.0 < x <= 1.0)


def validate_bool(name, value):
    """Check that `value` is a Python bool (not `0` / `1`, which are easy to pass by mistake)."""
    if not isinstance(value, bool):
        raise _type_error(name, value, "a bool")
    return value


def validate_choice(name, value, choices):
    """Check that `value` is one of `choices` (listed in the message in their given order)."""
    if value not in choices:
        raise _value_error(name, value, f"one of {list(choices)}")
    return _python(value)


def validate_divisible(name, value, divisor_name, divisor):
    """Check that `value` is a multiple of `divisor` (e.g. a width split over heads)."""
    if value % divisor:
        raise ValueError(
            f"`{name}` must be divisible by `{divisor_name}`. Received: "
            f"{name}={value}, {divisor_name}={divisor}"
        )
    return value


def validate_int_pair(name, value, minimum=None, allow_single=True):
    """Check an integer or a pair of integers (`(height, width)`); return the pair as a tuple.

    Args:
        name: str. The argument's name, for the message.
        value: a tuple or list of two integers, or (with `allow_single`) one integer used for
            both entries.
        minimum: `None` or int. The smallest allowed entry. Defaults to `None` (any).
        allow_single: bool. Whether one integer stands for the pair. Defaults to `True`.
    """
    expected = "an integer or a pair of integers" if allow_single else "a pair of integers"
    if minimum is not None:
        expected += f", each at least {minimum}"
    pair = (value, value) if allow_single and is_integer(value) else value
    if not isinstance(pair, (tuple, list)) or not all(is_integer(entry) for entry in pair):
        raise _type_error(name, value, expected)
    if len(pair) != 2 or (minimum is not None and min(pair) < minimum):
        raise _value_error(name, value, expected)
    return tuple(_python(entry) for entry in pair)


def validate_image_shape(image_shape, allow_dynamic=True):
    """Check `(height, width, channels)`: positive ints, spatial `None` if `allow_dynamic`."""
    spatial = "positive integers or None" if allow_dynamic else "positive integers"
    expected = f"(height, width, channels), height and width {spatial}, channels a positive integer"
    if not isinstance(image_shape, (tuple, list)) or not all(
        is_integer(size) or size is None for size in image_shape
    ):
        raise _type_error("image_shape", image_shape, expected)
    valid = len(image_shape) == 3
    if valid:
        for index, size in enumerate(image_shape):
            dynamic = size is None and index < 2 and allow_dynamic
            if not dynamic and (size is None or size < 1):
                valid = False
    if not valid:
        raise _value_error("image_shape", image_shape, expected)
    return image_shape
