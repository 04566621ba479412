"""Tests for the other architectures of `keras-seq train` on the user's data and checkpoints:
`seq2seq-attention --model transformer` and `char-lm --from` a GPT-2 checkpoint with its
tokenizer (keras_seq/recipes/seq2seq_attention.py, char_lm.py, text_data.py).

Each test writes its tiny data set into `tmp_path` and runs `cli.main` with `--quick`.
"""

import json
import os

import keras
import numpy as np
import pytest

from keras_seq import cli

PAIRS = [
    ("one", "un"), ("two", "deux"), ("three", "trois"), ("four", "quatre"), ("five", "cinq"),
    ("six", "six"), ("seven", "sept"), ("eight", "huit"), ("nine", "neuf"), ("ten", "dix"),
    ("eleven", "onze"), ("twelve", "douze"),
]  # fmt: skip
HF_GPT2 = os.path.join(os.path.dirname(__file__), "models", "checkpoint_fixtures", "hf_gpt2")


def command_output(capsys, argv):
    assert cli.main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.slow  # two quick transformer runs, evaluate and predict: about 10 s
def test_train_transformer_seq2seq_on_pairs_then_from_it(tmp_path, capsys):
    from keras_seq.models import TransformerSeq2SeqLM
    from keras_seq.recipes import seq2seq_attention

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{source}\t{target}\n" for source, target in PAIRS))
    argv = ["train", "seq2seq-attention", "--model", "transformer", "--data", str(pairs)]
    command_output(capsys, [*argv, "--quick", "--output-dir", str(tmp_path / "run")])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["model"] == "transformer"
    assert "attention.png" not in metrics["files"]  # the LSTM's alignment plot only
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert isinstance(model, TransformerSeq2SeqLM)
    # The same vocabularies as the LSTM model's: the pairs' characters, <start> and <end>.
    _, (inputs, targets), (source, target), source_length = seq2seq_attention.pairs_data(PAIRS)
    assert model.backbone.source_vocabulary_size == len(source)
    assert model.backbone.target_vocabulary_size == len(target)
    vocabulary = json.loads((tmp_path / "run" / "vocabulary.json").read_text())
    assert vocabulary["source"]["characters"] == source.characters
    assert vocabulary["source_length"] == source_length
    # The held-out exact match, recomputed from the saved model on the validation pairs.
    generated = np.asarray(
        model.generate(inputs["source"], targets.shape[1], stop_token_id=2, jit_compile=False)
    )
    assert metrics["held_out"]["exact_match"] == pytest.approx(
        np.mean(np.all(generated == targets, axis=1))
    )

    # --from the saved transformer: its class and vocabularies are kept, its weights move.
    argv = ["train", "seq2seq-attention", "--data", str(pairs), "--quick"]
    argv += ["--from", str(tmp_path / "run" / "model.keras")]
    command_output(capsys, [*argv, "--output-dir", str(tmp_path / "tuned")])
    tuned_metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert tuned_metrics["details"]["from_model_class"] == "TransformerSeq2SeqLM"
    tuned_path = tmp_path / "tuned" / "model.keras"
    tuned = keras.saving.load_model(tuned_path)
    assert isinstance(tuned, TransformerSeq2SeqLM)
    base_weights, tuned_weights = model.get_weights(), tuned.get_weights()
    assert [w.shape for w in tuned_weights] == [w.shape for w in base_weights]
    assert not all(np.array_equal(a, b) for a, b in zip(tuned_weights, base_weights))
    tuned_vocabulary = json.loads((tmp_path / "tuned" / "vocabulary.json").read_text())
    assert tuned_vocabulary["target"] == vocabulary["target"]

    # evaluate, predict and generate read it with its vocabulary.json.
    out = command_output(capsys, ["evaluate", str(tuned_path), "--data", str(pairs), "--json"])
    scores = json.loads(out)
    assert scores["class"] == "TransformerSeq2SeqLM" and scores["examples"] == len(PAIRS)
    all_inputs = {**inputs, "source": source.encode([s for s, _ in PAIRS], length=source_length)}
    all_targets = target.encode([t for _, t in PAIRS], length=targets.shape[1], add_end=True)
    generated = np.asarray(
        tuned.generate(all_inputs["source"], all_targets.shape[1], stop_token_id=2)
    )
    assert scores["exact_match"] == pytest.approx(np.mean(np.all(generated == all_targets, axis=1)))
    lines = command_output(capsys, ["predict", str(tuned_path), "one", "two"]).splitlines()
    assert lines == target.decode(generated[:2])
    out = command_output(capsys, ["generate", str(tuned_path), "--prompt", "one"])
    assert out.splitlines() == lines[:1]
