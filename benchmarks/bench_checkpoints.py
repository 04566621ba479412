"""Loading a ViT-B/16 from a Hugging Face transformers directory: keras_seq vs keras_hub.

Both libraries read the same directory (`config.json` with `model_type` "vit" and
`model.safetensors`) with safetensors' NumPy reader:

- `keras_seq.models.ViTBackbone.from_preset(directory)` (its transformers converter),
- `keras_hub.models.ViTBackbone.from_preset(directory)` (keras_hub's `convert_vit`).

The directory is written by `write_checkpoint`, without torch and without a download: random
float32 tensors under Hugging Face's names and layouts. keras_hub 0.32 reads ViT tensors only
under the `vit.` prefix (the layout of `ViTForImageClassification` checkpoints such as
google/vit-base-patch16-224; transformers' `ViTModel.from_pretrained` strips the prefix); a
directory saved from a `ViTModel` (tensors at the top level) fails in keras_hub with "File
does not contain tensor
vit.embeddings.patch_embeddings.projection.weight", so the tensors carry the prefix here. They
include `ViTModel`'s pooler, which neither backbone uses (keras_seq logs that it skips it,
keras_hub ignores it). keras_hub also needs `hidden_dropout_prob` and
`attention_probs_dropout_prob` in `config.json`.

Each load runs in a fresh Python process (see `probe`), so that every load pays what a user's
first load pays and its peak memory is its own: the process imports its library, then times
the call alone and reads `VmHWM` (peak resident set) from /proc/self/status, after resetting it
to the current resident set through /proc/self/clear_refs; a thread samples `RssAnon` (memory
not backed by a file) meanwhile, since `VmHWM` also counts the file pages that safetensors'
reader maps. Reported: the time of the call, and the peak and retained resident memory above
the level after the imports, against the size of the weights. The rounds are interleaved as
in the harness (round r starts with variant r mod n). Beside `from_preset`, `construct`
builds the same backbone with random weights and no checkpoint: `from_preset` minus
`construct` is the cost of reading and assigning the weights.

Before anything is timed, the loaded models are checked to compute the same features on one
image. keras_hub's converter ignores `layer_norm_eps` (HF's ViT uses 1e-12; keras_hub builds
its default 1e-6), so the check compares ours with keras_hub loaded with
`layer_norm_epsilon=1e-12`; the difference with keras_hub's default load is reported too.
Both backbones return HF `ViTModel`'s `last_hidden_state` (the tokens after the final layer
norm, class token first); neither has the pooler.

Then (unless `--skip-profile`) loads in this process, after a warm-up round, are split into
phases: random initialization of the variables, Keras' symbolic tracing of layers that do not
compute their output shape, the rest of the construction, reading tensors, assigning them,
and the rest of the weight loading (transposes, reshapes, copies, bookkeeping).

Run: `python -m benchmarks.bench_checkpoints [--skip-profile] [--profile-rounds N] [--jobs N]
[--checkpoint-dir DIR] [harness options: --repeats --warmup --filter --quick --no-record
--results-file --target]`. `--quick`: tiny sizes, one round, no warm-up, never recorded.
"""

import argparse
import collections
import concurrent.futures
import contextlib
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks import harness

TITLE = "Checkpoint loading: ViT-B/16 from a Hugging Face directory vs keras_hub"
FULL_SIZES = {
    "image_size": 224,
    "patch_size": 16,
    "num_layers": 12,
    "hidden_dim": 768,
    "num_heads": 12,
    "intermediate_dim": 3072,
}
QUICK_SIZES = {
    "image_size": 32,
    "patch_size": 8,
    "num_layers": 2,
    "hidden_dim": 64,
    "num_heads": 4,
    "intermediate_dim": 128,
}
LAYER_NORM_EPS = 1e-12  # HF ViTConfig's default, written to config.json
IMPLEMENTATIONS = ("keras_hub", "keras_seq")
TASKS = ("from_preset", "construct")
DEFAULT_REPEATS = 7
DEFAULT_WARMUP = 1
DEFAULT_PROFILE_ROUNDS = 3
# Largest feature difference over the largest feature: float32 round-off (measured 7.3e-7
# at ViT-B/16, 0.0 at the --quick sizes).
RTOL = 1e-4
PROBE_PREFIX = "PROBE_RESULT "
PROBE_TIMEOUT_S = 900
REPO_ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20


