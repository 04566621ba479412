"""The grammar corpus: vocabulary, windows, seeds and errors."""

import numpy as np
import pytest

from keras_seq.data.char_corpus import CHAR_CORPUS_VOCABULARY
from keras_seq.data.char_corpus import DETERMINERS
from keras_seq.data.char_corpus import NOUNS
from keras_seq.data.char_corpus import char_corpus_data
from keras_seq.data.char_corpus import grammar_text


def test_text_is_sentences_of_the_grammar():
    text = grammar_text(200, seed=0)
    sentences = text.split(". ")
    assert len(sentences) == 200 and text.endswith(".")
    assert all(sentence.split()[0] in DETERMINERS for sentence in sentences)
    assert any(noun in text for noun in NOUNS)
    assert set(text) <= set(CHAR_CORPUS_VOCABULARY.characters)
    assert grammar_text(200, seed=0) == text != grammar_text(200, seed=1)


def test_windows_continue_the_text():
    inputs, targets = char_corpus_data(100, sequence_length=16, seed=2)
    text = grammar_text(100, seed=2)
    assert inputs.shape == targets.shape == ((len(text) - 1) // 16, 16)
    assert inputs.dtype == targets.dtype == np.int32
    assert inputs.min() >= 1  # 0 is left free for padding
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    np.testing.assert_array_equal(inputs[1:, 0], targets[:-1, -1])
    assert "".join(CHAR_CORPUS_VOCABULARY.decode(inputs)) == text[: inputs.size]


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        (
            {"num_sentences": 0, "sequence_length": 4},
            ValueError,
            "`num_sentences` must be a positive",
        ),
        (
            {"num_sentences": 2, "sequence_length": 0},
            ValueError,
            "`sequence_length` must be a positive",
        ),
        ({"num_sentences": 1, "sequence_length": 500}, ValueError, "shorter than one window"),
        (
            {"num_sentences": 2, "sequence_length": 4, "seed": "a"},
            TypeError,
            "`seed` must be a non-negative integer",
        ),
    ],
)
def test_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        char_corpus_data(**kwargs)
