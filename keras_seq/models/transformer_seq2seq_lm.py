"""TransformerSeq2SeqLM: the output projection and `generate()` on a `TransformerSeq2SeqBackbone`.

Letter legend for shape comments: B batch, S source length, T target length, D hidden width,
V target vocabulary size.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.default_name import default_name
from keras_seq.models.encoder_decoder_lm import has_decoder_sequence_output
from keras_seq.models.encoder_decoder_lm import source_token_ids
from keras_seq.models.encoder_decoder_lm import validate_start_token_id
from keras_seq.models.generative_model import GenerativeTask
from keras_seq.models.transformer_seq2seq_backbone import TransformerSeq2SeqBackbone


def _is_transformer_seq2seq_backbone(model):
    return (
        has_decoder_sequence_output(model)
        and all(
            hasattr(model, name)
            for name in ("token_embedding", "prefill", "call_with_cache", "max_sequence_length")
        )
        and model.token_embedding is not None
    )


@keras_seq_export
class TransformerSeq2SeqLM(GenerativeTask):
    """Encoder-decoder Transformer language model: next-token logits and cached `generate()`.

    Logits at every target position are the backbone's decoder output projected by the
    reverse of its target token embedding (`token_embedding(x, reverse=True)`): the transposed
    shared matrix with `share_embeddings=True` (Vaswani et al., section 3.4), the separate
    output matrix otherwise. Padded target positions (id 0) give meaningless logits; weight
    them out of the loss, e.g. with `keras_seq.losses.SequenceCrossEntropy(ignore_index=0)`.

    `generate()` (every strategy of `keras_seq.generation.generate`) encodes the source once,
    computes each decoder block's cross-attention keys and values once, feeds
    `start_token_id`, then one token per step through the self-attention caches. The output
    holds the new tokens only (the prefix is empty): `(batch_size, max_new_tokens)`.

    Args:
        backbone: a `TransformerSeq2SeqBackbone`, or its config from
            `keras.saving.serialize_keras_object`; any backbone with the same inputs, a
            `"decoder_sequence_output"` output, a `token_embedding` with `reverse=True`, a
            `max_sequence_length` (`None` for any length), and the `prefill` /
            `call_with_cache` methods of `TransformerSeq2SeqBackbone` plugs in. Its weights
            are shared, not copied.
        start_token_id: int in `[1, target_vocabulary_size)`. The token that starts every
            target: `generate()` feeds it first, and `target_in` should start with it; not
            the padding id 0. Defaults to `1`.
        **kwargs: base model arguments (`name`, `dtype`); `dtype` defaults to the backbone's
            dtype policy.

    Call arguments:
        inputs: dict with `"source"`, int `(batch_size, source_length)`, and `"target_in"`,
            int `(batch_size, target_length)`: the target shifted right (`start_token_id`
            first, the last token dropped). 0 is padding.
        training: bool or `None`.

    Returns:
        Float logits `(batch_size, target_length, target_vocabulary_size)`: position `t`
        scores the target token after `target_in[:, :t + 1]`.

    Example:
    ```python
    model = keras_seq.models.TransformerSeq2SeqLM.from_preset(
        "transformer_tiny", vocabulary_size=50
    )
    source = np.array([[5, 9, 12, 2, 0], [7, 3, 2, 0, 0]])
    target_in = np.array([[1, 8, 4], [1, 6, 0]])
    logits = model({"source": source, "target_in": target_in})  # (2, 3, 50)
    token_ids = model.generate(source, max_new_tokens=4, stop_token_id=2)  # (2, 4)
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Press and Wolf, 2017](https://arxiv.org/abs/1608.05859) (shared embeddings)
    """

    backbone_cls = TransformerSeq2SeqBackbone

    def __init__(self, backbone, start_token_id=1, **kwargs):
        backbone = self.resolve_backbone(
            backbone,
            _is_transformer_seq2seq_backbone,
            "a TransformerSeq2SeqBackbone (or a backbone with its interface)",
        )
        validate_start_token_id(start_token_id, backbone.token_embedding.input_dim)
        kwargs.setdefault("dtype", backbone.dtype_policy)
        # Keras would name it "transformer_seq2_seq_lm".
        kwargs.setdefault("name", default_name("transformer_seq2seq_lm"))

        # === Functional model ===
        inputs = backbone.input
        hidden = backbone(inputs)["decoder_sequence_output"]  # (B, T, D)
        logits = self._logits_of(backbone, hidden, kwargs["dtype"])  # (B, T, V)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.start_token_id = start_token_id

    @staticmethod
    def _logits_of(backbone, hidden, dtype):
        # Keras' Embedding does not autocast: inside the autocast scope of a mixed-precision
        # model it reads its float32 table, so the reverse projection would return float32
        # there and the compute dtype elsewhere. Logits stay in the compute dtype.
        return ops.cast(
            backbone.token_embedding(hidden, reverse=True),
            keras.dtype_policies.get(dtype).compute_dtype,
        )

    # === Generation protocol (keras_seq.generation.protocol) ===

    def prefill(self, inputs, max_new_tokens):
        source = source_token_ids(inputs, type(self).__name__)  # (B, S)
        max_positions = self.backbone.max_sequence_length
        if max_positions is not None and max_new_tokens > max_positions:
            raise ValueError(
                "`max_new_tokens` must not exceed `max_sequence_length` (the rows of the "
                f"learned position table). Received: max_new_tokens={max_new_tokens}, "
                f"max_sequence_length={max_positions}"
            )
        batch_size = ops.shape(source)[0]
        start = ops.full((batch_size, 1), self.start_token_id, dtype="int32")  # (B, 1)
        # Decoder positions: the start token, then a slot per new token.
        hidden, cache = self.backbone.prefill(source, start, cache_length=max_new_tokens + 1)
        logits = self._logits_of(self.backbone, hidden[:, -1:], self.dtype_policy)[:, 0]
        prefix = ops.zeros((batch_size, 0), dtype="int32")  # (B, 0): no prompt in the output
        return prefix, logits, cache

    def call_with_cache(self, token_ids, cache, index):
        # Output position `index` is decoder position `index + 1`: the start token is at 0.
        hidden, cache = self.backbone.call_with_cache(
            ops.cast(token_ids, "int32")[:, None], cache, ops.cast(index, "int32") + 1
        )  # (B, 1, D)
        return self._logits_of(self.backbone, hidden, self.dtype_policy)[:, 0], cache  # (B, V)

    def get_config(self):
        return {**super().get_config(), "start_token_id": self.start_token_id}
