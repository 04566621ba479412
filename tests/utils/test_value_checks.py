"""check_values / check_token_ids: eager errors, graph asserts, XLA (dropped), row values."""

import numpy as np
import pytest
import tensorflow as tf

from keras_seq.utils.value_checks import check_token_ids
from keras_seq.utils.value_checks import check_values

BOXES = np.array([[[0.5, 0.5, 0.1, 0.1], [0.2, 0.3, -0.4, 0.1]]], "float32")  # (1, 2, 4)


def _negative_sizes(boxes):
    return tf.reduce_any(boxes[..., 2:] < 0, axis=-1)  # (B, T): one flag per box


def test_eager_error_names_the_argument_position_and_row():
    with pytest.raises(ValueError) as info:
        check_values("boxes", BOXES, _negative_sizes(BOXES), "have sizes >= 0", "image 0")
    message = str(info.value)
    assert message.startswith("`boxes` must have sizes >= 0. Received: boxes[0, 1]=[")
    assert "-0.4" in message and message.endswith("(image 0)")
    good = BOXES[:, :1]
    assert check_values("boxes", good, _negative_sizes(good), "have sizes >= 0") is good


def test_graph_assert_carries_the_position_and_row_and_xla_drops_it():
    def check(boxes):
        return check_values("boxes", boxes, _negative_sizes(boxes), "have sizes >= 0") * 2.0

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"boxes at position\] \[0 1\]"):
        tf.function(check)(BOXES)
    # XLA compiles the assert away: the values pass through unchecked (documented).
    np.testing.assert_allclose(tf.function(check, jit_compile=True)(BOXES), BOXES * 2.0)


def test_token_ids():
    with pytest.raises(ValueError, match=r"ids\[0, 2\]=9 \(vocabulary_size=9\)"):
        check_token_ids("ids", [[0, 8, 9]], 9)
    with pytest.raises(TypeError, match="ids of dtype float64"):
        check_token_ids("ids", [[0.0, 1.0]], 9)
    with pytest.raises(TypeError, match="ids of dtype bool"):
        check_token_ids("ids", np.array([[True]]), 9)
    np.testing.assert_array_equal(check_token_ids("ids", tf.constant([[0, 8]]), 9), [[0, 8]])
