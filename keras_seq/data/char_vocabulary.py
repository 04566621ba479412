"""A character-level vocabulary: id 0 is padding, then special tokens, then characters."""

import numpy as np

PAD_TOKEN = "<pad>"


class CharVocabulary:
    """Maps strings to padded arrays of character ids and back.

    Id 0 is always padding (`"<pad>"`), the `special_tokens` follow in order (by default
    `"<start>"` = 1 and `"<end>"` = 2, the layout `keras_seq.models.RNNSeq2SeqLM` expects), then
    one id per character, in the order given. The task builders of `keras_seq.data` use it
    for their source and target sides; it holds no weights and is never saved with a model.

    Args:
        characters: str or sequence of single characters, without repeats.
        special_tokens: sequence of str. Tokens after padding. Defaults to
            `("<start>", "<end>")`.

    Example:
    ```python
    vocabulary = keras_seq.data.CharVocabulary("abc")
    ids = vocabulary.encode(["ab", "cab"], length=5, add_end=True)
    # [[3, 4, 2, 0, 0], [5, 3, 4, 2, 0]]
    assert vocabulary.decode(ids) == ["ab", "cab"]
    ```
    """

    def __init__(self, characters, special_tokens=("<start>", "<end>")):
        characters = list(characters)
        special_tokens = list(special_tokens)
        if any(not isinstance(c, str) or len(c) != 1 for c in characters):
            raise ValueError(
                f"`characters` must be single characters. Received: characters={characters!r}"
            )
        tokens = [PAD_TOKEN] + special_tokens + characters
        if len(set(tokens)) != len(tokens):
            raise ValueError(
                "`characters` and `special_tokens` must not repeat a token or hold "
                f"{PAD_TOKEN!r}. Received: characters={characters!r}, "
                f"special_tokens={special_tokens!r}"
            )
        self.characters = characters
        self.special_tokens = special_tokens
        self.tokens = tokens
        self._ids = {token: index for index, token in enumerate(tokens)}

    def __len__(self):
        return len(self.tokens)

    @property
    def pad_id(self):
        """The id of padding: 0."""
        return 0

    @property
    def start_id(self):
        """The id of `"<start>"` (a `KeyError` if the vocabulary has none)."""
        return self._ids["<start>"]

    @property
    def end_id(self):
        """The id of `"<end>"` (a `KeyError` if the vocabulary has none)."""
        return self._ids["<end>"]

    def token_id(self, token):
        """The id of a character or special token."""
        if token not in self._ids:
            raise ValueError(f"Unknown `token`: {token!r}. Known tokens: {self.tokens}")
        return self._ids[token]

    def encode(self, texts, length=None, add_start=False, add_end=False):
        """Encode strings into an int32 array `(len(texts), length)`, right-padded with 0.

        Args:
            texts: sequence of str.
            length: int or `None`. Columns; `None` uses the longest encoded text. A text
                longer than `length` is an error, never truncated.
            add_start: bool. Prepend `"<start>"`. Defaults to `False`.
            add_end: bool. Append `"<end>"`. Defaults to `False`.
        """
        if isinstance(texts, str):
            raise TypeError(f"`texts` must be a sequence of str. Received: texts={texts!r}")
        prefix = [self.start_id] if add_start else []
        suffix = [self.end_id] if add_end else []
        rows = []
        for text in texts:
            unknown = sorted(set(text) - set(self.characters))
            if unknown:
                raise ValueError(
                    f"`texts` holds characters outside the vocabulary: {unknown}. "
                    f"Received: {text!r}"
                )
            rows.append(prefix + [self._ids[c] for c in text] + suffix)
        longest = max((len(row) for row in rows), default=0)
        if length is None:
            length = longest
        elif longest > length:
            raise ValueError(
                f"`length` is too short: an encoded text has {longest} ids. "
                f"Received: length={length}"
            )
        ids = np.zeros((len(rows), length), dtype="int32")
        for index, row in enumerate(rows):
            ids[index, : len(row)] = row
        return ids

    def decode(self, ids):
        """Decode id rows into strings: each stops at `"<end>"`; padding and the other
        special tokens are skipped. `ids` is an int array `(batch_size, length)` or a list
        of rows; an id outside the vocabulary is an error."""
        ids = np.asarray(ids)
        if ids.ndim != 2 or (ids.size and (ids.min() < 0 or ids.max() >= len(self.tokens))):
            raise ValueError(
                f"`ids` must be a 2-D array of ids in [0, {len(self.tokens)}). Received: "
                f"ids of shape {ids.shape}"
                + (f" with ids in [{ids.min()}, {ids.max()}]" if ids.size else "")
            )
        end = self._ids.get("<end>")
        first_character = 1 + len(self.special_tokens)
        texts = []
        for row in ids.tolist():
            characters = []
            for token_id in row:
                if token_id == end:
                    break
                if token_id >= first_character:
                    characters.append(self.tokens[token_id])
            texts.append("".join(characters))
        return texts
