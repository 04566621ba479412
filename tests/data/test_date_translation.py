"""Date translation data: formats, ISO targets, vocabularies, splits, seeds and the layout."""

import datetime

import numpy as np
import pytest

from keras_seq.data import date_translation
from keras_seq.data.date_translation import DATE_FORMATS
from keras_seq.data.date_translation import DATE_SOURCE_LENGTH
from keras_seq.data.date_translation import DATE_SOURCE_VOCABULARY
from keras_seq.data.date_translation import DATE_TARGET_LENGTH
from keras_seq.data.date_translation import DATE_TARGET_VOCABULARY
from keras_seq.data.date_translation import date_translation_data
from keras_seq.data.date_translation import decode_dates
from keras_seq.data.date_translation import encode_dates
from keras_seq.data.date_translation import format_date
from keras_seq.data.date_translation import random_dates

MARCH_3_1998 = datetime.date(1998, 3, 3)  # a Tuesday


@pytest.mark.parametrize(
    "date_format,expected",
    [
        ("d month yyyy", "3 march 1998"),
        ("d mon yyyy", "3 mar 1998"),
        ("dd/mm/yy", "03/03/98"),
        ("dd.mm.yyyy", "03.03.1998"),
        ("d/m/yyyy", "3/3/1998"),
        ("yyyy/mm/dd", "1998/03/03"),
        ("Month d, yyyy", "March 3, 1998"),
        ("Weekday, Month d, yyyy", "Tuesday, March 3, 1998"),
        ("dth of month yyyy", "3rd of march 1998"),
    ],
)
def test_formats(date_format, expected):
    assert format_date(MARCH_3_1998, date_format) == expected


def test_every_format_is_tested_and_ordinals_are_english():
    assert len(DATE_FORMATS) == 9
    ordinal = "dth of month yyyy"
    for day, text in (
        (1, "1st"),
        (2, "2nd"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (22, "22nd"),
    ):
        assert format_date(datetime.date(2001, 1, day), ordinal).startswith(f"{text} of")


def test_two_digit_years_cover_1950_to_2049():
    assert format_date(datetime.date(1950, 1, 1), "dd/mm/yy") == "01/01/50"
    assert format_date(datetime.date(2049, 12, 31), "dd/mm/yy") == "31/12/49"
    with pytest.raises(ValueError, match="`date` must be a datetime.date between"):
        format_date(datetime.date(2050, 1, 1), "dd/mm/yy")


def test_random_dates_are_valid_and_reproducible():
    sources, targets = random_dates(200, seed=4)
    assert (sources, targets) == random_dates(200, seed=4)
    assert random_dates(200, seed=5) != (sources, targets)
    for source, target in zip(sources, targets):
        date = datetime.date.fromisoformat(target)
        assert source in {format_date(date, f) for f in DATE_FORMATS}
    assert len({s for s in sources}) > 150


def test_splits_hold_disjoint_days():
    _, train = random_dates(3000, split="train", seed=0)
    _, test = random_dates(300, split="test", seed=1)
    assert all(datetime.date.fromisoformat(t).toordinal() % 10 == 0 for t in test)
    assert not set(train) & set(test)


def test_formats_can_be_restricted():
    sources, _ = random_dates(20, formats=["yyyy/mm/dd"], seed=0)
    assert all(len(s) == 10 and s[4] == "/" for s in sources)


def test_vocabularies_cover_every_format_and_length():
    ordinals = range(datetime.date(1950, 1, 1).toordinal(), datetime.date(2049, 12, 31).toordinal())
    longest = max(
        len(format_date(datetime.date.fromordinal(o), f)) for o in ordinals for f in DATE_FORMATS
    )
    assert longest == DATE_SOURCE_LENGTH == 29
    assert DATE_TARGET_LENGTH == 11
    assert DATE_TARGET_VOCABULARY.tokens[:3] == ["<pad>", "<start>", "<end>"]
    assert len(DATE_TARGET_VOCABULARY) == 14
    assert DATE_SOURCE_VOCABULARY.tokens[0] == "<pad>"
    # Every day in every format encodes (unknown characters would raise).
    encode_dates(
        [format_date(datetime.date.fromordinal(o), f) for o in ordinals[::97] for f in DATE_FORMATS]
    )


def test_data_layout():
    inputs, targets = date_translation_data(64, seed=0)
    source, target_in = inputs["source"], inputs["target_in"]
    assert source.shape == (64, DATE_SOURCE_LENGTH) and source.dtype == np.int32
    assert target_in.shape == targets.shape == (64, DATE_TARGET_LENGTH)
    assert targets.dtype == target_in.dtype == np.int32
    # Every target is 10 characters then the end token; target_in is it shifted behind <start>.
    assert np.all(targets[:, 10] == DATE_TARGET_VOCABULARY.end_id)
    assert np.all(target_in[:, 0] == DATE_TARGET_VOCABULARY.start_id)
    np.testing.assert_array_equal(target_in[:, 1:], targets[:, :-1])
    sources, isos = random_dates(64, seed=0)
    assert decode_dates(targets) == isos
    assert DATE_SOURCE_VOCABULARY.decode(source) == sources
    # Sources are right-padded with 0.
    lengths = (source > 0).sum(1)
    assert all(np.all(row[n:] == 0) for row, n in zip(source, lengths))


def test_decode_stops_at_the_end_token():
    ids = DATE_TARGET_VOCABULARY.encode(["1998-03-03"], length=13, add_end=True)
    ids[0, 11] = DATE_TARGET_VOCABULARY.token_id("7")  # after the end token: ignored
    assert decode_dates(ids) == ["1998-03-03"]


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"num_examples": 0}, ValueError, "`num_examples` must be a positive integer"),
        ({"num_examples": 5, "formats": ["iso"]}, ValueError, "`formats` must be one of"),
        ({"num_examples": 5, "formats": []}, ValueError, "`formats` must name at least one format"),
        ({"num_examples": 5, "split": "validation"}, ValueError, "`split` must be one of"),
        ({"num_examples": 5, "seed": 1.5}, TypeError, "`seed` must be a non-negative integer"),
    ],
)
def test_validation_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        date_translation.date_translation_data(**kwargs)


def test_format_name_is_validated():
    with pytest.raises(ValueError, match="`date_format` must be one of"):
        format_date(MARCH_3_1998, "mm-dd")
