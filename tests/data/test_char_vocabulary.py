"""CharVocabulary: ids, padding, special tokens, round trips and errors."""

import numpy as np
import pytest

from keras_seq.data.char_vocabulary import CharVocabulary


def test_layout_and_round_trip():
    vocabulary = CharVocabulary("abc")
    assert vocabulary.tokens == ["<pad>", "<start>", "<end>", "a", "b", "c"]
    assert len(vocabulary) == 6
    assert (vocabulary.pad_id, vocabulary.start_id, vocabulary.end_id) == (0, 1, 2)
    ids = vocabulary.encode(["ab", "cab", ""], length=6, add_start=True, add_end=True)
    np.testing.assert_array_equal(ids, [[1, 3, 4, 2, 0, 0], [1, 5, 3, 4, 2, 0], [1, 2, 0, 0, 0, 0]])
    assert ids.dtype == np.int32
    assert vocabulary.decode(ids) == ["ab", "cab", ""]


def test_length_defaults_to_the_longest_text():
    assert CharVocabulary("ab", special_tokens=()).encode(["a", "abab"]).shape == (2, 4)


def test_without_special_tokens_characters_start_at_one():
    vocabulary = CharVocabulary("xy", special_tokens=())
    np.testing.assert_array_equal(vocabulary.encode(["yx"]), [[2, 1]])
    assert vocabulary.decode([[2, 1, 0, 1]]) == ["yxx"]  # no end token: padding is skipped
    with pytest.raises(KeyError):
        _ = vocabulary.end_id


@pytest.mark.parametrize(
    "call,pattern",
    [
        (lambda v: v.encode(["abd"]), "characters outside the vocabulary: \\['d'\\]"),
        (lambda v: v.encode(["abc"], length=2), "`length` is too short"),
        (lambda v: v.encode("abc"), "`texts` must be a sequence of str"),
        (lambda v: v.decode([[3, 9]]), "`ids` must be a 2-D array of ids in \\[0, 6\\)"),
        (lambda v: v.decode([3, 4]), "`ids` must be a 2-D array"),
        (lambda v: v.token_id("z"), "Unknown `token`: 'z'"),
    ],
)
def test_errors(call, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        call(CharVocabulary("abc"))


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"characters": "aba"}, "`characters` and `special_tokens` must not repeat"),
        ({"characters": ["ab"]}, "`characters` must be single characters"),
        ({"characters": "a", "special_tokens": ["<pad>"]}, "must not repeat a token"),
    ],
)
def test_constructor_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        CharVocabulary(**kwargs)
