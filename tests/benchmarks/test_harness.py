"""Fast tests of the benchmark harness logic, with a fake clock: no TensorFlow work is timed."""

import datetime
import sys
from pathlib import Path

import pytest

try:
    from benchmarks import harness
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import harness


class FakeClock:
    """A timer whose time advances only when a fake step runs; records the call order."""

    def __init__(self):
        self.now = 0.0
        self.calls = []

    def __call__(self):
        return self.now

    def step(self, name, durations):
        """A variant function taking `durations[i]` seconds on its i-th call."""
        count = {"i": 0}

        def fn():
            self.now += durations[min(count["i"], len(durations) - 1)]
            count["i"] += 1
            self.calls.append(name)
            return name

        return fn


def _run(clock, specs, repeats, warmup):
    variants = [
        harness.Variant(name, clock.step(name, durations), peer=peer)
        for name, durations, peer in specs
    ]
    return harness.run_variants(
        variants, repeats=repeats, warmup=warmup, timer=clock, sync=lambda value: value
    )


def test_percentile_matches_linear_interpolation():
    values = [4.0, 1.0, 3.0, 2.0]
    assert harness.percentile(values, 0) == 1.0
    assert harness.percentile(values, 100) == 4.0
    assert harness.percentile(values, 50) == pytest.approx(2.5)
    assert harness.percentile(values, 25) == pytest.approx(1.75)
    assert harness.percentile([7.0], 75) == 7.0
    with pytest.raises(ValueError, match="q"):
        harness.percentile(values, 101)
    with pytest.raises(ValueError, match="values"):
        harness.percentile([], 50)


def test_run_variants_times_each_call_and_separates_warmup():
    clock = FakeClock()
    # First call (warm-up, "compilation") takes 5 s; then 1, 3, 2 s.
    results = _run(clock, [("a", [5.0, 1.0, 3.0, 2.0], None)], repeats=3, warmup=1)
    (result,) = results
    assert result.first_call == 5.0
    assert result.times == [1.0, 3.0, 2.0]
    assert result.median == 2.0
    assert (result.minimum, result.maximum) == (1.0, 3.0)


def test_run_variants_interleaves_and_rotates_rounds():
    clock = FakeClock()
    specs = [(name, [1.0], None) for name in ("a", "b", "c")]
    _run(clock, specs, repeats=3, warmup=1)
    warmup_round, timed = clock.calls[:3], clock.calls[3:]
    assert warmup_round == ["a", "b", "c"]
    assert timed == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_first_call_without_warmup_is_the_first_timed_call():
    clock = FakeClock()
    (result,) = _run(clock, [("a", [4.0, 1.0], None)], repeats=2, warmup=0)
    assert result.first_call == 4.0
    assert result.times == [4.0, 1.0]


def test_ratio_is_median_over_peer_median_with_paired_quartiles():
    clock = FakeClock()
    results = _run(
        clock,
        [
            ("peer", [9.0, 4.0, 4.0, 4.0, 8.0], None),
            ("ours", [9.0, 2.0, 3.0, 6.0, 4.0], "peer"),
        ],
        repeats=4,
        warmup=1,
    )
    ratios = harness.compute_ratios(results)
    assert set(ratios) == {"ours"}
    # Medians: ours median(2, 3, 6, 4) = 3.5, peer median(4, 4, 4, 8) = 4.
    assert ratios["ours"].ratio == pytest.approx(3.5 / 4.0)
    # Paired ratios per round: 0.5, 0.75, 1.5, 0.5 -> quartiles 0.5 and 0.9375.
    assert ratios["ours"].paired_low == pytest.approx(0.5)
    assert ratios["ours"].paired_high == pytest.approx(0.9375)


def test_verdict_thresholds():
    assert harness.verdict(0.97) == "yes"
    assert harness.verdict(1.0) == "yes"
    assert harness.verdict(1.04) == "noise"
    assert harness.verdict(1.06) == "no"
    assert harness.verdict(1.9, target=2.0) == "yes"


def test_validation_errors_name_the_problem():
    clock = FakeClock()
    with pytest.raises(ValueError, match="unique"):
        _run(clock, [("a", [1.0], None), ("a", [1.0], None)], repeats=1, warmup=0)
    with pytest.raises(ValueError, match="peer 'missing'"):
        _run(clock, [("a", [1.0], "missing")], repeats=1, warmup=0)
    with pytest.raises(ValueError, match="repeats"):
        _run(clock, [("a", [1.0], None)], repeats=0, warmup=0)
    with pytest.raises(ValueError, match="warmup"):
        _run(clock, [("a", [1.0], None)], repeats=1, warmup=-1)


def test_select_keeps_peers_of_matches():
    variants = [
        harness.Variant("keras LSTM xla", None),
        harness.Variant("ours LSTM xla", None, peer="keras LSTM xla"),
        harness.Variant("keras GRU xla", None),
        harness.Variant("ours GRU xla", None, peer="keras GRU xla"),
    ]
    names = [v.name for v in harness.select(variants, ["ours LSTM"])]
    assert names == ["keras LSTM xla", "ours LSTM xla"]
    assert harness.select(variants, []) == variants
    assert harness.select(variants, ["nothing"]) == []


def test_select_keeps_peers_of_peers():
    variants = [
        harness.Variant("keras MHA", None),
        harness.Variant("ours MHA", None, peer="keras MHA"),
        harness.Variant("ours MHA chunked", None, peer="ours MHA"),
        harness.Variant("keras GRU", None),
    ]
    names = [v.name for v in harness.select(variants, ["chunked"])]
    assert names == ["keras MHA", "ours MHA", "ours MHA chunked"]


