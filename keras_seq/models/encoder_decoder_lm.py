"""What the encoder-decoder language models (`RNNSeq2SeqLM`, `TransformerSeq2SeqLM`) share:
the check of `start_token_id`, the backbone's decoder output and the source of `generate()`."""

import numbers

from keras import ops


def validate_start_token_id(start_token_id, target_vocabulary_size):
    """`start_token_id` must be an int in `[1, target_vocabulary_size)` (0 is padding)."""
    if (
        isinstance(start_token_id, bool)
        or not isinstance(start_token_id, numbers.Integral)
        or not 1 <= start_token_id < target_vocabulary_size
    ):
        raise ValueError(
            "`start_token_id` must be an int in [1, target_vocabulary_size) (0 is "
            f"padding). Received: start_token_id={start_token_id!r}, "
            f"target_vocabulary_size={target_vocabulary_size}"
        )
    return start_token_id


def has_decoder_sequence_output(model):
    """Whether `model` is a functional model whose outputs are a dict with a
    `"decoder_sequence_output"` (the features a language-model head reads)."""
    try:
        outputs = model.output
    except (AttributeError, ValueError):  # A model that was never called has no output.
        return False
    return isinstance(outputs, dict) and "decoder_sequence_output" in outputs


def source_token_ids(inputs, model_name):
    """The int32 source ids `(batch_size, source_length)` of `generate(inputs, ...)`: the ids
    themselves, or the `"source"` entry of a dict (such as the training inputs)."""
    if isinstance(inputs, dict):
        if "source" not in inputs:
            raise ValueError(
                f"`inputs` of {model_name}.generate must be the source token ids or a dict "
                f"with a 'source' entry. Received keys: {sorted(inputs)}"
            )
        inputs = inputs["source"]
    source = ops.cast(inputs, "int32")  # (B, S)
    if len(source.shape) != 2:
        raise ValueError(
            f"`inputs` of {model_name}.generate must be source token ids `(batch_size, "
            f"source_length)` or a dict with a 'source' entry. Received: shape "
            f"{tuple(source.shape)}"
        )
    return source
