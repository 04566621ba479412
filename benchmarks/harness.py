"""Side-by-side benchmark harness: interleaved timing of named variants, ratios to their peers.

A benchmark module builds a list of `Variant`s (a name, a zero-argument callable that runs one
step and returns something, and optionally the name of the peer it is compared with) and hands
a builder to `main()`:

```python
from benchmarks import harness

def build(quick):
    model = ...
    variants = [
        harness.Variant("keras LSTM train", lambda: peer.train_on_batch(x, y)),
        harness.Variant(
            "keras_seq LSTM train", lambda: ours.train_on_batch(x, y), peer="keras LSTM train"
        ),
    ]
    return variants, {"batch": "64"}

if __name__ == "__main__":
    harness.main("My benchmark", build)
```

All variants run in one process. Each repeat is one round over every variant (the starting
variant rotates from round to round), so that machine noise, which on a shared box comes in
bursts, lands on all variants alike. Warm-up rounds come first; they absorb `tf.function`
tracing and XLA compilation, and the first call of each variant is reported on its own.
Each call's result is pulled to the host before the clock stops, so asynchronous work is
counted.

The ratio of a variant is its median divided by its peer's median (lower is better). The
"paired" range is the 25th to 75th percentile of the per-round ratios ours_i / peer_i, which
shows how much the ratio moves with the noise.
"""

import argparse
import dataclasses
import datetime
import importlib.metadata
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
RESULTS_HEADER = (
    "# Benchmark results\n\n"
    "Appended by the scripts in `benchmarks/` (see `benchmarks/README.md`). Each section is one "
    "run in one process; variants are interleaved round by round. Times are wall-clock per "
    "call; ratio = median / peer median, lower is better. On shared machines compare ratios, "
    "not times.\n"
)
DEFAULT_TARGET = 1.0
DEFAULT_NOISE = 0.05
VERSION_PACKAGES = ("tensorflow", "keras", "keras-hub", "keras-seq")
# Environment variables that change what TensorFlow, XLA or the thread pools do.
RECORDED_ENV_PREFIXES = (
    "TF_CPP_",
    "TF_ENABLE_",
    "TF_XLA_",
    "TF_NUM_",
    "TF_GPU_",
    "TF_DETERMINISTIC_",
    "TF_FORCE_",
    "TF_USE_LEGACY_KERAS",
    "XLA_",
    "OMP_",
    "KMP_",
    "DNNL_",
    "ONEDNN_",
    "KERAS_",
    "CUDA_VISIBLE_DEVICES",
)


@dataclasses.dataclass
class Variant:
    """One thing to time.

    Args:
        name: str. Unique name, shown in the table and matched by `--filter`.
        fn: zero-argument callable running one step and returning its result (a tensor,
            array, float or a nest of them); the harness pulls it to the host.
        peer: str or `None`. Name of the variant this one is compared with.
        items: int or `None`. Items (samples, tokens, images) one call processes; adds a
            throughput column.
        item_unit: str. Unit of `items` in the throughput column. Defaults to `"items"`.
    """

    name: str
    fn: Callable[[], object]
    peer: str | None = None
    items: int | None = None
    item_unit: str = "items"


@dataclasses.dataclass
class Result:
    """Timings of one variant, in seconds, one per repeat in round order."""

    name: str
    times: list
    first_call: float
    peer: str | None = None
    items: int | None = None
    item_unit: str = "items"

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def minimum(self):
        return min(self.times)

    @property
    def maximum(self):
        return max(self.times)


@dataclasses.dataclass
class Ratio:
    """A variant's median over its peer's median, with the quartiles of per-round ratios."""

    ratio: float
    paired_low: float
    paired_high: float