def _results():
    return [
        harness.Result("keras LSTM", [0.100, 0.120, 0.110], first_call=2.5, items=64),
        harness.Result(
            "ours LSTM", [0.099, 0.121, 0.104], first_call=2.25, peer="keras LSTM", items=64
        ),
        harness.Result("ours GRU", [0.300, 0.200, 0.250], first_call=1.0),
    ]


def test_format_table_rows():
    table = harness.format_table(_results())
    lines = table.strip().split("\n")
    assert lines[0] == (
        "| variant | median ms | min-max ms | first call s | throughput | vs peer | ratio "
        "| paired IQR | <= 1.00x |"
    )
    assert lines[1] == "|---|---|---|---|---|---|---|---|---|"
    assert lines[2] == "| keras LSTM | 110.0 | 100.0-120.0 | 2.50 | 581.8 items/s |  |  |  |  |"
    # ratio 0.104 / 0.110 = 0.945; paired 0.99, 1.0083, 0.9455 -> quartiles 0.968, 0.999.
    assert lines[3] == (
        "| ours LSTM | 104.0 | 99.0-121.0 | 2.25 | 615.4 items/s | keras LSTM | 0.945 "
        "| 0.968-0.999 | yes |"
    )
    assert lines[4] == "| ours GRU | 250.0 | 200.0-300.0 | 1.00 |  |  |  |  |  |"


def test_format_summary_groups_by_verdict():
    results = _results() + [
        harness.Result("slow", [0.2], first_call=0.2, peer="keras LSTM"),
    ]
    summary = harness.format_summary(results)
    assert "- Meet the target (ratio <= 1.00): ours LSTM (0.945)\n" in summary
    assert "- Within noise above it (1.00 < ratio <= 1.05): none\n" in summary
    assert "- Miss it (ratio > 1.05): slow (1.818)\n" in summary


def test_command_line_records_tf_environment():
    command = harness.command_line(
        ["/usr/bin/python3", "-m", "benchmarks.bench_recurrent", "--filter", "LSTM cell"],
        {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "HOME": "/root",
            "XLA_FLAGS": "--a --b",
            "TF_CLI_CONFIG_FILE": "/root/.terraformrc",
        },
    )
    assert command == (
        "TF_CPP_MIN_LOG_LEVEL=2 XLA_FLAGS='--a --b' "
        "python3 -m benchmarks.bench_recurrent --filter 'LSTM cell'"
    )


def test_append_section_creates_header_once_and_appends(tmp_path):
    path = tmp_path / "RESULTS.md"
    when = datetime.datetime(2026, 11, 21, 20, 30, tzinfo=datetime.timezone.utc)
    first = harness.format_section(
        "Bench A",
        harness.format_table(_results()),
        summary="- a summary\n",
        settings={"batch": 64},
        machine="CPU X, 2 cores",
        versions="keras 3",
        command="python -m benchmarks.a",
        load="0.50 at start, 1.00 at end",
        when=when,
    )
    harness.append_section(first, path)
    harness.append_section(first.replace("Bench A", "Bench B"), path)
    text = path.read_text()
    assert text.startswith("# Benchmark results\n")
    assert text.count("# Benchmark results") == 1
    assert text.index("## Bench A: 2026-11-21 20:30 UTC") < text.index("## Bench B")
    assert "- Command: `python -m benchmarks.a`\n" in text
    assert "- Machine: CPU X, 2 cores\n- Versions: keras 3\n- Settings: batch 64\n" in text
    assert "- Load average (1 min): 0.50 at start, 1.00 at end\n" in text
    assert "| ours LSTM | 104.0 |" in text
    assert text.count("- a summary") == 2


def test_parse_args_quick_defaults_and_overrides():
    args = harness.parse_args(["--quick"], default_repeats=60, default_warmup=3)
    assert (args.repeats, args.warmup, args.no_record) == (3, 1, True)
    args = harness.parse_args(["--quick", "--repeats", "5"], default_repeats=60)
    assert args.repeats == 5
    args = harness.parse_args(["--filter", "LSTM", "--filter", "xla"], default_repeats=60)
    assert (args.repeats, args.warmup, args.no_record) == (60, 2, False)
    assert args.filter == ["LSTM", "xla"]


def test_main_runs_builds_filters_and_records(tmp_path, capsys):
    clock = FakeClock()

    def build(quick):
        size = 1.0 if quick else 2.0
        return (
            [
                harness.Variant("peer", clock.step("peer", [size])),
                harness.Variant("ours", clock.step("ours", [size / 2]), peer="peer"),
                harness.Variant("other", clock.step("other", [size])),
            ],
            {"size": size},
        )

    path = tmp_path / "RESULTS.md"
    results = harness.main(
        "Fake",
        build,
        ["--filter", "ours", "--repeats", "2", "--results-file", str(path)],
        timer=clock,
        machine="fake machine",
    )
    assert [r.name for r in results] == ["peer", "ours"]
    assert [r.times for r in results] == [[2.0, 2.0], [1.0, 1.0]]
    assert "| ours | 1000.0 |" in capsys.readouterr().out
    text = path.read_text()
    assert "## Fake: " in text
    assert "- Machine: fake machine\n" in text
    assert "- Settings: size 2.0, repeats 2, warmup 2\n" in text
    assert "| ours | 1000.0 | 1000.0-1000.0 | 1.00 | peer | 0.500 | 0.500-0.500 | yes |" in text
