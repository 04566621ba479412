"""keras_seq ViTBackbone and SwinBackbone against keras_hub's ViT and Swin backbones.

Through `harness.main` (interleaved, ratio ours / peer of the median time per call, target
1.0; a ratio of 0.9 is 10% more images per second than the peer), at batch 8 and 224 x 224:

- ViT-S/16: `keras_seq.models.ViTBackbone` (12 layers, hidden 384, 6 heads, MLP 1536,
  patch 16) vs `keras_hub.models.ViTBackbone` with the same configuration; both return the
  final-norm token sequence, cut to its class token in the timed function. 21,665,664
  parameters each.
- Swin-T: `keras_seq.models.SwinBackbone` (hidden 96, blocks (2, 2, 6, 2), heads (3, 6,
  12, 24), window 7, patch 4) vs `keras_hub.models.SwinTransformerBackbone` with the same
  settings; ours returns the final-norm map `(B, h, w, C)`, keras_hub's the same as tokens
  `(B, h * w, C)`, each averaged over its positions in the timed function. Stochastic depth
  0.2 on both (Swin-T's); it is only active in the train step. 27,519,354 parameters each.

The peer's weights (perturbed by a little noise, so that layer norms and biases are not at
their trivial initial values) are copied into ours, and the pooled outputs are checked equal
before anything is timed. `train` is forward + the gradient of `mean(features ** 2)` with
respect to every trainable weight (no optimizer) in a `tf.function`; `predict` is the forward
pass in inference mode. Both run without XLA (`graph`) unless `--jit` gives `xla`. The
throughput column is images per second.

Run: `python -m benchmarks.bench_vision [--jit] [harness options: --repeats --warmup --filter
--quick --no-record --results-file --target]`.
"""

import argparse
import warnings

import numpy as np

from benchmarks import harness

TITLE = "Vision: ViT-S/16 and Swin-T vs keras_hub ViTBackbone / SwinTransformerBackbone"
FULL_SIZES = {
    "batch": 8,
    "image_size": 224,
    "vit": {
        "patch_size": 16,
        "num_layers": 12,
        "hidden_dim": 384,
        "num_heads": 6,
        "intermediate_dim": 1536,
    },
    "swin": {
        "patch_size": 4,
        "hidden_dim": 96,
        "num_layers": (2, 2, 6, 2),
        "num_heads": (3, 6, 12, 24),
        "window_size": 7,
        "drop_path_rate": 0.2,
    },
}
QUICK_SIZES = {
    "batch": 2,
    "image_size": 32,
    "vit": {
        "patch_size": 8,
        "num_layers": 1,
        "hidden_dim": 16,
        "num_heads": 2,
        "intermediate_dim": 32,
    },
    "swin": {
        "patch_size": 4,
        "hidden_dim": 8,
        "num_layers": (2, 2),
        "num_heads": (1, 2),
        "window_size": 4,  # an 8x8 map: shifted windows in the first stage
        "drop_path_rate": 0.2,
    },
}
TASKS = ("train", "predict")
DEFAULT_REPEATS = 15
DEFAULT_WARMUP = 2
# Largest feature difference over the largest feature: float32 round-off through ViT-S's 12
# blocks or Swin-T's 12 blocks and 3 patch mergings (measured: 0 to 1.3e-7).
RTOL = 1e-4
NOISE = 0.02


def parse_args(argv=None):
    """This file's own options; the rest go to `harness.main`."""
    parser = argparse.ArgumentParser(
        description="Vision benchmark; also takes the harness options (--repeats, --warmup, "
        "--filter, --quick, --no-record, --results-file, --target).",
        add_help=False,
    )
    parser.add_argument("--jit", action="store_true", help="time with jit_compile=True (XLA)")
    args, rest = parser.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        parser.print_help()
    return args, rest


def _vit_pair(sizes):
    import keras_hub

    from keras_seq.models import ViTBackbone

    config = sizes["vit"]
    size = sizes["image_size"]
    peer = keras_hub.models.ViTBackbone(
        image_shape=(size, size, 3),
        patch_size=config["patch_size"],
        num_layers=config["num_layers"],
        num_heads=config["num_heads"],
        hidden_dim=config["hidden_dim"],
        mlp_dim=config["intermediate_dim"],
    )
    ours = ViTBackbone(image_shape=(size, size, 3), **config)
    return peer, ours


def _swin_pair(sizes):
    import keras_hub

    from keras_seq.models import SwinBackbone

    config = sizes["swin"]
    size = sizes["image_size"]
    peer = keras_hub.models.SwinTransformerBackbone(
        image_shape=(size, size, 3),
        embed_dim=config["hidden_dim"],
        depths=config["num_layers"],
        num_heads=config["num_heads"],
        window_size=config["window_size"],
        patch_size=config["patch_size"],
        drop_path=config["drop_path_rate"],
    )
    ours = SwinBackbone(image_shape=(size, size, 3), **config)
    return peer, ours


