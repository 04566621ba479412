"""Sequence reversal and copy: the synthetic tasks that show what attention buys a seq2seq model.

Letter legend for shape comments: N examples, L `max_length`.
"""

import numpy as np

from keras_seq.data.teacher_forcing import teacher_forcing_inputs
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_seed

PAD_ID = 0
START_ID = 1
END_ID = 2
FIRST_SYMBOL_ID = 3  # Symbols are ids FIRST_SYMBOL_ID .. FIRST_SYMBOL_ID + num_symbols - 1.

TASKS = ("reverse", "copy")


def reversal_data(
    num_examples, min_length=1, max_length=10, num_symbols=10, task="reverse", seed=0
):
    """Random symbol sequences of varying lengths and their reversal (or copy).

    Each source is `length` symbols drawn uniformly, `length` uniform in
    `[min_length, max_length]`, right-padded with 0; its target is the reversed (or copied)
    sequence followed by `END_ID`. Source and target share one vocabulary of
    `num_symbols + 3` ids: `PAD_ID` 0, `START_ID` 1, `END_ID` 2, then the symbols. Without
    attention an encoder-decoder must squeeze the whole source into its final state, which
    fails as sequences grow; with attention each output step looks up one source position.

    Args:
        num_examples: int. Number of examples N.
        min_length: int >= 1. Shortest source. Defaults to `1`.
        max_length: int >= `min_length`. Longest source L. Defaults to `10`.
        num_symbols: int. Number of distinct symbols. Defaults to `10`.
        task: `"reverse"` or `"copy"`. Defaults to `"reverse"`.
        seed: int >= 0. Seed of the NumPy generator; the same seed gives the same data.
            Defaults to `0`.

    Returns:
        `(inputs, targets)`, ready for `fit`: `inputs` is `{"source": int32 (N, L),
        "target_in": int32 (N, L + 1)}` (see `teacher_forcing_inputs`, start token
        `START_ID`) and `targets` int32 `(N, L + 1)`.

    Example:
    ```python
    inputs, targets = keras_seq.data.reversal_data(4, min_length=2, max_length=5, seed=1)
    source, target = inputs["source"][0], targets[0]
    length = int((source > 0).sum())
    assert (target[:length] == source[:length][::-1]).all() and target[length] == 2
    ```
    """
    num_examples = validate_positive_int("num_examples", num_examples)
    min_length = validate_positive_int("min_length", min_length)
    max_length = validate_positive_int("max_length", max_length)
    num_symbols = validate_positive_int("num_symbols", num_symbols)
    task = validate_choice("task", task, TASKS)
    if min_length > max_length:
        raise ValueError(
            "`min_length` must not exceed `max_length`. Received: "
            f"min_length={min_length}, max_length={max_length}"
        )
    seed = validate_seed("seed", seed, allow_none=False)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_length, max_length + 1, size=num_examples)  # (N,)
    symbols = rng.integers(
        FIRST_SYMBOL_ID, FIRST_SYMBOL_ID + num_symbols, size=(num_examples, max_length)
    )  # (N, L)
    positions = np.arange(max_length)[None, :]  # (1, L)
    source = np.where(positions < lengths[:, None], symbols, PAD_ID).astype("int32")  # (N, L)
    target = np.zeros((num_examples, max_length + 1), dtype="int32")  # (N, L + 1)
    for index, length in enumerate(lengths):
        sequence = source[index, :length]
        target[index, :length] = sequence[::-1] if task == "reverse" else sequence
        target[index, length] = END_ID
    return teacher_forcing_inputs(source, target, start_token_id=START_ID), target
