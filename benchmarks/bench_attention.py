"""keras_seq attention against Keras' MultiHeadAttention and keras-hub's transformer blocks.

Two parts in one run (details in benchmarks/README.md):

1. Time, through `harness.main` (interleaved, ratio ours / peer, target 1.0), at N = 128,
   512, 1024, 2048 (batch 8, hidden 256, 4 heads), with identical weights (outputs checked
   first): `keras_seq.MultiHeadAttention` vs `keras.layers.MultiHeadAttention` (self-
   attention, no causal mask; train and predict), `keras_seq.TransformerEncoder` and
   `TransformerDecoder` (decoder-only, causal) vs keras_hub's (intermediate 1024; train).
   A train step is forward + gradient of the mean squared output with respect to every
   trainable weight (no optimizer) in a `tf.function`, without XLA unless `--jit`. Our
   memory-efficient path (`query_chunk_size`) is timed at the longest N with no peer; its
   ratio to our plain path is printed with the memory results.
2. Peak memory of one train step of our MultiHeadAttention (plain at N=2048, memory-efficient
   at N=2048 and 8192), each in a fresh subprocess (see `probe`). The plain path at N=8192
   is not run: its O(N^2) attention tensors do not fit in 24 GiB.

With `--mixed-float16` the timed rows run under the `mixed_float16` policy (the mode reads
`graph fp16`): our query-key products are computed in float32 (so that large inputs do not
overflow float16 into NaN), Keras' and keras-hub's in float16, and the ratios price that.

Run: `python -m benchmarks.bench_attention [--jit] [--mixed-float16] [--chunks QxK ...]
[--lengths N,N,...] [--batch B] [--chunked-lengths N,N,...] [--skip-memory] [--skip-timing]
[--memory-lengths N,N,...] [--memory-batch B] [--memory-runs N] [--memory-jobs N] [harness
options:
--repeats --warmup --filter --quick --no-record --results-file --target]`. `--filter`
selects timed rows only.
"""

import argparse
import concurrent.futures
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import harness

TITLE = "Attention vs keras.layers.MultiHeadAttention / keras_hub blocks"
MEMORY_TITLE = "Attention: peak memory of the memory-efficient path"
FULL_SIZES = {
    "batch": 8,
    "hidden_dim": 256,
    "num_heads": 4,
    "intermediate_dim": 1024,
    "lengths": (128, 512, 1024, 2048),
    "memory_lengths": (2048, 8192),
}
QUICK_SIZES = {
    "batch": 2,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
    "lengths": (8, 24),
    "memory_lengths": (64, 256),
}
# Query x key chunk sizes of the memory-efficient path (see the README for the sweep
# behind them). Several can be compared with `--chunks 128x512 --chunks 256x1024`.
DEFAULT_CHUNKS = ((256, 1024),)
QUICK_CHUNKS = ((8, 16),)
DEFAULT_REPEATS = 8
DEFAULT_WARMUP = 1
ATOL = 1e-4
PROBE_PREFIX = "PROBE_RESULT "
PROBE_TIMEOUT_S = 1800
REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_chunks(text):
    """`"256x1024"` -> `(256, 1024)` (query chunk, key chunk)."""
    try:
        query_chunk, key_chunk = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"`--chunks` must be QUERYxKEY chunk sizes, e.g. 256x1024. Received: {text!r}"
        ) from None
    if query_chunk < 1 or key_chunk < 1:
        raise argparse.ArgumentTypeError(f"`--chunks` sizes must be positive. Received: {text!r}")
    return query_chunk, key_chunk


