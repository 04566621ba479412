"""DETR building blocks against their references: the Hungarian matcher.

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

`build` concatenates sections (`matcher_variants`, ...), each returning its variants and its
settings; a DETR train-step section can be appended the same way. The throughput column is
images (matching problems) per second.

Run: `python -m benchmarks.bench_detection [harness options: --repeats --warmup --filter
--quick --no-record --results-file --target]`.
"""

import numpy as np

from benchmarks import harness

TITLE = "Detection: Hungarian matching vs scipy.optimize.linear_sum_assignment"
FULL_SIZES = {"matcher": {"batch": 16, "num_queries": 100, "num_targets": 20}}
QUICK_SIZES = {"matcher": {"batch": 2, "num_queries": 6, "num_targets": 3}}
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


SECTIONS = (matcher_variants,)


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
