"""DETR against its reference matcher: the Hungarian matching alone, and a training step.

Through `harness.main` (interleaved, ratio ours / peer of the median time per call, target
1.0; a ratio of 0.5 is twice as many matchings per second as the peer):

- Matcher: `keras_seq.ops.linear_sum_assignment` on a batch of 16 cost matrices of 100
  queries x 20 targets (DETR's 100 object queries; uniform random costs; every example keeps
  its first 10 to 20 targets and pads the rest, `target_mask`), eagerly and compiled by XLA
  (`tf.function(jit_compile=True)`), against `scipy.optimize.linear_sum_assignment` in a
  Python loop over the batch on each example's real targets, as in DETR's reference
  `HungarianMatcher` (the costs pulled to the host first, which is part of the peer's call).
  Ours returns one-hot assignments `(16, 100, 20)`, SciPy index pairs. Before anything is
  timed, the total cost of our assignment is checked equal to SciPy's on every example, in
  both modes.

- Train step: one `train_on_batch` of a `keras_seq.models.DETRObjectDetector` on a
  `DETRBackbone` at the `detr_resnet50` sizes (ResNet50 image encoder, 100 queries, 91
  classes) on a batch of 4 shapes images of 224 x 224 with up to 20 targets, dropout off (so
  that the matchers' losses can be compared), `DETRLoss` with our in-graph matcher (graph,
  and XLA), against the same model and loss matching on the host with SciPy per image
  through `tf.numpy_function` (DETR's reference `HungarianMatcher`; it cannot compile with
  XLA). The losses are checked equal before timing.

`build` concatenates sections (`matcher_variants`, `train_step_variants`), each returning its
variants and its settings. The throughput column is images (matching problems) per second.

Run: `python -m benchmarks.bench_detection [harness options: --repeats --warmup --filter
--quick --no-record --results-file --target]`.
"""

import numpy as np

from benchmarks import harness

TITLE = "Detection: Hungarian matching vs scipy.optimize.linear_sum_assignment"
FULL_SIZES = {
    "matcher": {"batch": 16, "num_queries": 100, "num_targets": 20},
    # DETR-R50's transformer and heads (preset detr_resnet50) on a ResNet50 at 224 x 224.
    "train_step": {
        "name": "R50 (detr_resnet50 sizes)",
        "batch": 4,
        "image_size": 224,
        "num_targets": 20,
        "tiny_image_encoder": False,
        "num_classes": 91,
        "config": {"dropout": 0.0},  # DETRBackbone's arguments
    },
}
QUICK_SIZES = {
    "matcher": {"batch": 2, "num_queries": 6, "num_targets": 3},
    "train_step": {
        "name": "tiny (two-convolution image encoder, width 16)",
        "batch": 2,
        "image_size": 32,
        "num_targets": 2,
        "tiny_image_encoder": True,
        "num_classes": 3,
        "config": {
            "dropout": 0.0,
            "hidden_dim": 16,
            "num_queries": 4,
            "num_encoder_layers": 1,
            "num_decoder_layers": 2,
            "num_heads": 2,
            "intermediate_dim": 32,
        },
    },
}
DEFAULT_REPEATS = 30
DEFAULT_WARMUP = 3
SCIPY_MATCHER = "scipy linear_sum_assignment loop"
# Largest difference of the total matched cost from SciPy's, relative (float32 costs in [0, 1),
# 20 pairs: round-off only).
RTOL = 1e-5


