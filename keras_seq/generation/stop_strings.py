"""Stop strings: a sequence ends once its text contains one of them.

Hugging Face's `generate(stop_strings=..., tokenizer=...)` rule, matched inside the compiled
decoding loop: after each new token, a sequence stops when a stop string ends within that
token's text (it may start in earlier tokens, the prompt's included, and the token may
run past it). Matching is on the bytes each token adds to the decoded text, so a stop
string split across byte-level tokens in the middle of a character is still found.
keras-hub has no stop strings; the tables are built once per tokenizer and stop strings.
"""

import numpy as np
from keras import ops

# Tokens with no text (special tokens, which decoding skips) pass through a match.


def _byte_level_decoder():
    """GPT-2's byte-level alphabet: printable stand-in character -> byte."""
    # keras-hub keeps the table in a private module (no public equivalent); a test in
    # tests/test_private_keras_api.py fails if it moves.
    from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

    byte_list, unicode_list = bytes_to_unicode()
    return {char: byte for byte, char in zip(byte_list, unicode_list)}


def _unsupported(tokenizer):
    return TypeError(
        "`stop_strings` needs to know the text of each token: it reads byte-level BPE "
        "(GPT-2) and SentencePiece tokenizers of keras-hub. Received: tokenizer of type "
        f"{type(tokenizer).__name__}"
    )


def token_bytes(tokenizer):
    """The bytes each token id adds to the decoded text (`b""` for special tokens), for
    byte-level BPE (GPT-2) and SentencePiece tokenizers of keras-hub."""
    import keras_hub

    vocabulary = tokenizer.get_vocabulary()
    try:
        special = set(tokenizer.special_token_ids)
    except (AttributeError, ValueError):
        special = set()
    if isinstance(tokenizer, keras_hub.tokenizers.BytePairTokenizer):
        decoder = _byte_level_decoder()
        pieces = [b"".join(decoder.get(char, char.encode()) for char in t) for t in vocabulary]
    elif isinstance(tokenizer, keras_hub.tokenizers.SentencePieceTokenizer):
        pieces = []
        for piece in vocabulary:
            if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                pieces.append(bytes([int(piece[3:5], 16)]))  # a byte-fallback piece
            else:
                pieces.append(piece.replace("\u2581", " ").encode())
    else:
        raise _unsupported(tokenizer)
    return [b"" if index in special else piece for index, piece in enumerate(pieces)]


def check_stop_strings(stop_strings):
    """`stop_strings` (a string or a list of strings) as a tuple of non-empty strings."""
    if isinstance(stop_strings, str):
        stop_strings = [stop_strings]
    if not isinstance(stop_strings, (list, tuple)) or not stop_strings:
        raise TypeError(
            "`stop_strings` must be a string or a non-empty list of strings. Received: "
            f"stop_strings={stop_strings!r}"
        )
    for value in stop_strings:
        if not isinstance(value, str) or not value:
            raise ValueError(
                "Each stop string must be a non-empty string. Received: "
                f"stop_strings={stop_strings!r}"
            )
    return tuple(dict.fromkeys(stop_strings))


def _tables(stop, pieces):
    """For stop string bytes `stop` (length m): `first` (V + 1, m + 1) bool, the numbers
    of its last bytes the newest token can hold (m: all of it), and `after` (V + 1, m + 1)
    int, the number held once an earlier token is added in front (-1: no match). Row V is
    the filler before the prompt (it matches nothing)."""
    m = len(stop)
    first = np.zeros((len(pieces) + 1, m + 1), bool)
    after = np.full((len(pieces) + 1, m + 1), -1, "int32")
    after[:, m] = m  # found stays found
    for token, piece in enumerate(pieces):
        n = len(piece)
        if stop in piece:
            first[token, m] = True
        for held in range(1, min(n, m - 1) + 1):
            first[token, held] = piece[:held] == stop[m - held :]
        for held in range(1, m):
            rest = m - held  # bytes of `stop` still to match, ending before `held`
            if n <= rest:
                if stop[rest - n : rest] == piece:
                    after[token, held] = held + n
            elif piece[n - rest :] == stop[:rest]:
                after[token, held] = m
    return first, after


