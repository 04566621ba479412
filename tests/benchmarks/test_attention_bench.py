"""Smoke tests of benchmarks/bench_attention.py: `--quick` sizes, nothing recorded.

The formatting and pairing logic is tested on made-up numbers; the timing part and the
memory probes (fresh subprocesses) each run once at tiny sizes.
"""

import argparse
import sys
from pathlib import Path

import pytest

try:
    from benchmarks import bench_attention
    from benchmarks import harness
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_attention
    from benchmarks import harness

MIB = 2**20


def test_parse_chunks():
    assert bench_attention.parse_chunks("256x1024") == (256, 1024)
    assert bench_attention.parse_chunks("8X16") == (8, 16)
    for text in ("256", "ax1", "0x16", "1x2x3"):
        with pytest.raises(argparse.ArgumentTypeError, match="chunk"):
            bench_attention.parse_chunks(text)


def test_own_options_are_split_from_the_harness_options():
    args, rest = bench_attention.parse_args(
        ["--jit", "--repeats", "2", "--chunks", "8x16", "--chunks", "4x4", "--skip-memory"]
    )
    assert args.jit and args.skip_memory and not args.skip_timing and not args.mixed_float16
    assert bench_attention.parse_args(["--mixed-float16"])[0].mixed_float16
    assert args.chunks == [(8, 16), (4, 4)]
    assert rest == ["--repeats", "2"]
    with pytest.raises(SystemExit):
        bench_attention.parse_args(["--memory-runs", "0"])


def test_length_and_batch_options():
    args, rest = bench_attention.parse_args(
        ["--lengths", "1024,2048", "--batch", "4", "--chunked-lengths", "2048,4096"]
        + ["--memory-lengths", "2048,8192,16384", "--memory-batch", "1", "--repeats", "2"]
    )
    assert args.lengths == (1024, 2048) and args.batch == 4
    assert args.chunked_lengths == (2048, 4096)
    assert args.memory_lengths == (2048, 8192, 16384) and args.memory_batch == 1
    assert rest == ["--repeats", "2"]
    for text in ("a,2", "0,8", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="Received"):
            bench_attention._parse_ints(text)


def test_memory_specs_take_lengths_and_batch():
    specs = bench_attention.memory_specs(False, ((128, 2048),), 1, (2048, 16384), batch=1)
    assert [(s["label"], s["length"], s["batch"]) for s in specs] == [
        ("plain", 2048, 1),
        ("chunked 128x2048", 2048, 1),
        ("chunked 128x2048", 16384, 1),
    ]


def test_memory_specs_plain_once_chunked_at_every_length():
    specs = bench_attention.memory_specs(False, ((256, 1024), (128, 512)), runs=1)
    assert [(s["label"], s["length"]) for s in specs] == [
        ("plain", 2048),
        ("chunked 256x1024", 2048),
        ("chunked 256x1024", 8192),
        ("chunked 128x512", 2048),
        ("chunked 128x512", 8192),
    ]
    assert all(s["runs"] == 1 and s["quick"] is False for s in specs)


def test_chunked_time_ratio_pairs_with_our_plain_path():
    name = bench_attention.variant_name
    plain = name("keras_seq.MultiHeadAttention", "train", "graph", 2048)
    chunked = name("keras_seq.MultiHeadAttention", "train", "graph", 2048, (256, 1024))
    assert chunked == "keras_seq.MultiHeadAttention chunked 256x1024 train graph N=2048"
    results = [
        harness.Result(plain, [1.0, 2.0, 1.0], first_call=3.0),
        harness.Result(chunked, [2.0, 3.0, 2.5], first_call=9.0),
        harness.Result(name("keras.layers.MultiHeadAttention", "train", "graph", 2048), [1.0], 1.0),
    ]
    ratios = bench_attention.chunked_time_ratios(results)
    assert list(ratios) == [chunked]
    assert ratios[chunked].ratio == pytest.approx(2.5)


