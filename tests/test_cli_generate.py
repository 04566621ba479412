"""Tests for `keras-seq generate` (keras_seq/cli/, keras_seq/recipes/generate_text.py,
keras_seq/recipes/model_sources.py and keras_seq/recipes/vocabulary_file.py) on small saved
models built here (untrained: decoding is deterministic all the same), and on the GPT-2
checkpoint written by transformers in tests/models/checkpoint_fixtures/hf_gpt2 (its greedy
texts are in its reference.json). Generation from the recipes' trained models is tested in
tests/test_cli_train.py."""

import importlib
import io
import json
import pathlib
import shutil

import keras
import numpy as np
import pytest

from keras_seq import cli
from keras_seq import decoding_options
from keras_seq.data.char_corpus import CHAR_CORPUS_VOCABULARY
from keras_seq.data.date_translation import DATE_SOURCE_LENGTH
from keras_seq.data.date_translation import DATE_SOURCE_VOCABULARY
from keras_seq.data.date_translation import DATE_TARGET_VOCABULARY
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM
from keras_seq.models.rnn_seq2seq_backbone import RNNSeq2SeqBackbone
from keras_seq.models.rnn_seq2seq_lm import RNNSeq2SeqLM
from keras_seq.models.transformer_seq2seq_backbone import TransformerSeq2SeqBackbone
from keras_seq.models.transformer_seq2seq_lm import TransformerSeq2SeqLM
from keras_seq.models.vit.vit_backbone import ViTBackbone
from keras_seq.models.vit.vit_image_classifier import ViTImageClassifier
from keras_seq.recipes import vocabulary_file
from keras_seq.recipes.generate_text import generate_text
from keras_seq.recipes.generate_text import model_kind
from keras_seq.recipes.model_sources import keras_file_has_tokenizer


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Paths of small saved models; the text ones with a vocabulary.json beside them."""
    keras.utils.set_random_seed(1)
    root = tmp_path_factory.mktemp("models")
    paths = {}

    def save(name, model, **vocabulary):
        directory = root / name
        directory.mkdir()
        model.save(directory / "model.keras")
        if vocabulary:
            vocabulary_file.write_vocabulary_file(directory / "vocabulary.json", **vocabulary)
        paths[name] = directory / "model.keras"

    size = len(CHAR_CORPUS_VOCABULARY)
    save(
        "rnn",
        RNNCausalLM(RNNBackbone(vocabulary_size=size, embedding_dim=8, hidden_dim=16)),
        source=CHAR_CORPUS_VOCABULARY,
        max_new_tokens=12,
    )
    save(
        "gpt",
        GPTCausalLM(
            GPTBackbone(
                size,
                num_layers=1,
                hidden_dim=16,
                num_heads=2,
                intermediate_dim=32,
                sequence_length=16,
            )
        ),
        source=CHAR_CORPUS_VOCABULARY,
    )
    save(
        "seq2seq",
        RNNSeq2SeqLM(
            RNNSeq2SeqBackbone(
                source_vocabulary_size=len(DATE_SOURCE_VOCABULARY),
                target_vocabulary_size=len(DATE_TARGET_VOCABULARY),
                embedding_dim=8,
                hidden_dim=16,
                attention="bahdanau",
            ),
            start_token_id=DATE_TARGET_VOCABULARY.start_id,
        ),
        source=DATE_SOURCE_VOCABULARY,
        target=DATE_TARGET_VOCABULARY,
        source_length=DATE_SOURCE_LENGTH,
        stop_token_id=DATE_TARGET_VOCABULARY.end_id,
        max_new_tokens=11,
    )
    save(
        "transformer_ids",
        TransformerSeq2SeqLM(
            TransformerSeq2SeqBackbone(
                vocabulary_size=20,
                num_encoder_layers=1,
                num_decoder_layers=1,
                hidden_dim=16,
                num_heads=2,
                intermediate_dim=32,
            )
        ),
    )
    save(
        "vit",
        ViTImageClassifier(
            ViTBackbone(
                image_shape=(8, 8, 1),
                patch_size=4,
                num_layers=1,
                hidden_dim=8,
                num_heads=2,
                intermediate_dim=16,
            ),
            num_classes=3,
        ),
    )
    return paths


def run_generate(capsys, *argv):
    assert cli.main(["generate", *map(str, argv)]) == 0
    captured = capsys.readouterr()
    return captured.out.splitlines()


def test_language_model_greedy_equals_model_generate(saved, capsys):
    lines = run_generate(capsys, saved["rnn"], "--prompt", "the cat", "--prompt", "a")
    model = keras.saving.load_model(saved["rnn"])
    expected = [
        CHAR_CORPUS_VOCABULARY.decode(
            np.asarray(
                model.generate(CHAR_CORPUS_VOCABULARY.encode([prompt]), 12, jit_compile=False)
            )
        )[0]
        for prompt in ("the cat", "a")
    ]
    assert lines == expected
    assert lines[0].startswith("the cat") and len(lines[0]) == len("the cat") + 12


@pytest.mark.parametrize(
    "options, kwargs",
    [
        (
            ["--strategy", "beam", "--num-beams", "3", "--jit-compile"],
            {"strategy": "beam", "num_beams": 3, "jit_compile": True},
        ),
        (
            ["--strategy", "top_p", "--top-p", "0.8", "--temperature", "0.7", "--seed", "4"],
            {"strategy": "top_p", "top_p": 0.8, "temperature": 0.7, "seed": 4},
        ),
        (["--strategy", "sample", "--seed", "2"], {"strategy": "sample", "seed": 2}),
    ],
)
def test_gpt_strategies_equal_model_generate(options, kwargs, saved, capsys):
    lines = run_generate(capsys, saved["gpt"], "--prompt", "dog", "--max-new-tokens", "5", *options)
    model = keras.saving.load_model(saved["gpt"])
    kwargs = {"jit_compile": False, **kwargs}
    expected = model.generate(CHAR_CORPUS_VOCABULARY.encode(["dog"]), 5, **kwargs)
    assert lines == CHAR_CORPUS_VOCABULARY.decode(np.asarray(expected))


def test_gpt_default_length_fits_its_positions(saved, capsys):
    # No --max-new-tokens and no default in vocabulary.json: 32, shortened to the 16 - 10
    # positions left after the prompt.
    lines = run_generate(capsys, saved["gpt"], "--prompt", "the cat is")
    assert len(lines[0]) <= 16 and lines[0].startswith("the cat is")
    model = keras.saving.load_model(saved["gpt"])
    expected = model.generate(CHAR_CORPUS_VOCABULARY.encode(["the cat is"]), 6, jit_compile=False)
    assert lines == CHAR_CORPUS_VOCABULARY.decode(np.asarray(expected))


def test_seq2seq_decodes_with_the_target_vocabulary(saved, capsys):
    prompt = "Tuesday, March 3, 1998"
    lines = run_generate(capsys, saved["seq2seq"], "--prompt", prompt)
    model = keras.saving.load_model(saved["seq2seq"])
    source = DATE_SOURCE_VOCABULARY.encode([prompt], length=DATE_SOURCE_LENGTH)
    expected = model.generate(
        source, 11, stop_token_id=DATE_TARGET_VOCABULARY.end_id, jit_compile=False
    )
    assert lines == DATE_TARGET_VOCABULARY.decode(np.asarray(expected))


def test_without_vocabulary_token_ids_in_and_out(saved, capsys):
    lines = run_generate(
        capsys, saved["transformer_ids"], "--prompt", "5 6 7 8", "--max-new-tokens", "6"
    )
    model = keras.saving.load_model(saved["transformer_ids"])
    expected = np.asarray(model.generate(np.array([[5, 6, 7, 8]]), 6, jit_compile=False))[0]
    assert lines == [" ".join(str(token) for token in expected)]
    # With a stop token the ids end at it: pick the first generated id as the stop token.
    stop = int(expected[0])
    lines = run_generate(
        capsys,
        saved["transformer_ids"],
        *("--prompt", "5 6 7 8", "--max-new-tokens", "6", "--stop-token-id", stop),
    )
    assert lines == [str(stop)]


def test_vocabulary_option_overrides_the_file_beside(saved, capsys, tmp_path):
    # The seq2seq model's vocabulary given explicitly to a copy without one.
    lines = run_generate(
        capsys,
        saved["seq2seq"],
        *("--prompt", "03/03/98", "--vocabulary", saved["seq2seq"].parent / "vocabulary.json"),
    )
    assert len(lines) == 1 and set(lines[0]) <= set("0123456789-")


def test_model_kind_accepts_every_task_class(saved):
    # The task classes themselves, as saved and reloaded (their deprecated 0.1 subclasses
    # match the same `isinstance` tests).
    models = {name: keras.saving.load_model(path) for name, path in saved.items()}
    assert {name: type(model).__name__ for name, model in models.items()} == {
        "rnn": "RNNCausalLM",
        "gpt": "GPTCausalLM",
        "seq2seq": "RNNSeq2SeqLM",
        "transformer_ids": "TransformerSeq2SeqLM",
        "vit": "ViTImageClassifier",
    }
    assert {name: model_kind(model) for name, model in models.items()} == {
        "rnn": "language_model",
        "gpt": "language_model",
        "seq2seq": "seq2seq",
        "transformer_ids": "seq2seq",
        "vit": None,
    }


def test_generate_text_function(saved):
    model = keras.saving.load_model(saved["rnn"])
    vocabulary = vocabulary_file.read_vocabulary_file(saved["rnn"].parent / "vocabulary.json")
    texts = generate_text(model, ["the", "a cat"], vocabulary=vocabulary, max_new_tokens=4)
    assert [len(text) for text in texts] == [7, 9]
    with pytest.raises(TypeError, match="`model` must be a causal language model"):
        generate_text(keras.saving.load_model(saved["vit"]), ["1"])


def test_vocabulary_file_round_trip(tmp_path):
    path = tmp_path / "vocabulary.json"
    vocabulary_file.write_vocabulary_file(
        path, DATE_SOURCE_VOCABULARY, DATE_TARGET_VOCABULARY, source_length=29, stop_token_id=2
    )
    content = vocabulary_file.read_vocabulary_file(path)
    assert content["source"].tokens == DATE_SOURCE_VOCABULARY.tokens
    assert content["target"].tokens == DATE_TARGET_VOCABULARY.tokens
    assert (content["source_length"], content["stop_token_id"]) == (29, 2)
    assert content["max_new_tokens"] is None
    assert json.loads(path.read_text())["format"] == "keras_seq.vocabulary"


@pytest.mark.parametrize(
    "content, match",
    [
        ("not json", "is not a JSON file"),
        ('{"format": "other"}', "is not a keras_seq vocabulary file"),
        ('{"format": "keras_seq.vocabulary", "version": 9}', "version 9"),
        (
            '{"format": "keras_seq.vocabulary", "version": 1, "source": {"characters": "aa"}, '
            '"target": {"characters": "a"}}',
            "invalid vocabulary",
        ),
    ],
)
def test_read_vocabulary_file_errors(content, match, tmp_path):
    path = tmp_path / "vocabulary.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        vocabulary_file.read_vocabulary_file(path)


def test_the_command_and_generate_read_one_table_of_strategies():
    # The command lists the strategies and checks their options from the table `generate`
    # reads (keras_seq.decoding_options, importable without TensorFlow).
    generation = importlib.import_module("keras_seq.generation.generate")
    assert generation.STRATEGY_OPTIONS is decoding_options.STRATEGY_OPTIONS
    assert generation.OPTION_DEFAULTS is decoding_options.OPTION_DEFAULTS
    assert generation.STRATEGIES == decoding_options.STRATEGIES
    assert tuple(decoding_options.STRATEGY_OPTIONS) == decoding_options.STRATEGIES


@pytest.mark.parametrize(
    "name, options, named, value",
    [
        (None, ["--prompt", "x"], "MODEL", "missing.keras"),
        ("text", ["--prompt", "x"], "MODEL", "notes.txt"),
        ("rnn", [], "--prompt", "required"),
        ("rnn", ["--prompt", ""], "--prompt", "''"),
        ("rnn", ["--prompt", "Hello!"], "--prompt", "Hello!"),
        ("transformer_ids", ["--prompt", "five six"], "--prompt", "five six"),
        ("transformer_ids", ["--prompt", "1 -2"], "--prompt", "1 -2"),
        ("rnn", ["--prompt", "a", "--temperature", "0.5"], "--temperature", "0.5"),
        ("rnn", ["--prompt", "a", "--strategy", "beam", "--top-k", "3"], "--top-k", "3"),
        ("rnn", ["--prompt", "a", "--strategy", "top_p", "--top-p", "1.5"], "--top-p", "1.5"),
        (
            "rnn",
            ["--prompt", "a", "--strategy", "sample", "--temperature", "0"],
            "--temperature",
            "0",
        ),
        ("rnn", ["--prompt", "a", "--strategy", "beam", "--num-beams", "0"], "--num-beams", "0"),
        ("rnn", ["--prompt", "a", "--strategy", "nucleus"], "--strategy", "nucleus"),
        ("rnn", ["--prompt", "a", "--max-new-tokens", "-4"], "--max-new-tokens", "-4"),
        ("rnn", ["--prompt", "a", "--vocabulary", "absent.json"], "--vocabulary", "absent.json"),
        ("rnn", ["--prompt", "a", "--vocabulary", "notes.txt"], "--vocabulary", "notes.txt"),
        ("gpt", ["--prompt", "abc", "--max-new-tokens", "14"], "--max-new-tokens", "14"),
        ("gpt", ["--prompt", "a" * 16], "--prompt", "a" * 16),
        ("vit", ["--prompt", "1 2"], "MODEL", "ViTImageClassifier"),
        ("broken", ["--prompt", "1 2"], "MODEL", "truncated or corrupt"),
    ],
)
def test_generate_usage_errors_exit_2(
    name, options, named, value, saved, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04 not really a zip")
    model = {None: "missing.keras", "text": "notes.txt", "broken": "broken.keras"}.get(name)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", str(model or saved[name]), *options])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: keras-seq generate" in err
    assert named in err and value in err, err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "Infinity"])
def test_non_finite_length_penalty_is_a_usage_error(value, capsys):
    # Refused while parsing: before the model (which does not exist) is even looked at.
    argv = ["generate", "missing.keras", "--prompt", "a", "--strategy", "beam"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, f"--length-penalty={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --length-penalty: must be a finite number" in err
    assert f"Received: {value!r}" in err


# === Checkpoints: GPTCausalLM.from_preset and the model's tokenizer ===

FIXTURES = pathlib.Path(__file__).resolve().parent / "models" / "checkpoint_fixtures"
GPT2 = FIXTURES / "hf_gpt2"
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def gpt2_reference():
    """The prompts and greedy texts transformers wrote for the hf_gpt2 fixture, and the
    number of new tokens they were generated with."""
    reference = json.loads((GPT2 / "reference.json").read_text())
    cases = [(case["prompt"], case["text"]) for case in reference["generate"]]
    return cases, reference["generate_settings"]["max_new_tokens"]


def prompt_options(cases):
    return [option for prompt, _ in cases for option in ("--prompt", prompt)]


@pytest.fixture(scope="module")
def gpt2_saved(tmp_path_factory):
    """The hf_gpt2 fixture as a keras_seq preset and as a `.keras` file (both with the
    tokenizer)."""
    root = tmp_path_factory.mktemp("gpt2")
    model = GPTCausalLM.from_preset(str(GPT2))
    model.save_to_preset(root / "preset")
    model.save(root / "model.keras")
    return {"preset": root / "preset", "keras": root / "model.keras"}


@pytest.mark.parametrize("source", ["checkpoint", "preset", "keras"])
def test_gpt2_checkpoint_generates_hugging_faces_greedy_text(source, gpt2_saved, capsys):
    cases, max_new_tokens = gpt2_reference()
    model = GPT2 if source == "checkpoint" else gpt2_saved[source]
    lines = run_generate(capsys, model, *prompt_options(cases), "--max-new-tokens", max_new_tokens)
    # The second prompt stops at the tokenizer's end token ("... a cup of tea?").
    assert lines == [text for _, text in cases]


def test_gpt2_text_equals_model_generate_with_other_strategies(capsys):
    lines = run_generate(
        capsys,
        GPT2,
        *("--prompt", "The cat", "--max-new-tokens", "6"),
        *("--strategy", "beam", "--num-beams", "3"),
    )
    model = GPTCausalLM.from_preset(str(GPT2))
    assert lines == model.generate(
        ["The cat"], max_new_tokens=6, strategy="beam", num_beams=3, jit_compile=False
    )


def test_gpt2_stop_token_id_overrides_the_end_token(capsys):
    cases, max_new_tokens = gpt2_reference()
    prompt, text = cases[1]  # it stops at the end token 399 after " tea?"
    # "?" is id 30 in the fixture's vocabulary: stopping there keeps the same text. With
    # another stop token, generation runs on past the end token (removed from the text as a
    # special token), as `generate` does given that stop token.
    lines = run_generate(
        capsys, GPT2, "--prompt", prompt, "--max-new-tokens", max_new_tokens, "--stop-token-id", 30
    )
    assert lines == [text]
    lines = run_generate(
        capsys, GPT2, "--prompt", prompt, "--max-new-tokens", max_new_tokens, "--stop-token-id", 7
    )
    model = GPTCausalLM.from_preset(str(GPT2))
    expected = model.generate([prompt], max_new_tokens, stop_token_id=7, jit_compile=False)
    assert lines == expected and len(lines[0]) > len(text), (lines, text)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """huggingface_hub offline over a cache (its documented layout) holding the hf_gpt2
    fixture as `keras-seq/tiny-gpt2` and the Marian one as `keras-seq/tiny-marian`."""
    from huggingface_hub import constants as hub_constants

    for repo_id, fixture in [("keras-seq/tiny-gpt2", GPT2), ("keras-seq/tiny-marian", MARIAN)]:
        repo = tmp_path / "hub" / ("models--" + repo_id.replace("/", "--"))
        shutil.copytree(fixture, repo / "snapshots" / HUB_COMMIT)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(HUB_COMMIT)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_hf_handle_from_the_cache_offline(offline_hub, capsys):
    cases, max_new_tokens = gpt2_reference()
    lines = run_generate(
        capsys,
        "hf://keras-seq/tiny-gpt2",
        *prompt_options(cases),
        *("--max-new-tokens", max_new_tokens),
    )
    assert lines == [text for _, text in cases]


MARIAN = FIXTURES / "hf_marian"


def marian_reference(label):
    return json.loads((MARIAN / "reference.json").read_text())["generate"][label]


@pytest.mark.parametrize("model", [MARIAN, "hf://keras-seq/tiny-marian"])
def test_marian_checkpoint_translates_as_hugging_faces_generate(model, offline_hub, capsys):
    # No option: the checkpoint's generation config (beam search, 4 beams), as transformers'
    # generate(); --strategy greedy: its greedy run.
    run = marian_reference("default")
    lines = run_generate(capsys, model, *prompt_options([(s, None) for s in run["sources"]]))
    assert lines == run["texts"]
    greedy = marian_reference("greedy_long")
    lines = run_generate(
        capsys,
        model,
        *prompt_options([(s, None) for s in greedy["sources"]]),
        *("--strategy", "greedy", "--max-new-tokens", greedy["max_new_tokens"]),
    )
    assert lines == greedy["texts"]


@pytest.mark.parametrize(
    "model, options, named, value",
    [
        (GPT2, ["--prompt", ""], "--prompt", "''"),
        (GPT2, ["--prompt", "a", "--vocabulary", "notes.txt"], "--vocabulary", "notes.txt"),
        (GPT2, ["--prompt", "The cat " * 30], "--prompt", "leaves no room"),
        (GPT2, ["--prompt", "The cat", "--max-new-tokens", "62"], "--max-new-tokens", "62"),
        ("t5", ["--prompt", "a"], "MODEL", "model_type 't5' is not supported"),
        (FIXTURES / "hf_bert", ["--prompt", "a"], "MODEL", "as a GPTCausalLM"),
        (FIXTURES, ["--prompt", "a"], "MODEL", "no readable config.json"),
        ("hf://keras-seq/not-cached", ["--prompt", "a"], "MODEL", "hf://keras-seq/not-cached"),
        # A keras-hub preset name keras-hub does not list: refused before any download.
        ("gpt2_tiny_unknown", ["--prompt", "a"], "MODEL", "gpt2_tiny_unknown"),
        (MARIAN, ["--prompt", "a", "--temperature", "0.5"], "--temperature", "default strategy"),
        (MARIAN, ["--prompt", "a", "--early-stopping", "never"], "--early-stopping", "never"),
    ],
)
def test_checkpoint_usage_errors_exit_2(
    model, options, named, value, offline_hub, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a vocabulary")
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text('{"model_type": "t5", "is_encoder_decoder": true}')
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", str(model), *options])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: keras-seq generate" in err
    assert named in err and value in err, err


def test_keras_file_has_tokenizer(saved, gpt2_saved, tmp_path):
    assert keras_file_has_tokenizer(gpt2_saved["keras"])
    assert not keras_file_has_tokenizer(saved["gpt"])
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert not keras_file_has_tokenizer(tmp_path / "broken.keras")


def test_prompts_from_a_file_or_standard_input(capsys, tmp_path, monkeypatch):
    cases, max_new_tokens = gpt2_reference()
    prompts = [prompt for prompt, _ in cases]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n\n", encoding="utf-8")
    expected = [text for _, text in cases]
    lines = run_generate(
        capsys,
        GPT2,
        *("--prompts-file", tmp_path / "prompts.txt", "--max-new-tokens", max_new_tokens),
    )
    assert lines == expected
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(prompts[1:])))
    lines = run_generate(
        capsys,
        GPT2,
        *("--prompt", prompts[0], "--prompts-file", "-", "--max-new-tokens", max_new_tokens),
    )
    assert lines == expected


def test_logit_processing_options_equal_model_generate(capsys):
    cases, _ = gpt2_reference()
    prompts = [prompt for prompt, _ in cases]
    options = {"repetition_penalty": 1.5, "no_repeat_ngram_size": 2}
    lines = run_generate(
        capsys,
        GPT2,
        *prompt_options(cases),
        *("--max-new-tokens", 10, "--repetition-penalty", 1.5, "--no-repeat-ngram-size", 2),
    )
    model = GPTCausalLM.from_preset(str(GPT2))
    assert lines == model.generate(prompts, 10, jit_compile=False, **options)
    assert lines != model.generate(prompts, 10, jit_compile=False)


@pytest.mark.parametrize(
    "options, named, value",
    [
        (["--prompts-file", "absent.txt"], "--prompts-file", "absent.txt"),
        (["--prompt", "a", "--repetition-penalty", "0"], "--repetition-penalty", "'0'"),
        (["--prompt", "a", "--no-repeat-ngram-size", "0"], "--no-repeat-ngram-size", "'0'"),
    ],
)
def test_prompt_and_processing_usage_errors_exit_2(
    options, named, value, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", str(GPT2), *options])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert named in err and value in err, err


@pytest.mark.parametrize("model", ["gpt2", "rnn", "marian"])
def test_stream_prints_the_lines_of_a_plain_run(model, saved, capsys):
    # A checkpoint with a tokenizer, a .keras file with a vocabulary, a translation model.
    path, options = {
        "gpt2": (GPT2, ["--prompt", "The cat", "--prompt", "A dog sat on"]),
        "rnn": (saved["rnn"], ["--prompt", "the cat", "--prompt", "a"]),
        "marian": (MARIAN, ["--prompt", "I see three books.", "--strategy", "greedy"]),
    }[model]
    options = [*options, "--max-new-tokens", "8"]
    plain = run_generate(capsys, path, *options)
    assert run_generate(capsys, path, *options, "--stream") == plain


def test_stream_with_beam_search_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", str(MARIAN), "--prompt", "a", "--stream"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--stream" in err and "beam" in err


def test_several_outputs_and_stop_strings_equal_model_generate(saved, capsys):
    # GPT-2 (a tokenizer): beam search's two best per prompt, then a stop string; an RNN with
    # a vocabulary: three samples of one prompt, one line each.
    model = GPTCausalLM.from_preset(str(GPT2))
    beam = ("--strategy", "beam", "--num-beams", "3", "--num-return-sequences", "2")
    lines = run_generate(
        capsys, GPT2, *("--prompt", "The cat", "--prompt", "A dog"), "--max-new-tokens", 5, *beam
    )
    kwargs = dict(strategy="beam", num_beams=3, num_return_sequences=2, jit_compile=False)
    assert lines == model.generate(["The cat", "A dog"], 5, **kwargs) and len(lines) == 4
    free = run_generate(capsys, GPT2, "--prompt", "The cat", "--max-new-tokens", 12)[0]
    stop = free[len("The cat") + 3 : len("The cat") + 5]
    stopped = run_generate(
        capsys, GPT2, "--prompt", "The cat", "--max-new-tokens", 12, "--stop-string", stop
    )[0]
    assert stopped == model.generate("The cat", 12, stop_strings=[stop], jit_compile=False)
    assert stop in stopped[len("The cat") - len(stop) + 1 :] and len(stopped) <= len(free)
    samples = ("--strategy", "sample", "--seed", "3", "--num-return-sequences", "3")
    lines = run_generate(capsys, saved["rnn"], "--prompt", "the cat", *samples)
    assert len(lines) == 3 and all(line.startswith("the cat") for line in lines)


@pytest.mark.parametrize(
    "options, named",
    [
        (["--stop-string", "x"], "--stop-string"),
        (["--num-return-sequences", "2", "--strategy", "sample", "--stream"], "--stream"),
        (["--num-return-sequences", "2"], "num_return_sequences=2"),  # greedy
    ],
)
def test_several_outputs_and_stop_string_usage_errors_exit_2(options, named, saved, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", str(saved["rnn"]), "--prompt", "the cat", *options])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert named in err, err
