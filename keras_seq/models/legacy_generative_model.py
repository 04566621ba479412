"""The base of keras_seq's generative models: `generate()` over the generation protocol."""

from keras_seq import generation
from keras_seq.models.functional_model import FunctionalModel


class GenerativeModel(FunctionalModel):  # Until every family is a `GenerativeTask`.
    """Base of the models that generate token sequences (not exported).

    A subclass implements the two methods of `keras_seq.generation.protocol`:
    `prefill(inputs, max_new_tokens) -> (prefix, logits, cache)` and
    `call_with_cache(token_ids, cache, index) -> (logits, cache)`, built from the same layers
    as its functional graph; `generate()` then decodes with every strategy of
    `keras_seq.generation.generate`, whose docstring lists the arguments.
    """

    def prefill(self, inputs, max_new_tokens):
        raise NotImplementedError(f"{type(self).__name__} does not implement `prefill`.")

    def call_with_cache(self, token_ids, cache, index):
        raise NotImplementedError(f"{type(self).__name__} does not implement `call_with_cache`.")

    def generate(self, inputs, max_new_tokens, strategy="greedy", **kwargs):
        """Generate token ids; see `keras_seq.generation.generate` for every argument."""
        return generation.generate(self, inputs, max_new_tokens, strategy=strategy, **kwargs)
