"""GPTCausalLM: a language-model head (the tied token embedding) on a `GPTBackbone`.

Letter legend for shape comments: B batch, T tokens, P prompt length, N new tokens, V
vocabulary, D hidden width.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.generative_model import GenerativeTask
from keras_seq.models.generative_model import split_prompt_inputs
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.text_support import generate_from_text
from keras_seq.models.text_support import is_text
from keras_seq.models.text_support import require_tokenizer
from keras_seq.models.text_support import resolve_tokenizer


def _is_gpt_backbone(model):
    return (
        all(
            hasattr(model, name)
            for name in ("token_embedding", "prefill", "call_with_cache", "sequence_length")
        )
        and model.token_embedding is not None
    )


@keras_seq_export
class GPTCausalLM(GenerativeTask):
    """Causal language model: next-token logits through the backbone's tied token embedding.

    Logits at every position are the backbone's hidden states times the transposed token
    embedding (input and output embeddings are one matrix, as in GPT-2). What it adds over
    keras_hub's `GPT2CausalLM`: `generate()` with beam search and scores (keras_seq.generation),
    prefill over the prompt only (keras_hub runs the whole padded length), and one compiled
    decoding function per shape.

    Args:
        backbone: a `GPTBackbone`, or its config from `keras.saving.serialize_keras_object`; any
            backbone with the same inputs, a `token_embedding` with `reverse=True`, a
            `sequence_length`, and the `prefill` / `call_with_cache` methods of `GPTBackbone`
            plugs in. Its weights are shared, not copied.
        tokenizer: a keras-hub tokenizer (e.g. `keras_hub.models.GPT2Tokenizer`) or its
            config, or `None`; set by `from_preset` from a checkpoint's tokenizer files. With
            one, `generate` takes and returns strings. Defaults to `None`.
        **kwargs: `generation_defaults` (a dict of `generate()` arguments used when a call
            leaves them out, saved with the model; `from_preset` sets it from a
            checkpoint's generation config) and base model arguments (`name`, `dtype`);
            `dtype` defaults to the backbone's dtype policy.

    Call arguments:
        inputs: dict with `"token_ids"` int `(batch_size, length)` and `"padding_mask"`
            int or bool `(batch_size, length)`, nonzero / `True` for real tokens.

    Returns:
        Logits `(batch_size, length, vocabulary_size)` of the next token at every position.

    Example:
    ```python
    model = keras_seq.models.GPTCausalLM.from_preset("gpt_tiny", vocabulary_size=100)
    tokens = np.random.randint(1, 100, size=(2, 8))
    logits = model({"token_ids": tokens, "padding_mask": np.ones_like(tokens)})
    assert logits.shape == (2, 8, 100)
    completion = model.generate(tokens, max_new_tokens=4, strategy="beam", num_beams=3)
    assert completion.shape == (2, 12)
    ```

    References:
        - [Radford et al., 2019](https://openai.com/research/better-language-models)
    """

    # `GenerativeTask`'s argument, taken through `**kwargs` (see `constructor_arguments`).
    forwarded_arguments = ("generation_defaults",)
    pads_prompts_left = True

    backbone_cls = GPTBackbone

    def __init__(self, backbone, tokenizer=None, **kwargs):
        backbone = self.resolve_backbone(
            backbone, _is_gpt_backbone, "a GPTBackbone (or a backbone with its interface)"
        )
        kwargs.setdefault("dtype", backbone.dtype_policy)
        inputs = backbone.input
        hidden = backbone(inputs)  # (B, T, D)
        logits = self._logits_of(backbone, hidden, kwargs["dtype"])  # (B, T, V)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.backbone = backbone
        self.tokenizer = resolve_tokenizer(tokenizer)

    @staticmethod
    def _logits_of(backbone, hidden, dtype):
        # Inside the model's autocast scope, the tied float32 table would promote the logits
        # to float32; they stay in the compute dtype, as every other output.
        return ops.cast(
            backbone.token_embedding(hidden, reverse=True),
            keras.dtype_policies.get(dtype).compute_dtype,
        )

    def prefill(self, inputs, max_new_tokens):
        inputs, padding_mask = split_prompt_inputs(inputs, type(self).__name__)
        token_ids = ops.cast(inputs, "int32")  # (B, P)
        if len(token_ids.shape) != 2 or token_ids.shape[1] == 0:
            raise ValueError(
                "The prompt must be int token ids of shape (batch_size, prompt_length) with "
                f"prompt_length >= 1. Received: shape={tuple(token_ids.shape)}"
            )
        prompt_length = token_ids.shape[1]
        if padding_mask is None:
            sequence_length = self.backbone.sequence_length
            if prompt_length + max_new_tokens > sequence_length:
                raise ValueError(
                    "The prompt length plus `max_new_tokens` exceeds the model's "
                    f"`sequence_length` ({sequence_length}) learned positions. Received: "
                    f"prompt_length={prompt_length}, max_new_tokens={max_new_tokens}"
                )
            hidden, caches = self.backbone.prefill(token_ids, prompt_length + max_new_tokens)
        else:
            # Left-padded prompts of different lengths (`generate` pads them, and checks
            # each prompt's length plus `max_new_tokens` against the positions): each row
            # gets its own positions, and padded keys are masked.
            real = ops.cast(padding_mask, "bool")  # (B, P)
            offset = prompt_length - ops.sum(ops.cast(real, "int32"), axis=1)  # (B,)
            columns = ops.arange(prompt_length, dtype="int32")
            position_ids = ops.maximum(columns[None, :] - offset[:, None], 0)  # (B, P)
            # Keys: the cache's P + N slots; the new tokens' slots are real.
            key_mask = ops.concatenate(
                [real, ops.ones((ops.shape(real)[0], max_new_tokens), "bool")], axis=1
            )  # (B, P + N)
            # A padded query reads itself only, so that no softmax row is empty (the
            # causal mask hides the later slots).
            diagonal = ops.equal(
                columns[:, None], ops.arange(prompt_length + max_new_tokens, dtype="int32")
            )  # (P, P + N)
            attention_mask = ops.logical_or(key_mask[:, None, :], diagonal[None])
            hidden, caches = self.backbone.prefill(
                token_ids,
                prompt_length + max_new_tokens,
                position_ids=position_ids,
                attention_mask=attention_mask,
            )
            caches = {"layers": caches, "key_mask": key_mask, "offset": offset}
        logits = self.backbone.token_embedding(hidden[:, -1:, :], reverse=True)[:, 0, :]  # (B, V)
        return token_ids, logits, caches

    def call_with_cache(self, token_ids, cache, index):
        if isinstance(cache, dict):  # Left-padded prompts (see `prefill`).
            position_ids = (ops.cast(index, "int32") - cache["offset"])[:, None]  # (B, 1)
            hidden, layers = self.backbone.call_with_cache(
                token_ids[:, None],
                cache["layers"],
                index,
                position_ids=position_ids,
                attention_mask=cache["key_mask"][:, None, :],
            )
            cache = {**cache, "layers": layers}
        else:
            hidden, cache = self.backbone.call_with_cache(token_ids[:, None], cache, index)
        return self.backbone.token_embedding(hidden, reverse=True)[:, 0, :], cache

    def generate(self, inputs, max_new_tokens=None, strategy=None, **kwargs):
        """Continue prompts (see `keras_seq.generation.generate` for every argument).

        `inputs` may be:
        - token ids `(batch_size, prompt_length)`: prompts of one length; returns the
          prompts and their continuations, `(batch_size, prompt_length + max_new_tokens)`;
        - a list of token-id lists of any lengths: returns a list of lists, each prompt
          followed by its continuation (ending with the stop token, if any);
        - a dict `{"token_ids", "padding_mask"}` padded on either side: returns a dict of
          the same keys, each row its prompt and continuation, then `pad_token_id` filler
          (`padding_mask` False);
        - with a `tokenizer`, a string or list of strings: returns the same, each prompt
          followed by its continuation, special tokens removed (Hugging Face's `generate`
          then `decode(skip_special_tokens=True)`); generation stops at the tokenizer's end
          token (`stop_token_id`) unless told otherwise.

        With `num_return_sequences=R`, every form returns `R` rows per prompt, side by side
        (a list of `R` strings for one string).

        Prompts of different lengths run in one batch, padded on the left to a bucket length
        (the next power of two, at least 8): each row gets its own positions and padded
        keys are masked, so each row equals generating its prompt alone (exactly, for greedy
        and beam search), and the compiled decoding function is reused by every batch of
        the same size whose longest prompt falls in the same bucket. Arguments left out
        come from `generation_defaults`."""
        max_new_tokens, strategy, kwargs = self.resolve_generate_arguments(
            max_new_tokens, strategy, kwargs
        )
        if is_text(inputs):
            end_token_id = getattr(require_tokenizer(self, "generate()"), "end_token_id", None)
            if end_token_id is not None:
                kwargs.setdefault("stop_token_id", end_token_id)
                kwargs.setdefault("pad_token_id", end_token_id)
            return generate_from_text(
                self,
                inputs,
                None,
                check_prompt=_check_prompt,
                generate_rows=lambda rows: self._generate_rows(
                    rows, max_new_tokens, strategy, kwargs
                ),
            )
        return super().generate(inputs, max_new_tokens, strategy=strategy, **kwargs)

    def check_prompt_room(self, longest, max_new_tokens):
        sequence_length = self.backbone.sequence_length
        if longest + max_new_tokens > sequence_length:
            raise ValueError(
                "The longest prompt plus `max_new_tokens` exceeds the model's "
                f"`sequence_length` ({sequence_length}) learned positions. Received: "
                f"a prompt of {longest} tokens, max_new_tokens={max_new_tokens}"
            )

    def get_config(self):
        return {
            **super().get_config(),
            "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
        }

    def call_with_cache_tokens(self, token_ids, cache, index):
        """Several tokens per sequence through the key/value cache, in one call.

        `token_ids` int `(batch_size, num_tokens)` go to cache positions `[index, index +
        num_tokens)` (`index` an int or int32 scalar tensor), each attending to the cache
        before it and to the earlier ones of the call. Returns `(logits, cache)`: logits
        `(batch_size, num_tokens, vocabulary_size)` of the token after each one (what
        `num_tokens` calls of `call_with_cache` give one by one) and the updated cache.
        Slots after the last one written are never read (the causal mask hides them), so a
        caller drops tokens it does not keep by writing at a smaller `index` next time
        (speculative decoding, `keras_seq.generation.speculative_generate`).

        Takes the cache of `prefill` on prompts of one length (a list of per-block caches),
        not the one of left-padded prompts of different lengths."""
        if isinstance(cache, dict):
            raise ValueError(
                "`call_with_cache_tokens` takes the cache of prompts of one length (a list of "
                "per-block caches); left-padded prompts of different lengths are not "
                f"supported. Received: a cache with keys {sorted(cache)}"
            )
        token_ids = ops.cast(token_ids, "int32")  # (B, T)
        if len(token_ids.shape) != 2:
            raise ValueError(
                "`token_ids` must be int token ids of shape (batch_size, num_tokens). "
                f"Received: shape={tuple(token_ids.shape)}"
            )
        hidden, cache = self.backbone.call_with_cache(token_ids, cache, index)  # (B, T, D)
        return self.backbone.token_embedding(hidden, reverse=True), cache  # (B, T, V)


def _check_prompt(text, ids):
    if not ids:
        raise ValueError(
            "Every prompt must have at least one token (GPT models have no start token to "
            f"begin from). Received: an empty prompt {text!r}"
        )
