"""`vocabulary.json`: what `keras-seq generate` needs beside a saved model to read and write text.

The text recipes (`char-lm`, `seq2seq-attention`) write it next to `model.keras`. It holds the
source and target `keras_seq.data.CharVocabulary` (equal for a language model), the length
sources were padded to in training, the end token that stops generation and a default
number of tokens to generate:

```json
{
  "format": "keras_seq.vocabulary",
  "version": 1,
  "source": {"characters": ["a", "b"], "special_tokens": []},
  "target": {"characters": ["a", "b"], "special_tokens": []},
  "source_length": null,
  "stop_token_id": null,
  "max_new_tokens": 100
}
```

`encode_prompt` and `decode_output` turn a prompt into ids and generated ids into text with
it (or parse and write space-separated ids without one).
"""

import json
import os

import numpy as np

from keras_seq.data.char_vocabulary import CharVocabulary
from keras_seq.recipes import outputs

FORMAT = "keras_seq.vocabulary"
VERSION = 1
FILENAME = "vocabulary.json"


def _vocabulary_config(vocabulary):
    return {
        "characters": list(vocabulary.characters),
        "special_tokens": list(vocabulary.special_tokens),
    }


def write_vocabulary_file(
    path,
    source,
    target=None,
    source_length=None,
    stop_token_id=None,
    max_new_tokens=None,
):
    """Write a vocabulary file.

    Args:
        path: str or path of the JSON file.
        source: `CharVocabulary` of the inputs (the prompt).
        target: `CharVocabulary` of the outputs, or `None` for the same as `source`.
        source_length: int or `None`. Sources are right-padded to this length.
        stop_token_id: int or `None`. Generation stops at this target id.
        max_new_tokens: int or `None`. Default number of tokens to generate.

    Example:
    ```python
    import os
    import tempfile

    from keras_seq.data.char_corpus import CHAR_CORPUS_VOCABULARY
    from keras_seq.recipes import vocabulary_file

    path = os.path.join(tempfile.mkdtemp(), "vocabulary.json")
    vocabulary_file.write_vocabulary_file(path, CHAR_CORPUS_VOCABULARY, max_new_tokens=40)
    vocabulary = vocabulary_file.read_vocabulary_file(path)
    ids = vocabulary_file.encode_prompt("the cat", "language_model", vocabulary)
    assert vocabulary_file.decode_output(ids[0], vocabulary) == "the cat"
    assert vocabulary["max_new_tokens"] == 40 and vocabulary["stop_token_id"] is None
    # Without a vocabulary, prompts and outputs are token ids.
    assert vocabulary_file.decode_output([4, 2, 0, 0], stop_token_id=2) == "4 2"
    ```
    """
    target = source if target is None else target
    outputs.write_json(
        path,
        {
            "format": FORMAT,
            "version": VERSION,
            "source": _vocabulary_config(source),
            "target": _vocabulary_config(target),
            "source_length": source_length,
            "stop_token_id": stop_token_id,
            "max_new_tokens": max_new_tokens,
        },
    )


def read_vocabulary_file(path):
    """Read a vocabulary file into a dict: `"source"` and `"target"` are `CharVocabulary`
    objects, the other keys as written. A `ValueError` names the file if it is not one."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{path} is not a JSON file.") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a keras_seq vocabulary file (its `format` must be {FORMAT!r})."
        )
    if content.get("version") != VERSION:
        raise ValueError(
            f"{path} has vocabulary file version {content.get('version')!r}; this keras_seq "
            f"reads version {VERSION}."
        )
    try:
        for side in ("source", "target"):
            content[side] = CharVocabulary(**content[side])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} holds an invalid vocabulary: {error}") from None
    for key in ("source_length", "stop_token_id", "max_new_tokens"):
        content.setdefault(key, None)
    return content


def parse_token_ids(text):
    """`"5 7 12"` -> `[5, 7, 12]`; a `ValueError` for anything but non-negative integers."""
    try:
        ids = [int(token) for token in text.split()]
    except ValueError:
        ids = None
    if not ids or min(ids) < 0:
        raise ValueError(
            "without a vocabulary a prompt must be token ids: non-negative integers separated "
            f"by spaces. Received: {text!r}"
        )
    return ids


def encode_prompt(prompt, kind, vocabulary=None):
    """One prompt as int32 ids `(1, length)`: characters of the source vocabulary (a
    seq2seq source is right-padded to the vocabulary's `source_length`), or parsed ids."""
    if vocabulary is None:
        return np.asarray([parse_token_ids(prompt)], dtype="int32")
    if not prompt:
        raise ValueError("a prompt must not be empty. Received: ''")
    length = None
    if kind == "seq2seq" and vocabulary.get("source_length"):
        length = max(len(prompt), vocabulary["source_length"])
    return vocabulary["source"].encode([prompt], length=length)


def decode_output(token_ids, vocabulary=None, stop_token_id=None):
    """One row of generated ids as text; without a vocabulary, the ids up to and including
    `stop_token_id` (the padding after it dropped)."""
    token_ids = np.asarray(token_ids)
    if vocabulary is not None:
        return vocabulary["target"].decode(token_ids[None, :])[0]
    if stop_token_id is not None and stop_token_id in token_ids.tolist():
        token_ids = token_ids[: token_ids.tolist().index(stop_token_id) + 1]
    return " ".join(str(int(token)) for token in token_ids)
