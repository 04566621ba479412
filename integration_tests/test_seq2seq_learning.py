"""An RNNSeq2SeqLM learns: attention translates dates, and beats the fixed-vector bottleneck
on long reversals.

Budgets measured on 2 shared (busy) CPU cores, TensorFlow 2.21 / Keras 3.15.1: the date test
takes 40-51 s, the reversal comparison 60-83 s (both models); the whole file 1.7-2.3 min.
"""

import math

import keras
import numpy as np
import pytest

from keras_seq.data.date_translation import DATE_SOURCE_VOCABULARY
from keras_seq.data.date_translation import DATE_TARGET_LENGTH
from keras_seq.data.date_translation import DATE_TARGET_VOCABULARY
from keras_seq.data.date_translation import date_translation_data
from keras_seq.data.date_translation import decode_dates
from keras_seq.data.date_translation import random_dates
from keras_seq.data.reversal import END_ID
from keras_seq.data.reversal import reversal_data
from keras_seq.models.rnn_seq2seq_backbone import RNNSeq2SeqBackbone
from keras_seq.models.rnn_seq2seq_lm import RNNSeq2SeqLM

BATCH_SIZE = 64


def train(model, inputs, targets, epochs, learning_rate):
    """Adam with a cosine decay to 0 and gradient clipping; padding targets are ignored."""
    steps = epochs * math.ceil(len(targets) / BATCH_SIZE)
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(learning_rate, steps), clipnorm=1.0
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    model.fit(inputs, targets, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)


def greedy_scores(model, source, targets, end_id):
    """(exact match, token accuracy) of greedy decoding against right-padded `targets`."""
    generated = np.asarray(
        model.generate(source, max_new_tokens=targets.shape[1], stop_token_id=end_id)
    )
    exact = float(np.mean(np.all(generated == targets, axis=1)))
    tokens = float(np.mean((generated == targets)[targets > 0]))
    return exact, tokens, generated


@pytest.mark.slow  # over 15 s on 2 cores; the default run stays within its budget
def test_attention_learns_date_translation():
    inputs, targets = date_translation_data(8000, split="train", seed=0)
    # Held out: days never seen in training, in any format.
    test_inputs, test_targets = date_translation_data(500, split="test", seed=1)
    backbone = RNNSeq2SeqBackbone(
        source_vocabulary_size=len(DATE_SOURCE_VOCABULARY),
        target_vocabulary_size=len(DATE_TARGET_VOCABULARY),
        embedding_dim=32,
        hidden_dim=64,
        attention="bahdanau",
    )
    model = RNNSeq2SeqLM(backbone, start_token_id=DATE_TARGET_VOCABULARY.start_id)
    train(model, inputs, targets, epochs=6, learning_rate=5e-3)
    exact, _, generated = greedy_scores(
        model, test_inputs["source"], test_targets, DATE_TARGET_VOCABULARY.end_id
    )
    # Measured: 0.988 held-out exact match (0.998 of the characters) after 6 epochs, 40-51 s.
    assert exact >= 0.95, exact
    assert generated.shape == (500, DATE_TARGET_LENGTH)
    _, iso_dates = random_dates(500, split="test", seed=1)
    assert np.mean(np.array(decode_dates(generated)) == np.array(iso_dates)) == exact


@pytest.mark.slow  # over 15 s on 2 cores; the default run stays within its budget
def test_attention_beats_the_bottleneck_on_long_reversals():
    num_symbols = 10
    inputs, targets = reversal_data(6000, min_length=8, max_length=20, num_symbols=num_symbols)
    # Held out: the long end of the training lengths.
    test_inputs, test_targets = reversal_data(
        300, min_length=15, max_length=20, num_symbols=num_symbols, seed=1
    )
    results = {}
    for attention in ("bahdanau", None):
        backbone = RNNSeq2SeqBackbone(
            source_vocabulary_size=num_symbols + 3,
            target_vocabulary_size=num_symbols + 3,
            embedding_dim=32,
            hidden_dim=64,
            attention=attention,
        )
        model = RNNSeq2SeqLM(backbone)
        train(model, inputs, targets, epochs=5, learning_rate=5e-3)
        results[attention] = greedy_scores(model, test_inputs["source"], test_targets, END_ID)[:2]
        if attention is not None:
            alignments = np.asarray(
                model.attention_weights(test_inputs["source"], test_inputs["target_in"])
            )  # (B, T, S)
    (attention_exact, attention_tokens), (bottleneck_exact, bottleneck_tokens) = (
        results["bahdanau"],
        results[None],
    )
    # Measured (60-83 s for both): with attention 0.977 exact match (0.997 of the tokens);
    # without, 0.003 exact match (0.32 of the tokens): one final state cannot hold 15-20
    # symbols.
    assert attention_exact >= 0.9, results
    assert attention_tokens >= 0.97, results
    assert bottleneck_exact <= 0.2, results
    assert attention_exact - bottleneck_exact >= 0.6, results
    assert attention_tokens - bottleneck_tokens >= 0.3, results
    # The alignments are the anti-diagonal: output step t attends to source position
    # length - 1 - t (measured: 0.992 of the steps).
    lengths = (test_inputs["source"] > 0).sum(axis=1)
    on_diagonal = [
        alignments[row, step].argmax() == length - 1 - step
        for row, length in enumerate(lengths)
        for step in range(length)
    ]
    assert np.mean(on_diagonal) >= 0.9, np.mean(on_diagonal)
