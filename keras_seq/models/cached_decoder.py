"""Cached decoding through a stack of `TransformerDecoder` blocks with cross-attention.

The two functions shared by the encoder-decoder models (`TransformerSeq2SeqBackbone`,
`TransformerImageCaptioner`) to implement the generation protocol of `keras_seq.generation`:
`prefill_decoder_stack` runs the first decoder position and computes every block's
cross-attention keys and values once; `decoder_stack_step` feeds one more position, reading
those cross-attention caches as they are.

Letter legend: B batch, S encoder length, L cache length, N heads, K key size, D width.
"""

from keras import ops


def prefill_decoder_stack(
    blocks, inputs, encoder_sequence, cache_length, encoder_padding_mask=None
):
    """Run `blocks` on the first decoder position, creating every block's caches.

    Args:
        blocks: list of `keras_seq.layers.TransformerDecoder` blocks with multi-head
            cross-attention, already built.
        inputs: float `(B, 1, D)`: the embedded first decoder token (the start token).
        encoder_sequence: float `(B, S, D_enc)`: the encoder outputs (or image regions).
        cache_length: int. Length L of each self-attention cache: the number of decoder
            positions that will be fed, this one included.
        encoder_padding_mask: optional bool `(B, S)`, `True` = real encoder position.

    Returns:
        `(outputs, caches)`: outputs `(B, 1, D)` of the last block, and caches a dict with
        `"self_attention"` (a list of `(B, 2, L, N, K)`, position 0 written) and
        `"cross_attention"` (a list of `(B, 2, S, N, K)`, the encoder's keys and values).
    """
    batch_size = ops.shape(inputs)[0]
    encoder_length = ops.shape(encoder_sequence)[1]
    x = inputs
    self_caches, cross_caches = [], []
    for block in blocks:
        attention = block.cross_attention
        num_heads, key_dim = attention.num_heads, attention.key_dim
        self_cache = ops.zeros(
            (batch_size, 2, cache_length, num_heads, key_dim), dtype=block.compute_dtype
        )  # (B, 2, L, N, K)
        cross_cache = ops.zeros(
            (batch_size, 2, encoder_length, num_heads, key_dim), dtype=block.compute_dtype
        )  # (B, 2, S, N, K)
        x, self_cache, cross_cache = block(
            x,
            encoder_sequence,
            encoder_padding_mask=encoder_padding_mask,
            self_attention_cache=self_cache,
            self_attention_cache_update_index=0,
            cross_attention_cache=cross_cache,
            cross_attention_cache_update_index=0,
            training=False,
        )
        self_caches.append(self_cache)
        cross_caches.append(cross_cache)
    return x, {"self_attention": self_caches, "cross_attention": cross_caches}


def decoder_stack_step(blocks, inputs, caches, index, encoder_padding_mask=None):
    """Feed one decoder position through `blocks`, reading and updating `caches`.

    Args:
        blocks: the blocks given to `prefill_decoder_stack`.
        inputs: float `(B, 1, D)`: the embedded token at decoder position `index`.
        caches: the dict returned by `prefill_decoder_stack` (or by a previous step).
        index: int32 scalar tensor. Decoder position of `inputs` (its self-attention cache
            slot); it attends to positions `0..index`.
        encoder_padding_mask: optional bool `(B, S)`, `True` = real encoder position.

    Returns:
        `(outputs, caches)`: outputs `(B, 1, D)` and the caches with position `index`
        written (the cross-attention caches unchanged).
    """
    x = inputs
    self_caches = []
    for block, self_cache, cross_cache in zip(
        blocks, caches["self_attention"], caches["cross_attention"]
    ):
        x, self_cache, _ = block(
            x,
            encoder_padding_mask=encoder_padding_mask,
            self_attention_cache=self_cache,
            self_attention_cache_update_index=index,
            cross_attention_cache=cross_cache,
            cross_attention_cache_update_index=None,
            training=False,
        )
        self_caches.append(self_cache)
    return x, {"self_attention": self_caches, "cross_attention": list(caches["cross_attention"])}
