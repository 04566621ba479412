"""The transformer encoder block."""

import keras

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_block import TransformerBlock
from keras_seq.utils.masks import padding_mask_of
from keras_seq.utils.shape_checks import check_attention_mask
from keras_seq.utils.shape_checks import check_padding_mask
from keras_seq.utils.shape_checks import check_rank
from keras_seq.utils.shape_checks import check_shape_rank


@keras_seq_export
class TransformerEncoder(TransformerBlock):
    """Transformer encoder block: self-attention, then a feed-forward network.

    Each sublayer has a residual connection and layer normalization, after the residual
    (post-norm, as in the paper) or before the sublayer (`normalize_first=True`, pre-norm, as in
    GPT-2 and ViT; trains deeper stacks without warm-up). Same computation and weights as
    keras_hub's `TransformerEncoder` (with `attention_dropout=dropout`) at real positions; at
    padded positions ours attends to nothing (zero attention output), keras_hub's to the real
    tokens. What ours adds is a pluggable attention layer (e.g. the memory-efficient path of
    `keras_seq.layers.MultiHeadAttention`, or a user's registered attention), an additive
    `attention_bias`, a position embedding added to queries and keys at every block (DETR),
    and a separate attention-dropout rate.

    Args:
        num_heads: int. Number of attention heads; must divide the input's last dimension.
            Only when `attention` is a name (the default); `None` otherwise.
        intermediate_dim: int. Width of the feed-forward hidden layer.
        dropout: float in [0, 1). Dropout on each sublayer's output. Defaults to `0.0`.
        attention_dropout: float in [0, 1). Dropout on the attention probabilities of a
            named attention. Defaults to `0.0`.
        activation: activation of the feed-forward hidden layer. Defaults to `"relu"`.
        normalize_first: bool. Pre-norm if `True`, post-norm if `False`. Defaults to
            `False`.
        layer_norm_epsilon: float. Epsilon of the layer norms. Defaults to `1e-5`.
        kernel_initializer: initializer of every kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of every bias. Defaults to `"zeros"`.
        attention: the attention layer: `"multi_head"` (built with `num_heads` and
            `key_dim = hidden_dim // num_heads`), a registered name, a config dict or an
            instance (used as a template: the block builds its own from the instance's
            config). See `keras_seq.layers.get_attention`. Defaults to `"multi_head"`.
        drop_path_rate: float in [0, 1). Stochastic depth: probability of skipping each
            residual branch for an example in training (`keras_seq.layers.DropPath`).
            Defaults to `0.0`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float `(batch_size, sequence_length, hidden_dim)`.
        padding_mask: optional bool `(batch_size, sequence_length)`, `True` = real token.
            Wins over the Keras mask of `inputs`.
        attention_mask: optional bool `(batch_size, sequence_length, sequence_length)`;
            combined with the padding mask.
        attention_bias: optional float broadcastable to `(batch_size, num_heads,
            sequence_length, sequence_length)`, added to the attention logits.
        position_embedding: optional float broadcastable to `inputs`, added to the
            attention's queries and keys (not its values) in this block, as DETR adds its
            2-D sine encoding at every encoder layer. With `normalize_first=True` it is added
            after the layer norm.
        return_attention_scores: bool. Also return the attention probabilities.
        training: bool or `None`.

    Returns:
        Tensor shaped like `inputs`; with `return_attention_scores=True`, `(outputs,
        scores)`, scores `(batch_size, num_heads, sequence_length, sequence_length)`.

    Masking:
        Consumes the padding mask (padded tokens are never attended to) and propagates the
        Keras mask of `inputs`.

    Example:
    ```python
    encoder = keras_seq.layers.TransformerEncoder(num_heads=4, intermediate_dim=64)
    outputs = encoder(np.random.rand(2, 10, 32).astype("float32"))
    assert outputs.shape == (2, 10, 32)
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Xiong et al., 2020](https://arxiv.org/abs/2002.04745) (pre-norm)
    """

    def build(self, inputs_shape):
        check_shape_rank("inputs", inputs_shape, 3, "(batch_size, sequence_length, hidden_dim)")
        self.self_attention = self._make_attention(inputs_shape[-1], "self_attention")
        self.self_attention.build(inputs_shape, inputs_shape)
        self.self_attention_layer_norm = self._make_layer_norm(
            "self_attention_layer_norm", inputs_shape
        )
        self.self_attention_dropout = self._make_dropout("self_attention_dropout")
        self.self_attention_drop_path = self._make_drop_path("self_attention_drop_path")
        # The same weight order as keras_hub's TransformerEncoder: norm, then feed-forward.
        self.feedforward_layer_norm = self._make_layer_norm("feedforward_layer_norm", inputs_shape)
        self.feedforward = self._make_feedforward(inputs_shape)
        self.feedforward_dropout = self._make_dropout("feedforward_dropout")
        self.feedforward_drop_path = self._make_drop_path("feedforward_drop_path")

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        attention_bias=None,
        position_embedding=None,
        return_attention_scores=False,
        training=None,
    ):
        shape = check_rank("inputs", inputs, 3, "(batch_size, sequence_length, hidden_dim)")
        check_padding_mask("padding_mask", padding_mask, "inputs", inputs)
        check_attention_mask("attention_mask", attention_mask, shape[0], shape[1], shape[1])
        padding_mask = padding_mask_of(inputs, padding_mask)
        kwargs = self._attention_kwargs(
            padding_mask, padding_mask, attention_mask, attention_bias, return_attention_scores
        )
        x, scores = self._residual(
            inputs,
            lambda h: self._attend(
                self.self_attention, h, h, position_embedding, position_embedding, training, kwargs
            ),
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            self.self_attention_drop_path,
            training,
        )
        x = self._feedforward_residual(x, training)
        return (x, scores[0]) if return_attention_scores else x

    def compute_output_spec(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        attention_bias=None,
        position_embedding=None,
        return_attention_scores=False,
        training=None,
    ):
        if return_attention_scores:  # The scores' shape is the (pluggable) attention's.
            return super().compute_output_spec(
                inputs,
                padding_mask=padding_mask,
                attention_mask=attention_mask,
                attention_bias=attention_bias,
                position_embedding=position_embedding,
                return_attention_scores=True,
                training=training,
            )
        # The output is shaped like the input: stated, not traced, so that building a
        # functional model of many blocks does not trace each one (ViT-B/16's construction:
        # 2.2 s -> 1.4 s).
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
