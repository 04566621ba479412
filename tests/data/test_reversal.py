"""Reversal and copy data: targets, lengths, padding, special ids, seeds and the layout."""

import numpy as np
import pytest

from keras_seq.data.reversal import END_ID
from keras_seq.data.reversal import FIRST_SYMBOL_ID
from keras_seq.data.reversal import START_ID
from keras_seq.data.reversal import reversal_data


@pytest.mark.parametrize("task", ["reverse", "copy"])
def test_targets_and_layout(task):
    inputs, targets = reversal_data(200, min_length=3, max_length=9, num_symbols=5, task=task)
    source, target_in = inputs["source"], inputs["target_in"]
    assert source.shape == (200, 9) and target_in.shape == targets.shape == (200, 10)
    assert source.dtype == target_in.dtype == targets.dtype == np.int32
    lengths = (source > 0).sum(1)
    assert lengths.min() == 3 and lengths.max() == 9
    for row, length in enumerate(lengths):
        sequence = source[row, :length]
        assert np.all(source[row, length:] == 0)  # right-padded
        assert np.all((sequence >= FIRST_SYMBOL_ID) & (sequence < FIRST_SYMBOL_ID + 5))
        expected = sequence[::-1] if task == "reverse" else sequence
        np.testing.assert_array_equal(targets[row, :length], expected)
        assert targets[row, length] == END_ID and np.all(targets[row, length + 1 :] == 0)
        # Teacher forcing: <start>, then the target without its end token, padded alike.
        assert target_in[row, 0] == START_ID
        np.testing.assert_array_equal(target_in[row, 1 : length + 1], expected)
        assert np.all(target_in[row, length + 1 :] == 0)


def test_seeds():
    first = reversal_data(50, seed=3)
    np.testing.assert_array_equal(first[1], reversal_data(50, seed=3)[1])
    assert not np.array_equal(first[1], reversal_data(50, seed=4)[1])


def test_fixed_length():
    inputs, targets = reversal_data(10, min_length=6, max_length=6)
    assert np.all(inputs["source"] > 0) and np.all(targets[:, 6] == END_ID)


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"num_examples": 0}, ValueError, "`num_examples` must be a positive integer"),
        ({"min_length": 0}, ValueError, "`min_length` must be a positive integer"),
        ({"max_length": 2.0}, TypeError, "`max_length` must be a positive integer"),
        ({"num_symbols": 0}, ValueError, "`num_symbols` must be a positive integer"),
        (
            {"min_length": 5, "max_length": 4},
            ValueError,
            "`min_length` must not exceed `max_length`",
        ),
        ({"task": "sort"}, ValueError, "`task` must be one of"),
        ({"seed": None}, TypeError, "`seed` must be a non-negative integer"),
    ],
)
def test_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        reversal_data(**{"num_examples": 4, **kwargs})
