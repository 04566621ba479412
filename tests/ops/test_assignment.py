"""linear_sum_assignment: the total cost equals SciPy's and a brute force over all
permutations, on continuous, tied, negative and low-precision costs; padded targets solve the
sub-problem and change nothing else; permutations of queries and targets permute the result;
XLA equals eager; no gradient flows; argument errors name the argument."""

import itertools

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

from keras_seq.ops.assignment import _augment
from keras_seq.ops.assignment import linear_sum_assignment

RNG = np.random.default_rng(11)


def check_assignment(cost, assignment, target_mask=None, rtol=1e-5):
    """Assert a valid one-hot assignment whose total equals SciPy's on the real targets."""
    cost = np.asarray(cost, "float64")
    assignment = np.asarray(assignment)
    assert assignment.shape == cost.shape
    assert set(np.unique(assignment)) <= {0, 1}
    assignment = assignment.astype("float64")
    for b in range(cost.shape[0]):
        real = np.arange(cost.shape[2]) if target_mask is None else np.flatnonzero(target_mask[b])
        np.testing.assert_array_equal(assignment[b].sum(axis=0)[real], 1, err_msg=f"example {b}")
        assert assignment[b].sum(axis=0).sum() == len(real), f"example {b}: a padded target"
        assert assignment[b].sum(axis=1).max(initial=0) <= 1, f"example {b}: a query twice"
        rows, columns = scipy.optimize.linear_sum_assignment(cost[b][:, real])
        expected = cost[b][:, real][rows, columns].sum()
        total = (assignment[b] * cost[b]).sum()
        np.testing.assert_allclose(total, expected, rtol=rtol, atol=rtol, err_msg=f"example {b}")


def brute_force_total(cost):
    """Minimum total of `cost` (queries, targets) over all injective target -> query maps."""
    num_queries, num_targets = cost.shape
    return min(
        cost[list(queries), range(num_targets)].sum()
        for queries in itertools.permutations(range(num_queries), num_targets)
    )


@pytest.mark.parametrize(
    "shape",
    [(4, 1, 1), (3, 6, 6), (4, 7, 1), (5, 9, 4), (2, 30, 30), (16, 100, 20)],
    ids=lambda s: "x".join(map(str, s)),
)
def test_total_equals_scipy_on_random_costs(shape):
    cost = RNG.random(shape).astype("float32")
    check_assignment(cost, linear_sum_assignment(cost))
    negative = (RNG.normal(size=shape) * 100.0 - 50.0).astype("float32")
    check_assignment(negative, linear_sum_assignment(negative))


def test_total_equals_scipy_on_tied_costs():
    # Small integer ranges (many equal costs, exact arithmetic: totals must match exactly).
    for shape, high in [((40, 6, 4), 2), ((20, 5, 5), 3), ((8, 20, 20), 4), ((8, 100, 20), 3)]:
        cost = RNG.integers(-high, high, shape).astype("float32")
        check_assignment(cost, linear_sum_assignment(cost), rtol=0)
    # All costs equal; duplicated queries and targets.
    for shape in [(2, 5, 5), (2, 100, 20)]:
        ones = np.ones(shape, "float32")
        check_assignment(ones, linear_sum_assignment(ones), rtol=0)
    cost = RNG.integers(0, 5, (6, 12, 8)).astype("float32")
    cost[:, :, 4:] = cost[:, :, :4]  # targets 4..7 copy targets 0..3
    cost[:, 6:, :] = cost[:, :6, :]  # queries 6..11 copy queries 0..5
    check_assignment(cost, linear_sum_assignment(cost), rtol=0)


