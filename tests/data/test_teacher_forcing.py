"""teacher_forcing_inputs: the shift, padding and errors."""

import numpy as np
import pytest

from keras_seq.data.teacher_forcing import teacher_forcing_inputs


def test_shift_behind_the_start_token_padded_like_the_target():
    source = np.array([[5, 6, 0], [7, 8, 9]])
    target = np.array([[6, 5, 2, 0], [9, 8, 7, 2]])
    inputs = teacher_forcing_inputs(source, target, start_token_id=1)
    np.testing.assert_array_equal(inputs["source"], source)
    np.testing.assert_array_equal(inputs["target_in"], [[1, 6, 5, 0], [1, 9, 8, 7]])
    assert inputs["source"].dtype == inputs["target_in"].dtype == np.int32
    # target_in is padded exactly where the target is.
    np.testing.assert_array_equal(inputs["target_in"] == 0, target == 0)


@pytest.mark.parametrize(
    "source,target,start,error,pattern",
    [
        (
            np.ones((2, 3), int),
            np.ones((2, 3), int),
            0,
            ValueError,
            "`start_token_id` must be a positive integer",
        ),
        (
            np.ones((2, 3), int),
            np.ones((2, 3), int),
            True,
            TypeError,
            "`start_token_id` must be a positive integer",
        ),
        (np.ones((2,), int), np.ones((2, 3), int), 1, ValueError, "`source` must be a 2-D int"),
        (np.ones((2, 3), int), np.ones((2, 3)), 1, ValueError, "`target` must be a 2-D int array"),
        (np.ones((2, 3), int), np.ones((3, 3), int), 1, ValueError, "same number of examples"),
    ],
)
def test_errors(source, target, start, error, pattern):
    with pytest.raises(error, match=pattern):
        teacher_forcing_inputs(source, target, start_token_id=start)
