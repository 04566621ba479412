"""keras_seq recurrent cells in `keras.layers.RNN` against Keras' own LSTM, GRU and SimpleRNN.

For each cell, each mode (`graph`: `compile(jit_compile=False)`, the `tf.function` that `fit`
runs by default; `xla`: `compile(jit_compile=True)`) and each task (`train`: one
`train_on_batch`, forward + backward + Adam update on an mse loss; `predict`: one
`predict_on_batch`), the keras_seq model is timed against the Keras model holding the same
weights. Outputs are checked to match before anything is timed.

Throughput is in GFLOP/s of matrix products: per time step the forward pass runs `x @ W` and
`h @ U` (2 * batch * (input + units) * gates * units FLOPs), and the backward pass `dW`, `dU`
and `dh` (2 * batch * (input + 2 * units) * gates * units; no `dx`, the model's input needs no
gradient); elementwise work is not counted. Rows measured in the same process give the
yardsticks:

- `float32 matmul 1024^3`: the machine's matmul ceiling (one large product).
- `<cell> matmuls of the step loop`: the train step's products alone, small (batch-row)
  products in a `tf.while_loop`, with the weight gradients accumulated step by step as the
  generic RNN loop does, nothing else. Its ratio to Keras' train step is the share of the
  step that is matrix products at the speed this loop shape allows.
- `<cell> matmuls, weight gradients after the loop`: the same products with `dW` and `dU`
  computed after the backward loop as two large products over all steps (the cuDNN
  structure). The most any restructuring of the loop could save.

With `--candidates`, the designs of `benchmarks/recurrent_candidates.py` (a per-step custom
gradient, the hoisted input projection, the cuDNN structure) are timed as well, against Keras'
LSTM train step in graph mode, after their outputs and gradients are checked against it.

Run: `python -m benchmarks.bench_recurrent [--candidates] [--repeats N] [--warmup N]
[--filter S] [--quick] [--no-record]`.
"""

import argparse
import functools

import numpy as np

from benchmarks import harness

FULL_SIZES = {"batch": 64, "sequence": 100, "input": 128, "units": 256}
QUICK_SIZES = {"batch": 4, "sequence": 6, "input": 8, "units": 16}
MODES = {"graph": False, "xla": True}
ATOL = 1e-4


def _cases():
    import keras

    import keras_seq

    # (short name, keras_seq cell class, Keras layer class)
    return [
        ("LSTM", keras_seq.layers.LSTMCell, keras.layers.LSTM),
        ("GRU", keras_seq.layers.GRUCell, keras.layers.GRU),
        ("SimpleRNN", keras_seq.layers.ElmanCell, keras.layers.SimpleRNN),
    ]


def _model(layer, sizes):
    import keras

    inputs = keras.Input(shape=(sizes["sequence"], sizes["input"]), batch_size=sizes["batch"])
    return keras.Model(inputs, layer(inputs))


def _check_same(ours, peer, x, label):
    """Copy the peer's weights into ours and check that both compute the same outputs."""
    peer_shapes = [w.shape for w in peer.get_weights()]
    our_shapes = [w.shape for w in ours.get_weights()]
    if peer_shapes != our_shapes:
        raise RuntimeError(
            f"{label}: weight layouts differ. keras: {peer_shapes}, keras_seq: {our_shapes}"
        )
    ours.set_weights(peer.get_weights())
    import keras

    expected = keras.ops.convert_to_numpy(peer(x))
    actual = keras.ops.convert_to_numpy(ours(x))
    error = float(np.max(np.abs(expected - actual)))
    if error > ATOL:
        raise RuntimeError(f"{label}: outputs differ by {error:.2e} (> {ATOL}) with equal weights.")
    return error


