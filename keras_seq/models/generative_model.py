"""The base of keras_seq's generative task models: `generate()` over the generation protocol."""

import functools

import numpy as np

from keras_seq import generation
from keras_seq.generation.generate import apply_generation_defaults
from keras_seq.generation.generate import validate_generation_defaults
from keras_seq.generation.logits_processing import stop_ids
from keras_seq.generation.prompts import bucket_length
from keras_seq.generation.prompts import check_rows
from keras_seq.generation.prompts import continuations
from keras_seq.generation.prompts import is_token_id_rows
from keras_seq.generation.prompts import left_pad
from keras_seq.generation.prompts import rows_from_padded
from keras_seq.generation.stop_strings import check_stop_strings
from keras_seq.generation.stop_strings import stop_matcher_for
from keras_seq.generation.stop_strings import stop_string_end
from keras_seq.models.task import Task
from keras_seq.models.text_support import generate_grouped
from keras_seq.utils.value_checks import check_token_ids

# The entry of a dict of `generate` inputs that holds the prompt (language models) or the
# source (encoder-decoders) token ids, as their `prefill` reads them.
_TOKEN_ID_KEYS = ("token_ids", "source")


def split_prompt_inputs(inputs, model_name):
    """`(token_ids, padding_mask)` of what a language model's `prefill` takes: prompt token
    ids, or a dict with `"token_ids"` and optionally `"padding_mask"` (prompts padded on the
    left); `padding_mask` is `None` without one."""
    if not isinstance(inputs, dict):
        return inputs, None
    unknown = set(inputs) - {"token_ids", "padding_mask"}
    if unknown or "token_ids" not in inputs:
        raise ValueError(
            f"{model_name}.generate() takes the prompt token ids, or a dict with 'token_ids' "
            f"and optionally 'padding_mask'. Received keys: {sorted(inputs)}"
        )
    return inputs["token_ids"], inputs.get("padding_mask")


