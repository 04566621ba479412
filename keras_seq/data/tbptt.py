"""Chunked datasets for streaming truncated backpropagation through time.

Letter legend for shape comments: N sequences, T time steps, B batch size, K chunks per
sequence, L chunk length, G groups of B sequences.

The datasets are `tf.data` pipelines: TensorFlow is imported on first use, so that
`import keras_seq` works without it.
"""

import numpy as np

from keras_seq.utils.validation import validate_positive_int


def _as_sequences(name, array):
    array = np.asarray(array)
    if array.ndim < 2:
        raise ValueError(
            f"`{name}` must be an array `(num_sequences, sequence_length, ...)`. "
            f"Received: {name}.shape={array.shape}"
        )
    return array


def _to_chunk_batches(array, batch_size, chunk_length):
    """`(N, T, ...)` -> `(G * K, B, L, ...)`, batch k + 1 continuing batch k row for row."""
    num_sequences, sequence_length = array.shape[:2]
    rest = array.shape[2:]
    num_groups = num_sequences // batch_size
    num_chunks = sequence_length // chunk_length
    array = array.reshape(
        (num_groups, batch_size, num_chunks, chunk_length) + rest
    )  # (G, B, K, L, ...)
    array = np.swapaxes(array, 1, 2)  # (G, K, B, L, ...)
    return array.reshape((num_groups * num_chunks, batch_size, chunk_length) + rest)


def truncated_bptt_dataset(inputs, targets, chunk_length, batch_size):
    """Cut long sequences into chunk batches for a stateful RNN (streaming truncated BPTT).

    Batch `k + 1` continues, row for row, the sequences of batch `k`: the first
    `batch_size` sequences are streamed chunk by chunk (`sequence_length // chunk_length`
    batches), then the next `batch_size` sequences, and so on. Fed with `shuffle=False` to a
    model whose RNNs have `stateful=True` and a fixed batch size, the state carries forward
    from chunk to chunk while the gradient stops at every chunk (each batch is its own
    backward pass), so memory is bounded by one chunk. Reset the states at every new group
    of sequences with `keras_seq.callbacks.ResetStatesAtSequenceBoundary(
    sequence_length // chunk_length)`.

    Nothing is dropped or padded silently: the sequence length must be a multiple of
    `chunk_length` and the number of sequences a multiple of `batch_size`, otherwise a
    `ValueError` says how to trim or pad (pad with a masked value, e.g. behind
    `keras.layers.Masking`).

    Args:
        inputs: array `(num_sequences, sequence_length, ...)`.
        targets: array `(num_sequences, sequence_length, ...)` of per-step targets, or
            `None` for a dataset of inputs only (for `predict`).
        chunk_length: int. Time steps per chunk.
        batch_size: int. Sequences streamed side by side; the stateful RNN's batch size.

    Returns:
        A `tf.data.Dataset` of already batched `(inputs, targets)` pairs (or of inputs),
        shaped `(batch_size, chunk_length, ...)` with a static batch size, of
        `(num_sequences // batch_size) * (sequence_length // chunk_length)` elements in
        streaming order. Do not batch or shuffle it again.

    Example:
    ```python
    x = np.zeros((4, 12, 3), "float32")
    y = np.zeros((4, 12, 1), "float32")
    dataset = keras_seq.data.truncated_bptt_dataset(x, y, chunk_length=4, batch_size=2)
    # 2 groups of 2 sequences x 3 chunks = 6 batches of shape (2, 4, 3) / (2, 4, 1).
    ```
    """
    import tensorflow as tf

    chunk_length = validate_positive_int("chunk_length", chunk_length)
    batch_size = validate_positive_int("batch_size", batch_size)
    inputs = _as_sequences("inputs", inputs)
    num_sequences, sequence_length = inputs.shape[:2]
    if targets is not None:
        targets = _as_sequences("targets", targets)
        if targets.shape[:2] != inputs.shape[:2]:
            raise ValueError(
                "`targets` must have one target per input step: the same "
                "`(num_sequences, sequence_length)` as `inputs`. "
                f"Received: inputs.shape={inputs.shape}, targets.shape={targets.shape}"
            )
    if sequence_length % chunk_length:
        raise ValueError(
            "The sequence length of `inputs` (axis 1) must be a multiple of `chunk_length`; "
            "a last partial chunk is never dropped silently. Trim the sequences to "
            f"{sequence_length - sequence_length % chunk_length} steps or pad them to "
            f"{sequence_length + chunk_length - sequence_length % chunk_length} with a "
            f"masked value. Received: inputs.shape={inputs.shape}, "
            f"chunk_length={chunk_length}"
        )
    if num_sequences % batch_size:
        raise ValueError(
            "The number of sequences in `inputs` (axis 0) must be a multiple of `batch_size` "
            "(a stateful RNN needs full batches); an incomplete last batch is never dropped "
            "silently. Keep the "
            f"first {num_sequences - num_sequences % batch_size} sequences or pick a "
            f"`batch_size` that divides {num_sequences}. "
            f"Received: inputs.shape={inputs.shape}, batch_size={batch_size}"
        )
    x = _to_chunk_batches(inputs, batch_size, chunk_length)
    if targets is None:
        return tf.data.Dataset.from_tensor_slices(x)
    y = _to_chunk_batches(targets, batch_size, chunk_length)
    return tf.data.Dataset.from_tensor_slices((x, y))