def _parse_ints(text):
    """`"1024,2048"` -> `(1024, 2048)`."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"Expected comma-separated integers, e.g. 1024,2048. Received: {text!r}"
        ) from None
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"Values must be positive. Received: {text!r}")
    return values


def parse_args(argv=None):
    """This file's own options; the rest go to `harness.main`."""
    parser = argparse.ArgumentParser(
        description="Attention benchmark; also takes the harness options (--repeats, "
        "--warmup, --filter, --quick, --no-record, --results-file, --target).",
        add_help=False,
    )
    parser.add_argument("--jit", action="store_true", help="time with jit_compile=True (XLA)")
    parser.add_argument(
        "--mixed-float16",
        action="store_true",
        help="time under the mixed_float16 policy (our query-key products run in float32)",
    )
    parser.add_argument(
        "--chunks",
        action="append",
        type=parse_chunks,
        default=None,
        help="QUERYxKEY chunk sizes of the memory-efficient path; repeat to compare "
        "(default {}x{})".format(*DEFAULT_CHUNKS[0]),
    )
    parser.add_argument(
        "--lengths",
        type=_parse_ints,
        default=None,
        help="comma-separated timed sequence lengths (default 128,512,1024,2048)",
    )
    parser.add_argument("--batch", type=int, default=None, help="timed batch size (default 8)")
    parser.add_argument(
        "--chunked-lengths",
        type=_parse_ints,
        default=None,
        help="comma-separated lengths at which the memory-efficient path is timed, each "
        "against our plain path at that length (default: the longest timed length)",
    )
    parser.add_argument(
        "--memory-lengths",
        type=_parse_ints,
        default=None,
        help="comma-separated lengths of the memory probes; the plain path runs at the "
        "first only (default 2048,8192)",
    )
    parser.add_argument(
        "--memory-batch", type=int, default=None, help="batch of the memory probes (default 8)"
    )
    parser.add_argument("--skip-memory", action="store_true", help="timing only")
    parser.add_argument("--skip-timing", action="store_true", help="memory only")
    parser.add_argument(
        "--memory-runs",
        type=int,
        default=1,
        help="train steps per memory probe; the peak over them is reported (default 1)",
    )
    parser.add_argument(
        "--memory-jobs",
        type=int,
        default=None,
        help="memory probes run at once (default 1; all with --quick). Peaks are per "
        "process, so they do not mix, but the processes share the CPU",
    )
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # JSON spec; used by subprocesses
    args, rest = parser.parse_known_args(argv)
    if args.memory_runs < 1:
        parser.error(f"`--memory-runs` must be at least 1. Received: {args.memory_runs}")
    if args.memory_jobs is not None and args.memory_jobs < 1:
        parser.error(f"`--memory-jobs` must be at least 1. Received: {args.memory_jobs}")
    if "-h" in rest or "--help" in rest:
        parser.print_help()
    return args, rest


def _inputs(sizes, length, seed=0):
    import keras

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((sizes["batch"], length, sizes["hidden_dim"]), "float32")
    return keras.ops.convert_to_tensor(x)


def _self_attention(layer, x, training):
    return layer(x, x, training=training)


def _block(layer, x, training):
    return layer(x, training=training)


def _step(task, layer, call, x, jit):
    """A `tf.function` running `call(layer, x, training)`: `train` or `predict`.

    `train`: forward, mean squared output, gradients with respect to every trainable weight.
    """
    import tensorflow as tf

    if task == "predict":
        return tf.function(lambda: tf.reduce_sum(call(layer, x, False)), jit_compile=jit)

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(call(layer, x, True), "float32")))
        gradients = tape.gradient(loss, layer.trainable_weights)
        # A result that depends on every gradient: the backward pass is neither pruned from
        # the graph nor still running when the clock stops.
        return tf.stack([loss, tf.add_n([tf.reduce_sum(g) for g in gradients])])

    return step


def _mha(sizes, chunks=None):
    import keras_seq

    query_chunk, key_chunk = chunks if chunks else (None, 1024)
    return keras_seq.layers.MultiHeadAttention(
        sizes["num_heads"],
        sizes["hidden_dim"] // sizes["num_heads"],
        query_chunk_size=query_chunk,
        key_chunk_size=key_chunk,
        memory_efficient_length=None,  # The plain rows stay plain at every length.
    )


@dataclasses.dataclass
class Pair:
    """Our layer and the peer's, run alike by `call(layer, x, training)` for each task."""

    peer_label: str
    peer: object
    our_label: str
    ours: object
    call: object
    tasks: tuple = ("train",)


