"""Tests for `keras-seq train bert-classifier` on labeled texts (keras_seq/cli/,
keras_seq/recipes/text_classification.py, data_files.read_labeled_text) and for `keras-seq
evaluate` / `predict` with a text classifier.

Each test writes its tiny CSV or TSV file into `tmp_path`.
"""

import json
import os

import keras
import numpy as np
import pytest

from keras_seq import cli
from keras_seq.recipes import data_files
from keras_seq.recipes import text_classification

ROWS = [
    ("a joy to watch", "good"),
    ("boring, really", "bad"),
    ("I loved it", "good"),
    ("a waste of time", "bad"),
    ("superb acting", "good"),
    ("awful plot", "bad"),
    ("great fun", "good"),
    ("terrible", "bad"),
]


def write_csv(path, rows=ROWS, header="id,text,label"):
    """`rows` as CSV with an `id` column first, the texts quoted (they hold commas)."""
    lines = [header] + [f'{i},"{text}",{label}' for i, (text, label) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_read_labeled_text_csv_and_tsv(tmp_path):
    write_csv(tmp_path / "a.csv")
    (tmp_path / "b.tsv").write_text(
        'Sentence\tsource\tClass\nfine, fine\tweb\t2\n\n"quoted" text\tx\t10\n', encoding="utf-8"
    )
    rows = data_files.read_labeled_text([tmp_path / "a.csv", tmp_path / "b.tsv"])
    # CSV quotes are read as CSV; TSV fields are kept as written; blank lines are skipped,
    # other columns dropped, any case of the column names taken.
    assert rows == ROWS + [("fine, fine", "2"), ('"quoted" text', "10")]
    assert data_files.class_names(["10", "2", "2"]) == ["2", "10"]
    assert data_files.class_names(["b", "a", "10"]) == ["10", "a", "b"]


@pytest.mark.parametrize(
    "content, name, reason",
    [
        ("text,label\nfine,good\nbad,worse,extra\n", "x.csv", "has 3 field(s) on line 3 (x.csv:3)"),
        ("text,label\n,good\n", "x.csv", "has an empty text on line 2 (x.csv:2)"),
        ("text,label\nfine, \n", "x.csv", "has an empty label on line 2 (x.csv:2)"),
        ("review,label\nfine,good\n", "x.csv", "has no text or sentence column"),
        ("text,label,class\nfine,good,a\n", "x.csv", "has more than one label or class column"),
        ("text\tlabel\nfine\tgood\nbad\n", "x.tsv", "has 1 field(s) on line 3 (x.tsv:3)"),
        ("text,label\nfine,good\n", "x.txt", "must end in .csv or .tsv"),
    ],
)
def test_labeled_text_errors_name_file_and_line(content, name, reason, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(
        data_files.DataPathError, match=reason.replace("(", r"\(").replace(")", r"\)")
    ):
        data_files.read_labeled_text([path])
    # The command refuses it before importing TensorFlow's training code: exit 2, file named.
    err = exit_2(capsys, ["train", "bert-classifier", "--data", str(path)])
    assert "argument --data" in err and reason in err and name in err, err


def test_train_needs_two_rows_and_two_labels(tmp_path, capsys):
    write_csv(tmp_path / "one.csv", [("fine", "good"), ("great", "good")])
    err = exit_2(capsys, ["train", "bert-classifier", "--data", str(tmp_path / "one.csv")])
    assert "2 row(s) of 1 label(s)" in err
    (tmp_path / "empty").mkdir()
    err = exit_2(capsys, ["train", "bert-classifier", "--data", str(tmp_path / "empty")])
    assert "holds no .csv or .tsv file" in err


def test_review_rows_labels_follow_adjective_and_negation():
    rows = text_classification.review_rows(200, seed=3)
    assert rows == text_classification.review_rows(200, seed=3)
    positive = set(text_classification._ADJECTIVES["positive"])
    for text, label in rows:
        words = text.split()
        polarity = "positive" if words[-1] in positive else "negative"
        if "not" in words:
            polarity = "negative" if polarity == "positive" else "positive"
        assert label == polarity, text
    assert {label for _, label in rows} == {"positive", "negative"}
    assert any("not" in text.split() for text, _ in rows)


def saved_text_classifier(directory, class_names=("bad", "good")):
    """A tiny untrained BERTTextClassifier with a vocabulary of ROWS' words, saved with its
    classes.json."""
    from keras_seq.models import BERTBackbone
    from keras_seq.models import BERTTextClassifier
    from keras_seq.models import BERTTokenizer

    words = sorted({word.strip(",").lower() for text, _ in ROWS for word in text.split()})
    vocabulary = [*text_classification.RESERVED_TOKENS, ",", *words]
    backbone = BERTBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        num_heads=1,
        hidden_dim=8,
        intermediate_dim=8,
        max_sequence_length=16,
    )
    model = BERTTextClassifier(
        backbone,
        num_classes=len(class_names),
        tokenizer=BERTTokenizer(vocabulary, lowercase=True),
    )
    kernel = model.output_dense.kernel
    kernel.assign(np.random.default_rng(0).normal(size=kernel.shape) * 3.0)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    (directory / "classes.json").write_text(
        json.dumps(text_classification.class_names_record(class_names))
    )
    return model


def test_evaluate_and_predict_a_text_classifier(tmp_path, capsys):
    model = saved_text_classifier(tmp_path / "run")
    model_path = str(tmp_path / "run" / "model.keras")
    write_csv(tmp_path / "test.csv")
    assert cli.main(["evaluate", model_path, "--data", str(tmp_path / "test.csv"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    # Reference: the model's own preprocess on every text at its longest length.
    texts = [text for text, _ in ROWS]
    logits = np.asarray(model(model.preprocess(texts, sequence_length=16)), "float64")
    truth = np.asarray([["bad", "good"].index(label) for _, label in ROWS])
    assert scores["task"] == "text_classifier" and scores["examples"] == len(ROWS)
    assert scores["accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == truth))
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    assert scores["loss"] == pytest.approx(-log_p[np.arange(len(truth)), truth].mean(), rel=1e-4)
    # predict: each text with its classes by probability, named from classes.json.
    assert cli.main(["predict", model_path, texts[0], texts[1], "--top-k", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    probabilities = np.exp(log_p)
    expected = [
        f"{text}: {['bad', 'good'][row.argmax()]} {row.max():.3f}"
        for text, row in zip(texts[:2], probabilities[:2])
    ]
    assert lines == expected


def test_evaluate_and_predict_text_classifier_errors_exit_2(tmp_path, capsys):
    saved_text_classifier(tmp_path / "run")
    model_path = str(tmp_path / "run" / "model.keras")
    write_csv(tmp_path / "other.csv", [("fine", "good"), ("meh", "neutral")])
    err = exit_2(capsys, ["evaluate", model_path, "--data", str(tmp_path / "other.csv")])
    assert "argument --data" in err and "'neutral'" in err and "bad, good" in err
    err = exit_2(capsys, ["predict", model_path, "fine", "--top-k", "3"])
    assert "argument --top-k" in err and "has 2 classes" in err
    err = exit_2(capsys, ["predict", model_path, "fine", "--max-new-tokens", "3"])
    assert "argument --max-new-tokens" in err
    (tmp_path / "run" / "classes.json").write_text(
        json.dumps(text_classification.class_names_record(["a", "b", "c"]))
    )
    err = exit_2(capsys, ["predict", model_path, "fine"])
    assert "argument MODEL" in err and "names 3 classes and the model has 2" in err


@pytest.mark.slow  # two quick bert-classifier runs, evaluate and predict: 47 s on 2 shared cores
def test_train_bert_classifier_on_own_csv_then_from(tmp_path, capsys):
    write_csv(tmp_path / "reviews.csv", ROWS * 3)
    output_dir = tmp_path / "run"
    argv = ["train", "bert-classifier", "--data", str(tmp_path / "reviews.csv"), "--quick"]
    assert cli.main(argv + ["--output-dir", str(output_dir)]) == 0
    assert "bert-classifier (bert): 1 epochs" in capsys.readouterr().out
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert json.loads((output_dir / "classes.json").read_text())["class_names"] == ["bad", "good"]
    assert (
        metrics["details"]["data_rows"]["train"] + metrics["details"]["data_rows"]["validation"]
        == len(ROWS) * 3
    )
    assert metrics["details"]["reload_max_abs_diff"] < 1e-5
    model = keras.saving.load_model(output_dir / "model.keras")
    assert model.tokenizer is not None and model.num_classes == 2
    # --from the saved model on data with three classes: a new head, the backbone kept.
    rows = ROWS * 2 + [("so so", "meh"), ("fine I guess", "meh")] * 3
    write_csv(tmp_path / "three.csv", rows)
    argv = ["train", "bert-classifier", "--data", str(tmp_path / "three.csv"), "--quick"]
    argv += ["--from", str(output_dir / "model.keras"), "--output-dir", str(tmp_path / "tuned")]
    assert cli.main(argv) == 0
    capsys.readouterr()
    tuned = keras.saving.load_model(tmp_path / "tuned" / "model.keras")
    assert tuned.num_classes == 3
    assert tuned.tokenizer.get_vocabulary() == model.tokenizer.get_vocabulary()
    names = json.loads((tmp_path / "tuned" / "classes.json").read_text())["class_names"]
    assert names == ["bad", "good", "meh"]
    # evaluate on the same file agrees with predict's best class, row by row.
    model_path = str(tmp_path / "tuned" / "model.keras")
    assert cli.main(["evaluate", model_path, "--data", str(tmp_path / "three.csv"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    texts = [text for text, _ in rows]
    assert cli.main(["predict", model_path, *texts, "--top-k", "1"]) == 0
    best = [line.rsplit(": ", 1)[1].split()[0] for line in capsys.readouterr().out.splitlines()]
    assert scores["accuracy"] == pytest.approx(
        np.mean([guess == label for guess, (_, label) in zip(best, rows)])
    )


@pytest.mark.slow  # a quick run from a checkpoint directory: about 30 s on 2 shared cores
def test_train_bert_classifier_from_a_checkpoint(tmp_path, capsys):
    checkpoint = os.path.join(
        os.path.dirname(__file__), "models", "checkpoint_fixtures", "hf_bert_model"
    )
    write_csv(tmp_path / "reviews.csv", ROWS * 2)
    argv = ["train", "bert-classifier", "--data", str(tmp_path / "reviews.csv"), "--quick"]
    assert cli.main(argv + ["--from", checkpoint, "--output-dir", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    with open(os.path.join(checkpoint, "config.json")) as file:
        config = json.load(file)
    with open(os.path.join(checkpoint, "vocab.txt"), encoding="utf-8") as file:
        vocabulary = file.read().splitlines()
    # The checkpoint's architecture and vocabulary, and a new head of two classes.
    assert model.backbone.hidden_dim == config["hidden_size"]
    assert model.backbone.num_layers == config["num_hidden_layers"]
    assert model.tokenizer.get_vocabulary() == vocabulary and model.num_classes == 2
    # An architecture name has no vocabulary to fine-tune with: exit 2.
    err = exit_2(capsys, argv + ["--from", "bert_tiny", "--output-dir", str(tmp_path / "x")])
    assert "argument --from" in err and "architecture name" in err
