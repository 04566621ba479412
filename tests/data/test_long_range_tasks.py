"""Adding problem and copy task: layouts against brute-force recomputation, baselines, metrics."""

import math

import keras
import numpy as np
import pytest

from keras_seq.data.long_range_tasks import ADDING_PROBLEM_BASELINE_ACCURACY
from keras_seq.data.long_range_tasks import ADDING_PROBLEM_BASELINE_MSE
from keras_seq.data.long_range_tasks import ADDING_PROBLEM_TOLERANCE
from keras_seq.data.long_range_tasks import adding_problem_accuracy
from keras_seq.data.long_range_tasks import adding_problem_data
from keras_seq.data.long_range_tasks import copy_task_accuracy
from keras_seq.data.long_range_tasks import copy_task_baseline_loss
from keras_seq.data.long_range_tasks import copy_task_data


@pytest.mark.parametrize("sequence_length", [2, 3, 7, 50])
def test_adding_problem_layout(sequence_length):
    inputs, targets = adding_problem_data(300, sequence_length, seed=1)
    assert inputs.shape == (300, sequence_length, 2) and targets.shape == (300, 1)
    assert inputs.dtype == targets.dtype == np.float32
    half = sequence_length // 2
    for row in range(300):  # recompute each target from its markers, one example at a time
        values, markers = inputs[row, :, 0], inputs[row, :, 1]
        assert np.all((values >= 0) & (values < 1))
        assert set(np.unique(markers).tolist()) <= {0.0, 1.0}
        positions = [t for t in range(sequence_length) if markers[t] == 1.0]
        assert len(positions) == 2
        assert positions[0] < half <= positions[1]
        expected = float(values[positions[0]]) + float(values[positions[1]])
        assert targets[row, 0] == pytest.approx(expected, abs=1e-6)


def test_adding_problem_marker_positions_cover_both_halves():
    inputs, _ = adding_problem_data(2000, 10, seed=0)
    positions = np.nonzero(inputs[..., 1])[1].reshape(2000, 2)  # row-major: sorted per row
    assert set(positions[:, 0].tolist()) == set(range(5))
    assert set(positions[:, 1].tolist()) == set(range(5, 10))


def test_adding_problem_baselines_match_simulation():
    _, targets = adding_problem_data(20000, 20, seed=2)
    constant = np.ones_like(targets)
    assert np.mean((targets - constant) ** 2) == pytest.approx(ADDING_PROBLEM_BASELINE_MSE, 0.03)
    accuracy = float(np.mean(adding_problem_accuracy(targets, constant)))
    assert accuracy == pytest.approx(ADDING_PROBLEM_BASELINE_ACCURACY, abs=0.006)
    assert ADDING_PROBLEM_BASELINE_ACCURACY == pytest.approx(0.0784)


def test_adding_problem_accuracy_threshold():
    y_true = np.array([[1.0], [1.0], [0.2], [0.2]], dtype="float32")
    y_pred = np.array([[1.03], [0.95], [0.2], [0.25]], dtype="float32")
    accuracy = np.asarray(adding_problem_accuracy(y_true, y_pred))
    assert accuracy.dtype == np.float32 and accuracy.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert ADDING_PROBLEM_TOLERANCE == 0.04


@pytest.mark.parametrize(
    "sequence_length,num_symbols,copy_length", [(1, 8, 10), (5, 3, 1), (30, 8, 10), (12, 1, 4)]
)
def test_copy_task_layout(sequence_length, num_symbols, copy_length):
    inputs, targets = copy_task_data(
        100, sequence_length, num_symbols=num_symbols, copy_length=copy_length, seed=3
    )
    total = 2 * copy_length + sequence_length
    assert inputs.shape == targets.shape == (100, total)
    assert inputs.dtype == targets.dtype == np.int32
    delimiter = num_symbols + 1
    for row in range(100):  # rebuild each example from its symbols, position by position
        symbols = inputs[row, :copy_length]
        assert np.all((symbols >= 1) & (symbols <= num_symbols))
        expected_input = list(symbols) + [0] * (sequence_length - 1) + [delimiter]
        expected_input += [0] * copy_length
        expected_target = [0] * (copy_length + sequence_length) + list(symbols)
        assert inputs[row].tolist() == expected_input
        assert targets[row].tolist() == expected_target


def test_copy_task_symbols_uniform():
    inputs, _ = copy_task_data(2000, 5, num_symbols=8, copy_length=10, seed=0)
    counts = np.bincount(inputs[:, :10].ravel(), minlength=9)[1:]
    assert counts.min() > 0.9 * 2500 and counts.max() < 1.1 * 2500


