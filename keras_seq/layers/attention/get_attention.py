"""The attention registry: every attention layer given by name, config or instance."""

import keras

from keras_seq.layers.attention.bahdanau_attention import BahdanauAttention
from keras_seq.layers.attention.luong_attention import LuongAttention
from keras_seq.layers.attention.multi_head_attention import MultiHeadAttention
from keras_seq.utils.resolve import resolve

# The one table of attention names, shared by the transformer blocks and `AttentionCell`.
ATTENTION_ALIASES = {
    "multi_head": MultiHeadAttention,
    "multi_head_attention": MultiHeadAttention,
    "bahdanau": BahdanauAttention,
    "additive": BahdanauAttention,
    "luong": LuongAttention,
    "multiplicative": LuongAttention,
}


def get_attention(identifier, **kwargs):
    """Return an attention layer from a name, a config dict or an instance.

    Every keras_seq block that takes an attention layer resolves it here, so a user's own
    attention layer plugs in and saves, provided it is registered with
    `keras.saving.register_keras_serializable` and follows the call protocol of the block:

    - the transformer and Swin blocks call it as `keras_seq.layers.MultiHeadAttention`:
      `call(query, value=None, key=None, ..., attention_mask=None, use_causal_mask=False,
      return_attention_scores=False, training=None)` returning outputs shaped like `query`
      (and `(outputs, scores)` when asked); they pass `key` (only with position
      embeddings), `value_mask`, `cache` and `cache_update_index` only when they are set;
    - `AttentionCell` calls it as `layer([query, value], mask=[query_mask, value_mask],
      return_attention_scores=True)`, like `BahdanauAttention` and `LuongAttention`.

    Args:
        identifier: a name: `"multi_head"` (alias `"multi_head_attention"`),
            `"bahdanau"` (alias `"additive"`) or `"luong"` (alias `"multiplicative"`),
            case-insensitive; a registered name such as `"my_package>MyAttention"`; a
            config dict from `keras.saving.serialize_keras_object(layer)`; or a layer
            instance (returned as is).
        **kwargs: constructor arguments when `identifier` is a name (e.g. `num_heads=4`).

    Returns:
        An attention layer instance.

    Example:
    ```python
    attention = keras_seq.layers.get_attention("multi_head", num_heads=4, key_dim=16)
    outputs = attention(np.zeros((2, 10, 64), "float32"))
    additive = keras_seq.layers.get_attention("bahdanau", units=8)
    assert isinstance(additive, keras_seq.layers.BahdanauAttention)
    assert isinstance(keras_seq.layers.get_attention("luong"), keras_seq.layers.LuongAttention)
    ```
    """
    return resolve(
        identifier,
        argument="attention",
        aliases=ATTENTION_ALIASES,
        accepts=lambda obj: isinstance(obj, keras.layers.Layer),
        description="an attention layer (a keras.layers.Layer)",
        **kwargs,
    )


def make_attention(
    attention,
    hidden_dim,
    num_heads,
    dropout,
    kernel_initializer,
    bias_initializer,
    dtype,
    name,
):
    """A fresh attention sublayer for a block (not exported).

    A name is built with `num_heads`, `key_dim = hidden_dim // num_heads`, `dropout` and the
    initializers; a config dict or an instance is a template: the block gets its own layer
    from its config, renamed `name`.
    """
    if isinstance(attention, str):
        if hidden_dim % num_heads:
            raise ValueError(
                "The input's last dimension (hidden_dim) must be divisible by `num_heads`. "
                f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        return get_attention(
            attention,
            num_heads=num_heads,
            key_dim=hidden_dim // num_heads,
            dropout=dropout,
            kernel_initializer=keras.initializers.get(kernel_initializer),
            bias_initializer=keras.initializers.get(bias_initializer),
            dtype=dtype,
            name=name,
        )
    config = keras.saving.serialize_keras_object(attention)
    config["config"] = {**config["config"], "name": name}
    return get_attention(config)