def _gates(short):
    return {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[short]


def matmul_gflop(sizes, gates, task):
    """GFLOP of the matrix products of one call (see the module docstring)."""
    b, t, f, u = sizes["batch"], sizes["sequence"], sizes["input"], sizes["units"]
    width = gates * u
    forward = 2 * b * t * (f + u) * width
    if task == "predict":
        return forward / 1e9
    return (forward + 2 * b * t * (f + 2 * u) * width) / 1e9


def _ceiling_variant(quick):
    import tensorflow as tf

    n = 128 if quick else 1024
    a = tf.random.normal((n, n))
    matmul = tf.function(lambda a: tf.matmul(a, a))
    return harness.Variant(
        name=f"float32 matmul {n}^3",
        fn=lambda: matmul(a),
        items=2 * n**3 / 1e9,
        item_unit="GFLOP",
    )


def loop_matmul_functions(sizes, gates):
    """The train step's matrix products alone, as two `tf.function`s and their arguments.

    Returns `(step_loop, after_loop, (x, dz), (kernel, recurrent_kernel))`. Both functions
    run the forward loop (`x_t @ W + h @ U`) and a backward loop (`dh = dz_t @ U^T`) over
    `sizes["sequence"]` steps on random `dz`, and return `(dh, d_kernel, d_recurrent)`.
    `step_loop` accumulates `d_kernel += x_t^T dz_t` and `d_recurrent += dh_t^T dz_t` step
    by step, as the generic RNN loop does; `after_loop` stacks the `dh_t` and computes both
    weight gradients after the loop as two products over all steps. Same values.
    """
    import tensorflow as tf

    b, t, f, u = sizes["batch"], sizes["sequence"], sizes["input"], sizes["units"]
    width = gates * u
    generator = tf.random.Generator.from_seed(0)
    x = generator.normal((t, b, f))  # (T, B, F)
    dz = generator.normal((t, b, width)) * 1e-3  # (T, B, G * U)
    kernel = generator.normal((f, width)) * 0.05
    recurrent_kernel = generator.normal((u, width)) * 0.05

    def forward(x):
        def body(step, h):
            z = tf.matmul(x[step], kernel) + tf.matmul(h, recurrent_kernel)  # (B, G * U)
            return step + 1, z[:, :u]

        return tf.while_loop(lambda step, h: step < t, body, (0, tf.zeros((b, u))))[1]

    @tf.function
    def step_loop(x, dz):
        def body(step, dh, d_kernel, d_recurrent):
            dz_t = dz[step]  # (B, G * U)
            return (
                step - 1,
                tf.matmul(dz_t, recurrent_kernel, transpose_b=True),
                d_kernel + tf.matmul(x[step], dz_t, transpose_a=True),
                d_recurrent + tf.matmul(dh, dz_t, transpose_a=True),
            )

        initial = (t - 1, forward(x), tf.zeros((f, width)), tf.zeros((u, width)))
        _, dh, d_kernel, d_recurrent = tf.while_loop(lambda step, *_: step >= 0, body, initial)
        return dh, d_kernel, d_recurrent

    @tf.function
    def after_loop(x, dz):
        def body(step, dh, dhs):
            dhs = dhs.write(step, dh)
            return step - 1, tf.matmul(dz[step], recurrent_kernel, transpose_b=True), dhs

        dhs = tf.TensorArray(tf.float32, size=t)
        _, dh, dhs = tf.while_loop(lambda step, *_: step >= 0, body, (t - 1, forward(x), dhs))
        dz_all = tf.reshape(dz, (t * b, width))  # (T * B, G * U)
        d_kernel = tf.matmul(tf.reshape(x, (t * b, f)), dz_all, transpose_a=True)
        d_recurrent = tf.matmul(tf.reshape(dhs.stack(), (t * b, u)), dz_all, transpose_a=True)
        return dh, d_kernel, d_recurrent

    return step_loop, after_loop, (x, dz), (kernel, recurrent_kernel)


def _loop_matmul_variants(short, sizes, peer):
    step_loop, after_loop, args, _ = loop_matmul_functions(sizes, _gates(short))
    gflop = matmul_gflop(sizes, _gates(short), "train")
    return [
        harness.Variant(
            name=f"{short} matmuls of the step loop, train graph",
            fn=lambda: step_loop(*args),
            peer=peer,
            items=gflop,
            item_unit="GFLOP",
        ),
        harness.Variant(
            name=f"{short} matmuls, weight gradients after the loop, train graph",
            fn=lambda: after_loop(*args),
            peer=peer,
            items=gflop,
            item_unit="GFLOP",
        ),
    ]


def check_gradients(ours, peer, x, y, label):
    """Copy the peer's weights into ours; check that the weight gradients of a loss agree."""
    import tensorflow as tf

    ours.set_weights(peer.get_weights())
    gradients = []
    for model in (peer, ours):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x) * y)
        gradients.append(tape.gradient(loss, model.trainable_weights))
    error = max(float(np.max(np.abs(a - b))) for a, b in zip(*gradients))
    scale = max(float(np.max(np.abs(a))) for a in gradients[0])
    if error > ATOL * max(1.0, scale):
        raise RuntimeError(f"{label}: gradients differ by {error:.2e} with equal weights.")
    return error


