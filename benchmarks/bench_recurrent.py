"""keras_seq recurrent cells in `keras.layers.RNN` against Keras' own LSTM, GRU and SimpleRNN.

For each cell, each mode (`graph`: `compile(jit_compile=False)`, the `tf.function` that `fit`
runs by default; `xla`: `compile(jit_compile=True)`) and each task (`train`: one
`train_on_batch`, forward + backward + Adam update on an mse loss; `predict`: one
`predict_on_batch`), the keras_seq model is timed against the Keras model holding the same
weights. Outputs are checked to match before anything is timed.

Run: `python -m benchmarks.bench_recurrent [--repeats N] [--warmup N] [--filter S] [--quick]
[--no-record]`.
"""

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


def build(quick):
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
    variants = []
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
                            items=sizes["batch"],
                            item_unit="seq",
                        )
                    )
    settings = dict(sizes)
    settings.update(
        {
            "dtype": "float32",
            "optimizer": "Adam(1e-3)",
            "loss": "mse on the last output",
            "weights": f"identical, outputs checked to atol {ATOL}",
        }
    )
    return variants, settings


if __name__ == "__main__":
    harness.main(
        "Recurrent cells vs Keras LSTM / GRU / SimpleRNN",
        build,
        default_repeats=60,
        default_warmup=3,
    )