def vit_peer_name(path):
    """The keras_hub ViTBackbone weight that corresponds to our weight at `path`."""
    parts = path.split("/")
    leaf = parts[-1]
    if parts[0] == "patch_embedding":
        return f"vit_patching_and_embedding/patch_embedding/{leaf}"
    if path == "position_embedding/class_token":
        return "vit_patching_and_embedding/class_token"
    if path == "position_embedding/position_embeddings":
        return "vit_patching_and_embedding/position_embedding/embeddings"
    if parts[0] == "layer_norm":
        return f"vit_encoder/ln/{leaf}"
    block = "vit_encoder/transformer_block_{}".format(int(parts[0].rsplit("_", 1)[1]) + 1)
    sublayer = "/".join(parts[1:-1])
    names = {
        "self_attention/query_dense": "mha/query",
        "self_attention/key_dense": "mha/key",
        "self_attention/value_dense": "mha/value",
        "self_attention/output_dense": "mha/attention_output",
        "self_attention_layer_norm": "ln_1",
        "feedforward_layer_norm": "ln_2",
        "feedforward/intermediate_dense": "mlp/dense_1",
        "feedforward/output_dense": "mlp/dense_2",
    }
    return f"{block}/{names[sublayer]}/{leaf}"


def vit_weights_from_peer(ours, peer_weights):
    """Our ViT's weights, in our order, from `{path: array}` of keras_hub's ViTBackbone."""
    return [peer_weights[vit_peer_name(w.path)] for w in ours.weights]


def swin_weights_from_peer(ours, peer_weights):
    """Our Swin's weights, in our order, from `{path: array}` of keras_hub's Swin backbone.

    keras_hub fuses the query, key and value projections into one `(C, 3C)` kernel laid out
    `(C, 3, heads, head_dim)` and its output projection is a plain `(C, C)` kernel; ours are
    per-head `EinsumDense` kernels `(C, heads, head_dim)` and `(heads, head_dim, C)`.
    """
    weights = []
    for w in ours.weights:
        parts = w.path.split("/")
        leaf = parts[-1]
        if parts[0] == "patch_embedding":
            value = peer_weights[f"patch_embedding/conv_projection/{leaf}"]
        elif parts[0] == "patch_layer_norm":
            value = peer_weights[f"patch_embedding/norm/{leaf}"]
        elif parts[0] == "layer_norm":
            value = peer_weights[f"norm/{leaf}"]
        elif parts[0].startswith("patch_merging_"):
            stage = int(parts[0].rsplit("_", 1)[1]) - 1
            sublayer = "reduction" if parts[1] == "reduction" else "norm"
            value = peer_weights[f"stage_{stage}/downsample/{sublayer}/{leaf}"]
        else:  # stage_{s}_block_{b}: ours count stages from 1, keras_hub from 0
            _, stage, _, block = parts[0].split("_")
            prefix = f"stage_{int(stage) - 1}/blocks_{block}/"
            sublayer = "/".join(parts[1:-1])
            simple = {
                "attention_layer_norm": "norm1",
                "feedforward_layer_norm": "norm2",
                "feedforward/intermediate_dense": "mlp/fc1",
                "feedforward/output_dense": "mlp/fc2",
            }
            if sublayer in simple:
                value = peer_weights[f"{prefix}{simple[sublayer]}/{leaf}"]
            elif leaf == "relative_position_bias_table":
                value = peer_weights[f"{prefix}attn/relative_position_bias_table"]
            elif sublayer == "window_attention/self_attention/output_dense":
                value = peer_weights[f"{prefix}attn/attention_projection/{leaf}"]
            else:
                index = ("query_dense", "key_dense", "value_dense").index(parts[-2])
                fused = peer_weights[f"{prefix}attn/attention_qkv/{leaf}"]
                if leaf == "kernel":  # (C, 3C) -> (C, 3, heads, head_dim)
                    value = fused.reshape(fused.shape[0], 3, *w.shape[1:])[:, index]
                else:  # (3C,) -> (3, heads, head_dim)
                    value = fused.reshape(3, *w.shape)[index]
        weights.append(np.reshape(value, w.shape))
    return weights


def _vit_features(model, images, training, peer):
    tokens = model(images, training=training)
    return tokens[:, 0]  # both: (B, T, C) -> class token (B, C)


def _swin_features(model, images, training, peer):
    import keras

    features = model(images, training=training)
    # keras_hub: (B, h * w, C) tokens; ours: (B, h, w, C) map -> (B, C)
    return keras.ops.mean(features, axis=1 if peer else (1, 2))


