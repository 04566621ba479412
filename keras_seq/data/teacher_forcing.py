"""Teacher-forcing inputs of an encoder-decoder: the target shifted right behind a start token.

Letter legend for shape comments: N examples, S source length, T target length.
"""

import numpy as np

from keras_seq.utils.validation import validate_positive_int


def teacher_forcing_inputs(source, target, start_token_id=1):
    """The training inputs of an encoder-decoder (`keras_seq.models.RNNSeq2SeqLM`,
    `TransformerSeq2SeqLM`) for a source and a target.

    The decoder reads the target shifted right by one behind the start token:
    `target_in[:, 0] = start_token_id` and `target_in[:, 1:] = target[:, :-1]`, so that at
    step t it has seen `target[:, :t]` and is trained to predict `target[:, t]`. With
    right-padded targets (id 0) that end with an end token, the last real id of `target`
    (the end token) is never an input, and `target_in` is padded exactly where `target` is.

    Args:
        source: int array `(num_examples, source_length)`, right-padded with 0.
        target: int array `(num_examples, target_length)`, right-padded with 0.
        start_token_id: int >= 1 (0 is padding). The first decoder input. Defaults to `1`.

    Returns:
        Dict `{"source": int32 (num_examples, source_length), "target_in": int32
        (num_examples, target_length)}`; fit a model with `fit(inputs, target)`.

    Example:
    ```python
    inputs = keras_seq.data.teacher_forcing_inputs(
        source=np.array([[5, 6, 7]]), target=np.array([[7, 6, 5, 2, 0]])
    )
    assert inputs["target_in"].tolist() == [[1, 7, 6, 5, 0]]  # padded where the target is
    ```
    """
    start_token_id = validate_positive_int("start_token_id", start_token_id)  # 0 is padding
    source = np.asarray(source)
    target = np.asarray(target)
    for name, array in (("source", source), ("target", target)):
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"`{name}` must be a 2-D int array `(num_examples, length)`. Received: "
                f"{name} of shape {array.shape} and dtype {array.dtype}"
            )
    if source.shape[0] != target.shape[0]:
        raise ValueError(
            "`source` and `target` must hold the same number of examples. Received: "
            f"source.shape={source.shape}, target.shape={target.shape}"
        )
    target_in = np.zeros(target.shape, dtype="int32")  # (N, T)
    target_in[:, 0] = start_token_id
    target_in[:, 1:] = target[:, :-1]
    # Padded where the target is padded: the end token of a short row is not an input.
    target_in[:, 1:] = np.where(target[:, 1:] == 0, 0, target_in[:, 1:])
    return {"source": source.astype("int32"), "target_in": target_in}
