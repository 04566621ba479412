"""The base of keras_seq's generative task models: `generate()` over the generation protocol."""

from keras_seq import generation
from keras_seq.generation.generate import apply_generation_defaults
from keras_seq.generation.generate import validate_generation_defaults
from keras_seq.models.task import Task


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
    """

    def __init__(self, *args, generation_defaults=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.generation_defaults = validate_generation_defaults(generation_defaults)

    def prefill(self, inputs, max_new_tokens):
        raise NotImplementedError(f"{type(self).__name__} does not implement `prefill`.")

    def call_with_cache(self, token_ids, cache, index):
        raise NotImplementedError(f"{type(self).__name__} does not implement `call_with_cache`.")

    def resolve_generate_arguments(self, max_new_tokens, strategy, kwargs):
        """`(max_new_tokens, strategy, kwargs)` of a `generate()` call with the model's
        `generation_defaults` filling what the call left out."""
        return apply_generation_defaults(
            dict(self.generation_defaults), max_new_tokens, strategy, kwargs
        )

    def generate(self, inputs, max_new_tokens=None, strategy=None, **kwargs):
        """Generate token ids; see `keras_seq.generation.generate` for every argument.
        Arguments left out come from `generation_defaults`, then `generate`'s defaults."""
        max_new_tokens, strategy, kwargs = self.resolve_generate_arguments(
            max_new_tokens, strategy, kwargs
        )
        return generation.generate(self, inputs, max_new_tokens, strategy=strategy, **kwargs)

    def get_config(self):
        return {**super().get_config(), "generation_defaults": dict(self.generation_defaults)}
