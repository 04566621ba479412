"""The same keras_seq workloads on each Keras backend (TensorFlow, JAX, PyTorch), one run.

Rows (CPU, float32, each backend's defaults, which is what a user gets):

- `GPT train step`: `GPTCausalLM` (4 layers, hidden 256, 4 heads, feed-forward 1024,
  vocabulary 5000), batch 8 x 128 tokens, one `train_on_batch` (Adam, sparse cross-entropy).
- `LSTM LM train step`: `RNNCausalLM` (LSTM, embedding 128, hidden 256, vocabulary 5000),
  batch 32 x 64 tokens, one `train_on_batch`.
- `GPT greedy decoding`: the GPT above, a 16-token prompt, 64 new tokens, `generate` (compiled
  where the backend compiles it by default: `tf.function` + XLA on TensorFlow, `jax.jit` on JAX;
  eager on PyTorch).
- `GPT greedy decoding, jit_compile=True`: the same with `jit_compile=True`: XLA on TensorFlow
  and JAX, `torch.compile` of the model's step on PyTorch (whose first call, the compilation,
  is the `first call s` column).
- `MultiHeadAttention N=1024 train step`: keras_seq's layer (4 heads of 64, width 256), batch
  4, self-attention, one `train_on_batch` (mse).

`compile()` keeps Keras' defaults: `jit_compile="auto"` (XLA on JAX; a plain graph on
TensorFlow on CPU, where Keras turns XLA off; eager on PyTorch, where Keras does not use
`torch.compile` unless asked).

A process holds one backend, so each backend runs in its own process, one after the other
(`KERAS_BACKEND=NAME python -m benchmarks.bench_backends --worker`), which times every row
(warm-up rounds, then medians of the timed ones) and prints JSON; rows are not interleaved
across backends as the other benchmarks interleave their variants, so compare them on a quiet
machine. The table gives each backend's median and its ratio to the fastest backend of the
row. Backends that are not installed are skipped, and said so.

Run: `python -m benchmarks.bench_backends [--backends tensorflow,jax,torch] [--repeats N]
[--warmup N] [--quick] [--no-record] [--results-file PATH]`.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks import harness

TITLE = "keras_seq workloads per Keras backend"
BACKENDS = ("tensorflow", "jax", "torch")
RESULTS_PREFIX = "BACKEND_RESULTS "
FULL_SIZES = {
    "gpt": dict(
        vocabulary_size=5000,
        num_layers=4,
        hidden_dim=256,
        num_heads=4,
        intermediate_dim=1024,
        sequence_length=256,
    ),
    "gpt_batch": (8, 128),
    "lstm": dict(vocabulary_size=5000, embedding_dim=128, hidden_dim=256),
    "lstm_batch": (32, 64),
    "prompt_length": 16,
    "new_tokens": 64,
    "attention_length": 1024,
    "attention_batch": 4,
}
QUICK_SIZES = {
    "gpt": dict(
        vocabulary_size=50,
        num_layers=1,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        sequence_length=32,
    ),
    "gpt_batch": (2, 8),
    "lstm": dict(vocabulary_size=50, embedding_dim=8, hidden_dim=16),
    "lstm_batch": (2, 8),
    "prompt_length": 4,
    "new_tokens": 4,
    "attention_length": 16,
    "attention_batch": 2,
}


def workloads(sizes):
    """`{row name: callable}` on the backend of this process, each checked to run once."""
    import keras

    from keras_seq.layers import MultiHeadAttention
    from keras_seq.models import GPTBackbone
    from keras_seq.models import GPTCausalLM
    from keras_seq.models import RNNBackbone
    from keras_seq.models import RNNCausalLM

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    gpt = GPTCausalLM(GPTBackbone(**sizes["gpt"]))
    gpt.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    batch, length = sizes["gpt_batch"]
    gpt_tokens = rng.integers(1, sizes["gpt"]["vocabulary_size"], (batch, length + 1))
    gpt_x = {"token_ids": gpt_tokens[:, :-1], "padding_mask": np.ones((batch, length), "int32")}
    gpt_y = gpt_tokens[:, 1:]

    lstm = RNNCausalLM(RNNBackbone(**sizes["lstm"]))
    lstm.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    batch, length = sizes["lstm_batch"]
    lstm_tokens = rng.integers(1, sizes["lstm"]["vocabulary_size"], (batch, length + 1))

    prompt = rng.integers(1, sizes["gpt"]["vocabulary_size"], (1, sizes["prompt_length"]))
    prompt = prompt.astype("int32")

    length, width = sizes["attention_length"], 256
    inputs = keras.Input((length, width))
    outputs = MultiHeadAttention(num_heads=4, key_dim=64)(inputs, inputs)
    attention = keras.Model(inputs, outputs)
    attention.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    attention_x = rng.normal(size=(sizes["attention_batch"], length, width)).astype("float32")

    return {
        "GPT train step": lambda: gpt.train_on_batch(gpt_x, gpt_y),
        "LSTM LM train step": lambda: lstm.train_on_batch(lstm_tokens[:, :-1], lstm_tokens[:, 1:]),
        "GPT greedy decoding": lambda: gpt.generate(prompt, sizes["new_tokens"]),
        "GPT greedy decoding, jit_compile=True": lambda: gpt.generate(
            prompt, sizes["new_tokens"], jit_compile=True
        ),
        f"MultiHeadAttention N={length} train step": lambda: attention.train_on_batch(
            attention_x, attention_x
        ),
    }


def worker(quick, repeats, warmup):
    """Time every row on this process's backend; print the medians (seconds) as JSON."""
    import keras

    rows = workloads(QUICK_SIZES if quick else FULL_SIZES)
    results = {}
    for name, function in rows.items():
        first = time.perf_counter()
        harness.to_host(function())
        first = time.perf_counter() - first
        for _ in range(warmup):
            harness.to_host(function())
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            harness.to_host(function())
            times.append(time.perf_counter() - start)
        results[name] = {"median": float(np.median(times)), "first": first}
    print(RESULTS_PREFIX + json.dumps({"backend": keras.backend.backend(), "rows": results}))


