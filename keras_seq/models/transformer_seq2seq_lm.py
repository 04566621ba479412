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
from keras_seq.models.text_support import generate_from_text
from keras_seq.models.text_support import is_text
from keras_seq.models.text_support import resolve_tokenizer
from keras_seq.models.transformer_seq2seq_backbone import TransformerSeq2SeqBackbone
from keras_seq.utils.validation import validate_bool


class LogitsBias(keras.layers.Layer):
    """Adds a learned bias `(vocabulary_size,)` to logits (Marian's `final_logits_bias`)."""

    def __init__(self, vocabulary_size, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(self.vocabulary_size,), initializer="zeros", name="bias")

    def call(self, logits):
        return ops.add(logits, ops.cast(self.bias, logits.dtype))

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size}


def _validate_token_ids(name, value, vocabulary_size, allow_none):
    if value is None and allow_none:
        return
    values = value if name == "suppressed_token_ids" else [value]
    if not isinstance(values, (list, tuple)) or any(
        isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < vocabulary_size
        for item in values
    ):
        raise ValueError(
            f"`{name}` must be {'a list of ' if name == 'suppressed_token_ids' else ''}"
            f"int token id(s) in [0, {vocabulary_size}). Received: {name}={value!r}"
        )


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
    output matrix otherwise, plus a learned bias with `use_logits_bias=True` (Marian's
    `final_logits_bias`). Padded target positions (the backbone's `padding_token_id`, 0
    unless told) give meaningless logits; weight them out of the loss, e.g. with
    `keras_seq.losses.SequenceCrossEntropy(ignore_index=0)`.

    `generate()` (every strategy of `keras_seq.generation.generate`) encodes the source once,
    computes each decoder block's cross-attention keys and values once, feeds
    `start_token_id`, then one token per step through the self-attention caches. The output
    holds the new tokens only (the prefix is empty): `(batch_size, max_new_tokens)`. With a
    `tokenizer` (e.g. `MarianTokenizer`), `generate` also takes a string or a list of strings
    and returns the translations, special tokens removed (Hugging Face's `generate` then
    `decode(skip_special_tokens=True)`); sources of different lengths are generated in groups
    of equal length, never padded.

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
        tokenizer: a tokenizer layer (`keras_seq.models.MarianTokenizer`, a keras-hub
            tokenizer) or its config, or `None`; set by `from_preset` from a checkpoint's
            tokenizer files. Defaults to `None`.
        use_logits_bias: bool. Add a learned `(target_vocabulary_size,)` bias to the logits.
            Defaults to `False`.
        suppressed_token_ids: list of ints. Tokens `generate()` never produces (their logits
            are set to -inf while decoding; the forward pass is unchanged), e.g. Marian's
            padding token (Hugging Face's `bad_words_ids`). Defaults to `()`.
        forced_end_token_id: int or `None`. In `generate()`, a sequence that has not ended
            by its last step gets this token there (Hugging Face's `forced_eos_token_id`:
            the only possible token at the last step, for every strategy); it is also the
            default `stop_token_id`. Defaults to `None`.
        **kwargs: `generation_defaults` (a dict of `generate()` arguments used when a call
            leaves them out, saved with the model; `from_preset` sets it from a
            checkpoint's generation config) and base model arguments (`name`, `dtype`);
            `dtype` defaults to the backbone's dtype policy.

    Call arguments:
        inputs: dict with `"source"`, int `(batch_size, source_length)`, and `"target_in"`,
            int `(batch_size, target_length)`: the target shifted right (`start_token_id`
            first, the last token dropped). The backbone's `padding_token_id` (0 unless
            told) is padding.
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

    # `GenerativeTask`'s argument, taken through `**kwargs` (see `constructor_arguments`).
    forwarded_arguments = ("generation_defaults",)
    pads_sources_right = True  # its encoder masks `padding_token_id`

    @property
    def source_padding_token_id(self):
        return self.backbone.padding_token_id

    backbone_cls = TransformerSeq2SeqBackbone

    def __init__(
        self,
        backbone,
        start_token_id=1,
        tokenizer=None,
        use_logits_bias=False,
        suppressed_token_ids=(),
        forced_end_token_id=None,
        **kwargs,
    ):
        backbone = self.resolve_backbone(
            backbone,
            _is_transformer_seq2seq_backbone,
            "a TransformerSeq2SeqBackbone (or a backbone with its interface)",
        )
        vocabulary_size = backbone.token_embedding.input_dim
        validate_start_token_id(start_token_id, vocabulary_size)
        validate_bool("use_logits_bias", use_logits_bias)
        suppressed_token_ids = list(suppressed_token_ids)
        _validate_token_ids("suppressed_token_ids", suppressed_token_ids, vocabulary_size, False)
        _validate_token_ids("forced_end_token_id", forced_end_token_id, vocabulary_size, True)
        kwargs.setdefault("dtype", backbone.dtype_policy)
        # Keras would name it "transformer_seq2_seq_lm".
        kwargs.setdefault("name", default_name("transformer_seq2seq_lm"))

        # === Functional model ===
        inputs = backbone.input
        hidden = backbone(inputs)["decoder_sequence_output"]  # (B, T, D)
        logits_bias = None
        if use_logits_bias:
            logits_bias = LogitsBias(vocabulary_size, dtype=kwargs["dtype"], name="logits_bias")
        logits = self._logits_of(backbone, hidden, kwargs["dtype"], logits_bias)  # (B, T, V)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.start_token_id = start_token_id
        self.tokenizer = resolve_tokenizer(tokenizer)
        self.logits_bias = logits_bias
        self.use_logits_bias = use_logits_bias
        self.suppressed_token_ids = suppressed_token_ids
        self.forced_end_token_id = forced_end_token_id

    @staticmethod
    def _logits_of(backbone, hidden, dtype, logits_bias=None):
        # Keras' Embedding does not autocast: inside the autocast scope of a mixed-precision
        # model it reads its float32 table, so the reverse projection would return float32
        # there and the compute dtype elsewhere. Logits stay in the compute dtype.
        logits = ops.cast(
            backbone.token_embedding(hidden, reverse=True),
            keras.dtype_policies.get(dtype).compute_dtype,
        )
        return logits if logits_bias is None else logits_bias(logits)

    def _generation_logits(self, hidden, position):
        """Logits of output position `position` (an int or int32 scalar) while decoding:
        the suppressed tokens at -inf, and only `forced_end_token_id` possible at the last
        position."""
        logits = self._logits_of(self.backbone, hidden, self.dtype_policy, self.logits_bias)
        if self.suppressed_token_ids:
            vocabulary_size = ops.shape(logits)[-1]
            suppressed = ops.any(
                ops.equal(
                    ops.arange(vocabulary_size)[:, None],
                    ops.convert_to_tensor(self.suppressed_token_ids, "int32")[None, :],
                ),
                axis=-1,
            )  # (V,)
            logits = ops.where(suppressed, ops.cast(float("-inf"), logits.dtype), logits)
        if self.forced_end_token_id is not None:
            # As Hugging Face's `forced_eos_token_id`: the end token at the last position.
            only_end = ops.where(
                ops.equal(ops.arange(ops.shape(logits)[-1]), self.forced_end_token_id),
                ops.cast(0.0, logits.dtype),
                ops.cast(float("-inf"), logits.dtype),
            )  # (V,)
            is_last = ops.equal(ops.cast(position, "int32"), self._last_position)
            logits = ops.where(is_last, ops.broadcast_to(only_end, ops.shape(logits)), logits)
        return logits

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
        # Read while tracing `call_with_cache` (one decoding function per `max_new_tokens`).
        object.__setattr__(self, "_last_position", max_new_tokens - 1)
        logits = self._generation_logits(hidden[:, -1:], 0)[:, 0]
        prefix = ops.zeros((batch_size, 0), dtype="int32")  # (B, 0): no prompt in the output
        return prefix, logits, cache

    def call_with_cache(self, token_ids, cache, index):
        # Output position `index` is decoder position `index + 1`: the start token is at 0.
        position = ops.cast(index, "int32") + 1
        hidden, cache = self.backbone.call_with_cache(
            ops.cast(token_ids, "int32")[:, None], cache, position
        )  # (B, 1, D)
        return self._generation_logits(hidden, position)[:, 0], cache  # (B, V)

    def generate(self, inputs, max_new_tokens=None, strategy=None, **kwargs):
        """Generate target token ids from source ids `(batch_size, source_length)` (see
        `keras_seq.generation.generate` for every argument), or, with a `tokenizer`,
        translations from a string or a list of strings. `stop_token_id` defaults to
        `forced_end_token_id` (or the tokenizer's end token) and `pad_token_id` to the
        backbone's `padding_token_id`. Arguments left out come from `generation_defaults`
        first (`from_preset` sets them from a checkpoint's generation config)."""
        max_new_tokens, strategy, kwargs = self.resolve_generate_arguments(
            max_new_tokens, strategy, kwargs
        )
        end_token_id = self.forced_end_token_id
        if end_token_id is None and self.tokenizer is not None:
            end_token_id = getattr(self.tokenizer, "end_token_id", None)
        if end_token_id is not None:
            kwargs.setdefault("stop_token_id", end_token_id)
        kwargs.setdefault("pad_token_id", getattr(self.backbone, "padding_token_id", 0))
        if not is_text(inputs):
            return super().generate(inputs, max_new_tokens, strategy=strategy, **kwargs)
        return generate_from_text(
            self,
            inputs,
            None,
            generate_rows=lambda rows: self._generate_sources(
                rows, max_new_tokens, strategy, kwargs
            ),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "start_token_id": self.start_token_id,
            "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
            "use_logits_bias": self.use_logits_bias,
            "suppressed_token_ids": list(self.suppressed_token_ids),
            "forced_end_token_id": self.forced_end_token_id,
        }