def parse_args(argv=None):
    """This file's own options; the rest go to the harness."""
    parser = argparse.ArgumentParser(
        description="Checkpoint loading benchmark; also takes the harness options (--repeats, "
        "--warmup, --filter, --quick, --no-record, --results-file, --target).",
        add_help=False,
    )
    parser.add_argument(
        "--skip-profile",
        action="store_true",
        help="do not split loading into phases (construction, reading, assignment)",
    )
    parser.add_argument(
        "--profile-rounds",
        type=int,
        default=None,
        help=f"rounds of the phase profile, after one warm-up round (default "
        f"{DEFAULT_PROFILE_ROUNDS}, 1 with --quick)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="load processes run at once (default 1; all of a round with --quick). Peaks are "
        "per process, but the times then share the CPU",
    )
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="where the Hugging Face directory is written (reused if it holds one of the "
        "same sizes); default: a temporary directory, removed at the end",
    )
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # JSON spec; used by subprocesses
    args, rest = parser.parse_known_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"`--jobs` must be at least 1. Received: {args.jobs}")
    if args.profile_rounds is not None and args.profile_rounds < 1:
        parser.error(f"`--profile-rounds` must be at least 1. Received: {args.profile_rounds}")
    if "-h" in rest or "--help" in rest:
        parser.print_help()
    return args, rest


# === The Hugging Face directory ===


