"""The user's captioned images for `keras-seq train captioning-shapes --data DIR CAPTIONS`.

`CaptionVocabulary` is the words of the training captions (`caption_files.caption_words`:
lowercased, punctuation marks as words), most frequent first, after `<pad>` (0), `<start>`
(1), `<end>` (2) and `<unk>` (3), the id of words it does not know. The run writes it as
`caption_vocabulary.json` beside `model.keras`; `keras-seq predict` and `evaluate` read it
there. `captioned_images` loads the images (decoded as RGB, resized to the captioner's input
size and scaled to [0, 1]); an image that does not decode is skipped with a counted warning.

Letter legend for shape comments: N examples, T caption length in tokens.
"""

import collections
import json
import os

import numpy as np

from keras_seq.recipes import outputs
from keras_seq.recipes import registry
from keras_seq.recipes.caption_files import caption_words
from keras_seq.recipes.image_data import read_images

FILENAME = registry.CAPTION_VOCABULARY_FILE
FORMAT = "keras_seq.caption_vocabulary"
SPECIAL_WORDS = ("<pad>", "<start>", "<end>", "<unk>")
PAD_ID, START_ID, END_ID, UNKNOWN_ID = range(4)


class CaptionVocabulary:
    """Words of captions and their ids (see the module docstring).

    Args:
        words: list of str. The words after `SPECIAL_WORDS`, in id order.
        max_new_tokens: int. Tokens a caption may take, its end token included.
    """

    def __init__(self, words, max_new_tokens):
        self.words = list(words)
        self.max_new_tokens = max_new_tokens
        self.tokens = list(SPECIAL_WORDS) + self.words
        self._ids = {word: index for index, word in enumerate(self.tokens)}

    @classmethod
    def from_captions(cls, captions, max_words=5000):
        """The vocabulary of `captions`: their `max_words` most frequent words (ties in order
        of first use); `max_new_tokens` fits the longest caption."""
        counts = collections.Counter()
        longest = 0
        for caption in captions:
            words = caption_words(caption)
            counts.update(words)
            longest = max(longest, len(words))
        words = [word for word, _ in counts.most_common(max_words)]
        return cls(words, longest + 1)

    def __len__(self):
        return len(self.tokens)

    def encode(self, captions, length=None):
        """Captions as int32 ids `(N, T)`: word ids (`<unk>` for unknown words), then `<end>`,
        padded with 0; `length` defaults to `max_new_tokens`, and longer captions are cut
        (their count is the second value returned)."""
        length = length or self.max_new_tokens
        ids = np.full((len(captions), length), PAD_ID, "int32")  # (N, T)
        cut = 0
        for row, caption in enumerate(captions):
            tokens = [self._ids.get(word, UNKNOWN_ID) for word in caption_words(caption)]
            tokens.append(END_ID)
            cut += len(tokens) > length
            tokens = tokens[:length]
            ids[row, : len(tokens)] = tokens
        return ids, cut

    def decode(self, ids):
        """Generated ids `(N, T)` as captions: each row up to its first `<end>`, without
        `<pad>` and `<start>`."""
        captions = []
        for row in np.asarray(ids).tolist():
            words = []
            for token in row:
                if token == END_ID:
                    break
                if token not in (PAD_ID, START_ID):
                    words.append(self.tokens[token] if 0 <= token < len(self.tokens) else "<unk>")
            captions.append(" ".join(words))
        return captions

    def write(self, path):
        outputs.write_json(
            path,
            {
                "format": FORMAT,
                "version": 1,
                "words": self.words,
                "max_new_tokens": self.max_new_tokens,
            },
        )

    @classmethod
    def read(cls, path):
        """The vocabulary of a `caption_vocabulary.json`; a `ValueError` naming the file
        when it is not one."""
        try:
            with open(path, encoding="utf-8") as file:
                record = json.load(file)
            if record.get("format") != FORMAT:
                raise ValueError(f"format is {record.get('format')!r}, not {FORMAT!r}")
            return cls(record["words"], int(record["max_new_tokens"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path} is not a {FILENAME} of keras-seq ({error})") from None


def vocabulary_beside(model_path):
    """The `CaptionVocabulary` beside a `.keras` file, or `None` when there is none."""
    path = os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_path))), FILENAME)
    return CaptionVocabulary.read(path) if os.path.isfile(path) else None


def captioned_images(examples, image_size, what="images"):
    """The images of `examples` (`(image_path, caption)` pairs) as float32 `(N, H, W, 3)` in
    [0, 1] at `image_size`, each file decoded once, the captions of the images that decode,
    and the image files that do not, skipped with a counted warning (`read_images`)."""
    paths = list(dict.fromkeys(path for path, _ in examples))
    images, readable = read_images(paths, image_size, channels=3, what=what)
    index = {path: position for position, path in enumerate(readable)}
    kept = [(path, caption) for path, caption in examples if path in index]
    pixels = images[[index[path] for path, _ in kept]]  # (N, H, W, 3)
    skipped = [path for path in paths if path not in index]
    return pixels, [caption for _, caption in kept], skipped