def percentile(values, q):
    """Linear-interpolation percentile (numpy's default), `q` in [0, 100]."""
    if not values:
        raise ValueError("`values` must not be empty.")
    if not 0 <= q <= 100:
        raise ValueError(f"`q` must be in [0, 100]. Received: q={q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def to_host(value):
    """Force completion of asynchronous work: bring the first leaf of `value` to the host."""
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    if isinstance(value, dict) and value:
        value = next(iter(value.values()))
    if value is None or isinstance(value, (int, float, str, bytes, np.ndarray, np.generic)):
        return value  # Already on the host (train_on_batch / predict_on_batch return these).
    import keras

    return keras.ops.convert_to_numpy(value)


def select(variants, patterns):
    """Variants whose name contains any of `patterns`, plus the peers they are compared with."""
    if not patterns:
        return list(variants)
    chosen = {v.name for v in variants if any(p in v.name for p in patterns)}
    while True:  # Peers of peers too (a chunked row's peer has a peer of its own).
        peers = {v.peer for v in variants if v.name in chosen and v.peer} - chosen
        if not peers:
            break
        chosen |= peers
    return [v for v in variants if v.name in chosen]


def _validate(variants, repeats, warmup):
    if not variants:
        raise ValueError("No variants to run; check `--filter`.")
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Variant names must be unique. Received duplicates: {duplicates}")
    for v in variants:
        if v.peer is not None and v.peer not in names:
            raise ValueError(
                f"Variant {v.name!r} names peer {v.peer!r}, which is not among the variants."
            )
    if repeats < 1:
        raise ValueError(f"`repeats` must be at least 1. Received: repeats={repeats}")
    if warmup < 0:
        raise ValueError(f"`warmup` must be at least 0. Received: warmup={warmup}")


def run_variants(variants, repeats, warmup, timer=time.perf_counter, sync=to_host, log=None):
    """Time every variant `repeats` times, interleaved, after `warmup` rounds.

    Round r runs the variants starting at index r mod n, so no variant always follows the
    same neighbour. `timer` returns seconds; `sync` is applied to each call's result inside
    the timed region. Returns `Result`s in the order of `variants`.
    """
    _validate(variants, repeats, warmup)
    first_call = {}
    times = {v.name: [] for v in variants}

    def timed(variant):
        start = timer()
        sync(variant.fn())
        return timer() - start

    for round_index in range(warmup):
        for v in variants:
            elapsed = timed(v)
            first_call.setdefault(v.name, elapsed)
        if log:
            log(f"warm-up round {round_index + 1}/{warmup} done")
    count = len(variants)
    for round_index in range(repeats):
        shift = round_index % count
        for v in variants[shift:] + variants[:shift]:
            elapsed = timed(v)
            first_call.setdefault(v.name, elapsed)
            times[v.name].append(elapsed)
        if log and (round_index + 1) % max(1, repeats // 10) == 0:
            log(f"round {round_index + 1}/{repeats} done")
    return [
        Result(
            name=v.name,
            times=times[v.name],
            first_call=first_call[v.name],
            peer=v.peer,
            items=v.items,
            item_unit=v.item_unit,
        )
        for v in variants
    ]


def compute_ratios(results):
    """`{name: Ratio}` for every result that has a peer among `results`."""
    by_name = {r.name: r for r in results}
    ratios = {}
    for r in results:
        if r.peer is None or r.peer not in by_name:
            continue
        peer = by_name[r.peer]
        paired = [ours / theirs for ours, theirs in zip(r.times, peer.times)]
        ratios[r.name] = Ratio(
            ratio=r.median / peer.median,
            paired_low=percentile(paired, 25),
            paired_high=percentile(paired, 75),
        )
    return ratios


def verdict(ratio, target=DEFAULT_TARGET, noise=DEFAULT_NOISE):
    """The verdict on a ratio: `yes` at or under `target`, `noise` up to `noise` (relative)
    above it, `no` beyond."""
    if ratio <= target:
        return "yes"
    if ratio <= target * (1.0 + noise):
        return "noise"
    return "no"


def format_table(results, target=DEFAULT_TARGET, noise=DEFAULT_NOISE):
    """The results as a markdown table, one row per variant, in the given order."""
    ratios = compute_ratios(results)
    with_items = any(r.items for r in results)
    header = ["variant", "median ms", "min-max ms", "first call s"]
    if with_items:
        header.append("throughput")
    header += ["vs peer", "ratio", "paired IQR", f"<= {target:.2f}x"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        row = [
            r.name,
            f"{r.median * 1e3:.1f}",
            f"{r.minimum * 1e3:.1f}-{r.maximum * 1e3:.1f}",
            f"{r.first_call:.2f}",
        ]
        if with_items:
            row.append(f"{r.items / r.median:,.1f} {r.item_unit}/s" if r.items else "")
        if r.name in ratios:
            ratio = ratios[r.name]
            row += [
                r.peer,
                f"{ratio.ratio:.3f}",
                f"{ratio.paired_low:.3f}-{ratio.paired_high:.3f}",
                verdict(ratio.ratio, target, noise),
            ]
        else:
            row += ["", "", "", ""]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def format_summary(results, target=DEFAULT_TARGET, noise=DEFAULT_NOISE):
    """One line per verdict, naming the variants that meet the target, are within noise, or miss."""
    ratios = compute_ratios(results)
    if not ratios:
        return ""
    groups = {"yes": [], "noise": [], "no": []}
    for name, ratio in ratios.items():
        groups[verdict(ratio.ratio, target, noise)].append(f"{name} ({ratio.ratio:.3f})")
    labels = {
        "yes": f"Meet the target (ratio <= {target:.2f})",
        "noise": f"Within noise above it ({target:.2f} < ratio <= {target * (1 + noise):.2f})",
        "no": f"Miss it (ratio > {target * (1 + noise):.2f})",
    }
    return "".join(
        f"- {labels[key]}: {', '.join(names) if names else 'none'}\n"
        for key, names in groups.items()
    )


def _read_key_values(path, separator=":"):
    values = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(separator)
                values.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return values


def machine_info():
    """CPU model, cores, memory and accelerators, as one line."""
    cpu = _read_key_values("/proc/cpuinfo")
    model = cpu.get("model name") or platform.processor() or platform.machine()
    flags = cpu.get("flags", "").split()
    if "avx512f" in flags:
        model += " (AVX-512)"
    elif "avx2" in flags:
        model += " (AVX2)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = _read_key_values("/proc/meminfo").get("MemTotal", "")
    memory = f"{int(memory.split()[0]) / 2**20:.1f} GiB" if memory else "unknown"
    try:
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception as error:  # Reported, not fatal: the table is still worth having.
        gpus = [f"unknown ({type(error).__name__})"]
    return (
        f"{model}, {cores} cores, {memory} memory, GPU: {', '.join(gpus) or 'none'}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def library_versions(packages=VERSION_PACKAGES):
    """Installed versions of `packages`, plus the git commit of this checkout."""
    parts = []
    for package in packages:
        try:
            parts.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{package} not installed")
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if commit:
            parts.append(f"git {commit}{' (uncommitted changes)' if dirty else ''}")
    except OSError:
        pass
    return ", ".join(parts)


def command_line(argv=None, environ=None):
    """The command as typed, with the environment variables that change TF/XLA behaviour."""
    argv = list(sys.orig_argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    if argv:
        argv[0] = os.path.basename(argv[0])
    env = [
        f"{key}={shlex.quote(environ[key])}"
        for key in sorted(environ)
        if key.startswith(RECORDED_ENV_PREFIXES)
    ]
    return " ".join(env + [shlex.join(argv)])


def load_average():
    """The 1-minute load average, or `None` where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def format_load(load_before, load_after):
    """The load line's text for `format_section`: empty where the load is unknown."""
    if load_before is None:
        return ""
    return f"{load_before:.2f} at start, {load_after:.2f} at end"


def format_section(
    title, table, summary="", settings=None, machine="", versions="", command="", load="", when=None
):
    """A markdown section for RESULTS.md: heading, provenance, settings, table, summary."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    lines = [
        f"## {title}: {when.strftime('%Y-%m-%d %H:%M')} UTC",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine}",
        f"- Versions: {versions}",
    ]
    if settings:
        lines.append("- Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    if load:
        lines.append(f"- Load average (1 min): {load}")
    lines += ["", table.rstrip("\n"), ""]
    if summary:
        lines += [summary.rstrip("\n"), ""]
    return "\n".join(lines) + "\n"


def append_section(section, path=RESULTS_PATH):
    """Append `section` to the results file, creating it with its header if needed."""
    path = Path(path)
    text = "" if path.exists() else RESULTS_HEADER
    with open(path, "a") as f:
        f.write(text + "\n" + section)


def parse_args(argv=None, default_repeats=20, default_warmup=2):
    parser = argparse.ArgumentParser(
        description="Time variants side by side; print and record the ratios to their peers."
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed rounds over all variants (default {default_repeats}, 3 with --quick)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"untimed rounds first; absorbs tracing and XLA compilation "
        f"(default {default_warmup}, 1 with --quick)",
    )
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        help="run only variants whose name contains this substring (and their "
        "peers); repeat the flag for several",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="do not append the results to RESULTS.md"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, 3 repeats, 1 warm-up, never recorded: a smoke test",
    )
    parser.add_argument(
        "--results-file",
        default=str(RESULTS_PATH),
        help="markdown file the results are appended to",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=DEFAULT_TARGET,
        help="ratio to meet, ours / peer (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else default_repeats
    if args.warmup is None:
        args.warmup = 1 if args.quick else default_warmup
    if args.quick:
        args.no_record = True
    return args


def main(
    title,
    build,
    argv=None,
    default_repeats=20,
    default_warmup=2,
    timer=time.perf_counter,
    machine=None,
):
    """Parse the command line, build the variants, run, print, and append to RESULTS.md.

    `build(quick)` returns `(variants, settings)`, settings being a dict of the sizes and
    options worth recording. `timer` and `machine` (a description replacing
    `machine_info()`) exist for tests. Returns the list of `Result`s.
    """
    args = parse_args(argv, default_repeats, default_warmup)
    variants, settings = build(args.quick)
    variants = select(variants, args.filter)
    settings = dict(settings, repeats=args.repeats, warmup=args.warmup)

    def log(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    log(f"{title}: {len(variants)} variants, {args.warmup} warm-up + {args.repeats} rounds")
    load_before = load_average()
    results = run_variants(variants, args.repeats, args.warmup, timer=timer, log=log)
    load_after = load_average()
    table = format_table(results, args.target)
    summary = format_summary(results, args.target)
    print()
    print(table)
    print(summary)
    if not args.no_record:
        section = format_section(
            title,
            table,
            summary=summary,
            settings=settings,
            machine=machine if machine is not None else machine_info(),
            versions=library_versions(),
            command=command_line(),
            load=format_load(load_before, load_after),
        )
        append_section(section, args.results_file)
        log(f"appended to {args.results_file}")
    return results