def _pairs(sizes):
    import keras
    import keras_hub

    import keras_seq

    heads, hidden, intermediate = sizes["num_heads"], sizes["hidden_dim"], sizes["intermediate_dim"]
    blocks = [
        Pair(
            f"keras_hub.{name}",
            getattr(keras_hub.layers, name)(intermediate, heads),
            f"keras_seq.{name}",
            getattr(keras_seq.layers, name)(num_heads=heads, intermediate_dim=intermediate),
            _block,
        )
        for name in ("TransformerEncoder", "TransformerDecoder")
    ]
    mha = Pair(
        "keras.layers.MultiHeadAttention",
        keras.layers.MultiHeadAttention(heads, hidden // heads),
        "keras_seq.MultiHeadAttention",
        _mha(sizes),
        _self_attention,
        ("train", "predict"),
    )
    return [mha] + blocks


def _check_same(ours, peer, call, x, atol=None):
    """Copy the peer's weights into ours (building both on `x`); check equal outputs."""
    import keras

    call(peer, x, False)
    call(ours, x, False)
    peer_shapes = [w.shape for w in peer.get_weights()]
    our_shapes = [w.shape for w in ours.get_weights()]
    if peer_shapes != our_shapes:
        raise RuntimeError(f"Weight layouts differ. peer: {peer_shapes}, ours: {our_shapes}")
    ours.set_weights(peer.get_weights())
    atol = ATOL if atol is None else atol
    expected = keras.ops.convert_to_numpy(keras.ops.cast(call(peer, x, False), "float32"))
    actual = keras.ops.convert_to_numpy(keras.ops.cast(call(ours, x, False), "float32"))
    error = float(np.max(np.abs(expected - actual)))
    if error > atol:
        raise RuntimeError(f"Outputs differ by {error:.2e} (> {atol}) with equal weights.")
    return error


def variant_name(label, task, mode, length, chunks=None):
    """`<implementation> <task> <mode> N=<length>`, with the chunk sizes when chunked."""
    if chunks:
        label = f"{label} chunked {chunks[0]}x{chunks[1]}"
    return f"{label} {task} {mode} N={length}"


def build_variants(
    quick,
    jit=False,
    chunks=DEFAULT_CHUNKS,
    mixed_float16=False,
    lengths=None,
    batch=None,
    chunked_lengths=None,
):
    """The timed variants and the settings to record (the `build` of `harness.main`).

    `lengths` / `batch` override the sizes' timed lengths and batch; the memory-efficient
    path is timed at `chunked_lengths` (default: the longest timed length), each row
    compared with our plain path at that length.
    """
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # "Retracing" warnings: one function per model and N.
    sizes = dict(QUICK_SIZES if quick else FULL_SIZES)
    if lengths:
        sizes["lengths"] = tuple(lengths)
    if batch:
        sizes["batch"] = batch
    if chunked_lengths:
        sizes["lengths"] = tuple(sorted(set(sizes["lengths"]) | set(chunked_lengths)))
    mode = "xla" if jit else "graph"
    atol = None
    if mixed_float16:
        mode += " fp16"
        atol = 2e-2  # float16 outputs; Keras' float16 logits against our float32 ones
    longest = max(sizes["lengths"])
    chunked_lengths = tuple(chunked_lengths or (longest,))
    keras.utils.set_random_seed(0)
    # Layers take the policy when they are created.
    keras.config.set_dtype_policy("mixed_float16" if mixed_float16 else "float32")
    try:
        pairs = _pairs(sizes)
        chunked = {chunk_sizes: _mha(sizes, chunk_sizes) for chunk_sizes in chunks}
    finally:
        keras.config.set_dtype_policy("float32")
    errors = {}
    for pair in pairs:
        x = _inputs(sizes, sizes["lengths"][0])
        errors[pair.our_label] = _check_same(pair.ours, pair.peer, pair.call, x, atol)
    for chunk_sizes, layer in chunked.items():
        x = _inputs(sizes, longest)[:1]  # Long enough to take the chunked path.
        errors[f"chunked {chunk_sizes[0]}x{chunk_sizes[1]}"] = _check_same(
            layer, pairs[0].ours, _self_attention, x, atol
        )

    variants = []
    for length in sizes["lengths"]:
        x = _inputs(sizes, length)
        items = {"items": sizes["batch"] * length, "item_unit": "tok"}
        for pair in pairs:
            for task in pair.tasks:
                peer_name = variant_name(pair.peer_label, task, mode, length)
                fn = _step(task, pair.peer, pair.call, x, jit)
                variants.append(harness.Variant(peer_name, fn, **items))
                our_name = variant_name(pair.our_label, task, mode, length)
                fn = _step(task, pair.ours, pair.call, x, jit)
                variants.append(harness.Variant(our_name, fn, peer=peer_name, **items))
        for chunk_sizes, layer in chunked.items() if length in chunked_lengths else ():
            name = variant_name(pairs[0].our_label, "train", mode, length, chunk_sizes)
            fn = _step("train", layer, _self_attention, x, jit)
            plain = variant_name(pairs[0].our_label, "train", mode, length)
            variants.append(harness.Variant(name, fn, peer=plain, **items))
    settings = {
        key: ", ".join(map(str, value)) if isinstance(value, tuple) else value
        for key, value in sizes.items()
        if key != "memory_lengths"
    }
    settings.update(
        {
            "dtype": "mixed_float16 (our logits float32)" if mixed_float16 else "float32",
            "mode": f"tf.function(jit_compile={jit})",
            "train step": "forward + gradient of mean(outputs**2) w.r.t. all weights, no optimizer",
            "MultiHeadAttention": "self-attention, no causal mask",
            "TransformerDecoder": "decoder-only, causal",
            "chunked rows": "memory-efficient path; its peer is our plain path at the same N",
            "weights": "identical, max output difference "
            + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()),
        }
    )
    return variants, settings


