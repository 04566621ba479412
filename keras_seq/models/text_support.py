"""What text task models share: an attached tokenizer, text in and text out of `generate`."""

import keras
import numpy as np


def resolve_tokenizer(tokenizer):
    """`tokenizer` as a Keras layer (an instance or its serialized config), or `None`.

    Tokenizers are keras-hub's (`keras_hub.tokenizers.*`): Keras layers that run in
    `tf.data` pipelines and save their vocabularies as assets with `.keras` files and presets.
    """
    if isinstance(tokenizer, dict):
        tokenizer = keras.saving.deserialize_keras_object(tokenizer)
    if tokenizer is not None and not (
        isinstance(tokenizer, keras.layers.Layer)
        and hasattr(tokenizer, "tokenize")
        and hasattr(tokenizer, "detokenize")
    ):
        raise TypeError(
            "`tokenizer` must be a tokenizer layer with `tokenize` and `detokenize` (a "
            "keras_hub.tokenizers.Tokenizer), its serialized config, or None. Received: "
            f"tokenizer={tokenizer!r}"
        )
    return tokenizer


def is_text(inputs):
    """Whether `inputs` is a string or a non-empty list / tuple of strings."""
    if isinstance(inputs, str):
        return True
    return (
        isinstance(inputs, (list, tuple))
        and len(inputs) > 0
        and all(isinstance(item, str) for item in inputs)
    )


def require_tokenizer(model, what):
    if getattr(model, "tokenizer", None) is None:
        raise ValueError(
            f"{type(model).__name__}.{what} got text, but the model has no tokenizer: load it "
            "from a checkpoint with tokenizer files, or pass `tokenizer=` to the model; or "
            "pass token ids."
        )
    return model.tokenizer


def tokenize_texts(tokenizer, texts):
    """Each string's token ids, a list of Python lists (no padding, no truncation)."""
    ids = tokenizer.tokenize(list(texts))
    if hasattr(ids, "to_list"):  # A tf.RaggedTensor.
        rows = ids.to_list()
    elif isinstance(ids, (list, tuple)):  # keras-hub's lists for Python inputs.
        rows = ids
    else:
        rows = np.asarray(ids).tolist()
    return [[int(token) for token in np.asarray(row).reshape(-1)] for row in rows]


def detokenize_without_special_tokens(tokenizer, rows):
    """Each row of ids as a string, special tokens removed wherever they are (as Hugging
    Face's `decode(..., skip_special_tokens=True)` does)."""
    special = set(getattr(tokenizer, "special_token_ids", None) or [])
    texts = []
    for row in rows:
        kept = [int(token) for token in row if int(token) not in special]
        if not kept:
            texts.append("")
            continue
        text = tokenizer.detokenize(np.asarray([kept], "int32"))
        text = np.asarray(text).reshape(-1)[0]
        texts.append(text.decode("utf-8") if isinstance(text, bytes) else str(text))
    return texts


def generate_grouped(generate_ids, prompts):
    """Run `generate_ids(batch)` (int32 `(batch_size, length)` -> ids) once per prompt
    length, so that no prompt is padded; the outputs in the prompts' order. When
    `generate_ids` returns several rows per prompt (`num_return_sequences`, each prompt's
    rows next to each other), they stay together in that order."""
    outputs = [None] * len(prompts)
    lengths = sorted({len(prompt) for prompt in prompts})
    for length in lengths:
        indices = [i for i, prompt in enumerate(prompts) if len(prompt) == length]
        batch = np.asarray([prompts[i] for i in indices], "int32").reshape(len(indices), length)
        generated = np.asarray(generate_ids(batch))
        per_prompt = len(generated) // len(indices)
        for position, index in enumerate(indices):
            outputs[index] = generated[position * per_prompt : (position + 1) * per_prompt]
    return [row for rows in outputs for row in rows]


def generate_from_text(model, inputs, generate_ids, check_prompt=None, generate_rows=None):
    """The text path of a generative model's `generate`: tokenize `inputs` (a string or a
    list of strings) with `model.tokenizer`, check each prompt with `check_prompt(text,
    ids)` if given, generate with `generate_rows(prompts)` (lists of ids in, lists out) if
    given, else `generate_ids(batch)` per prompt length (`generate_grouped`), and decode
    without special tokens; a string for a string, a list for a list."""
    tokenizer = require_tokenizer(model, "generate()")
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    prompts = tokenize_texts(tokenizer, texts)
    if check_prompt is not None:
        for text, prompt in zip(texts, prompts):
            check_prompt(text, prompt)
    if generate_rows is not None:
        outputs = generate_rows(prompts)
    else:
        outputs = generate_grouped(generate_ids, prompts)
    decoded = detokenize_without_special_tokens(tokenizer, outputs)
    # One string in, one string out; several sequences per prompt come back as a list.
    return decoded[0] if isinstance(inputs, str) and len(decoded) == 1 else decoded
