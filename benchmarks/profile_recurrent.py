"""Where the time of a recurrent train step goes: op time by type, forward loop vs backward loop.

Runs a few `train_on_batch` steps of one model under the TensorFlow profiler and sums the
duration of every executed op by (part, op type), where the part is the forward while loop,
the backward (gradient) while loop or the rest of the step. Times are summed over the
threads of TensorFlow's executor, so they add up to more than the wall time when ops run in
parallel; on a loaded machine they include time the thread was descheduled. Read shares,
not absolute times.

Run: `python -m benchmarks.profile_recurrent [--model MODEL] [--steps N]`; MODEL is
`keras_lstm`, `lstm_cell`, `keras_gru`, `gru_cell` or one of the LSTM designs of
`recurrent_candidates.py`: `step_gradient`, `hoisted`, `sequence_gradient`.
"""

import argparse
import collections
import glob
import os
import tempfile
import time

import numpy as np

MODELS = (
    "keras_lstm",
    "lstm_cell",
    "keras_gru",
    "gru_cell",
    "step_gradient",
    "hoisted",
    "sequence_gradient",
)


def _layer(name, units):
    import keras

    import keras_seq
    from benchmarks import recurrent_candidates

    return {
        "step_gradient": lambda: recurrent_candidates.StepGradientLSTM(units),
        "hoisted": lambda: recurrent_candidates.HoistedLSTM(units),
        "sequence_gradient": lambda: recurrent_candidates.SequenceGradientLSTM(units),
        "keras_lstm": lambda: keras.layers.LSTM(units),
        "lstm_cell": lambda: keras.layers.RNN(keras_seq.layers.LSTMCell(units)),
        "keras_gru": lambda: keras.layers.GRU(units),
        "gru_cell": lambda: keras.layers.RNN(keras_seq.layers.GRUCell(units)),
    }[name]()


def op_times(xplane_path, steps):
    """`{(part, op type): (ms per step, ops per step)}` from a profiler `.xplane.pb` file."""
    # The profiler writes an XSpace protobuf; TensorFlow ships its schema but no public reader.
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    total = collections.Counter()
    count = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name:
                    continue  # executor bookkeeping, not an op
                path, op_type = name.rsplit(":", 1)
                if "grad" in path.lower():
                    part = "backward loop" if "while" in path else "backward"
                else:
                    part = "forward loop" if "while" in path else "other"
                total[part, op_type] += event.duration_ps
                count[part, op_type] += 1
    return {key: (total[key] / 1e9 / steps, count[key] / steps) for key in total}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="keras_lstm")
    parser.add_argument("--steps", type=int, default=5, help="profiled train steps")
    parser.add_argument("--top", type=int, default=25, help="rows to print")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    batch, sequence, features, units = 64, 100, 128, 256
    inputs = keras.Input((sequence, features), batch_size=batch)
    model = keras.Model(inputs, _layer(args.model, units)(inputs))
    model.compile(optimizer="adam", loss="mse", jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sequence, features), "float32")
    y = rng.standard_normal((batch, units), "float32")
    for _ in range(3):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(args.steps):
        model.train_on_batch(x, y)
    wall = (time.perf_counter() - start) / args.steps
    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        for _ in range(args.steps):
            model.train_on_batch(x, y)
        tf.profiler.experimental.stop()
        (path,) = glob.glob(os.path.join(log_dir, "**", "*.xplane.pb"), recursive=True)
        times = op_times(path, args.steps)
    summed = sum(ms for ms, _ in times.values())
    print(f"{args.model}: {wall * 1e3:.1f} ms per train step (wall, unprofiled)")
    print(f"op time summed over threads: {summed:.1f} ms per step")
    print("| part | op | ms per step | share | ops per step |")
    print("|---|---|---|---|---|")
    ranked = sorted(times.items(), key=lambda item: -item[1][0])
    for (part, op_type), (ms, n) in ranked[: args.top]:
        print(f"| {part} | {op_type} | {ms:.1f} | {ms / summed:.1%} | {n:.0f} |")


if __name__ == "__main__":
    main()