def _check_same(label, ours, peer, to_ours, features, images):
    """Copy the (perturbed) peer weights into ours; check equal parameters and features."""
    import keras

    rng = np.random.default_rng(1)
    peer.set_weights(
        [w + NOISE * rng.standard_normal(w.shape).astype(w.dtype) for w in peer.get_weights()]
    )
    if ours.count_params() != peer.count_params():
        raise RuntimeError(
            f"{label}: parameter counts differ. keras_hub {peer.count_params():,}, "
            f"keras_seq {ours.count_params():,}"
        )
    ours.set_weights(to_ours(ours, {w.path: w.numpy() for w in peer.weights}))
    expected = keras.ops.convert_to_numpy(features(peer, images, False, peer=True))
    actual = keras.ops.convert_to_numpy(features(ours, images, False, peer=False))
    error = float(np.max(np.abs(expected - actual)) / np.max(np.abs(expected)))
    if error > RTOL:
        raise RuntimeError(f"{label}: features differ by {error:.2e} (> {RTOL}) relative.")
    return error


def _step(task, model, features, images, jit, peer):
    """A `tf.function` running one `train` or `predict` step of `model` on `images`."""
    import tensorflow as tf

    if task == "predict":
        return tf.function(
            lambda: tf.reduce_sum(features(model, images, False, peer=peer)), jit_compile=jit
        )

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(features(model, images, True, peer=peer)))
        gradients = tape.gradient(loss, model.trainable_weights)
        # A result that depends on every gradient: the backward pass is neither pruned from
        # the graph nor still running when the clock stops.
        return tf.stack([loss, tf.add_n([tf.reduce_sum(g) for g in gradients])])

    return step


def build_variants(quick, jit=False):
    """The timed variants and the settings to record (the `build` of `harness.main`)."""
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    # keras_hub's Swin, at every call of its functional graph: "Layer 'attn' (of type
    # WindowAttention) was passed an input with a mask attached to it"; harmless.
    warnings.filterwarnings("ignore", message=".*WindowAttention.*mask", category=UserWarning)
    sizes = QUICK_SIZES if quick else FULL_SIZES
    mode = "xla" if jit else "graph"
    keras.utils.set_random_seed(0)
    batch, size = sizes["batch"], sizes["image_size"]
    images = keras.ops.convert_to_tensor(
        np.random.default_rng(0).standard_normal((batch, size, size, 3), "float32")
    )
    cases = [
        (
            "ViT",
            "ViTBackbone",
            "ViTBackbone",
            _vit_pair,
            vit_weights_from_peer,
            _vit_features,
        ),
        (
            "Swin",
            "SwinTransformerBackbone",
            "SwinBackbone",
            _swin_pair,
            swin_weights_from_peer,
            _swin_features,
        ),
    ]
    variants = []
    checks = {}
    for label, peer_class, our_class, make_pair, to_ours, features in cases:
        peer, ours = make_pair(sizes)
        error = _check_same(label, ours, peer, to_ours, features, images[:1])
        checks[label] = f"{ours.count_params():,} parameters each, relative difference {error:.1e}"
        for task in TASKS:
            peer_name = f"keras_hub {peer_class} {task} {mode}"
            variants += [
                harness.Variant(
                    peer_name,
                    _step(task, peer, features, images, jit, peer=True),
                    items=batch,
                    item_unit="img",
                ),
                harness.Variant(
                    f"keras_seq {our_class} {task} {mode}",
                    _step(task, ours, features, images, jit, peer=False),
                    peer=peer_name,
                    items=batch,
                    item_unit="img",
                ),
            ]
    vit, swin = sizes["vit"], sizes["swin"]
    settings = {
        "batch": batch,
        "image": f"{size}x{size}x3",
        "ViT": ", ".join(f"{k} {v}" for k, v in vit.items()) + "; " + checks["ViT"],
        "Swin": ", ".join(f"{k} {v}" for k, v in swin.items()) + "; " + checks["Swin"],
        "features": "ViT's class token, Swin's mean over positions (both sides)",
        "dtype": "float32",
        "mode": f"tf.function(jit_compile={jit})",
        "train step": "forward + gradient of mean(features**2) w.r.t. all weights, no optimizer",
        "weights": "keras_hub's (perturbed) copied into ours",
    }
    return variants, settings


def main(argv=None):
    args, rest = parse_args(argv)
    return harness.main(
        TITLE,
        lambda quick: build_variants(quick, jit=args.jit),
        argv=rest,
        default_repeats=DEFAULT_REPEATS,
        default_warmup=DEFAULT_WARMUP,
    )


if __name__ == "__main__":
    main()