def test_total_equals_a_brute_force_over_all_permutations():
    # Independent of SciPy: every injective map, for every tiny shape with Q <= 5.
    for num_queries in range(1, 6):
        for num_targets in range(1, num_queries + 1):
            for cost in (
                RNG.random((8, num_queries, num_targets)),
                RNG.integers(0, 3, (8, num_queries, num_targets)),
            ):
                cost = cost.astype("float32")
                assignment = np.asarray(linear_sum_assignment(cost))
                for b in range(len(cost)):
                    assert (assignment[b].sum(axis=0) == 1).all()
                    assert (assignment[b].sum(axis=1) <= 1).all()
                    np.testing.assert_allclose(
                        (assignment[b] * cost[b]).sum(), brute_force_total(cost[b]), rtol=1e-6
                    )


def test_structured_costs_that_need_long_augmenting_paths():
    # cost[q, t] = q * t and its negation: every greedy choice collides, so the shortest path
    # phase does most of the work (long alternating paths).
    queries, targets = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
    cost = np.stack([queries * targets, -queries * targets, (queries - targets) ** 2])
    cost = cost.astype("float32")
    check_assignment(cost, linear_sum_assignment(cost), rtol=0)


def test_shortest_paths_alone_are_optimal():
    # The second phase from an empty matching (no bidding rounds), on continuous and tied
    # costs, with padded targets.
    for cost in (RNG.random((6, 15, 10)), RNG.integers(0, 3, (6, 15, 10))):
        cost = cost.astype("float32")
        mask = RNG.random((6, 10)) < 0.7
        row_for_column = _augment(
            cost,
            mask[:, None, :],
            np.full((6, 15, 1), -1, "int32"),
            np.zeros((6, 1, 10), "float32"),
            np.zeros((6, 15, 1), "float32"),
        )
        assignment = np.asarray(row_for_column) == np.arange(10)
        check_assignment(cost, assignment.astype("float32"), mask)


def test_dtypes():
    cost = RNG.random((4, 20, 8))
    for dtype, rtol in [("float64", 1e-12), ("float32", 1e-6), ("float16", 1e-6)]:
        typed = cost.astype(dtype)
        assignment = linear_sum_assignment(typed)
        assert assignment.dtype == dtype
        check_assignment(typed, assignment, rtol=rtol)  # Checked on the typed costs.
    assignment = linear_sum_assignment(tf.cast(cost, tf.bfloat16))
    assert assignment.dtype == tf.bfloat16
    check_assignment(np.asarray(tf.cast(tf.cast(cost, tf.bfloat16), tf.float64)), assignment)


def test_target_mask_solves_the_sub_problem_and_ignores_padded_costs():
    cost = RNG.random((10, 30, 12)).astype("float32")
    mask = RNG.random((10, 12)) < 0.5
    mask[0] = False  # no real target
    mask[1] = True
    mask[2] = np.arange(12) == 5  # one real target
    assignment = np.asarray(linear_sum_assignment(cost, target_mask=mask))
    check_assignment(cost, assignment, mask)
    np.testing.assert_array_equal(assignment[0], 0)
    np.testing.assert_array_equal(assignment[:, :, ~mask[3]][3], 0)
    # Whatever the padded targets' costs, the real targets' assignment is the same.
    other = np.where(mask[:, None, :], cost, RNG.normal(size=cost.shape) * 10.0 - 5.0)
    np.testing.assert_array_equal(
        np.asarray(linear_sum_assignment(other.astype("float32"), target_mask=mask)), assignment
    )
    all_true = np.ones((10, 12), bool)
    np.testing.assert_array_equal(
        np.asarray(linear_sum_assignment(cost, target_mask=all_true)),
        np.asarray(linear_sum_assignment(cost)),
    )
    ties = RNG.integers(0, 3, (10, 30, 12)).astype("float32")
    check_assignment(ties, linear_sum_assignment(ties, target_mask=mask), mask, rtol=0)


def test_no_targets():
    assert linear_sum_assignment(np.zeros((2, 5, 0), "float32")).shape == (2, 5, 0)
    cost = RNG.random((3, 5, 4)).astype("float32")
    assignment = linear_sum_assignment(cost, target_mask=np.zeros((3, 4), bool))
    np.testing.assert_array_equal(np.asarray(assignment), 0)


