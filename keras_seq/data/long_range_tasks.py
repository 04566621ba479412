"""Long-range memory tasks: the adding problem and the copy task, the tests of vanishing gradients.

Both put the information a model needs at the start of a long sequence and ask for it at the
end, so an Elman RNN whose gradients vanish over `sequence_length` steps falls to a
no-memory baseline while gated cells (LSTM, GRU) and attention keep solving them.

Letter legend for shape comments: N examples, T `sequence_length`, C `copy_length`,
L `copy_length + sequence_length + copy_length`, V `num_symbols + 2`.
"""

import math

import keras
import numpy as np

from keras_seq.api import PACKAGE
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_seed

# Adding problem.
ADDING_PROBLEM_TOLERANCE = 0.04  # |prediction - target| below this counts as solved.
ADDING_PROBLEM_BASELINE_MSE = 1 / 6  # Always predicting 1: the variance of U + U'.
ADDING_PROBLEM_BASELINE_ACCURACY = 1 - (1 - ADDING_PROBLEM_TOLERANCE) ** 2  # 0.0784

# Copy task.
COPY_BLANK_ID = 0  # Symbols are ids 1 .. num_symbols; the delimiter is num_symbols + 1.
COPY_FIRST_SYMBOL_ID = 1


def adding_problem_data(num_examples, sequence_length, seed=0):
    """The adding problem (Hochreiter & Schmidhuber, 1997; as set up by Le et al., 2015).

    Each input step holds two numbers: a value drawn uniformly from [0, 1) (channel 0) and
    a marker, 0 or 1 (channel 1). Exactly two steps are marked: the first at a position
    drawn uniformly from the first half `[0, sequence_length // 2)`, the second from the
    second half `[sequence_length // 2, sequence_length)` (one step longer for an odd
    length). The target is the sum of the two marked values, in [0, 2).

    Always predicting 1 gives a mean squared error of `ADDING_PROBLEM_BASELINE_MSE` (1/6,
    the variance of the sum) and an `adding_problem_accuracy` of
    `ADDING_PROBLEM_BASELINE_ACCURACY` (0.0784); a model that remembers the first marked
    value until the end gets close to 0 and 1.

    Args:
        num_examples: int. Number of examples N.
        sequence_length: int >= 2. Number of time steps T.
        seed: int >= 0. Seed of the NumPy generator; the same seed gives the same data.
            Defaults to `0`.

    Returns:
        `(inputs, targets)`: `inputs` float32 `(N, T, 2)`, channel 0 the values and
        channel 1 the markers; `targets` float32 `(N, 1)`.

    Example:
    ```python
    inputs, targets = keras_seq.data.adding_problem_data(16, sequence_length=50, seed=0)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert (markers.sum(axis=1) == 2).all()
    np.testing.assert_allclose(targets[:, 0], (values * markers).sum(axis=1), rtol=1e-6)
    ```

    References:
        - [Hochreiter & Schmidhuber, 1997](https://doi.org/10.1162/neco.1997.9.8.1735)
        - [Le et al., 2015](https://arxiv.org/abs/1504.00941)
    """
    num_examples = validate_positive_int("num_examples", num_examples)
    sequence_length = validate_positive_int("sequence_length", sequence_length)
    if sequence_length < 2:
        raise ValueError(
            "`sequence_length` must be at least 2 (one marker in each half). "
            f"Received: sequence_length={sequence_length}"
        )
    rng = np.random.default_rng(validate_seed("seed", seed, allow_none=False))
    half = sequence_length // 2
    values = rng.random((num_examples, sequence_length), dtype=np.float32)  # (N, T)
    first = rng.integers(0, half, size=num_examples)  # (N,)
    second = rng.integers(half, sequence_length, size=num_examples)  # (N,)
    rows = np.arange(num_examples)
    markers = np.zeros((num_examples, sequence_length), dtype=np.float32)  # (N, T)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    inputs = np.stack([values, markers], axis=-1)  # (N, T, 2)
    targets = (values[rows, first] + values[rows, second])[:, None]  # (N, 1), float32
    return inputs, targets.astype(np.float32)


@keras.saving.register_keras_serializable(package=PACKAGE)
def adding_problem_accuracy(y_true, y_pred):
    """Per example, 1.0 where `|y_pred - y_true| < ADDING_PROBLEM_TOLERANCE` (0.04), else 0.0.

    A Keras metric function: pass it to `compile(metrics=[...])` (it is registered, so a
    compiled model saves and reloads), or average it yourself.

    Args:
        y_true: float `(batch_size, 1)`, the targets of `adding_problem_data`.
        y_pred: float `(batch_size, 1)`, the predictions.

    Returns:
        float32 tensor `(batch_size,)`.

    Example:
    ```python
    accuracy = keras_seq.data.adding_problem_accuracy(
        np.array([[1.0], [0.5]]), np.array([[1.03], [0.6]])
    )
    assert np.asarray(accuracy).tolist() == [1.0, 0.0]
    ```
    """
    y_true = keras.ops.convert_to_tensor(y_true, dtype="float32")
    y_pred = keras.ops.cast(keras.ops.convert_to_tensor(y_pred), "float32")
    error = keras.ops.abs(y_pred - y_true)  # (B, 1)
    return keras.ops.cast(keras.ops.max(error, axis=-1) < ADDING_PROBLEM_TOLERANCE, "float32")


