"""Prompts of different lengths in one `generate()` call: each row equals its prompt alone."""

import keras
import numpy as np
import pytest

from keras_seq.generation.prompts import bucket_length
from keras_seq.generation.prompts import rows_from_padded
from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM

# Lengths 1 to 11: two buckets (8 and 16).
ROWS = [[3, 5, 7], [2, 9, 11, 4, 6], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [8]]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    backbone = GPTBackbone(
        vocabulary_size=30,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        sequence_length=40,
        dropout=0.0,
    )
    # Perturbed, so that no layer norm is the identity and the continuations vary by row.
    rng = np.random.default_rng(0)
    for variable in backbone.weights:
        noise = rng.normal(0.0, 0.1, tuple(variable.shape)).astype("float32")
        variable.assign(np.asarray(variable.numpy()) + noise)
    return GPTCausalLM(backbone)


def alone(model, row, max_new_tokens, **kwargs):
    ids = np.asarray(model.generate(np.asarray([row]), max_new_tokens, **kwargs))[0].tolist()
    new = ids[len(row) :]
    stop = kwargs.get("stop_token_id")
    if stop is not None and stop in new:
        new = new[: new.index(stop) + 1]
    return row + new


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strategy": "greedy", "jit_compile": False},
        {"strategy": "beam", "num_beams": 3, "jit_compile": False},
        {"strategy": "greedy", "stop_token_id": 4, "jit_compile": False},
        # The processors read each row's prompt without its padding.
        {
            "strategy": "greedy",
            "repetition_penalty": 1.5,
            "no_repeat_ngram_size": 2,
            "jit_compile": False,
        },
        # XLA: one compilation per prompt alone (about 15 s).
        pytest.param(
            {"strategy": "beam", "num_beams": 2, "length_penalty": 1.0},
            marks=pytest.mark.slow,
        ),
    ],
)
def test_each_row_equals_its_prompt_alone(model, kwargs):
    outputs = model.generate(ROWS, 6, **kwargs)
    expected = [alone(model, row, 6, **kwargs) for row in ROWS]
    assert outputs == expected
    # The continuations differ between rows (the comparison is not trivially true).
    assert len({tuple(out[len(row) :]) for out, row in zip(outputs, ROWS)}) > 1


def test_padded_dicts_on_either_side_equal_the_lists(model):
    expected = model.generate(ROWS[:2], 4)
    right = {
        "token_ids": np.array([[3, 5, 7, 0, 0], [2, 9, 11, 4, 6]]),
        "padding_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]),
    }
    left = {
        "token_ids": np.array([[0, 0, 3, 5, 7], [2, 9, 11, 4, 6]]),
        "padding_mask": np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]),
    }
    for inputs in (right, left):
        outputs = model.generate(inputs, 4)
        assert set(outputs) == {"token_ids", "padding_mask"}
        assert outputs["token_ids"].shape == (2, 9)
        assert rows_from_padded(outputs["token_ids"], outputs["padding_mask"]) == expected


def test_one_compiled_function_per_bucket(model):
    model.generate([[1, 2], [3, 4, 5]], 3)  # bucket 8
    functions = model.__dict__["_keras_seq_generate_functions"]
    ((decode, _),) = [value for key, value in functions.items() if key[0] == "greedy"][:1]
    traces = decode.experimental_get_tracing_count()
    model.generate([[1, 2, 3, 4, 5, 6, 7], [9]], 3)  # other lengths, same bucket
    assert decode.experimental_get_tracing_count() == traces
    assert bucket_length(8) == 8 and bucket_length(9) == 16 and bucket_length(3) == 8


@pytest.mark.parametrize(
    "inputs, kwargs, error, match",
    [
        ([[1, 2], []], {}, ValueError, "empty prompt at index 1"),
        ([[1, 2.5]], {}, TypeError, "2.5"),
        ([[1] * 30, [2]], {}, ValueError, "sequence_length"),
        ([[1, 2], [3]], {"return_scores": True}, ValueError, "return_scores"),
        (
            {"token_ids": np.array([[1, 2, 3]]), "padding_mask": np.array([[1, 0, 1]])},
            {},
            ValueError,
            "contiguous",
        ),
    ],
)
def test_bad_prompts_are_named(model, inputs, kwargs, error, match):
    with pytest.raises(error, match=match):
        model.generate(inputs, 12, **kwargs)


def encoder_decoders():
    from keras_seq.models import RNNSeq2SeqBackbone
    from keras_seq.models import RNNSeq2SeqLM
    from keras_seq.models import TransformerSeq2SeqLM

    keras.utils.set_random_seed(1)
    transformer = TransformerSeq2SeqLM.from_preset("transformer_tiny", vocabulary_size=30)
    rnn = RNNSeq2SeqLM(RNNSeq2SeqBackbone(30, 30, embedding_dim=8, hidden_dim=8))
    return transformer, rnn


