"""GenerationLogger: the texts read back from the event files are the detokenized output of
`generate` (greedy: the argmax rollout of full forward passes), per `every_n_epochs`;
decoding options pass through; errors."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from keras_seq.callbacks.generation_logger import GenerationLogger
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM

VOCABULARY = [f"w{index}" for index in range(20)]
rng = np.random.default_rng(0)
TOKENS = rng.integers(1, 20, size=(4, 8)).astype("int32")
PROMPTS = TOKENS[:2, :3]


def read_texts(log_dir):
    """`{step: [str, ...]}` of the `generation/samples` text summaries in `log_dir`."""
    accumulator = EventAccumulator(
        os.path.join(log_dir, "generation"), size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    assert accumulator.Tags()["tensors"] == ["generation/samples"]
    assert accumulator.SummaryMetadata("generation/samples").plugin_data.plugin_name == "text"
    return {
        event.step: [text.decode("utf-8") for text in tf.make_ndarray(event.tensor_proto)]
        for event in accumulator.Tensors("generation/samples")
    }


def words(token_ids):
    return " ".join(VOCABULARY[token] for token in token_ids)


def greedy_rollout(model, prompts, steps):
    """Greedy decoding by full forward passes: the reference for cached generation."""
    sequence = prompts
    for _ in range(steps):
        logits = model({"token_ids": sequence, "padding_mask": np.ones_like(sequence)})
        sequence = np.concatenate([sequence, np.argmax(logits[:, -1], -1)[:, None]], axis=1)
    return sequence


def test_gpt_greedy_texts_per_epoch(tmp_path):
    backbone = GPTBackbone(
        vocabulary_size=20,
        num_layers=1,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=16,
        sequence_length=16,
        dropout=0.0,
    )
    model = GPTCausalLM(backbone)
    model.compile(
        keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    logger = GenerationLogger(str(tmp_path), PROMPTS, max_new_tokens=4, detokenize=words)
    inputs = {"token_ids": TOKENS[:, :-1], "padding_mask": np.ones_like(TOKENS[:, :-1])}
    model.fit(inputs, TOKENS[:, 1:], epochs=2, callbacks=[logger], verbose=0)
    texts = read_texts(str(tmp_path))
    assert sorted(texts) == [0, 1]
    expected = [words(row) for row in greedy_rollout(model, PROMPTS, 4)]
    assert texts[1] == expected
    assert all(text.startswith(words(prompt)) for text, prompt in zip(texts[1], PROMPTS))
    assert texts[1] == [words(row) for row in np.asarray(model.generate(PROMPTS, 4))]


def make_rnn_causal_lm():
    model = RNNCausalLM(RNNBackbone(vocabulary_size=20, embedding_dim=6, hidden_dim=8))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_every_n_epochs_default_detokenize_and_sampling_options(tmp_path):
    model = make_rnn_causal_lm()
    options = {"strategy": "top_k", "top_k": 3, "seed": 7, "jit_compile": False}
    logger = GenerationLogger(
        tmp_path, PROMPTS, max_new_tokens=5, every_n_epochs=2, generate_kwargs=options
    )
    model.fit(TOKENS[:, :-1], TOKENS[:, 1:], epochs=4, callbacks=[logger], verbose=0)
    texts = read_texts(str(tmp_path))
    assert sorted(texts) == [1, 3]  # after epochs 2 and 4
    # The model has not changed since the last log; the seed makes sampling repeat.
    token_ids = np.asarray(model.generate(PROMPTS, 5, **options))
    assert token_ids.shape == (2, 3 + 5)
    assert texts[3] == [" ".join(str(token) for token in row) for row in token_ids]


def test_detokenize_may_return_bytes_or_string_tensors(tmp_path):
    model = make_rnn_causal_lm()
    logger = GenerationLogger(
        str(tmp_path), PROMPTS, 2, detokenize=lambda ids: tf.constant(words(ids).encode())
    )
    logger.set_model(model)
    logger.log_samples(step=5)
    expected = [words(row) for row in np.asarray(model.generate(PROMPTS, 2))]
    assert read_texts(str(tmp_path)) == {5: expected}
    logger = GenerationLogger(str(tmp_path), PROMPTS, 2, detokenize=lambda ids: list(ids))
    logger.set_model(model)
    with pytest.raises(TypeError, match="`detokenize` must return a str"):
        logger.samples()


def test_model_without_generate(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    logger = GenerationLogger(str(tmp_path), np.zeros((2, 3)), max_new_tokens=2)
    with pytest.raises(TypeError, match="`generate"):
        model.fit(np.zeros((2, 3)), np.zeros((2, 1)), epochs=1, callbacks=[logger], verbose=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"max_new_tokens": 0}, ValueError, "max_new_tokens"),
        ({"max_new_tokens": 2.0}, TypeError, "max_new_tokens"),
        ({"every_n_epochs": 0}, ValueError, "every_n_epochs"),
        ({"every_n_epochs": False}, TypeError, "every_n_epochs"),
        ({"detokenize": "words"}, TypeError, "detokenize"),
        ({"generate_kwargs": [("strategy", "beam")]}, TypeError, "generate_kwargs"),
        ({"generate_kwargs": {"max_new_tokens": 3}}, ValueError, "generate_kwargs"),
        ({"generate_kwargs": {"return_scores": True}}, ValueError, "generate_kwargs"),
        ({"log_dir": ""}, TypeError, "log_dir"),
        ({"prompts": None}, ValueError, "prompts"),
    ],
)
def test_argument_validation(kwargs, error, match):
    arguments = {"log_dir": "logs", "prompts": PROMPTS, "max_new_tokens": 3}
    with pytest.raises(error, match=match):
        GenerationLogger(**{**arguments, **kwargs})


def test_config_holds_the_json_arguments():
    logger = GenerationLogger("logs", PROMPTS, 3, generate_kwargs={"strategy": "beam"})
    assert logger.get_config() == {
        "log_dir": "logs",
        "max_new_tokens": 3,
        "every_n_epochs": 1,
        "generate_kwargs": {"strategy": "beam"},
    }
    assert keras.saving.get_registered_name(GenerationLogger) == "keras_seq>GenerationLogger"