def probe(spec):
    """Peak memory of one train step of our MultiHeadAttention; runs in a fresh process.

    A process of its own, because TensorFlow's memory statistics are process-wide: tensors
    that other benchmarks keep alive (weights, inputs, tf.function constants) and their
    allocation history would otherwise be counted. The step is traced first without running
    it, the statistics are reset, and the peak is read after `runs` steps. Reported: `peak`
    (bytes in use at the peak, inputs and weights included) and `baseline` (bytes in use
    just before the first step); `peak - baseline` is what the step itself needed.
    """
    import tensorflow as tf

    sizes = dict(QUICK_SIZES if spec["quick"] else FULL_SIZES)
    sizes["batch"] = spec.get("batch") or sizes["batch"]
    chunks = tuple(spec["chunks"]) if spec["chunks"] else None
    layer = _mha(sizes, chunks)
    x = _inputs(sizes, spec["length"])
    layer(x[:1, :1])  # Build.
    step = _step("train", layer, _self_attention, x, jit=False)
    step.get_concrete_function()  # Trace now, so that tracing is not measured.
    tf.config.experimental.reset_memory_stats("CPU:0")
    baseline = tf.config.experimental.get_memory_info("CPU:0")["current"]
    times = []
    for _ in range(spec["runs"]):
        start = time.perf_counter()
        harness.to_host(step())
        times.append(time.perf_counter() - start)
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    return {"peak": peak, "baseline": baseline, "seconds": min(times)}


def run_probe(spec, log=print):
    """Run `probe(spec)` in a fresh Python process; return its result dict."""
    command = [sys.executable, "-m", "benchmarks.bench_attention", "--probe", json.dumps(spec)]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(PROBE_PREFIX)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(
            f"Memory probe {spec} failed with exit code {completed.returncode} (a negative "
            f"code is a signal: -9 is usually the out-of-memory killer). Its output ends "
            f"with:\n{(completed.stdout + completed.stderr)[-3000:]}"
        )
    result = json.loads(lines[-1][len(PROBE_PREFIX) :])
    log(
        f"memory probe {spec['label']} N={spec['length']}: step peak "
        f"{(result['peak'] - result['baseline']) / 2**20:,.0f} MiB "
        f"({time.perf_counter() - start:.0f} s with start-up)"
    )
    return result


