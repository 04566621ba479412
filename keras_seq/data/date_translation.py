"""Date translation: human-readable dates in many formats -> ISO 8601, at the character level.

The classic small attention task: "Tuesday, March 3, 1998", "3 mar 1998" and "03/03/98" all
translate to "1998-03-03". Everything is generated with the standard library (no locale, no
download), from a fixed NumPy seed.

Letter legend for shape comments: N examples, S `DATE_SOURCE_LENGTH`, T `DATE_TARGET_LENGTH`.
"""

import datetime

import numpy as np

from keras_seq.data.char_vocabulary import CharVocabulary
from keras_seq.data.teacher_forcing import teacher_forcing_inputs
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_seed

MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)  # Two-digit years: 50-99 -> 19xx, 00-49 -> 20xx.


def _ordinal(day):
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# Each format, named by its pattern, applied to 1998-03-03.
_FORMATTERS = {
    "d month yyyy": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",  # 3 march 1998
    "d mon yyyy": lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",  # 3 mar 1998
    "dd/mm/yy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",  # 03/03/98
    "dd.mm.yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",  # 03.03.1998
    "d/m/yyyy": lambda d: f"{d.day}/{d.month}/{d.year}",  # 3/3/1998
    "yyyy/mm/dd": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",  # 1998/03/03
    "Month d, yyyy": lambda d: f"{MONTHS[d.month - 1].title()} {d.day}, {d.year}",  # March 3, 1998
    "Weekday, Month d, yyyy": lambda d: (  # Tuesday, March 3, 1998
        f"{WEEKDAYS[d.weekday()].title()}, {MONTHS[d.month - 1].title()} {d.day}, {d.year}"
    ),
    "dth of month yyyy": lambda d: f"{_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
}
DATE_FORMATS = tuple(_FORMATTERS)
SPLITS = ("train", "test")


def _source_characters():
    words = MONTHS + WEEKDAYS + tuple(w.title() for w in MONTHS + WEEKDAYS) + ("st nd rd th of",)
    return sorted(set("".join(words)) | set("0123456789 ,./"))


DATE_SOURCE_VOCABULARY = CharVocabulary(_source_characters(), special_tokens=())
DATE_TARGET_VOCABULARY = CharVocabulary("0123456789-")  # <pad> 0, <start> 1, <end> 2
DATE_SOURCE_LENGTH = len("Wednesday, September 30, 1998")  # The longest format: 29.
DATE_TARGET_LENGTH = len("1998-03-03") + 1  # With the end token: 11.


def format_date(date, date_format):
    """Write a `datetime.date` in one of `DATE_FORMATS`, e.g. `"Weekday, Month d, yyyy"`.

    Dates must lie in 1950-2049 (two-digit years are read as 1950-2049). Month and weekday
    names are English, independent of the locale.
    """
    date_format = validate_choice("date_format", date_format, DATE_FORMATS)
    if not isinstance(date, datetime.date) or not FIRST_DATE <= date <= LAST_DATE:
        raise ValueError(
            f"`date` must be a datetime.date between {FIRST_DATE} and {LAST_DATE}. "
            f"Received: date={date!r}"
        )
    return _FORMATTERS[date_format](date)