def _candidate_variants(sizes, x, y, peer_model):
    import keras

    from benchmarks import recurrent_candidates

    variants = []
    for label, layer_class in recurrent_candidates.CANDIDATES.items():
        model = _model(layer_class(sizes["units"]), sizes)
        _check_same(model, peer_model, x, label)
        check_gradients(model, peer_model, x, y, label)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=False)
        variants.append(
            harness.Variant(
                name=f"LSTM candidate: {label}, train graph",
                fn=(lambda m: lambda: m.train_on_batch(x, y))(model),
                peer="keras.layers.LSTM train graph",
                items=matmul_gflop(sizes, 4, "train"),
                item_unit="GFLOP",
            )
        )
    return variants


def build(quick, candidates=False):
    import keras
    import tensorflow as tf

    # Twelve models trace their own functions; TF then warns about "retracing" although no
    # function retraces. A real retrace would show as a median close to the first call.
    tf.get_logger().setLevel("ERROR")

    sizes = QUICK_SIZES if quick else FULL_SIZES
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(
        rng.standard_normal((sizes["batch"], sizes["sequence"], sizes["input"]), "float32")
    )
    y = keras.ops.convert_to_tensor(
        rng.standard_normal((sizes["batch"], sizes["units"]), "float32")
    )
    variants = [_ceiling_variant(quick)]
    for short, cell_class, layer_class in _cases():
        for mode, jit_compile in MODES.items():
            peer = _model(layer_class(sizes["units"]), sizes)
            ours = _model(keras.layers.RNN(cell_class(sizes["units"])), sizes)
            _check_same(ours, peer, x, f"{short} {mode}")
            for model in (peer, ours):
                model.compile(
                    optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=jit_compile
                )
            peer_label = f"keras.layers.{layer_class.__name__}"
            our_label = f"RNN(keras_seq.{cell_class.__name__})"
            for task in ("train", "predict"):
                peer_name = f"{peer_label} {task} {mode}"
                for label, model in ((peer_label, peer), (our_label, ours)):
                    if task == "train":
                        fn = (lambda m: lambda: m.train_on_batch(x, y))(model)
                    else:
                        fn = (lambda m: lambda: m.predict_on_batch(x))(model)
                    variants.append(
                        harness.Variant(
                            name=f"{label} {task} {mode}",
                            fn=fn,
                            peer=None if model is peer else peer_name,
                            items=matmul_gflop(sizes, _gates(short), task),
                            item_unit="GFLOP",
                        )
                    )
            if mode == "graph" and short != "SimpleRNN":
                variants += _loop_matmul_variants(short, sizes, f"{peer_label} train graph")
            if mode == "graph" and short == "LSTM" and candidates:
                variants += _candidate_variants(sizes, x, y, peer)
    settings = dict(sizes)
    settings.update(
        {
            "dtype": "float32",
            "optimizer": "Adam(1e-3)",
            "loss": "mse on the last output",
            "weights": f"identical, outputs checked to atol {ATOL}",
            "throughput": "GFLOP/s of matrix products (see the module docstring)",
        }
    )
    return variants, settings


def parse_args(argv=None):
    """This file's own option; the rest go to `harness.main`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--candidates",
        action="store_true",
        help="also time the designs of benchmarks/recurrent_candidates.py",
    )
    return parser.parse_known_args(argv)


if __name__ == "__main__":
    own, rest = parse_args()
    harness.main(
        "Recurrent cells vs Keras LSTM / GRU / SimpleRNN",
        functools.partial(build, candidates=own.candidates),
        argv=rest,
        default_repeats=60,
        default_warmup=3,
    )