def test_permuting_queries_and_targets_permutes_the_assignment():
    cost = RNG.random((8, 25, 10)).astype("float32")  # a unique optimum (continuous costs)
    ties = RNG.integers(0, 3, (8, 25, 10)).astype("float32")  # many optima
    query_order, target_order = RNG.permutation(25), RNG.permutation(10)
    for costs, unique in ((cost, True), (ties, False)):
        assignment = np.asarray(linear_sum_assignment(costs))
        permuted = np.asarray(linear_sum_assignment(costs[:, query_order][:, :, target_order]))
        totals = (assignment * costs).sum(axis=(1, 2))
        permuted_totals = (permuted * costs[:, query_order][:, :, target_order]).sum(axis=(1, 2))
        np.testing.assert_allclose(permuted_totals, totals, rtol=1e-6)
        if unique:
            np.testing.assert_array_equal(permuted, assignment[:, query_order][:, :, target_order])


def test_xla_equals_eager_with_an_unknown_batch_size():
    solve = tf.function(
        linear_sum_assignment,
        input_signature=[
            tf.TensorSpec((None, 12, 5), tf.float32),
            tf.TensorSpec((None, 5), tf.bool),
        ],
        jit_compile=True,
    )
    for cost in (RNG.random((6, 12, 5)), RNG.integers(0, 3, (3, 12, 5))):
        cost = cost.astype("float32")
        mask = RNG.random((len(cost), 5)) < 0.7
        np.testing.assert_array_equal(
            solve(cost, mask).numpy(), np.asarray(linear_sum_assignment(cost, target_mask=mask))
        )
        check_assignment(cost, solve(cost, mask).numpy(), mask)


def test_no_gradient_flows_through_the_assignment():
    cost = tf.Variable(RNG.random((3, 9, 4)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        assignment = linear_sum_assignment(cost)
        matched_cost = tf.reduce_sum(assignment * cost)
        count = tf.reduce_sum(assignment)
    # The assignment is a constant: the matched cost's gradient is the assignment itself.
    np.testing.assert_array_equal(tape.gradient(matched_cost, cost).numpy(), assignment.numpy())
    assert tape.gradient(count, cost) is None


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`cost`.*Received: cost.shape=\\(5, 4\\)"):
        linear_sum_assignment(np.zeros((5, 4), "float32"))
    with pytest.raises(ValueError, match="`cost`.*num_targets <= num_queries.*\\(2, 3, 4\\)"):
        linear_sum_assignment(np.zeros((2, 3, 4), "float32"))
    with pytest.raises(TypeError, match="`cost` must be a float tensor"):
        linear_sum_assignment(np.zeros((2, 4, 3), "int32"))
    with pytest.raises(ValueError, match="`target_mask`.*target_mask.shape=\\(2, 4\\)"):
        linear_sum_assignment(np.zeros((2, 4, 3), "float32"), target_mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="`target_mask`"):
        linear_sum_assignment(np.zeros((2, 4, 3), "float32"), target_mask=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="`target_mask` must be a bool tensor"):
        linear_sum_assignment(np.zeros((2, 4, 3), "float32"), target_mask=np.ones((2, 3)))


@pytest.mark.slow
def test_many_random_problems_against_scipy():
    rng = np.random.default_rng(2024)
    for shape in [(64, 8, 8), (64, 20, 20), (64, 100, 20), (32, 300, 50), (64, 40, 39)]:
        for cost in (rng.random(shape), rng.integers(0, 4, shape), rng.normal(size=shape)):
            cost = cost.astype("float32")
            mask = rng.random((shape[0], shape[2])) < 0.8
            check_assignment(cost, linear_sum_assignment(cost), rtol=1e-5)
            check_assignment(cost, linear_sum_assignment(cost, target_mask=mask), mask, rtol=1e-5)