def memory_specs(quick, chunks, runs, lengths=None, batch=None):
    """What to probe: the plain path at the first memory length, the chunked at all."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    lengths = lengths or sizes["memory_lengths"]
    specs = [{"label": "plain", "chunks": None, "length": lengths[0]}]
    for chunk_sizes in chunks:
        for length in lengths:
            label = f"chunked {chunk_sizes[0]}x{chunk_sizes[1]}"
            specs.append({"label": label, "chunks": chunk_sizes, "length": length})
    return [dict(spec, quick=quick, runs=runs, batch=batch) for spec in specs]


def chunked_time_ratios(results):
    """`{chunked variant name: harness.Ratio}` against our plain MultiHeadAttention train."""
    by_name = {r.name: r for r in results}
    paired = []
    for r in results:
        if " chunked " not in r.name:
            continue
        plain = r.name.split(" chunked ")[0] + " train" + r.name.split(" train", 1)[1]
        if plain in by_name:
            paired += [by_name[plain], dataclasses.replace(r, peer=plain)]
    return harness.compute_ratios(paired)


def _ratio(numerator, denominator):
    return f"{numerator / denominator:.2f}x" if denominator > 0 else "n/a"


def format_memory(specs, probes, time_ratios, sizes):
    """The memory table (markdown) and the notes below it (growth, plain N=8192, time)."""
    mib = 2**20
    steps = [p["peak"] - p["baseline"] for p in probes]
    by_key = {(s["label"], s["length"]): step for s, step in zip(specs, steps)}
    plain_step = next(step for s, step in zip(specs, steps) if s["chunks"] is None)
    short = specs[0]["length"]
    long = max(spec["length"] for spec in specs)
    lines = [
        f"| path | N | step peak MiB | peak MiB (all) | vs plain N={short} "
        f"| vs same path N={short} | one step s |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    for spec, result, step in zip(specs, probes, steps):
        first = by_key.get((spec["label"], short), 0)
        lines.append(
            f"| {spec['label']} | {spec['length']} | {step / mib:,.0f} | "
            f"{result['peak'] / mib:,.0f} | {_ratio(step, plain_step)} | {_ratio(step, first)} "
            f"| {result['seconds']:.1f} |"
        )
        if spec["chunks"] and spec["length"] > short:
            notes.append(
                f"- {spec['label']}: step peak N={spec['length']} / N={short} = "
                f"{_ratio(step, first)} (linear growth: {spec['length'] / short:.0f}x, "
                f"quadratic: {(spec['length'] / short) ** 2:.0f}x); "
                f"at N={short} it is {_ratio(first, plain_step)} the plain path's."
            )
    extrapolated = plain_step * (long / short) ** 2
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    notes.append(
        f"- plain N={long}: not run. It materializes (batch, heads, N, N) attention tensors; "
        f"scaled quadratically from N={short} its step would need about "
        f"{extrapolated / 2**30:,.1f} GiB (this machine has {machine / 2**30:.1f} GiB)."
    )
    for name, ratio in time_ratios.items():
        notes.append(
            f"- time, {name} / our plain path (interleaved, median): {ratio.ratio:.2f}x "
            f"(paired IQR {ratio.paired_low:.2f}-{ratio.paired_high:.2f}); target <= 1.2x."
        )
    notes.append(
        "- step peak: bytes in use at the peak minus those in use just before the step "
        "(weights, inputs), from tf.config.experimental.get_memory_info('CPU:0'), which "
        "counts only allocations of 256 KiB and more; one fresh process per row, tf.function "
        "without XLA. one step s: that process's step, not interleaved."
    )
    return "\n".join(lines) + "\n", "\n".join(notes) + "\n"


def main(argv=None):
    args, rest = parse_args(argv)
    if args.probe:
        print(PROBE_PREFIX + json.dumps(probe(json.loads(args.probe))), flush=True)
        return None
    harness_args = harness.parse_args(rest, DEFAULT_REPEATS, DEFAULT_WARMUP)
    quick = harness_args.quick
    chunks = tuple(args.chunks or (QUICK_CHUNKS if quick else DEFAULT_CHUNKS))

    def log(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    specs, probes = [], []
    if not args.skip_memory:
        # Before the timing, while this process holds no tensors of its own.
        load_before = harness.load_average()
        specs = memory_specs(
            quick, chunks, args.memory_runs, args.memory_lengths, args.memory_batch
        )
        jobs = args.memory_jobs or (len(specs) if quick else 1)
        log(f"{MEMORY_TITLE}: {len(specs)} probes, one process each, {jobs} at a time")
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            probes = list(pool.map(lambda spec: run_probe(spec, log), specs))
        load_after = harness.load_average()
    results = []
    if not args.skip_timing:
        results = harness.main(
            TITLE,
            lambda q: build_variants(
                q,
                jit=args.jit,
                chunks=chunks,
                mixed_float16=args.mixed_float16,
                lengths=args.lengths,
                batch=args.batch,
                chunked_lengths=args.chunked_lengths,
            ),
            argv=rest,
            default_repeats=DEFAULT_REPEATS,
            default_warmup=DEFAULT_WARMUP,
        )
    if args.skip_memory:
        return {"results": results, "memory": []}
    sizes = dict(QUICK_SIZES if quick else FULL_SIZES)
    sizes["batch"] = args.memory_batch or sizes["batch"]
    table, notes = format_memory(specs, probes, chunked_time_ratios(results), sizes)
    print()
    print(f"{MEMORY_TITLE}\n")
    print(table)
    print(notes)
    if not harness_args.no_record:
        settings = {
            "batch": sizes["batch"],
            "hidden_dim": sizes["hidden_dim"],
            "num_heads": sizes["num_heads"],
            "layer": "keras_seq.MultiHeadAttention self-attention, no causal mask",
            "train step": "forward + gradient of mean(outputs**2) w.r.t. all weights",
            "runs per probe": args.memory_runs,
            "probes at once": jobs,
        }
        section = harness.format_section(
            MEMORY_TITLE,
            table,
            summary=notes,
            settings=settings,
            machine=harness.machine_info(),
            versions=harness.library_versions(),
            command=harness.command_line(),
            load=harness.format_load(load_before, load_after),
        )
        harness.append_section(section, harness_args.results_file)
        log(f"appended to {harness_args.results_file}")
    return {"results": results, "memory": list(zip(specs, probes))}


if __name__ == "__main__":
    main()
