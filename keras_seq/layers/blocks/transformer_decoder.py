"""The transformer decoder block."""

import keras

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_block import TransformerBlock
from keras_seq.utils.masks import padding_mask_of
from keras_seq.utils.shape_checks import check_attention_mask
from keras_seq.utils.shape_checks import check_padding_mask
from keras_seq.utils.shape_checks import check_rank
from keras_seq.utils.shape_checks import check_shape_rank


@keras_seq_export
class TransformerDecoder(TransformerBlock):
    """Transformer decoder block: masked self-attention, cross-attention, feed-forward.

    Cross-attention to an encoder's outputs is built when the block is first called with an
    `encoder_sequence`; without one it is a decoder-only (GPT-style) block. Self- and
    cross-attention key/value caches make generation cost one position per step. Same
    computation and weights as keras_hub's `TransformerDecoder` (with
    `attention_dropout=dropout`) at real positions; at padded positions ours attends to nothing
    (zero attention output), keras_hub's to the real tokens. What ours adds is returning the
    self- and cross-attention scores (keras_hub's decoder cannot), a pluggable attention layer,
    an additive `attention_bias` for self-attention, and position embeddings added to queries
    and keys at every block (DETR).

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
        attention: the attention layer of both self- and cross-attention: `"multi_head"`,
            a registered name, a config dict or an instance (a template: each attention
            sublayer is built from its config). Defaults to `"multi_head"`.
        drop_path_rate: float in [0, 1). Stochastic depth: probability of skipping each
            residual branch for an example in training (`keras_seq.layers.DropPath`).
            Defaults to `0.0`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        decoder_sequence: float `(batch_size, target_length, hidden_dim)`.
        encoder_sequence: optional float `(batch_size, source_length, encoder_dim)`.
        decoder_padding_mask: optional bool `(batch_size, target_length)`, `True` = real
            token; wins over the Keras mask of `decoder_sequence`. With a self-attention
            cache it masks query rows only: mask cached keys with `decoder_attention_mask`.
        decoder_attention_mask: optional bool `(batch_size, target_length, key_length)`.
        encoder_padding_mask: optional bool `(batch_size, source_length)`; wins over the
            Keras mask of `encoder_sequence`, and also applies to a `cross_attention_cache`
            used without `encoder_sequence`.
        encoder_attention_mask: optional bool `(batch_size, target_length, source_length)`.
        attention_bias: optional float broadcastable to `(batch_size, num_heads,
            target_length, key_length)`, added to the self-attention logits.
        decoder_position_embedding: optional float broadcastable to `decoder_sequence`,
            added to the self-attention's queries and keys and to the cross-attention's
            queries, never to values (DETR's object queries). After the layer norm with
            `normalize_first=True`.
        encoder_position_embedding: optional float broadcastable to `encoder_sequence`,
            added to the cross-attention's keys (DETR's 2-D sine encoding of the image).
            Needs `encoder_sequence`.
        self_attention_cache: optional `(batch_size, 2, max_length, num_heads, key_dim)`.
        self_attention_cache_update_index: int or scalar tensor: position of the first
            token of `decoder_sequence` in the cache.
        cross_attention_cache: optional `(batch_size, 2, source_length, num_heads,
            key_dim)`; with `cross_attention_cache_update_index=None` it is used as is (the
            encoder's keys and values, computed once), and `encoder_sequence` may be `None`.
        cross_attention_cache_update_index: int or `None`.
        use_causal_mask: bool. Causal self-attention. Defaults to `True`.
        return_attention_scores: bool. Also return the attention probabilities.
        training: bool or `None`.

    Returns:
        `outputs` shaped like `decoder_sequence` when no cache and no scores are asked for;
        otherwise a tuple `(outputs, self_attention_cache, cross_attention_cache, scores)`
        holding only what applies, in that order: each cache that was passed (updated), and
        with `return_attention_scores=True` a dict of `(batch_size, num_heads,
        target_length, key_length)` tensors under `"self_attention"` and, with
        cross-attention, `"cross_attention"`.

    Masking:
        Consumes the padding masks of both sequences; propagates the decoder's Keras mask.

    Example:
    ```python
    decoder = keras_seq.layers.TransformerDecoder(num_heads=2, intermediate_dim=32)
    target = np.random.rand(2, 5, 16).astype("float32")
    source = np.random.rand(2, 7, 16).astype("float32")
    outputs, scores = decoder(target, source, return_attention_scores=True)
    assert scores["cross_attention"].shape == (2, 2, 5, 7)
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        check_shape_rank(
            "decoder_sequence",
            decoder_sequence_shape,
            3,
            "(batch_size, sequence_length, hidden_dim)",
        )
        hidden_dim = decoder_sequence_shape[-1]
        self.self_attention = self._make_attention(hidden_dim, "self_attention")
        self.self_attention.build(decoder_sequence_shape, decoder_sequence_shape)
        self.self_attention_layer_norm = self._make_layer_norm(
            "self_attention_layer_norm", decoder_sequence_shape
        )
        self.self_attention_dropout = self._make_dropout("self_attention_dropout")
        self.self_attention_drop_path = self._make_drop_path("self_attention_drop_path")
        self.cross_attention = None
        if encoder_sequence_shape is not None:
            self.cross_attention = self._make_attention(hidden_dim, "cross_attention")
            self.cross_attention.build(decoder_sequence_shape, encoder_sequence_shape)
            self.cross_attention_layer_norm = self._make_layer_norm(
                "cross_attention_layer_norm", decoder_sequence_shape
            )
            self.cross_attention_dropout = self._make_dropout("cross_attention_dropout")
            self.cross_attention_drop_path = self._make_drop_path("cross_attention_drop_path")
        self.feedforward = self._make_feedforward(decoder_sequence_shape)
        self.feedforward_layer_norm = self._make_layer_norm(
            "feedforward_layer_norm", decoder_sequence_shape
        )
        self.feedforward_dropout = self._make_dropout("feedforward_dropout")
        self.feedforward_drop_path = self._make_drop_path("feedforward_drop_path")

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_padding_mask=None,
        encoder_attention_mask=None,
        attention_bias=None,
        decoder_position_embedding=None,
        encoder_position_embedding=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        cross_attention_cache_update_index=None,
        use_causal_mask=True,
        return_attention_scores=False,
        training=None,
    ):
        has_encoder = self._check_encoder_arguments(
            encoder_sequence, cross_attention_cache, encoder_position_embedding
        )
        self._check_masks(
            decoder_sequence,
            encoder_sequence,
            decoder_padding_mask,
            decoder_attention_mask,
            encoder_padding_mask,
            encoder_attention_mask,
            self_attention_cache,
            cross_attention_cache,
        )
        padding_mask = padding_mask_of(decoder_sequence, decoder_padding_mask)
        self_kwargs = self._attention_kwargs(
            padding_mask,
            padding_mask if self_attention_cache is None else None,
            decoder_attention_mask,
            attention_bias,
            return_attention_scores,
            use_causal_mask=use_causal_mask or None,
            cache=self_attention_cache,
            cache_update_index=self_attention_cache_update_index,
        )
        x, self_extras = self._residual(
            decoder_sequence,
            lambda h: self._attend(
                self.self_attention,
                h,
                h,
                decoder_position_embedding,
                decoder_position_embedding,
                training,
                self_kwargs,
            ),
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            self.self_attention_drop_path,
            training,
        )
        cross_extras = ()
        if has_encoder:
            encoder_mask = encoder_padding_mask  # The only source with a read-only cache.
            if encoder_sequence is not None:
                encoder_mask = padding_mask_of(encoder_sequence, encoder_padding_mask)
            cross_kwargs = self._attention_kwargs(
                padding_mask,
                encoder_mask,
                encoder_attention_mask,
                None,
                return_attention_scores,
                cache=cross_attention_cache,
                cache_update_index=cross_attention_cache_update_index,
            )
            x, cross_extras = self._residual(
                x,
                lambda h: self._attend(
                    self.cross_attention,
                    h,
                    encoder_sequence,
                    decoder_position_embedding,
                    encoder_position_embedding,
                    training,
                    cross_kwargs,
                ),
                self.cross_attention_layer_norm,
                self.cross_attention_dropout,
                self.cross_attention_drop_path,
                training,
            )
        x = self._feedforward_residual(x, training)
        # Attention extras are (scores?, cache?) in that order.
        results = [x]
        if self_attention_cache is not None:
            results.append(self_extras[-1])
        if cross_attention_cache is not None:
            results.append(cross_extras[-1])
        if return_attention_scores:
            scores = {"self_attention": self_extras[0]}
            if has_encoder:
                scores["cross_attention"] = cross_extras[0]
            results.append(scores)
        return results[0] if len(results) == 1 else tuple(results)

    def _check_masks(
        self,
        decoder_sequence,
        encoder_sequence,
        decoder_padding_mask,
        decoder_attention_mask,
        encoder_padding_mask,
        encoder_attention_mask,
        self_attention_cache,
        cross_attention_cache,
    ):
        """`ValueError` for a sequence or mask whose static shape does not fit."""
        layout = "(batch_size, sequence_length, hidden_dim)"
        batch_size, length, _ = check_rank("decoder_sequence", decoder_sequence, 3, layout)
        check_padding_mask(
            "decoder_padding_mask", decoder_padding_mask, "decoder_sequence", decoder_sequence
        )
        # Keys of the self-attention: the cache's positions when decoding with one.
        keys = length if self_attention_cache is None else self_attention_cache.shape[2]
        check_attention_mask(
            "decoder_attention_mask", decoder_attention_mask, batch_size, length, keys
        )
        if encoder_sequence is not None:
            check_rank("encoder_sequence", encoder_sequence, 3, layout)
            check_padding_mask(
                "encoder_padding_mask", encoder_padding_mask, "encoder_sequence", encoder_sequence
            )
            keys = encoder_sequence.shape[1]
        else:
            keys = None if cross_attention_cache is None else cross_attention_cache.shape[2]
        check_attention_mask(
            "encoder_attention_mask", encoder_attention_mask, batch_size, length, keys
        )

    def _check_encoder_arguments(
        self, encoder_sequence, cross_attention_cache, encoder_position_embedding
    ):
        """Whether the call attends to an encoder; `ValueError` for arguments that do not fit
        the block (built with or without cross-attention)."""
        has_encoder = encoder_sequence is not None or cross_attention_cache is not None
        if has_encoder and self.cross_attention is None:
            raise ValueError(
                "This TransformerDecoder was built without cross-attention (first called "
                "without `encoder_sequence`), so it cannot attend to an encoder. Received: "
                f"encoder_sequence={encoder_sequence}"
            )
        if not has_encoder and self.cross_attention is not None:
            raise ValueError(
                "This TransformerDecoder has cross-attention: pass `encoder_sequence` (or "
                "`cross_attention_cache`). Received: encoder_sequence=None"
            )
        if encoder_position_embedding is not None and encoder_sequence is None:
            raise ValueError(
                "`encoder_position_embedding` is added to the cross-attention keys computed "
                "from `encoder_sequence`; a read-only `cross_attention_cache` already holds "
                "its keys. Received: encoder_sequence=None with an encoder_position_embedding"
            )
        return has_encoder

    def compute_output_spec(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_padding_mask=None,
        encoder_attention_mask=None,
        attention_bias=None,
        decoder_position_embedding=None,
        encoder_position_embedding=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        cross_attention_cache_update_index=None,
        use_causal_mask=True,
        return_attention_scores=False,
        training=None,
    ):
        if (
            self_attention_cache is not None
            or cross_attention_cache is not None
            or return_attention_scores
        ):  # Caches and scores: their structure is the (pluggable) attention's; trace.
            return super().compute_output_spec(
                decoder_sequence,
                encoder_sequence=encoder_sequence,
                decoder_padding_mask=decoder_padding_mask,
                decoder_attention_mask=decoder_attention_mask,
                encoder_padding_mask=encoder_padding_mask,
                encoder_attention_mask=encoder_attention_mask,
                attention_bias=attention_bias,
                decoder_position_embedding=decoder_position_embedding,
                encoder_position_embedding=encoder_position_embedding,
                self_attention_cache=self_attention_cache,
                self_attention_cache_update_index=self_attention_cache_update_index,
                cross_attention_cache=cross_attention_cache,
                cross_attention_cache_update_index=cross_attention_cache_update_index,
                use_causal_mask=use_causal_mask,
                return_attention_scores=return_attention_scores,
                training=training,
            )
        # Shaped like the decoder sequence: stated, not traced (a model of many blocks builds
        # without tracing each one).
        self._check_encoder_arguments(
            encoder_sequence, cross_attention_cache, encoder_position_embedding
        )
        return keras.KerasTensor(decoder_sequence.shape, dtype=self.compute_dtype)
