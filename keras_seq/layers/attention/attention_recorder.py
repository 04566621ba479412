"""Recording the attention probabilities of chosen attention layers during eager calls.

The hook behind `keras_seq.callbacks.AttentionMapLogger`, usable on its own (plots in a
notebook, tests). `record_attention_scores(layers)` marks layer instances; while marked, a
keras_seq attention layer (`MultiHeadAttention`, which `WindowAttention` and the transformer
and Swin blocks use, and `BahdanauAttention` / `LuongAttention`) hands the probabilities it
computes to `record`, which copies them to NumPy. Unmarked layers only pay a dictionary
lookup per call; outputs never change.
"""

import contextlib

import keras

# The private helper Keras' own preprocessing layers use to tell a `tf.function` trace from
# eager execution; Keras 3 has no public equivalent.
from keras.src.utils.backend_utils import in_tf_graph

# id(layer) -> the list that collects that layer's recorded scores, while it is marked.
_RECORDINGS = {}


def is_recording(layer):
    """Whether `layer` is marked by an active `record_attention_scores` context."""
    return id(layer) in _RECORDINGS


def record(layer, scores):
    """Append a NumPy copy of `scores` to `layer`'s recording, if `layer` is marked.

    Symbolic calls (building a functional model) record nothing. A call inside a
    `tf.function` raises `RuntimeError`: its tensors have no values to record.
    """
    recording = _RECORDINGS.get(id(layer))
    if recording is None or isinstance(scores, keras.KerasTensor):
        return
    if in_tf_graph():
        raise RuntimeError(
            f"Attention layer '{layer.name}' is being recorded by `record_attention_scores`, "
            "which only records eager calls, but it was called inside a compiled function "
            "(`tf.function`, e.g. `predict` or `fit`). Call the model directly, "
            "`model(inputs)`, inside the context."
        )
    recording.append(keras.ops.convert_to_numpy(scores))


@contextlib.contextmanager
def record_attention_scores(layers):
    """Context manager: record the attention probabilities of `layers` in eager calls.

    Yields a list with one list per layer (in the order of `layers`); every eager call of a
    layer inside the context appends that call's probabilities as a NumPy array, in float
    (the layer's compute dtype):

    - `MultiHeadAttention`: `(batch_size, num_heads, query_length, key_length)`, the
      `scores` of `return_attention_scores=True` (padded query rows are zero). While
      recorded, the layer takes the explicit softmax path even where `query_chunk_size`
      would select the memory-efficient one; the outputs agree to float tolerance.
      Inside `WindowAttention` (Swin) the batch axis is `batch_size * num_windows`,
      windows in `keras_seq.ops.window_partition` order (image-major).
    - `BahdanauAttention` / `LuongAttention`: `(batch_size, query_length, value_length)`,
      also for a 2-D (single step) query, which gives `query_length = 1`. A recurrent
      decoder (`AttentionRNN`, `RNNSeq2SeqLM`) calls its attention once per step: the recording
      holds one `(batch_size, 1, source_length)` array per step, in order (the steps of a
      masked decoder position are recorded as computed, not zeroed as `AttentionRNN`'s
      own alignment history zeroes them).

    Outputs are unchanged. Calls inside a `tf.function` (`fit`, `predict`) raise a
    `RuntimeError`; symbolic calls record nothing. Contexts may nest, but a layer can be
    recorded by one context at a time.

    Args:
        layers: list of attention layer instances of the kinds above.

    Example:
    ```python
    from keras_seq.layers.attention.attention_recorder import record_attention_scores

    attention = keras_seq.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    x = np.random.rand(3, 5, 8).astype("float32")
    with record_attention_scores([attention]) as (scores,):
        attention(x)
    assert scores[0].shape == (3, 2, 5, 5)
    ```
    """
    # Imported here: the attention layers import this module.
    from keras_seq.layers.attention.base_attention import BaseAttention
    from keras_seq.layers.attention.multi_head_attention import MultiHeadAttention

    if not isinstance(layers, (list, tuple)):
        raise TypeError(
            "`layers` must be a list of attention layer instances. "
            f"Received: layers={layers!r} of type {type(layers).__name__}"
        )
    for layer in layers:
        if not isinstance(layer, (MultiHeadAttention, BaseAttention)):
            raise TypeError(
                "`layers` must hold keras_seq attention layers (MultiHeadAttention, "
                "BahdanauAttention, LuongAttention). Received: an element "
                f"{layer!r} of type {type(layer).__name__}"
            )
    ids = [id(layer) for layer in layers]
    for layer in layers:
        if ids.count(id(layer)) > 1 or id(layer) in _RECORDINGS:
            raise ValueError(
                f"Attention layer '{layer.name}' is already recorded (listed twice, or by an "
                f"enclosing `record_attention_scores`). Received: layers={layers!r}"
            )
    recordings = [[] for _ in layers]
    _RECORDINGS.update(zip(ids, recordings))
    try:
        yield recordings
    finally:
        for key in ids:
            del _RECORDINGS[key]
