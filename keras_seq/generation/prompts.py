"""Prompts of different lengths in one `generate()` call: bucketed left padding and back.

Decoder-only models continue each prompt from its last token, so a batch of prompts of
different lengths is padded on the left: every prompt ends at the same column, and the
first new token of every row is written at the same cache position. The model gives each
row its own positions (from 0 at its first real token) and masks the padded keys (see
`GPTCausalLM.prefill`), so a row's result equals generating that prompt alone. The padded
length is rounded up to a bucket (`bucket_length`), so the compiled decoding function is
traced once per bucket and batch size, not once per prompt length.
"""

import numpy as np

# The smallest bucket; buckets then double (8, 16, 32, ...).
MIN_BUCKET = 8


def bucket_length(length):
    """The padded length for prompts of at most `length` tokens: the next power of two, at
    least `MIN_BUCKET`. The cache then holds bucket + max_new_tokens slots; each row's
    positions start at its first real token, so the padding reads no position of the
    model's table."""
    bucket = MIN_BUCKET
    while bucket < length:
        bucket *= 2
    return bucket


def is_token_id_rows(inputs):
    """Whether `inputs` is a non-empty list / tuple of lists / tuples of ints (prompts of
    any lengths), as opposed to an array of one length, a dict or text."""
    if not isinstance(inputs, (list, tuple)) or not inputs:
        return False
    return all(isinstance(row, (list, tuple)) for row in inputs)


def check_rows(rows, name="inputs"):
    """`rows` as lists of Python ints; `TypeError` for anything that is not an int id,
    `ValueError` for an empty prompt (naming its index)."""
    checked = []
    for index, row in enumerate(rows):
        values = []
        for value in row:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise TypeError(
                    f"`{name}` must hold int token ids. Received {value!r} of type "
                    f"{type(value).__name__} in prompt {index}"
                )
            values.append(int(value))
        if not values:
            raise ValueError(
                f"Every prompt of `{name}` needs at least one token. Received: an empty "
                f"prompt at index {index}"
            )
        checked.append(values)
    return checked


def left_pad(rows, length, pad_token_id):
    """`(token_ids, padding_mask)`: int32 and bool `(len(rows), length)`, each row
    right-aligned after `pad_token_id` filler."""
    token_ids = np.full((len(rows), length), pad_token_id, dtype="int32")
    padding_mask = np.zeros((len(rows), length), dtype=bool)
    for index, row in enumerate(rows):
        token_ids[index, length - len(row) :] = row
        padding_mask[index, length - len(row) :] = True
    return token_ids, padding_mask


def rows_from_padded(token_ids, padding_mask):
    """The real tokens of each row of a padded batch (padding on either side), as lists;
    `ValueError` for a row whose real tokens are not contiguous or that has none."""
    token_ids = np.asarray(token_ids)
    padding_mask = np.asarray(padding_mask).astype(bool)
    if token_ids.ndim != 2 or padding_mask.shape != token_ids.shape:
        raise ValueError(
            "`token_ids` and `padding_mask` must both have shape (batch_size, length). "
            f"Received: token_ids.shape={token_ids.shape}, padding_mask.shape="
            f"{padding_mask.shape}"
        )
    rows = []
    for index, (ids, mask) in enumerate(zip(token_ids, padding_mask)):
        real = np.flatnonzero(mask)
        if real.size == 0 or real[-1] - real[0] + 1 != real.size:
            raise ValueError(
                "Each row of `padding_mask` must mark one contiguous run of real tokens "
                f"(padding on either side). Received row {index}: {mask.astype(int).tolist()}"
            )
        rows.append([int(token) for token in ids[real]])
    return rows


def continuations(generated, rows, prefix_length, stop_token_ids, stop_end=None):
    """Each prompt followed by its new tokens, from the output `(batch_size, prefix_length +
    max_new_tokens)` of a left-padded batch; the new tokens end after the first of
    `stop_token_ids`, or after the token `stop_end(prompt, new)` names (the index of the
    token a stop string ends in, or `None`); the filler after the end is dropped."""
    generated = np.asarray(generated)
    stops = set(stop_token_ids)
    outputs = []
    for row, prompt in zip(generated, rows):
        new = [int(token) for token in row[prefix_length:]]
        ends = [index for index, token in enumerate(new) if token in stops]
        if stop_end is not None:
            end = stop_end(list(prompt), new)
            ends += [] if end is None else [end]
        if ends:
            new = new[: min(ends) + 1]
        outputs.append(list(prompt) + new)
    return outputs
