"""The protocol a model implements to be decoded by `keras_seq.generation`.

A generative model has two methods (keras_seq's models implement them; a user's model that has
them decodes with every strategy here too):

- `prefill(inputs, max_new_tokens) -> (prefix, logits, cache)`: runs the prompt (or the
  source sequence, or the image) once. `prefix` is the int32 `(batch_size, prefix_length)`
  start of the output (the prompt of a language model; `(batch_size, 0)` for a seq2seq
  model), `logits` the float `(batch_size, vocabulary_size)` scores of the first new token,
  and `cache` any nested structure of tensors whose first axis is the batch: key/value caches
  sized for `prefix_length + max_new_tokens` positions, recurrent states, encoder outputs.
- `call_with_cache(token_ids, cache, index) -> (logits, cache)`: feeds one token per sequence,
  int32 `(batch_size,)`, at output position `index` (an int32 scalar tensor,
  `prefix_length + step`) and returns the scores of the next token and the updated cache.

Speculative decoding (`keras_seq.generation.speculative_generate`) also needs
`call_with_cache_tokens(token_ids, cache, index) -> (logits, cache)`: int32 `(batch_size,
num_tokens)` at positions `[index, index + num_tokens)`, logits `(batch_size, num_tokens,
vocabulary_size)`; a later call at a smaller `index` overwrites what it wrote after that
position (`GPTCausalLM` has it).

Decoders only ever reorder, repeat and carry the cache; what is in it is the model's business.
"""


def check_generative(model):
    """Raise `TypeError` unless `model` implements the generation protocol."""
    missing = [
        name for name in ("prefill", "call_with_cache") if not callable(getattr(model, name, None))
    ]
    if missing:
        raise TypeError(
            "The model cannot be decoded: it lacks the generation protocol method(s) "
            f"{missing} (see keras_seq.generation.protocol). Received: model of type "
            f"{type(model).__name__}"
        )