def copy_task_data(num_examples, sequence_length, num_symbols=8, copy_length=10, seed=0):
    """The copy-memory task of Arjovsky et al. (2016): recall symbols after a long delay.

    Each input is `copy_length` symbols drawn uniformly, then `sequence_length - 1` blanks
    and a delimiter, then `copy_length` blanks, `L = copy_length + sequence_length +
    copy_length` steps in all. The target is blank for the first `copy_length +
    sequence_length` steps and the input's symbols, in order, for the last `copy_length`:
    after the delimiter the model must output what it saw `sequence_length + copy_length`
    steps earlier.

    Ids (one vocabulary of `V = num_symbols + 2` for inputs and targets): `COPY_BLANK_ID`
    0, the symbols `1 .. num_symbols`, the delimiter `num_symbols + 1`. Blanks are real
    targets, not padding: do not train with `ignore_class=0` or `mask_zero=True`.

    A model without memory outputs blanks and then guesses uniformly: its mean
    cross-entropy per step is `copy_length * log(num_symbols) / L`
    (`copy_task_baseline_loss`), and its `copy_task_accuracy` is `1 / num_symbols`.

    Args:
        num_examples: int. Number of examples N.
        sequence_length: int >= 1. The delay T: the number of steps from the last symbol
            to the delimiter, inclusive.
        num_symbols: int. Number of distinct symbols. Defaults to `8`.
        copy_length: int. Number of symbols to copy C. Defaults to `10`.
        seed: int >= 0. Seed of the NumPy generator; the same seed gives the same data.
            Defaults to `0`.

    Returns:
        `(inputs, targets)`, both int32 `(N, L)`.

    Example:
    ```python
    inputs, targets = keras_seq.data.copy_task_data(4, sequence_length=20, copy_length=5)
    assert inputs.shape == targets.shape == (4, 30)
    assert (inputs[:, 24] == 9).all()  # the delimiter, num_symbols + 1
    assert (targets[:, -5:] == inputs[:, :5]).all() and (targets[:, :-5] == 0).all()
    ```

    References:
        - [Hochreiter & Schmidhuber, 1997](https://doi.org/10.1162/neco.1997.9.8.1735)
        - [Arjovsky et al., 2016](https://arxiv.org/abs/1511.06464)
    """
    num_examples = validate_positive_int("num_examples", num_examples)
    copy_task_baseline_loss(sequence_length, num_symbols, copy_length)  # validates
    rng = np.random.default_rng(validate_seed("seed", seed, allow_none=False))
    symbols = rng.integers(
        COPY_FIRST_SYMBOL_ID, COPY_FIRST_SYMBOL_ID + num_symbols, size=(num_examples, copy_length)
    ).astype(np.int32)  # (N, C)
    total_length = copy_length + sequence_length + copy_length
    inputs = np.full((num_examples, total_length), COPY_BLANK_ID, dtype=np.int32)  # (N, L)
    inputs[:, :copy_length] = symbols
    inputs[:, copy_length + sequence_length - 1] = num_symbols + 1  # the delimiter
    targets = np.full((num_examples, total_length), COPY_BLANK_ID, dtype=np.int32)  # (N, L)
    targets[:, -copy_length:] = symbols
    return inputs, targets


def copy_task_baseline_loss(sequence_length, num_symbols=8, copy_length=10):
    """The mean cross-entropy per step (nats) of the best model without memory on the copy task.

    `copy_length * log(num_symbols) / (copy_length + sequence_length + copy_length)`: blanks
    predicted with certainty, the recalled symbols guessed uniformly. A model whose loss
    stays at this level has learned nothing about the symbols.

    Args:
        sequence_length, num_symbols, copy_length: as in `copy_task_data`.

    Returns:
        Python float.

    Example:
    ```python
    loss = keras_seq.data.copy_task_baseline_loss(sequence_length=100)
    assert abs(loss - 10 * np.log(8) / 120) < 1e-12
    ```
    """
    sequence_length = validate_positive_int("sequence_length", sequence_length)
    num_symbols = validate_positive_int("num_symbols", num_symbols)
    copy_length = validate_positive_int("copy_length", copy_length)
    return copy_length * math.log(num_symbols) / (copy_length + sequence_length + copy_length)


@keras.saving.register_keras_serializable(package=PACKAGE)
def copy_task_accuracy(y_true, y_pred):
    """Per example, the fraction of the recalled symbols predicted right (blanks not counted).

    The recalled positions are those whose target is not `COPY_BLANK_ID`; a prediction is
    the arg-max of `y_pred` over ids. Outputting blanks scores 0, a memoryless guess about
    `1 / num_symbols`. A Keras metric function: pass it to `compile(metrics=[...])` (it is
    registered, so a compiled model saves and reloads), or average it yourself.

    Args:
        y_true: int `(batch_size, L)`, the targets of `copy_task_data`.
        y_pred: float `(batch_size, L, V)`, logits or probabilities.

    Returns:
        float32 tensor `(batch_size,)`.

    Example:
    ```python
    inputs, targets = keras_seq.data.copy_task_data(2, sequence_length=5, copy_length=3)
    perfect = np.eye(10)[targets]  # one-hot (2, 11, 10)
    assert np.asarray(keras_seq.data.copy_task_accuracy(targets, perfect)).tolist() == [1, 1]
    ```
    """
    y_true = keras.ops.cast(keras.ops.convert_to_tensor(y_true), "int32")  # (B, L)
    predicted = keras.ops.cast(keras.ops.argmax(y_pred, axis=-1), "int32")  # (B, L)
    recalled = keras.ops.cast(keras.ops.not_equal(y_true, COPY_BLANK_ID), "float32")  # (B, L)
    correct = keras.ops.cast(keras.ops.equal(predicted, y_true), "float32") * recalled
    count = keras.ops.maximum(keras.ops.sum(recalled, axis=-1), 1.0)  # (B,)
    return keras.ops.sum(correct, axis=-1) / count
