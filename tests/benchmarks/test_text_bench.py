"""benchmarks/bench_text.py: its corpus, id comparison and tokens/s lines, the checkpoint it
writes, and a `--quick` run (slow), nothing recorded.

The quick run's build step checks that the tokenizers' ids equal Hugging Face's `tokenizers`
on the corpus (mismatches are counted in the settings) and that keras_seq's generated texts
equal keras_hub's GPT2CausalLM loaded from the same checkpoint (it raises otherwise).
"""

import json
import sys
from pathlib import Path

import pytest

try:
    from benchmarks import bench_text
    from benchmarks import harness
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_text
    from benchmarks import harness


def test_corpus_is_deterministic_english_sentences():
    corpus = bench_text.make_corpus(200)
    assert corpus == bench_text.make_corpus(200)
    assert corpus != bench_text.make_corpus(200, seed=1)
    assert len(corpus) == 200 and len(set(corpus)) > 150
    assert all(text[0].isupper() or text[0] == '"' for text in corpus)
    assert all(text.rstrip('"')[-1] in ".!?" for text in corpus)


def test_compare_ids_counts_rows_that_differ():
    assert bench_text.compare_ids([[1, 2], [3]], [[1, 2], [3]]) == (0, None)
    assert bench_text.compare_ids([[1, 2], [3], [4]], [[1, 2], [5], [6]]) == (2, (1, [3], [5]))
    with pytest.raises(ValueError, match="rows"):
        bench_text.compare_ids([[1]], [])


def test_tokens_per_second_lines_cover_tokenization_variants_only():
    results = [
        harness.Result("HF tokenizers GPT-2 BPE encode_batch", [0.5], 0.5, None, 100, "texts"),
        harness.Result("keras_hub GPT2CausalLM text greedy b1 XLA", [1.0], 1.0, None, 64, "tok"),
    ]
    lines = bench_text.tokens_per_second(results, {"GPT-2 BPE": 10.0})
    assert lines == "- HF tokenizers GPT-2 BPE encode_batch: 2,000 tok/s\n"
    assert bench_text.tokens_per_second(results[1:], {"GPT-2 BPE": 10.0}) == ""


def test_written_checkpoint_loads_in_keras_seq_with_the_fixture_tokenizer(tmp_path):
    from keras_seq.models import GPTCausalLM

    sizes = dict(num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, positions=40)
    bench_text.write_gpt2_checkpoint(tmp_path, sizes)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["n_layer"], config["n_embd"], config["n_positions"]) == (1, 16, 40)
    model = GPTCausalLM.from_preset(str(tmp_path))
    assert model.backbone.count_params() == 400 * 16 + 40 * 16 + 2 * 16 + (
        4 * 16 + 16 * 48 + 48 + 16 * 16 + 16 + 16 * 32 + 32 + 32 * 16 + 16
    )
    prompts = bench_text.make_prompts(model.tokenizer, bench_text.make_corpus(64), 6, 2)
    assert [len(model.tokenizer([p])[0]) for p in prompts] == [6, 6]


@pytest.mark.slow  # about 40 s on 2 cores; the default run stays within its budget
def test_quick_run_pairs_every_variant_with_its_peer(capsys):
    results = bench_text.main(["--quick", "--no-record", "--repeats", "1", "--warmup", "0"])
    peers = {r.name: r.peer for r in results}
    batch = bench_text.QUICK_SIZES["tfdata_batch"]
    for label in bench_text.TOKENIZERS:
        peer = f"HF tokenizers {label} encode_batch"
        for way in (
            "eager list",
            f"tf.data batch{batch} new pass",
            f"tf.data batch{batch} steady",
        ):
            assert peers[f"keras_seq {label} tokenizer {way}"] == peer
        assert peers[f"keras_seq {label} tokenizer tf.data batch{batch} iter() alone"] is None
        assert peers[f"keras_seq {label} tokenizer eager 1 text"] == (
            f"HF tokenizers {label} encode 1 text"
        )
    for batch in bench_text.QUICK_SIZES["batches"]:
        assert peers[f"keras_seq GPTCausalLM.from_preset text greedy b{batch} XLA"] == (
            f"keras_hub GPT2CausalLM text greedy b{batch} XLA"
        )
    output = capsys.readouterr().out
    assert "texts/s" in output and "tok/s" in output
    assert "Tokens per second (tokenization)" in output
