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


@pytest.mark.slow  # two quick transformer runs, evaluate and predict: about 20 s
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


# --- char-lm --from a GPT-2 checkpoint with its tokenizer -------------------------------------


def write_corpus(path, num_lines=40, seed=0):
    rng = np.random.default_rng(seed)
    words = ("the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "home")
    text = "\n".join(" ".join(rng.choice(words, size=8)) for _ in range(num_lines)) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def fixture_tokenizer():
    from keras_seq.models import GPTCausalLM

    return GPTCausalLM.from_preset(HF_GPT2).tokenizer


def test_token_windows_are_the_tokenizer_ids_cut_in_windows(tmp_path):
    from keras_seq.recipes import data_files
    from keras_seq.recipes.text_data import TokenWindows

    tokenizer = fixture_tokenizer()
    texts = [write_corpus(tmp_path / "a.txt", 12), write_corpus(tmp_path / "b.txt", 9, seed=1)]
    length = 8
    windows = TokenWindows([tmp_path / "a.txt", tmp_path / "b.txt"], length, tokenizer)
    # Reference: the Hugging Face tokenizer of the checkpoint, windows of L + 1 ids per file
    # overlapping by one.
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(os.path.join(HF_GPT2, "tokenizer.json"))
    expected = []
    for text in texts:
        ids = reference.encode(text).ids
        for start in range(0, (len(ids) - 1) // length * length, length):
            expected.append(ids[start : start + length + 1])
    expected = np.asarray(expected, "int32")
    assert windows.num_train + windows.num_validation == len(expected)
    batches = list(windows.every_window(4, lambda ids: ids))
    inputs = np.concatenate([np.asarray(x) for x, _ in batches])
    targets = np.concatenate([np.asarray(y) for _, y in batches])
    np.testing.assert_array_equal(inputs, expected[:, :-1])
    np.testing.assert_array_equal(targets, expected[:, 1:])
    validation = np.concatenate([np.asarray(y) for _, y in windows.validation(4, lambda i: i)])
    np.testing.assert_array_equal(validation, expected[::10, 1:])
    (tmp_path / "short.txt").write_text("the cat")
    with pytest.raises(data_files.DataPathError, match="tokens make 0 window"):
        TokenWindows([tmp_path / "short.txt"], length, tokenizer)


def test_char_lm_from_checkpoint_options(tmp_path, capsys, monkeypatch):
    from keras_seq.recipes import registry

    recipe = registry.get_recipe("char-lm")
    assert registry.from_model_problem(recipe, HF_GPT2, ["a.txt"]) is None
    (tmp_path / "empty").mkdir()
    problem = registry.from_model_problem(recipe, str(tmp_path / "empty"), ["a.txt"])
    assert "without a config.json" in problem
    assert registry.from_model_source(HF_GPT2) == os.path.abspath(HF_GPT2)
    # A .keras GPTCausalLM needs no vocabulary.json when it was saved with its tokenizer.
    from keras_seq.models import GPTCausalLM
    from keras_seq.recipes import char_lm

    model = GPTCausalLM.from_preset(HF_GPT2)
    model.save(tmp_path / "with_tokenizer.keras")
    assert registry.from_model_problem(recipe, str(tmp_path / "with_tokenizer.keras"), []) is None
    loaded, vocabulary = char_lm.load_base_model(str(tmp_path / "with_tokenizer.keras"))
    assert vocabulary is None and loaded.tokenizer.vocabulary == model.tokenizer.vocabulary
    GPTCausalLM(model.backbone).save(tmp_path / "without.keras")
    problem = registry.from_model_problem(recipe, str(tmp_path / "without.keras"), [])
    assert "has no vocabulary.json beside it (nor a tokenizer in it)" in problem
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "a.txt")
    argv = ["train", "char-lm", "--data", "a.txt", "--from", "empty", "--quick"]
    with pytest.raises(SystemExit):
        cli.main(argv)
    err = capsys.readouterr().err
    assert "argument --from" in err and "without a config.json" in err and "'empty'" in err


@pytest.mark.slow  # a quick fine-tuning of the tiny checkpoint, then generate: about 12 s
def test_train_char_lm_from_a_gpt2_checkpoint_with_its_tokenizer(tmp_path, capsys):
    from keras_seq.models import GPTCausalLM
    from keras_seq.recipes.text_data import TokenWindows

    write_corpus(tmp_path / "corpus.txt", num_lines=60)
    output_dir = tmp_path / "run"
    argv = ["train", "char-lm", "--model", "gpt", "--data", str(tmp_path / "corpus.txt")]
    argv += ["--from", HF_GPT2, "--quick", "--epochs", "3", "--output-dir", str(output_dir)]
    out = command_output(capsys, argv)
    assert f"generate: keras-seq generate {output_dir / 'model.keras'}" in out
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["details"]["tokens"] == "GPT2Tokenizer"
    assert "vocabulary.json" not in metrics["files"]
    assert not (output_dir / "vocabulary.json").exists()
    tuned = keras.saving.load_model(output_dir / "model.keras")
    base = GPTCausalLM.from_preset(HF_GPT2)
    assert isinstance(tuned, GPTCausalLM) and tuned.tokenizer is not None
    # Fine-tuned: the weights moved, and the loss on the training text (no dropout) went down.
    assert not all(np.array_equal(a, b) for a, b in zip(tuned.get_weights(), base.get_weights()))
    windows = TokenWindows([tmp_path / "corpus.txt"], 32, base.tokenizer)

    def loss(model):
        total, count = 0.0, 0
        for token_ids, targets in windows.every_window(16, lambda ids: ids):
            token_ids = np.asarray(token_ids)
            inputs = {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}
            logits = model(inputs, training=False)
            losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
            total, count = total + float(np.sum(losses)), count + np.size(losses)
        return total / count

    assert loss(tuned) < loss(base)
    # evaluate scores it through its tokenizer: the loss recomputed here.
    scores = json.loads(
        command_output(
            capsys,
            ["evaluate", str(output_dir / "model.keras"), "--data", str(tmp_path / "corpus.txt")]
            + ["--json"],
        )
    )
    assert scores["task"] == "language_model" and scores["loss"] > 0
    # generate reads text with the tokenizer saved in model.keras: the prompt, then more.
    lines = command_output(
        capsys,
        ["generate", str(output_dir / "model.keras"), "--prompt", "the cat", "--max-new-tokens"]
        + ["4"],
    ).splitlines()
    expected = tuned.generate(["the cat"], 4, strategy="greedy")
    assert lines == list(expected) and lines[0].startswith("the cat")
