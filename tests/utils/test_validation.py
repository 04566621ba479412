"""The one validation rule: TypeError for a wrong type, ValueError for a wrong value, the
argument named with the value received; Python and NumPy integers accepted, bools never."""

import json

import keras
import numpy as np
import pytest

import keras_seq
from keras_seq.utils import validation

INTEGER_CHECKS = {
    "validate_int": (validation.validate_int, [-3, 0, 5], []),
    "validate_positive_int": (validation.validate_positive_int, [1, 7], [0, -1]),
    "validate_non_negative_int": (validation.validate_non_negative_int, [0, 7], [-1]),
    "validate_seed": (validation.validate_seed, [0, 7, None], [-1]),
}
NOT_INTEGERS = [1.0, 2.5, "3", True, False, np.bool_(True), np.float32(2.0), (1,)]

FLOAT_CHECKS = {
    "validate_float": (validation.validate_float, [-1.5, 0, 2], [np.inf, np.nan]),
    "validate_positive_float": (validation.validate_positive_float, [1e-9, 3], [0.0, -1, np.inf]),
    "validate_non_negative_float": (
        validation.validate_non_negative_float,
        [0, 0.5, 9],
        [-1e-9, np.inf, np.nan],
    ),
    "validate_rate": (
        validation.validate_rate,
        [0, 0.0, 0.99, np.float32(0.5)],
        [1.0, -0.1, np.nan],
    ),
    "validate_fraction": (validation.validate_fraction, [0, 1, 0.5], [1.01, -0.1]),
}
NOT_FLOATS = ["0.5", True, np.bool_(False), None, [0.5]]


NUMPY_INTEGERS = [np.int32(4), np.int64(4), np.uint8(4)]


@pytest.mark.parametrize(
    "function,good,bad,wrong_types",
    [
        *(pytest.param(*check, NOT_INTEGERS, id=name) for name, check in INTEGER_CHECKS.items()),
        *(pytest.param(*check, NOT_FLOATS, id=name) for name, check in FLOAT_CHECKS.items()),
    ],
)
def test_the_rule(function, good, bad, wrong_types):
    # One test per helper, looping over values: the per-test Keras clean-up costs more.
    if function not in (validation.validate_rate, validation.validate_fraction):
        good = good + NUMPY_INTEGERS
    for value in good:
        result = function("my_argument", value)
        if isinstance(value, np.generic):  # the equal Python number
            assert type(result) is type(value.item()) and result == value
        else:
            assert result is value  # returned unchanged
    for values, error in ((bad, ValueError), (wrong_types, TypeError)):
        for value in values:
            with pytest.raises(error, match=r"^`my_argument` must be .*my_argument=") as info:
                function("my_argument", value)
            assert type(info.value) is error  # never the other one
            if error is TypeError:
                assert str(info.value).endswith(f"of type {type(value).__name__}")


def test_the_message_format():
    with pytest.raises(ValueError) as info:
        validation.validate_positive_int("num_heads", 0)
    assert str(info.value) == "`num_heads` must be a positive integer. Received: num_heads=0"
    with pytest.raises(TypeError) as info:
        validation.validate_positive_int("units", 4.0)
    assert str(info.value) == (
        "`units` must be a positive integer. Received: units=4.0 of type float"
    )


def test_seeds_without_none():
    assert validation.validate_seed("seed", 3, allow_none=False) == 3
    with pytest.raises(TypeError, match=r"`seed` must be a non-negative integer.*seed=None"):
        validation.validate_seed("seed", None, allow_none=False)


def test_fraction_without_zero():
    assert validation.validate_fraction("top_p", 1.0, include_zero=False) == 1.0
    with pytest.raises(ValueError, match=r"`top_p` must be a float in \(0, 1\]. Received: top_p=0"):
        validation.validate_fraction("top_p", 0, include_zero=False)


@pytest.mark.parametrize("value", [1, 0, "yes", None, np.bool_(True)])
def test_bool(value):
    with pytest.raises(TypeError, match=r"`flag` must be a bool. Received: flag="):
        validation.validate_bool("flag", value)
    assert validation.validate_bool("flag", False) is False


def test_choice_lists_the_choices_in_their_order_none_included():
    choices = ("sum", "none", None)
    assert validation.validate_choice("reduction", None, choices) is None
    with pytest.raises(
        ValueError, match=r"one of \['sum', 'none', None\]. Received: reduction='m'"
    ):
        validation.validate_choice("reduction", "m", choices)


@pytest.mark.parametrize(
    "value,minimum,expected,error",
    [
        (4, None, (4, 4), None),
        ((3, np.int64(5)), None, (3, 5), None),
        ([2, 0], None, (2, 0), None),
        ((2, 3), 2, (2, 3), None),
        ((2, 3, 4), None, None, ValueError),
        ((1,), None, None, ValueError),
        ((0, 3), 1, None, ValueError),
        (0, 1, None, ValueError),
        (2.0, None, None, TypeError),
        ((2, 2.0), None, None, TypeError),
        (True, None, None, TypeError),
        ("7", None, None, TypeError),
    ],
)
def test_int_pair(value, minimum, expected, error):
    if error is None:
        assert validation.validate_int_pair("window_size", value, minimum) == expected
        return
    with pytest.raises(error, match=r"^`window_size` must be an integer or a pair of integers"):
        validation.validate_int_pair("window_size", value, minimum)


@pytest.mark.parametrize(
    "image_shape,allow_dynamic,error",
    [
        ((32, 32, 3), True, None),
        ((None, None, np.int64(3)), True, None),
        ((None, 32, 3), False, ValueError),
        ((32, 32), True, ValueError),
        ((32, 0, 3), True, ValueError),
        ((32, 32, None), True, ValueError),
        ((32.0, 32, 3), True, TypeError),
        ("32x32x3", True, TypeError),
    ],
)
def test_image_shape(image_shape, allow_dynamic, error):
    if error is None:
        assert validation.validate_image_shape(image_shape, allow_dynamic) == image_shape
        return
    with pytest.raises(error, match=r"^`image_shape` must be \(height, width, channels\)"):
        validation.validate_image_shape(image_shape, allow_dynamic)


def test_divisible():
    with pytest.raises(ValueError, match=r"`hidden_dim` must be divisible by `num_heads`"):
        validation.validate_divisible("hidden_dim", 10, "num_heads", 3)


def test_numpy_integers_make_a_working_layer_with_a_json_config():
    # Keras' RNN and SeedGenerator take Python ints only: the layer stores the returned ones.
    cell = keras_seq.layers.LSTMCell(np.int64(4), dropout=np.float32(0.5), seed=np.int32(3))
    assert type(cell.units) is int and type(cell.seed) is int and type(cell.dropout) is float
    outputs = keras.layers.RNN(cell)(np.zeros((2, 5, 3), "float32"))
    assert tuple(outputs.shape) == (2, 4)
    json.dumps(cell.get_config())