class GenerativeTask(Task):
    """Base of the task models that generate token sequences (not exported).

    A subclass implements the two methods of `keras_seq.generation.protocol`:
    `prefill(inputs, max_new_tokens) -> (prefix, logits, cache)` and
    `call_with_cache(token_ids, cache, index) -> (logits, cache)`, built from the same layers
    as its functional graph; `generate()` then decodes with every strategy of
    `keras_seq.generation.generate`, whose docstring lists the arguments.

    Every generative task takes `generation_defaults`, a dict of `generate()` arguments
    (`strategy`, `max_new_tokens`, `stop_token_id`, and the strategies' options such as
    `num_beams`, `length_penalty`, `early_stopping`, `temperature`, `top_k`, `top_p`) that
    fill in what a call leaves out; an option applies only when the call's strategy reads
    it. It is saved with the model. `from_preset` sets it from a Hugging Face checkpoint's
    `generation_config.json` (e.g. Marian's beam search with 4 beams), so `generate(texts)`
    decodes as the checkpoint's authors configured it; Hugging Face keeps the same
    defaults in `model.generation_config`.

    Token-id inputs (a prompt, or an encoder-decoder's source) are checked before decoding,
    and by `keras_seq.utils.check_fit_data` for `fit` / `evaluate` data (`fit` and the
    train / test steps stay Keras' own): float ids are a `TypeError`, ids outside the
    backbone's (source) vocabulary a `ValueError` naming the id (an embedding lookup would
    clamp or wrap them silently); see `keras_seq.utils.value_checks`.

    A list of prompts of different lengths runs in one batch on a language model whose
    `prefill` takes `{"token_ids", "padding_mask"}` with the prompts padded on the left
    (class attribute `pads_prompts_left = True`: GPT gives each row its own positions and
    masks the padded keys, an RNN carries its initial state over the padding): the batch is
    padded to a power-of-two bucket, so the compiled loop is reused by every batch whose
    longest prompt falls in the same bucket, and each row equals its prompt alone. An
    encoder-decoder whose encoder masks a padding token (`pads_sources_right = True`,
    `source_padding_token_id`) takes sources of different lengths the same way, padded on
    the right (the transformer and RNN encoder-decoders). Other tasks generate one group per
    length.
    """

    pads_prompts_left = False
    pads_sources_right = False
    source_padding_token_id = None

    def __init__(self, *args, generation_defaults=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.generation_defaults = validate_generation_defaults(generation_defaults)

    def prefill(self, inputs, max_new_tokens):
        raise NotImplementedError(f"{type(self).__name__} does not implement `prefill`.")

    def call_with_cache(self, token_ids, cache, index):
        raise NotImplementedError(f"{type(self).__name__} does not implement `call_with_cache`.")

    def _input_vocabulary_size(self):
        """The number of ids the token input of `generate` takes (the source vocabulary of
        an encoder-decoder), read from the backbone; `None` when the inputs are not token
        ids (images) or the backbone does not say."""
        size = getattr(self.backbone, "source_vocabulary_size", None)
        return size if size is not None else getattr(self.backbone, "vocabulary_size", None)

    def check_token_inputs(self, inputs):
        """`inputs` (what `generate` or `fit` takes) with their token ids checked
        (`keras_seq.utils.value_checks.check_token_ids`: integers in the backbone's (source)
        vocabulary), else unchanged (images, text)."""
        vocabulary_size = self._input_vocabulary_size()
        if vocabulary_size is None or isinstance(inputs, str):
            return inputs
        if isinstance(inputs, dict):
            keys = [key for key in _TOKEN_ID_KEYS if key in inputs]
            if not keys:
                return inputs  # `prefill` names the keys it expects
            checked = check_token_ids(f"inputs['{keys[0]}']", inputs[keys[0]], vocabulary_size)
            return {**inputs, keys[0]: checked}
        if isinstance(inputs, (list, tuple)) and any(isinstance(x, str) for x in inputs):
            return inputs  # text: the tokenizer's ids come back through here
        return check_token_ids("inputs", inputs, vocabulary_size)

    def resolve_generate_arguments(self, max_new_tokens, strategy, kwargs):
        """`(max_new_tokens, strategy, kwargs)` of a `generate()` call with the model's
        `generation_defaults` filling what the call left out."""
        max_new_tokens, strategy, kwargs = apply_generation_defaults(
            dict(self.generation_defaults), max_new_tokens, strategy, kwargs
        )
        if kwargs.get("stop_strings") is not None and kwargs.get("tokenizer") is None:
            kwargs["tokenizer"] = getattr(self, "tokenizer", None)  # matched on its tokens
        return max_new_tokens, strategy, kwargs

    def stop_string_end(self, kwargs):
        """`None`, or for a call with `stop_strings`, a function `(prompt, new) -> index`
        of the new token a stop string ends in (`None` if none): where a list output is
        cut, as the compiled loop stopped."""
        if kwargs.get("stop_strings") is None or kwargs.get("tokenizer") is None:
            return None
        stop_strings = check_stop_strings(kwargs["stop_strings"])
        _, pieces = stop_matcher_for(kwargs["tokenizer"], stop_strings)
        return functools.partial(stop_string_end, pieces, stop_strings=stop_strings)

    def generate(self, inputs, max_new_tokens=None, strategy=None, **kwargs):
        """Generate token ids; see `keras_seq.generation.generate` for every argument.
        Arguments left out come from `generation_defaults`, then `generate`'s defaults.

        A list of token-id lists of different lengths (prompts, or an encoder-decoder's
        sources) returns a list of lists: each row's output (a language model's prompt and
        continuation, an encoder-decoder's new tokens), ending with its stop token; each
        equals its prompt alone (one left-padded batch, or one group per length: see the
        class docstring). With `pads_prompts_left`, a dict `{"token_ids", "padding_mask"}`
        padded on either side returns a dict of the same keys, each row its prompt and
        continuation, then `pad_token_id` filler (`padding_mask` False)."""
        max_new_tokens, strategy, kwargs = self.resolve_generate_arguments(
            max_new_tokens, strategy, kwargs
        )
        if self.pads_sources_right and is_token_id_rows(inputs):
            return self._generate_sources(check_rows(inputs), max_new_tokens, strategy, kwargs)
        if self.pads_prompts_left and is_token_id_rows(inputs):
            return self._generate_rows(check_rows(inputs), max_new_tokens, strategy, kwargs)
        if self.pads_prompts_left and isinstance(inputs, dict) and "padding_mask" in inputs:
            rows = rows_from_padded(inputs.get("token_ids"), inputs["padding_mask"])
            outputs = self._generate_rows(rows, max_new_tokens, strategy, kwargs)
            pad = kwargs.get("pad_token_id", 0) or 0
            width = max(len(row) for row in rows) + max_new_tokens
            token_ids = np.full((len(outputs), width), pad, dtype="int32")
            padding_mask = np.zeros((len(outputs), width), dtype=bool)
            for index, row in enumerate(outputs):
                token_ids[index, : len(row)] = row
                padding_mask[index, : len(row)] = True
            return {"token_ids": token_ids, "padding_mask": padding_mask}
        if is_token_id_rows(inputs):
            if kwargs.get("streamer") is not None:
                raise ValueError(
                    f"{type(self).__name__} generates a list of prompts of any lengths one "
                    "length at a time: pass prompts of one length as an array for `streamer`. "
                    "Received: a list"
                )
            rows = check_rows(inputs)
            self._check_rows(rows, kwargs)
            stops = stop_ids(kwargs.get("stop_token_id"), kwargs.get("stop_token_ids"))
            outputs = []
            generated_rows = generate_grouped(
                lambda batch: generation.generate(
                    self, batch, max_new_tokens, strategy=strategy, **kwargs
                ),
                rows,
            )
            for generated in generated_rows:
                prefix_length = len(generated) - max_new_tokens
                prefix = [list(generated[:prefix_length])]
                outputs.append(
                    continuations(
                        [generated], prefix, prefix_length, stops, self.stop_string_end(kwargs)
                    )[0]
                )
            return outputs
        self.check_token_inputs(inputs)
        return generation.generate(self, inputs, max_new_tokens, strategy=strategy, **kwargs)

    def check_prompt_room(self, longest, max_new_tokens):
        """Raise when the longest prompt plus `max_new_tokens` does not fit the model (a
        model with learned positions overrides it)."""

    def _check_rows(self, rows, kwargs):
        """The token ids of each row of a list input checked; lists come back as lists of
        ids, without scores."""
        if kwargs.get("return_scores"):
            raise ValueError(
                "`return_scores` returns arrays: pass prompts (sources) of one length as an "
                f"array for it. Received: return_scores={kwargs['return_scores']!r} with a "
                "list or a padded dict of prompts"
            )
        for row in rows:
            self.check_token_inputs(np.asarray([row], "int32"))

    def _generate_rows(self, rows, max_new_tokens, strategy, kwargs):
        """Prompts of any lengths (lists of ids) -> each prompt and its continuation, in one
        left-padded batch (`pads_prompts_left` models)."""
        self._check_rows(rows, kwargs)
        longest = max(len(row) for row in rows)
        self.check_prompt_room(longest, max_new_tokens)
        if len({len(row) for row in rows}) == 1:
            batch = np.asarray(rows, dtype="int32")
            generated = generation.generate(
                self, batch, max_new_tokens, strategy=strategy, **kwargs
            )
            length = longest
        else:
            length = bucket_length(longest)
            token_ids, padding_mask = left_pad(rows, length, kwargs.get("pad_token_id") or 0)
            generated = generation.generate(
                self,
                {"token_ids": token_ids, "padding_mask": padding_mask},
                max_new_tokens,
                strategy=strategy,
                **kwargs,
            )
        stops = stop_ids(kwargs.get("stop_token_id"), kwargs.get("stop_token_ids"))
        copies = kwargs.get("num_return_sequences") or 1  # each prompt's rows side by side
        prompts = [row for row in rows for _ in range(copies)]
        return continuations(generated, prompts, length, stops, self.stop_string_end(kwargs))

    def _generate_sources(self, rows, max_new_tokens, strategy, kwargs):
        """Sources of any lengths (lists of ids) -> each source's new tokens, in one batch
        padded on the right with `source_padding_token_id` (`pads_sources_right` models)."""
        self._check_rows(rows, kwargs)
        lengths = {len(row) for row in rows}
        length = max(lengths) if len(lengths) == 1 else bucket_length(max(lengths))
        limit = getattr(self.backbone, "max_sequence_length", None)  # learned positions
        if limit is not None:
            length = max(min(length, limit), max(lengths))
        batch = np.full((len(rows), length), self.source_padding_token_id, dtype="int32")
        for index, row in enumerate(rows):
            batch[index, : len(row)] = row
        generated = generation.generate(self, batch, max_new_tokens, strategy=strategy, **kwargs)
        stops = stop_ids(kwargs.get("stop_token_id"), kwargs.get("stop_token_ids"))
        copies = kwargs.get("num_return_sequences") or 1
        empty = [[] for _ in range(len(rows) * copies)]  # the output holds new tokens only
        return continuations(generated, empty, 0, stops, self.stop_string_end(kwargs))

    def get_config(self):
        return {**super().get_config(), "generation_defaults": dict(self.generation_defaults)}
