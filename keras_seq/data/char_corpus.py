"""A synthetic character corpus for language models: sentences of a tiny English grammar.

Nothing is downloaded: the text comes from a probabilistic grammar and a fixed NumPy seed.
Within a word a character model soon knows what follows; the uncertainty sits at word and
sentence boundaries, so a trained model's perplexity falls far below the vocabulary size.

Letter legend for shape comments: N windows, L `sequence_length`.
"""

import numpy as np

from keras_seq.data.char_vocabulary import CharVocabulary
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_seed

DETERMINERS = ("the", "a", "every", "some", "no")
ADJECTIVES = ("small", "red", "quick", "lazy", "old", "happy", "green")
NOUNS = ("cat", "dog", "bird", "fox", "child", "teacher", "farmer", "robot")
TRANSITIVE_VERBS = ("sees", "chases", "likes", "finds", "helps", "follows")
INTRANSITIVE_VERBS = ("sleeps", "runs", "sings", "waits", "laughs")
ADVERBS = ("quietly", "often", "again", "slowly")
PREPOSITIONS = ("near", "under", "behind", "with")

CHAR_CORPUS_VOCABULARY = CharVocabulary(" .abcdefghijklmnopqrstuvwxyz", special_tokens=())


def _noun_phrase(rng):
    words = [rng.choice(DETERMINERS)]
    if rng.random() < 0.5:
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(NOUNS))
    return words


def _sentence(rng):
    words = _noun_phrase(rng)
    kind = rng.random()
    if kind < 0.5:  # subject sees an object, maybe near something
        words += [rng.choice(TRANSITIVE_VERBS)] + _noun_phrase(rng)
        if rng.random() < 0.3:
            words += [rng.choice(PREPOSITIONS)] + _noun_phrase(rng)
    elif kind < 0.8:  # subject sleeps, maybe quietly
        words.append(rng.choice(INTRANSITIVE_VERBS))
        if rng.random() < 0.5:
            words.append(rng.choice(ADVERBS))
    else:  # subject is happy
        words += ["is", rng.choice(ADJECTIVES)]
    return " ".join(str(word) for word in words) + "."


def grammar_text(num_sentences, seed=0):
    """`num_sentences` random sentences of the grammar, joined by spaces.

    Example: `"the lazy fox chases a bird. some robot sleeps quietly. a child is green."`.
    Every character is in `CHAR_CORPUS_VOCABULARY` (lower-case letters, space, period).
    """
    num_sentences = validate_positive_int("num_sentences", num_sentences)
    seed = validate_seed("seed", seed, allow_none=False)
    rng = np.random.default_rng(seed)
    return " ".join(_sentence(rng) for _ in range(num_sentences))


def char_corpus_data(num_sentences, sequence_length, seed=0):
    """Windows of the grammar text for a character language model, ready for `fit`.

    The text of `grammar_text(num_sentences, seed)` is encoded with
    `CHAR_CORPUS_VOCABULARY` (ids from 1; 0 is never used, so it stays free for padding)
    and cut into consecutive windows of `sequence_length + 1` characters that overlap by
    one; each window gives inputs (its first `sequence_length` ids) and targets (its last
    `sequence_length` ids, the next character at every step). The tail that does not fill
    a window is dropped.

    Args:
        num_sentences: int. Sentences of text (about 25 characters each).
        sequence_length: int. Steps per window L.
        seed: int >= 0. Seed of the text. Defaults to `0`.

    Returns:
        `(inputs, targets)`, int32 `(N, L)` each, `N = (len(text) - 1) // L`; a
        `ValueError` if the text is shorter than one window.

    Example:
    ```python
    inputs, targets = keras_seq.data.char_corpus_data(100, sequence_length=32, seed=0)
    assert (inputs[:, 1:] == targets[:, :-1]).all()
    model = keras_seq.models.RNNCausalLM(
        keras_seq.models.RNNBackbone(
            vocabulary_size=len(keras_seq.data.CHAR_CORPUS_VOCABULARY),
            embedding_dim=8,
            hidden_dim=16,
        )
    )
    ```
    """
    sequence_length = validate_positive_int("sequence_length", sequence_length)
    text = grammar_text(num_sentences, seed=seed)
    ids = CHAR_CORPUS_VOCABULARY.encode([text])[0]  # (len(text),)
    num_windows = (len(ids) - 1) // sequence_length
    if num_windows < 1:
        raise ValueError(
            f"The text of {num_sentences} sentences ({len(ids)} characters) is shorter than "
            f"one window of `sequence_length + 1` characters. Received: "
            f"sequence_length={sequence_length}; use more sentences or shorter windows."
        )
    used = ids[: num_windows * sequence_length + 1]
    inputs = used[:-1].reshape(num_windows, sequence_length)  # (N, L)
    targets = used[1:].reshape(num_windows, sequence_length)  # (N, L)
    return inputs.astype("int32"), targets.astype("int32")