def random_dates(num_examples, formats=None, split=None, seed=0):
    """Random dates as `(human_readable, iso)` lists of strings.

    Args:
        num_examples: int. Number of dates.
        formats: optional sequence of names from `DATE_FORMATS`; each date is written in
            one of them, uniformly. Defaults to all formats.
        split: `None`, `"train"` or `"test"`. `"test"` dates are the days whose ordinal is a
            multiple of 10 and `"train"` dates all others, so a model evaluated on `"test"`
            has never seen those days in any format; `None` draws from every day. Defaults
            to `None`.
        seed: int >= 0. Seed of the NumPy generator. Defaults to `0`.

    Returns:
        `(sources, targets)`: two lists of `num_examples` strings, e.g.
        `"Tuesday, March 3, 1998"` and `"1998-03-03"`.
    """
    num_examples = validate_positive_int("num_examples", num_examples)
    formats = DATE_FORMATS if formats is None else tuple(formats)
    if not formats:
        raise ValueError("`formats` must name at least one format. Received: formats=()")
    for date_format in formats:
        validate_choice("formats", date_format, DATE_FORMATS)
    if split is not None:
        split = validate_choice("split", split, SPLITS)
    seed = validate_seed("seed", seed, allow_none=False)
    ordinals = np.arange(FIRST_DATE.toordinal(), LAST_DATE.toordinal() + 1)
    if split == "test":
        ordinals = ordinals[ordinals % 10 == 0]
    elif split == "train":
        ordinals = ordinals[ordinals % 10 != 0]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(ordinals, size=num_examples)
    format_indices = rng.integers(0, len(formats), size=num_examples)
    sources, targets = [], []
    for ordinal, format_index in zip(chosen.tolist(), format_indices.tolist()):
        date = datetime.date.fromordinal(ordinal)
        sources.append(_FORMATTERS[formats[format_index]](date))
        targets.append(date.isoformat())
    return sources, targets


def encode_dates(texts):
    """Human-readable dates -> int32 source ids `(len(texts), DATE_SOURCE_LENGTH)`."""
    return DATE_SOURCE_VOCABULARY.encode(texts, length=DATE_SOURCE_LENGTH)


def decode_dates(ids):
    """Target ids `(batch_size, length)` (e.g. from `generate`) -> ISO date strings; each
    stops at the end token."""
    return DATE_TARGET_VOCABULARY.decode(ids)


def date_translation_data(num_examples, formats=None, split=None, seed=0):
    """Date translation examples ready for `fit` on a `keras_seq.models.RNNSeq2SeqLM`.

    Sources are the characters of `random_dates(...)`'s human-readable dates
    (`DATE_SOURCE_VOCABULARY`, padding 0, no special tokens), targets the characters of the
    ISO date followed by the end token (`DATE_TARGET_VOCABULARY`: padding 0, start 1, end
    2, then `0-9` and `-`).

    Args:
        num_examples, formats, split, seed: as in `random_dates`.

    Returns:
        `(inputs, targets)`: `inputs` is `{"source": int32 (N, DATE_SOURCE_LENGTH),
        "target_in": int32 (N, DATE_TARGET_LENGTH)}` (see `teacher_forcing_inputs`, start
        token 1) and `targets` int32 `(N, DATE_TARGET_LENGTH)`.

    Example:
    ```python
    inputs, targets = keras_seq.data.date_translation_data(8, split="train", seed=0)
    backbone = keras_seq.models.RNNSeq2SeqBackbone(
        source_vocabulary_size=len(keras_seq.data.DATE_SOURCE_VOCABULARY),
        target_vocabulary_size=len(keras_seq.data.DATE_TARGET_VOCABULARY),
        embedding_dim=8,
        hidden_dim=16,
        attention="bahdanau",
    )
    model = keras_seq.models.RNNSeq2SeqLM(backbone, start_token_id=1)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    model.fit(inputs, targets, epochs=1, verbose=0)
    predicted = model.generate(
        inputs["source"], max_new_tokens=keras_seq.data.DATE_TARGET_LENGTH, stop_token_id=2
    )
    iso_dates = keras_seq.data.decode_dates(np.asarray(predicted))  # strings, untrained
    ```
    """
    sources, targets = random_dates(num_examples, formats=formats, split=split, seed=seed)
    source = encode_dates(sources)  # (N, S)
    target = DATE_TARGET_VOCABULARY.encode(targets, length=DATE_TARGET_LENGTH, add_end=True)
    inputs = teacher_forcing_inputs(
        source, target, start_token_id=DATE_TARGET_VOCABULARY.start_id
    )  # "target_in" (N, T)
    return inputs, target