def matcher_problem(sizes, seed=0):
    """Random costs `(batch, num_queries, num_targets)` float32 and a `target_mask` keeping
    the first half to all of the targets of each example (at least one example padded)."""
    rng = np.random.default_rng(seed)
    batch, num_targets = sizes["batch"], sizes["num_targets"]
    cost = rng.random((batch, sizes["num_queries"], num_targets)).astype("float32")
    counts = rng.integers(num_targets // 2, num_targets + 1, batch)
    counts[0] = max(num_targets - 1, 1) if num_targets > 1 else num_targets
    mask = np.arange(num_targets)[None, :] < counts[:, None]
    return cost, mask


def scipy_matching(cost, mask):
    """DETR's reference matcher: SciPy on each example's real targets, on the host."""
    import scipy.optimize

    cost = np.asarray(cost)
    return [scipy.optimize.linear_sum_assignment(cost[b][:, mask[b]]) for b in range(len(cost))]


def check_totals(label, cost, mask, assignment):
    """Raise unless `assignment` (one-hot, `cost`'s shape) costs what SciPy's does, example
    by example. Returns the largest relative difference."""
    cost = np.asarray(cost, "float64")
    assignment = np.asarray(assignment, "float64")
    worst = 0.0
    for b, (rows, columns) in enumerate(scipy_matching(cost, mask)):
        expected = cost[b][:, mask[b]][rows, columns].sum()
        total = (assignment[b] * cost[b]).sum()
        valid = (assignment[b].sum(axis=0) == mask[b]).all() and assignment[b].sum(1).max() <= 1
        error = abs(total - expected) / max(abs(expected), 1.0)
        if not valid or error > RTOL:
            raise RuntimeError(
                f"{label}: example {b} is not an optimal assignment (total {total}, SciPy's "
                f"{expected}, valid one-hot: {valid})."
            )
        worst = max(worst, error)
    return worst


def matcher_variants(quick):
    """The matcher section: SciPy loop (peer), ours eager and ours XLA; and its settings."""
    import tensorflow as tf

    from keras_seq.ops.assignment import linear_sum_assignment

    tf.get_logger().setLevel("ERROR")
    sizes = (QUICK_SIZES if quick else FULL_SIZES)["matcher"]
    cost_array, mask_array = matcher_problem(sizes)
    cost, mask = tf.constant(cost_array), tf.constant(mask_array)
    xla = tf.function(linear_sum_assignment, jit_compile=True)
    errors = [
        check_totals(label, cost_array, mask_array, solve(cost, target_mask=mask))
        for label, solve in (("eager", linear_sum_assignment), ("XLA", xla))
    ]
    batch = sizes["batch"]
    variants = [
        harness.Variant(
            SCIPY_MATCHER,
            lambda: scipy_matching(cost, mask_array),
            items=batch,
            item_unit="img",
        ),
        harness.Variant(
            "keras_seq linear_sum_assignment eager",
            lambda: linear_sum_assignment(cost, target_mask=mask),
            peer=SCIPY_MATCHER,
            items=batch,
            item_unit="img",
        ),
        harness.Variant(
            "keras_seq linear_sum_assignment XLA",
            lambda: xla(cost, target_mask=mask),
            peer=SCIPY_MATCHER,
            items=batch,
            item_unit="img",
        ),
    ]
    counts = mask_array.sum(axis=1)
    settings = {
        "matcher": (
            f"batch {batch}, {sizes['num_queries']} queries x {sizes['num_targets']} targets "
            f"({counts.min()} to {counts.max()} real), uniform float32 costs; totals equal "
            f"SciPy's on every example (largest relative difference {max(errors):.1e})"
        ),
    }
    return variants, settings


def _scipy_detr_loss():
    """`DETRLoss` matching on the host with SciPy per image (DETR's reference matcher,
    through `tf.numpy_function`): the peer of our in-graph matcher in a training step."""
    import tensorflow as tf

    from keras_seq.losses import DETRLoss
    from keras_seq.ops.detection_matching import detr_matching_cost

    def host_match(cost, mask):
        assignment = np.zeros(cost.shape, "float32")
        for b, (rows, columns) in enumerate(scipy_matching(cost, mask)):
            assignment[b, rows, np.flatnonzero(mask[b])[columns]] = 1.0
        return assignment

    class ScipyDETRLoss(DETRLoss):
        def _match(self, logits, boxes, target_labels, target_boxes, target_mask):
            cost = detr_matching_cost(logits, boxes, target_labels, target_boxes)
            assignment = tf.numpy_function(
                host_match, [tf.stop_gradient(cost), target_mask], tf.float32
            )
            return tf.ensure_shape(assignment, cost.shape)

    return ScipyDETRLoss()


def train_step_variants(quick):
    """One DETR-R50 training step (graph, XLA) with our matcher vs SciPy's on the host."""
    import keras
    import tensorflow as tf

    from keras_seq.data import shapes_detection_data
    from keras_seq.losses import DETRLoss
    from keras_seq.models import DETRBackbone
    from keras_seq.models import DETRObjectDetector

    sizes = (QUICK_SIZES if quick else FULL_SIZES)["train_step"]
    keras.utils.set_random_seed(0)
    size, batch = sizes["image_size"], sizes["batch"]
    images, targets = shapes_detection_data(
        batch,
        image_size=size,
        min_objects=sizes["num_targets"] // 2,
        max_objects=sizes["num_targets"],
        max_object_size=max(6, size // 8),  # so that 20 objects fit in one image
        seed=0,
    )
    config = dict(sizes["config"], image_shape=(size, size, 3))
    variants = []

    def image_encoder():
        if not sizes["tiny_image_encoder"]:
            return None  # DETRBackbone's default ResNet50
        return keras.Sequential(
            [keras.layers.Conv2D(8, 3, strides=4, padding="same"), keras.layers.Conv2D(16, 1)]
        )

    peer = "DETR train step, SciPy matcher on the host (graph)"
    models = {}
    for label, loss, jit in (
        (peer, _scipy_detr_loss(), False),
        ("keras_seq DETR train step graph", DETRLoss(), False),
        ("keras_seq DETR train step XLA", DETRLoss(), True),
    ):
        backbone = DETRBackbone(image_encoder=image_encoder(), **config)
        model = DETRObjectDetector(backbone, num_classes=sizes["num_classes"])
        if models:
            model.set_weights(next(iter(models.values())).get_weights())
        model.compile(keras.optimizers.SGD(0.0), loss=loss, jit_compile=jit)
        models[label] = model
        variants.append(
            harness.Variant(
                label,
                (lambda m: lambda: m.train_on_batch(images, targets))(model),
                peer=None if label == peer else peer,
                items=batch,
                item_unit="img",
            )
        )
    # The same loss before timing: the matchers agree (learning rate 0 keeps the weights).
    losses = [float(m.train_on_batch(images, targets)) for m in models.values()]
    error = max(abs(value - losses[0]) / abs(losses[0]) for value in losses)
    if error > 1e-4:
        raise RuntimeError(f"DETR losses differ between matchers: {losses}")
    tf.get_logger().setLevel("ERROR")
    settings = {
        "train_step": (
            f"DETR {sizes['name']}, batch {batch} of {size}x{size} shapes images, up to "
            f"{sizes['num_targets']} targets, SGD; equal losses across matchers "
            f"(largest relative difference {error:.1e})"
        ),
    }
    return variants, settings


SECTIONS = (matcher_variants, train_step_variants)


def build(quick):
    """Every section's variants, concatenated, and their settings merged."""
    variants, settings = [], {}
    for section in SECTIONS:
        section_variants, section_settings = section(quick)
        variants += section_variants
        settings.update(section_settings)
    return variants, settings


def main(argv=None):
    return harness.main(
        TITLE,
        build,
        argv=argv,
        default_repeats=DEFAULT_REPEATS,
        default_warmup=DEFAULT_WARMUP,
    )


if __name__ == "__main__":
    main()