def installed(backend):
    import importlib.util

    return importlib.util.find_spec(backend) is not None


def run_worker(backend, quick, repeats, warmup):
    """The worker's results on `backend`, or raise with its error output."""
    arguments = ["--worker", "--repeats", str(repeats), "--warmup", str(warmup)]
    if quick:
        arguments.append("--quick")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_backends", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULTS_PREFIX)]
    if result.returncode != 0 or len(lines) != 1:
        raise RuntimeError(f"The {backend} worker failed:\n{result.stderr[-3000:]}")
    found = json.loads(lines[0][len(RESULTS_PREFIX) :])
    if found["backend"] != backend:
        raise RuntimeError(f"The {backend} worker ran on {found['backend']!r}.")
    return found["rows"]


def format_backend_table(results):
    """Markdown: one line per (row, backend), with the ratio to the row's fastest backend."""
    lines = [
        "| workload | backend | median ms | first call s | vs fastest | fastest |",
        "|---|---|---|---|---|---|",
    ]
    rows = next(iter(results.values())).keys()
    for row in rows:
        medians = {backend: found[row]["median"] for backend, found in results.items()}
        fastest = min(medians, key=medians.get)
        for backend, found in results.items():
            ratio = medians[backend] / medians[fastest]
            mark = "yes" if backend == fastest else ""
            lines.append(
                f"| {row} | {backend} | {medians[backend] * 1000:.1f} | "
                f"{found[row]['first']:.2f} | {ratio:.2f}x | {mark} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (default 10)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls (default 2)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, never recorded")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--results-file", default=str(harness.RESULTS_PATH))
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if repeats < 1 or warmup < 0:
        parser.error(f"--repeats must be >= 1 and --warmup >= 0. Received: {repeats}, {warmup}")
    if args.worker:
        worker(args.quick, repeats, warmup)
        return None
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown:
        parser.error(f"--backends must name {', '.join(BACKENDS)}. Received: {unknown}")
    results, skipped = {}, []
    load_before = harness.load_average()
    for backend in backends:
        if not installed(backend):
            skipped.append(backend)
            print(f"{backend} is not installed: skipped.")
            continue
        print(
            f"[{time.strftime('%H:%M:%S')}] {backend}: {warmup} warm-up + {repeats} calls per row"
        )
        results[backend] = run_worker(backend, args.quick, repeats, warmup)
    load_after = harness.load_average()
    if not results:
        raise SystemExit("No backend could run: none of them is installed.")
    table = format_backend_table(results)
    print()
    print(table)
    if not args.quick and not args.no_record:
        settings = {"repeats": repeats, "warmup": warmup}
        if skipped:
            settings["skipped (not installed)"] = ", ".join(skipped)
        section = harness.format_section(
            TITLE,
            table,
            settings=settings,
            machine=harness.machine_info(),
            versions=harness.library_versions(),
            command=harness.command_line(),
            load=harness.format_load(load_before, load_after),
        )
        harness.append_section(section, args.results_file)
        print(f"appended to {args.results_file}")
    return results


if __name__ == "__main__":
    main()