SOURCES = [[5, 9, 12, 2], [7, 3], [8, 8, 8, 8, 8, 8, 8, 8, 8, 1]]


@pytest.mark.slow  # about 20 s on 2 cores (a beam loop compiled per source length)
def test_encoder_decoders_beam_search_takes_sources_of_any_lengths():
    check_sources_of_any_lengths(encoder_decoders(), {"strategy": "beam", "num_beams": 3})


def check_sources_of_any_lengths(models, kwargs):
    sources = SOURCES
    for model in models:
        outputs = model.generate(sources, 4, stop_token_id=3, **kwargs)
        expected = [
            np.asarray(model.generate(np.asarray([row]), 4, stop_token_id=3, **kwargs))[0]
            for row in sources
        ]
        expected = [
            row[: list(row).index(3) + 1].tolist() if 3 in row else row.tolist() for row in expected
        ]
        assert outputs == expected


def test_encoder_decoders_take_sources_of_any_lengths():
    # Each row equals its source alone, new tokens only: the sources run in one batch padded
    # on the right (the encoders mask the padding), one compiled loop per bucket.
    transformer, rnn = encoder_decoders()
    check_sources_of_any_lengths((transformer, rnn), {})
    for model in (transformer, rnn):
        functions = model.__dict__["_keras_seq_generate_functions"]
        decode = next(value[0] for key, value in functions.items() if key[0] == "greedy")
        traces = decode.experimental_get_tracing_count()
        model.generate([[1], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [4, 4]], 4, stop_token_id=3)
        assert decode.experimental_get_tracing_count() == traces  # the same bucket (16)
    with pytest.raises(ValueError, match="return_scores"):
        transformer.generate(SOURCES, 4, return_scores=True)


def test_several_sequences_per_prompt_follow_their_prompt(model):
    # Beam search's two best hypotheses of each prompt, side by side, equal the prompt
    # alone; the grouped path of the other families keeps each prompt's rows together.
    from keras_seq.models import RNNBackbone
    from keras_seq.models import RNNCausalLM

    kwargs = dict(strategy="beam", num_beams=3, num_return_sequences=2, jit_compile=False)
    outputs = model.generate(ROWS[:3], 5, **kwargs)
    assert len(outputs) == 6
    for index, row in enumerate(ROWS[:3]):
        alone_rows = np.asarray(model.generate(np.asarray([row]), 5, **kwargs)).tolist()
        assert outputs[2 * index : 2 * index + 2] == alone_rows
        assert alone_rows[0] != alone_rows[1]
    keras.utils.set_random_seed(1)
    rnn = RNNCausalLM(RNNBackbone(vocabulary_size=30, embedding_dim=8, hidden_dim=16))
    rows = [[3, 5, 7], [2, 9], [4, 4, 4]]
    outputs = rnn.generate(rows, 4, **kwargs)
    for index, row in enumerate(rows):
        alone_rows = np.asarray(rnn.generate(np.asarray([row]), 4, **kwargs)).tolist()
        assert outputs[2 * index : 2 * index + 2] == alone_rows


def test_a_recurrent_model_batches_prompts_of_any_lengths_in_one_bucket():
    # Left padding with a mask: the RNN carries its initial state over the padding, so each
    # row equals its prompt alone, and one compiled loop serves the whole bucket.
    from keras_seq.models import RNNBackbone
    from keras_seq.models import RNNCausalLM

    keras.utils.set_random_seed(2)
    rnn = RNNCausalLM(RNNBackbone(vocabulary_size=30, embedding_dim=8, hidden_dim=16))
    rows = [[3, 5, 7], [2, 9], [4, 4, 4, 4, 4, 1]]
    for kwargs in ({"strategy": "greedy"}, {"strategy": "beam", "num_beams": 3}):
        outputs = rnn.generate(rows, 5, stop_token_id=5, **kwargs)
        assert outputs == [alone(rnn, row, 5, stop_token_id=5, **kwargs) for row in rows]
    functions = rnn.__dict__["_keras_seq_generate_functions"]
    decode = next(value[0] for key, value in functions.items() if key[0] == "greedy")
    traces = decode.experimental_get_tracing_count()
    rnn.generate([[1, 2, 3, 4, 5, 6, 7], [9], [8, 8]], 5, stop_token_id=5)  # same bucket
    assert decode.experimental_get_tracing_count() == traces
    padded = {"token_ids": np.array([[3, 5, 7, 0], [0, 2, 9, 8]]), "padding_mask": None}
    padded["padding_mask"] = np.array([[1, 1, 1, 0], [0, 1, 1, 1]])
    outputs = rnn.generate(padded, 3)
    assert rows_from_padded(outputs["token_ids"], outputs["padding_mask"]) == [
        alone(rnn, [3, 5, 7], 3),
        alone(rnn, [2, 9, 8], 3),
    ]
