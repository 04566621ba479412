"""A `keras.distribution.LayoutMap` sharding keras_seq's transformer blocks over a model axis.

Megatron-style tensor parallelism for the blocks built on keras_seq's `MultiHeadAttention` and
feed-forward network (GPT, BERT, the transformer seq2seq model): each attention layer's query,
key and value projections are split by heads and its output projection by its input heads; the
feed-forward network's first kernel is split by columns and its second by rows; token and
position embeddings are split along the hidden axis. Layer norms and the remaining biases are
replicated. Keras' distribution API runs it on JAX (`keras.distribution.ModelParallel`).
"""

import keras


def transformer_layout_map(device_mesh, model_axis="model"):
    """A `LayoutMap` for `keras.distribution.ModelParallel` over keras_seq's transformers.

    The number of attention heads, the feed-forward width and the hidden width must be
    divisible by the size of `model_axis`. Variables it does not name are replicated.

    Args:
        device_mesh: `keras.distribution.DeviceMesh` with an axis named `model_axis`.
        model_axis: str. The mesh axis the weights are split over. Defaults to `"model"`.

    Returns:
        `keras.distribution.LayoutMap` keyed by regular expressions matching whole variable
        paths.

    Example:
    ```python
    devices = keras.distribution.list_devices()
    mesh = keras.distribution.DeviceMesh((1, len(devices)), ("batch", "model"), devices)
    layout_map = keras_seq.utils.transformer_layout_map(mesh)
    layout = layout_map["decoder_layer_0/self_attention/query_dense/kernel"]
    assert layout.axes == (None, "model", None)
    ```
    """
    if not isinstance(device_mesh, keras.distribution.DeviceMesh):
        raise TypeError(
            "`device_mesh` must be a keras.distribution.DeviceMesh. "
            f"Received: device_mesh={device_mesh!r}"
        )
    if model_axis not in device_mesh.axis_names:
        raise ValueError(
            f"`model_axis` must name an axis of `device_mesh` ({list(device_mesh.axis_names)}). "
            f"Received: model_axis={model_axis!r}"
        )
    m = model_axis
    layout_map = keras.distribution.LayoutMap(device_mesh)
    # Embeddings (rows, hidden_dim): split the hidden axis.
    layout_map[r".*(token|position)_embedding/embeddings"] = (None, m)
    # Attention projections (hidden_dim, num_heads, key_dim) -> split by heads.
    layout_map[r".*attention/(query|key|value)_dense/kernel"] = (None, m, None)
    layout_map[r".*attention/(query|key|value)_dense/bias"] = (m, None)
    # Attention output (num_heads, key_dim, hidden_dim): split by the heads it reads.
    layout_map[r".*attention/output_dense/kernel"] = (m, None, None)
    # Feed-forward network: columns of the first kernel, rows of the second.
    layout_map[r".*feedforward/intermediate_dense/kernel"] = (None, m)
    layout_map[r".*feedforward/intermediate_dense/bias"] = (m,)
    layout_map[r".*feedforward/output_dense/kernel"] = (m, None)
    return layout_map