class StopStringMatcher:
    """`matcher(recent) -> (B,) bool`: whether a stop string ends within the newest token
    of `recent`, int `(B, window)` token ids, oldest first (`filler_id` where there is no
    token). The window is long enough for every token to add one byte or more."""

    def __init__(self, stop_strings, pieces):
        self.filler_id = len(pieces)
        self.tables = []
        for text in stop_strings:
            first, after = _tables(text.encode("utf-8"), pieces)
            self.tables.append((ops.convert_to_tensor(first), ops.convert_to_tensor(after)))
        # Tokens without text (special tokens) do not advance a match: leave room for two.
        self.window = max(len(text.encode("utf-8")) for text in stop_strings) + 2

    def __call__(self, recent):
        found = None
        for first, after in self.tables:
            m = first.shape[1] - 1
            held = ops.take(first, recent[:, -1], axis=0)  # (B, m + 1)
            levels = ops.arange(m + 1, dtype="int32")[None, None, :]
            for position in range(recent.shape[1] - 2, -1, -1):
                nxt = ops.take(after, recent[:, position], axis=0)  # (B, m + 1)
                held = ops.any(ops.logical_and(held[:, :, None], nxt[:, :, None] == levels), axis=1)
            hit = held[:, m]
            found = hit if found is None else ops.logical_or(found, hit)
        return found

    def recent_tokens(self, prefix, prefix_mask, tokens, step):
        """The `window` tokens ending with the new token at index `step` of `tokens`, from
        the prompt `prefix` (its padding masked out) and the new `tokens`."""
        batch_size = ops.shape(tokens)[0]
        filler = ops.full((batch_size, self.window), self.filler_id, "int32")
        prompt = ops.where(prefix_mask, ops.cast(prefix, "int32"), self.filler_id)
        history = ops.concatenate([filler, prompt, tokens], axis=1)
        start = prefix.shape[1] + step + 1
        # Gathered, not sliced: under TensorFlow's XLA a `Slice` offset that is an argument
        # of the compiled function (a streamed step's count) is compiled in, once per value.
        columns = start + ops.arange(self.window, dtype="int32")
        return ops.take(history, columns, axis=1)


def stop_matcher_for(tokenizer, stop_strings):
    """`(matcher, pieces)`: the `StopStringMatcher` of `stop_strings` (a tuple) over
    `tokenizer`'s tokens and `token_bytes(tokenizer)`, built once per tokenizer and stop
    strings (the tables cover the whole vocabulary) and kept on the tokenizer."""
    import keras_hub

    if not isinstance(tokenizer, keras_hub.tokenizers.Tokenizer):
        raise _unsupported(tokenizer)
    matchers = tokenizer.__dict__.get("_keras_seq_stop_matchers")
    if matchers is None:
        matchers = {}
        # Set past Keras' attribute tracking: a cache of tables, not state of the layer.
        object.__setattr__(tokenizer, "_keras_seq_stop_matchers", matchers)
    if stop_strings not in matchers:
        pieces = token_bytes(tokenizer)
        matchers[stop_strings] = (StopStringMatcher(stop_strings, pieces), pieces)
    return matchers[stop_strings]


def stop_string_end(pieces, prompt, new, stop_strings):
    """The index in `new` of the token within which the first stop string ends (Python
    lists of ids, `pieces` from `token_bytes`), or `None`: where a decoded row is cut."""
    stops = [text.encode("utf-8") for text in stop_strings]
    text = b"".join(pieces[token] for token in prompt)
    for index, token in enumerate(new):
        before = len(text)
        text += pieces[token]
        for stop in stops:
            if stop in text[max(0, before - len(stop) + 1) :]:
                return index
    return None