def hf_config(sizes):
    """`config.json` of a transformers ViT with `sizes`, as `ViTConfig.to_dict` writes it."""
    return {
        "architectures": ["ViTModel"],
        "model_type": "vit",
        "hidden_size": sizes["hidden_dim"],
        "num_hidden_layers": sizes["num_layers"],
        "num_attention_heads": sizes["num_heads"],
        "intermediate_size": sizes["intermediate_dim"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": LAYER_NORM_EPS,
        "image_size": sizes["image_size"],
        "patch_size": sizes["patch_size"],
        "num_channels": 3,
        "qkv_bias": True,
        "encoder_stride": sizes["patch_size"],
        "torch_dtype": "float32",
    }


def hf_tensor_shapes(sizes, prefix="vit."):
    """`{name: shape}` of a transformers `ViTModel` with its pooler, in PyTorch layouts:
    `(out, in)` for `Linear`, `(out, in, kh, kw)` for `Conv2d`, under `prefix`."""
    channels, inner = sizes["hidden_dim"], sizes["intermediate_dim"]
    patch = sizes["patch_size"]
    patches = (sizes["image_size"] // patch) ** 2
    shapes = {
        "embeddings.cls_token": (1, 1, channels),
        "embeddings.position_embeddings": (1, 1 + patches, channels),
        "embeddings.patch_embeddings.projection.weight": (channels, 3, patch, patch),
        "embeddings.patch_embeddings.projection.bias": (channels,),
    }
    for index in range(sizes["num_layers"]):
        layer = f"encoder.layer.{index}"
        for name in ("query", "key", "value"):
            shapes[f"{layer}.attention.attention.{name}.weight"] = (channels, channels)
            shapes[f"{layer}.attention.attention.{name}.bias"] = (channels,)
        shapes[f"{layer}.attention.output.dense.weight"] = (channels, channels)
        shapes[f"{layer}.attention.output.dense.bias"] = (channels,)
        shapes[f"{layer}.intermediate.dense.weight"] = (inner, channels)
        shapes[f"{layer}.intermediate.dense.bias"] = (inner,)
        shapes[f"{layer}.output.dense.weight"] = (channels, inner)
        shapes[f"{layer}.output.dense.bias"] = (channels,)
        for name in ("layernorm_before", "layernorm_after"):
            shapes[f"{layer}.{name}.weight"] = (channels,)
            shapes[f"{layer}.{name}.bias"] = (channels,)
    shapes["layernorm.weight"] = (channels,)
    shapes["layernorm.bias"] = (channels,)
    shapes["pooler.dense.weight"] = (channels, channels)
    shapes["pooler.dense.bias"] = (channels,)
    return {prefix + name: shape for name, shape in shapes.items()}


def write_checkpoint(directory, sizes, seed=0):
    """Write `config.json` and `model.safetensors` (random float32 tensors, HF names) to
    `directory`, unless it already holds a checkpoint with this config. Returns the total
    size of the tensors in bytes."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    config = hf_config(sizes)
    shapes = hf_tensor_shapes(sizes)
    nbytes = sum(4 * int(np.prod(shape)) for shape in shapes.values())
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    if config_path.exists() and weights_path.exists():
        if json.loads(config_path.read_text()) == config:
            return nbytes
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in shapes.items():
        # HF's initialization scale (initializer_range 0.02); layer norms near identity, so
        # that no weight sits at a trivial value.
        value = 0.02 * rng.standard_normal(shape, dtype=np.float32)
        if "layernorm" in name and name.endswith(".weight"):
            value += 1.0
        tensors[name] = value
    save_file(tensors, str(weights_path), metadata={"format": "pt"})
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return nbytes


# === Loading, in whichever process ===


def constructor_kwargs(implementation, sizes):
    """The constructor arguments that `from_preset` derives from `config.json`."""
    size, patch = sizes["image_size"], sizes["patch_size"]
    if implementation == "keras_seq":
        return {
            "image_shape": (size, size, 3),
            "patch_size": patch,
            "num_layers": sizes["num_layers"],
            "hidden_dim": sizes["hidden_dim"],
            "num_heads": sizes["num_heads"],
            "intermediate_dim": sizes["intermediate_dim"],
            "dropout": 0.0,
            "attention_dropout": 0.0,
            "layer_norm_epsilon": LAYER_NORM_EPS,
        }
    # keras_hub's `convert_vit.convert_backbone_config` (it leaves `layer_norm_epsilon` at
    # the backbone's default).
    return {
        "image_shape": (size, size, 3),
        "patch_size": (patch, patch),
        "num_layers": sizes["num_layers"],
        "num_heads": sizes["num_heads"],
        "hidden_dim": sizes["hidden_dim"],
        "mlp_dim": sizes["intermediate_dim"],
        "dropout_rate": 0.0,
        "attention_dropout": 0.0,
        "use_mha_bias": True,
    }


def backbone_class(implementation):
    if implementation == "keras_seq":
        from keras_seq.models import ViTBackbone

        return ViTBackbone
    import keras_hub

    return keras_hub.models.ViTBackbone


def load(implementation, task, directory, sizes, **overrides):
    """One `from_preset(directory)` or one construction with random weights."""
    cls = backbone_class(implementation)
    if task == "from_preset":
        return cls.from_preset(str(directory), **overrides)
    return cls(**constructor_kwargs(implementation, sizes), **overrides)


def memory_status(path="/proc/self/status"):
    """`{field: bytes}` of the memory fields of /proc/self/status (`VmRSS`, `VmHWM`, ...)."""
    values = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            parts = value.split()
            if key.startswith(("Vm", "Rss")) and len(parts) == 2 and parts[1] == "kB":
                values[key] = int(parts[0]) * 1024
    return values


def reset_peak_memory():
    """Reset this process's `VmHWM` to its current resident set (Linux 4.0+). False where the
    kernel does not allow it; the peak then includes the imports' own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class AnonymousPeak:
    """Samples `RssAnon` (resident memory not backed by a file) every `interval` seconds in a
    thread, as a context manager; `peak` is the largest sample, in bytes. The kernel keeps
    no peak of it, and `VmHWM` also counts the pages of files mapped by safetensors' reader
    (page cache, which the kernel may drop), so this tells the memory the load itself
    allocated. A sample can miss a peak shorter than `interval`."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while True:
            self.peak = max(self.peak, memory_status().get("RssAnon", 0))
            if self._stop.wait(self.interval):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, memory_status().get("RssAnon", 0))


def probe(spec):
    """One load in this (fresh) process: its time, and its peak and retained resident memory
    above the level after the imports.

    `spec`: `implementation`, `task`, `directory`, `sizes`. The library is imported first
    (not timed); the garbage collector runs and the peak is reset just before the call.
    """
    backbone_class(spec["implementation"])  # Import outside the measurement.
    gc.collect()
    peak_reset = reset_peak_memory()
    before = memory_status()
    with AnonymousPeak() as anonymous:
        start = time.perf_counter()
        model = load(spec["implementation"], spec["task"], spec["directory"], spec["sizes"])
        seconds = time.perf_counter() - start
    after = memory_status()
    return {
        "seconds": seconds,
        "peak": after["VmHWM"] - before["VmRSS"],
        "anonymous_peak": anonymous.peak - before["RssAnon"],
        "retained": after["VmRSS"] - before["VmRSS"],
        "parameters": int(model.count_params()),
        "peak_reset": peak_reset,
    }


def run_probe(spec):
    """Run `probe(spec)` in a fresh Python process; return its result dict."""
    command = [sys.executable, "-m", "benchmarks.bench_checkpoints", "--probe", json.dumps(spec)]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(PROBE_PREFIX)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(
            f"Load probe {spec['implementation']} {spec['task']} failed with exit code "
            f"{completed.returncode} (-9 is usually the out-of-memory killer). Its output ends "
            f"with:\n{(completed.stdout + completed.stderr)[-3000:]}"
        )
    return json.loads(lines[-1][len(PROBE_PREFIX) :])


# === The sanity check ===


def check_outputs(directory, sizes):
    """Load both and compare their features on one image. Returns `(error, default_error)`:
    the relative difference to keras_hub loaded with HF's layer norm epsilon (raises above
    `RTOL`) and to keras_hub's default load (epsilon 1e-6)."""
    import keras

    size = sizes["image_size"]
    image = np.random.default_rng(1).uniform(-1.0, 1.0, (1, size, size, 3)).astype("float32")

    def features(implementation, **overrides):
        model = load(implementation, "from_preset", directory, sizes, **overrides)
        return keras.ops.convert_to_numpy(model(image, training=False))

    ours = features("keras_seq")
    exact = features("keras_hub", layer_norm_epsilon=LAYER_NORM_EPS)
    default = features("keras_hub")
    gc.collect()
    if ours.shape != exact.shape:
        raise RuntimeError(
            f"Output shapes differ: keras_seq {ours.shape}, keras_hub {exact.shape}; both "
            "should be ViTModel's last_hidden_state (batch, 1 + patches, hidden)."
        )
    scale = float(np.max(np.abs(exact)))
    error = float(np.max(np.abs(ours - exact))) / scale
    default_error = float(np.max(np.abs(ours - default))) / scale
    if error > RTOL:
        raise RuntimeError(
            f"keras_seq and keras_hub (layer_norm_epsilon={LAYER_NORM_EPS}) loaded from the "
            f"same checkpoint differ by {error:.2e} (> {RTOL}) relative."
        )
    return error, default_error


# === The phase profile ===


class _PhaseClock:
    """Exclusive time per label: a call inside another labelled call counts to its own label
    only."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self._stack = []

    def wrap(self, label, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            self._stack.append(0.0)
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = self._stack.pop()
                self.seconds[label] += elapsed - inner
                if self._stack:
                    self._stack[-1] += elapsed

        return wrapper


PHASES = (
    ("initializers", "construction: variables created with their random initial values"),
    ("trace", "construction: Keras' symbolic call of layers without `compute_output_shape`"),
    ("construct other", "construction: the rest (Python layer objects, config, opening)"),
    ("read", "weights: tensors read from model.safetensors"),
    ("assign", "weights: `Variable.assign`"),
    ("weights other", "weights: the rest (transposes, reshapes, dtype copies, bookkeeping)"),
)


@contextlib.contextmanager
def instrumented(clock):
    """Route the functions behind each phase through `clock`; restore them on exit.

    TensorFlow backend only (its `Variable`). The weight-loading phase is keras_seq's
    `ViTTransformersConverter.load_backbone` and keras_hub's `convert_vit.convert_weights`;
    reads are `CheckpointTensors._read` (the safetensors read behind `take`) and
    `SafetensorLoader.get_tensor`.
    """
    import keras
    from keras.src import backend as keras_backend
    from keras.src.backend.common import variables
    from keras_hub.src.utils.transformers import convert_vit
    from keras_hub.src.utils.transformers import safetensor_utils

    from keras_seq.models.checkpoints import tensors
    from keras_seq.models.vit import vit_converter_transformers

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "--profile instruments TensorFlow variables; run with KERAS_BACKEND=tensorflow."
        )
    from keras.src.backend.tensorflow import core

    targets = [
        (core.Variable, "_initialize_with_initializer", "initializers"),
        (keras_backend, "compute_output_spec", "trace"),
        (variables.Variable, "assign", "assign"),
        (tensors.CheckpointTensors, "_read", "read"),
        (safetensor_utils.SafetensorLoader, "get_tensor", "read"),
        (vit_converter_transformers.ViTTransformersConverter, "load_backbone", "weights other"),
        (convert_vit, "convert_weights", "weights other"),
    ]
    originals = []
    try:
        for owner, name, label in targets:
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            originals.append((owner, name, original))
            setattr(owner, name, clock.wrap(label, original))
        yield clock
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


def profile_loads(directory, sizes, rounds, warmup=1):
    """Median seconds per phase of `from_preset`, `{implementation: {phase: s, "total": s}}`,
    over `rounds` interleaved loads of each in this process, after `warmup` rounds."""
    samples = {implementation: [] for implementation in IMPLEMENTATIONS}
    for round_index in range(warmup + rounds):
        order = IMPLEMENTATIONS[round_index % 2 :] + IMPLEMENTATIONS[: round_index % 2]
        for implementation in order:
            gc.collect()
            clock = _PhaseClock()
            with instrumented(clock):
                start = time.perf_counter()
                model = load(implementation, "from_preset", directory, sizes)
                total = time.perf_counter() - start
            del model
            if round_index < warmup:
                continue
            phases = dict(clock.seconds, total=total)
            phases["construct other"] = total - sum(clock.seconds.values())
            samples[implementation].append(phases)
    return {
        implementation: {
            key: float(np.median([s.get(key, 0.0) for s in rows]))
            for key in [name for name, _ in PHASES] + ["total"]
        }
        for implementation, rows in samples.items()
    }


def format_profile(profile):
    ours, peer = profile["keras_seq"], profile["keras_hub"]
    lines = [
        "| phase | keras_seq s | keras_hub s | difference s | what |",
        "|---|---|---|---|---|",
    ]
    for name, description in PHASES + (("total", "from_preset"),):
        lines.append(
            f"| {name} | {ours[name]:.3f} | {peer[name]:.3f} | {ours[name] - peer[name]:+.3f} "
            f"| {description} |"
        )
    return "\n".join(lines) + "\n"


# === The run ===


def variant_name(implementation, task):
    return f"{implementation} ViTBackbone {task}"


def variants(patterns=()):
    """`harness.Variant`s (no `fn`: each call is a probe) after `--filter`."""
    chosen = []
    for task in TASKS:
        peer = variant_name("keras_hub", task)
        chosen += [
            harness.Variant(peer, None),
            harness.Variant(variant_name("keras_seq", task), None, peer=peer),
        ]
    return harness.select(chosen, list(patterns))


def schedule(names, repeats, warmup):
    """`(round, name)` in the harness's order: round r starts with variant r mod n (warm-up
    rounds in the given order)."""
    order = []
    for round_index in range(warmup):
        order += [(round_index, name) for name in names]
    for round_index in range(repeats):
        shift = round_index % len(names)
        order += [(warmup + round_index, name) for name in names[shift:] + names[:shift]]
    return order


def format_memory(rows, probes, weight_bytes):
    """The memory table: per variant, median peak and retained resident memory above the
    level after the imports, in MiB and as a multiple of the weights' size."""
    lines = [
        "| variant | peak RSS MiB (max) | / weights | peak anonymous MiB (max) | / weights "
        "| retained RSS MiB | / weights |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in rows:
        runs = probes[variant.name]
        row = [variant.name]
        for key in ("peak", "anonymous_peak", "retained"):
            median = float(np.median([r[key] for r in runs]))
            text = f"{median / MIB:,.0f}"
            if key != "retained":
                text += f" ({max(r[key] for r in runs) / MIB:,.0f})"
            row += [text, f"{median / weight_bytes:.2f}x"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args, rest = parse_args(argv)
    if args.probe:
        print(PROBE_PREFIX + json.dumps(probe(json.loads(args.probe))), flush=True)
        return None
    harness_args = harness.parse_args(rest, DEFAULT_REPEATS, DEFAULT_WARMUP)
    quick = harness_args.quick
    if quick:  # Each load is a process start (seconds): one round, unless told otherwise.
        given = {arg.split("=")[0] for arg in rest}
        harness_args.repeats = harness_args.repeats if "--repeats" in given else 1
        harness_args.warmup = harness_args.warmup if "--warmup" in given else 0
    sizes = QUICK_SIZES if quick else FULL_SIZES
    chosen = variants(harness_args.filter)
    if not chosen:
        raise ValueError("No variants to run; check `--filter`.")
    names = [v.name for v in chosen]
    jobs = args.jobs or (len(chosen) if quick else 1)
    profile_rounds = args.profile_rounds or (1 if quick else DEFAULT_PROFILE_ROUNDS)

    def log(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    temporary = args.checkpoint_dir is None
    directory = Path(args.checkpoint_dir or tempfile.mkdtemp(prefix="bench_checkpoints_"))
    try:
        start = time.perf_counter()
        file_bytes = write_checkpoint(directory, sizes)
        log(
            f"checkpoint in {directory}: {file_bytes / MIB:,.1f} MiB of float32 tensors "
            f"({time.perf_counter() - start:.1f} s)"
        )
        error, default_error = check_outputs(directory, sizes)
        log(
            f"features: keras_seq vs keras_hub (layer_norm_epsilon={LAYER_NORM_EPS}) "
            f"{error:.1e} relative; vs keras_hub's default load (1e-6) {default_error:.1e}"
        )
        load_before = harness.load_average()
        order = schedule(names, harness_args.repeats, harness_args.warmup)
        log(
            f"{TITLE}: {len(chosen)} variants, {harness_args.warmup} warm-up + "
            f"{harness_args.repeats} rounds, one process per load, {jobs} at a time"
        )
        specs = [
            {
                "implementation": name.split()[0],
                "task": name.split()[-1],
                "directory": str(directory),
                "sizes": sizes,
            }
            for _, name in order
        ]
        done = []

        def run(index):
            result = run_probe(specs[index])
            done.append(index)
            if len(done) % max(1, len(order) // 10) == 0:
                log(f"{len(done)}/{len(order)} loads done")
            return result

        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            outcomes = list(pool.map(run, range(len(order))))
        load_after = harness.load_average()
        first_call, times, probes = {}, collections.defaultdict(list), collections.defaultdict(list)
        for (round_index, name), outcome in zip(order, outcomes):
            first_call.setdefault(name, outcome["seconds"])
            if round_index >= harness_args.warmup:
                times[name].append(outcome["seconds"])
                probes[name].append(outcome)
        results = [
            harness.Result(v.name, times[v.name], first_call=first_call[v.name], peer=v.peer)
            for v in chosen
        ]
        parameters = max(r["parameters"] for runs in probes.values() for r in runs)
        weight_bytes = 4 * parameters
        table = harness.format_table(results, harness_args.target)
        memory = format_memory(chosen, probes, weight_bytes)
        summary = harness.format_summary(results, harness_args.target)
        notes = notes_for(results, probes, error, default_error, weight_bytes, file_bytes)
        profile = None
        if not args.skip_profile:
            log(f"phase profile: 1 warm-up + {profile_rounds} rounds in this process")
            profile = profile_loads(directory, sizes, profile_rounds)
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    text = table + "\n" + memory
    if profile is not None:
        text += (
            f"\nPhases of one from_preset (median of {profile_rounds} in one process, after a "
            "warm-up load; exclusive times):\n\n" + format_profile(profile)
        )
    print()
    print(text)
    print(summary + notes)
    if not harness_args.no_record:
        settings = {
            "model": ", ".join(f"{k} {v}" for k, v in sizes.items()),
            "weights": f"{parameters:,} parameters, {weight_bytes / MIB:,.1f} MiB float32 "
            f"(model.safetensors {file_bytes / MIB:,.1f} MiB with ViTModel's pooler)",
            "checkpoint": "HF transformers directory, tensors under `vit.`, random float32",
            "loads": f"one fresh process each, {jobs} at a time, file in the page cache",
            "repeats": harness_args.repeats,
            "warmup": harness_args.warmup,
        }
        section = harness.format_section(
            TITLE,
            text,
            summary=summary + notes,
            settings=settings,
            machine=harness.machine_info(),
            versions=harness.library_versions(("safetensors",) + harness.VERSION_PACKAGES),
            command=harness.command_line(),
            load=harness.format_load(load_before, load_after),
        )
        harness.append_section(section, harness_args.results_file)
        log(f"appended to {harness_args.results_file}")
    return {"results": results, "probes": dict(probes), "profile": profile, "error": error}


def notes_for(results, probes, error, default_error, weight_bytes, file_bytes):
    """The lines below the tables: the feature check, what the columns mean, and
    `from_preset` minus `construct` per implementation when both ran."""
    by_name = {r.name: r for r in results}
    lines = [
        f"- Features on one image: keras_seq vs keras_hub loaded with layer_norm_epsilon="
        f"{LAYER_NORM_EPS} (HF's `layer_norm_eps`): {error:.1e} relative; vs keras_hub's own "
        f"load, whose converter leaves the epsilon at 1e-6: {default_error:.1e}.",
        "- Time: the `from_preset` (or construction) call alone, in a fresh process that has "
        "imported its library. `construct`: the same backbone with random weights, no "
        "checkpoint.",
        "- Memory, above the level just before the call (medians; max in brackets): peak "
        "RSS: /proc/self/status VmHWM after the call (reset to the resident set just before "
        "it), which includes the pages of model.safetensors mapped by safetensors' reader "
        "while it is open (page cache, about the file's size when every tensor is read); peak "
        "anonymous: RssAnon sampled every 5 ms, the memory the load allocated; retained: "
        "VmRSS after the call. weights: "
        f"{weight_bytes / MIB:,.1f} MiB (the backbone's parameters, float32; the file holds "
        f"{file_bytes / MIB:,.1f} MiB with the pooler).",
    ]
    if not all(r["peak_reset"] for runs in probes.values() for r in runs):
        lines.append(
            "- /proc/self/clear_refs was not writable: the peaks include the imports' peak."
        )
    for implementation in IMPLEMENTATIONS:
        loaded = by_name.get(variant_name(implementation, "from_preset"))
        built = by_name.get(variant_name(implementation, "construct"))
        if loaded and built:
            lines.append(
                f"- {implementation}: from_preset {loaded.median:.2f} s - construct "
                f"{built.median:.2f} s = {loaded.median - built.median:+.2f} s for reading and "
                "assigning the weights (medians of separate processes)."
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