def test_copy_task_baseline_loss_is_the_memoryless_cross_entropy():
    sequence_length, num_symbols, copy_length = 20, 8, 10
    _, targets = copy_task_data(50, sequence_length, num_symbols, copy_length, seed=0)
    # The memoryless model: certain blanks, then a uniform guess over the symbols.
    vocabulary_size = num_symbols + 2
    probabilities = np.zeros(targets.shape + (vocabulary_size,), dtype="float32")
    probabilities[:, : copy_length + sequence_length, 0] = 1.0
    probabilities[:, copy_length + sequence_length :, 1 : num_symbols + 1] = 1.0 / num_symbols
    loss = keras.losses.SparseCategoricalCrossentropy()(targets, probabilities)
    expected = copy_task_baseline_loss(sequence_length, num_symbols, copy_length)
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    assert expected == pytest.approx(10 * math.log(8) / 40)


def test_copy_task_accuracy():
    _, targets = copy_task_data(3, 4, num_symbols=5, copy_length=4, seed=1)
    logits = np.eye(7, dtype="float32")[targets] * 5.0  # (3, 12, 7), perfect
    np.testing.assert_array_equal(copy_task_accuracy(targets, logits), [1.0, 1.0, 1.0])
    logits[0, -1] = np.eye(7)[(targets[0, -1] % 5) + 1] * 5.0  # one wrong symbol of 4
    logits[1, :4] = np.eye(7)[6] * 5.0  # wrong blanks are not counted
    accuracy = np.asarray(copy_task_accuracy(targets, logits))
    np.testing.assert_allclose(accuracy, [0.75, 1.0, 1.0])
    blanks = np.eye(7, dtype="float32")[np.zeros_like(targets)]
    np.testing.assert_array_equal(copy_task_accuracy(targets, blanks), [0.0, 0.0, 0.0])


def test_metric_functions_in_compile_save_and_reload(tmp_path):
    inputs, targets = copy_task_data(8, 3, num_symbols=4, copy_length=2)
    model = keras.Sequential(
        [
            keras.Input((7,), dtype="int32"),
            keras.layers.Embedding(6, 4),
            keras.layers.GRU(8, return_sequences=True),
            keras.layers.Dense(6),
        ]
    )
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[copy_task_accuracy],
    )
    history = model.fit(inputs, targets, epochs=1, verbose=0)
    assert 0.0 <= history.history["copy_task_accuracy"][0] <= 1.0
    path = str(tmp_path / "copy.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.evaluate(inputs, targets, verbose=0, return_dict=True).keys() == {
        "loss",
        "copy_task_accuracy",
    }
    name = keras.saving.get_registered_name(adding_problem_accuracy)
    assert name == "keras_seq>adding_problem_accuracy"


def test_seeds():
    first = adding_problem_data(20, 10, seed=5)
    np.testing.assert_array_equal(first[0], adding_problem_data(20, 10, seed=5)[0])
    assert not np.array_equal(first[0], adding_problem_data(20, 10, seed=6)[0])
    copy = copy_task_data(20, 10, seed=5)
    np.testing.assert_array_equal(copy[0], copy_task_data(20, 10, seed=5)[0])
    assert not np.array_equal(copy[0], copy_task_data(20, 10, seed=6)[0])


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"num_examples": 0}, ValueError, "`num_examples` must be a positive integer"),
        ({"sequence_length": 1}, ValueError, "`sequence_length` must be at least 2"),
        ({"sequence_length": 4.0}, TypeError, "`sequence_length` must be a positive integer"),
        ({"seed": -1}, ValueError, "`seed` must be a non-negative integer"),
        ({"seed": None}, TypeError, "`seed` must be a non-negative integer"),
    ],
)
def test_adding_problem_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        adding_problem_data(**{"num_examples": 4, "sequence_length": 10, **kwargs})


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"num_examples": -2}, ValueError, "`num_examples` must be a positive integer"),
        ({"sequence_length": 0}, ValueError, "`sequence_length` must be a positive integer"),
        ({"num_symbols": 0}, ValueError, "`num_symbols` must be a positive integer"),
        ({"copy_length": True}, TypeError, "`copy_length` must be a positive integer"),
        ({"seed": 1.5}, TypeError, "`seed` must be a non-negative integer"),
    ],
)
def test_copy_task_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        copy_task_data(**{"num_examples": 4, "sequence_length": 10, **kwargs})