def test_format_memory_reports_growth_and_the_plain_path_it_skips():
    specs = bench_attention.memory_specs(False, ((256, 1024),), runs=1)
    probes = [
        {"peak": 1610 * MIB, "baseline": 10 * MIB, "seconds": 2.0},  # plain 2048
        {"peak": 810 * MIB, "baseline": 10 * MIB, "seconds": 4.0},  # chunked 2048
        {"peak": 3240 * MIB, "baseline": 40 * MIB, "seconds": 60.0},  # chunked 8192
    ]
    ratio = harness.Ratio(2.1, 1.9, 2.3)
    table, notes = bench_attention.format_memory(
        specs, probes, {"chunked row": ratio}, bench_attention.FULL_SIZES
    )
    lines = table.strip().split("\n")
    assert lines[2] == "| plain | 2048 | 1,600 | 1,610 | 1.00x | 1.00x | 2.0 |"
    assert lines[3] == "| chunked 256x1024 | 2048 | 800 | 810 | 0.50x | 1.00x | 4.0 |"
    assert lines[4] == "| chunked 256x1024 | 8192 | 3,200 | 3,240 | 2.00x | 4.00x | 60.0 |"
    assert "N=8192 / N=2048 = 4.00x (linear growth: 4x, quadratic: 16x)" in notes
    assert "at N=2048 it is 0.50x the plain path's" in notes
    assert "plain N=8192: not run" in notes and "about 25.0 GiB" in notes
    assert "chunked row / our plain path (interleaved, median): 2.10x" in notes
    # Allocations under 256 KiB are not counted, so tiny sizes can measure 0 bytes.
    zero = [dict(p, peak=p["baseline"]) for p in probes]
    table, _ = bench_attention.format_memory(specs, zero, {}, bench_attention.FULL_SIZES)
    assert "| n/a |" in table


def test_quick_timing_runs_every_pair_with_equal_weights(capsys):
    argv = ["--quick", "--skip-memory", "--chunked-lengths", "8,24"]
    results = bench_attention.main(argv)["results"]
    names = [r.name for r in results]
    for length in bench_attention.QUICK_SIZES["lengths"]:
        for peer, ours in (
            ("keras.layers.MultiHeadAttention train", "keras_seq.MultiHeadAttention train"),
            ("keras.layers.MultiHeadAttention predict", "keras_seq.MultiHeadAttention predict"),
            ("keras_hub.TransformerEncoder train", "keras_seq.TransformerEncoder train"),
            ("keras_hub.TransformerDecoder train", "keras_seq.TransformerDecoder train"),
        ):
            assert f"{ours} graph N={length}" in names
            assert dict((r.name, r.peer) for r in results)[f"{ours} graph N={length}"] == (
                f"{peer} graph N={length}"
            )
    for length in (8, 24):
        chunked = f"keras_seq.MultiHeadAttention chunked 8x16 train graph N={length}"
        assert dict((r.name, r.peer) for r in results)[chunked] == (
            f"keras_seq.MultiHeadAttention train graph N={length}"
        )
    assert all(len(r.times) == 3 for r in results)
    out = capsys.readouterr().out
    assert "| keras_seq.TransformerDecoder train graph N=24 |" in out
    assert "Meet the target" in out


@pytest.mark.slow  # over 15 s on 2 cores; the default run stays within its budget
def test_quick_memory_probes_run_in_fresh_processes(capsys):
    memory = bench_attention.main(["--quick", "--skip-timing"])["memory"]
    assert [(spec["label"], spec["length"]) for spec, _ in memory] == [
        ("plain", 64),
        ("chunked 8x16", 64),
        ("chunked 8x16", 256),
    ]
    for _, probe in memory:
        assert probe["peak"] >= probe["baseline"] >= 0 and probe["seconds"] > 0
    out = capsys.readouterr().out
    assert "| chunked 8x16 | 256 |" in out
    assert "plain N=256: not run" in out


@pytest.mark.slow  # about 5 s on 2 cores
def test_quick_mixed_float16_rows_run_with_equal_weights():
    results = bench_attention.main(["--quick", "--skip-memory", "--mixed-float16"])["results"]
    names = [r.name for r in results]
    assert "keras_seq.MultiHeadAttention train graph fp16 N=8" in names
    assert "keras_seq.MultiHeadAttention chunked 8x16 train graph fp16 N=24" in names
