"""Exact, batched linear sum assignment (Hungarian matching) in `keras.ops`.

Letter legend for shape comments: B batch, Q queries (the columns of the problem), T targets
(the rows), with T <= Q.

The solver keeps dual potentials `u` (rows) and `v` (columns) such that every reduced cost
`cost - u - v` is >= 0 and the matched pairs' are 0, with `v <= 0` and `v = 0` on free columns;
then the partial matching is optimal for the rows it matches. Two phases, each a
`keras.ops.while_loop` over the whole batch in lockstep:

1. Bidding rounds (the "augmenting row reduction" of Jonker & Volgenant 1987, here for all
   free rows at once, auction style): each free row bids for its cheapest column by
   `cost - v` (a free one among equals); a column goes to the bidder whose best beats its
   second best by most, and its `v` drops by that margin, so that the winner's pair is
   tight at `u` = its second best while every other reduced cost grows or stays; the row it
   displaces becomes free. At most `_BIDDING_ROUNDS` rounds; on random costs with
   `Q >> T` they leave a row or two per example.
2. Shortest augmenting paths (Kuhn's Hungarian method in the Jonker-Volgenant form, as in
   SciPy's rectangular solver after Crouse 2016) match the rows still free, one by one.
   Each trip of the loop is one Dijkstra step (scan one row, settle one column) of every
   example; an example whose step settles a free column augments and starts its next row in
   the same trip. No walk back along the path is needed: each scanned row carries the set
   of rows on its shortest path (a `(T,)` bool row), from which the path is flipped with a
   few masked updates.

Trip bound. With `m` rows matched, an augmentation settles a distinct matched column at every
step until it settles a free one, so it takes at most `m + 1` steps, whatever the values and
ties: the second loop runs at most `T * (T + 1) / 2` trips, the first at most
`_BIDDING_ROUNDS`.

Speed. In eager mode each op costs a fixed overhead and the loops run in Python, so trips
count; under XLA on a CPU each pass over the `(B, Q, T)` costs counts, and a bidding round
makes several. Two rounds balance the two (random costs, 100 x 20: about 4 trips in all,
against about 26 with shortest paths alone).
"""

import keras
import numpy as np
from keras import ops

# Most bidding rounds before the shortest paths take over (fewer once every row is matched
# or no row bids). The result is optimal for any number; only the speed changes.
_BIDDING_ROUNDS = 2


def _check_arguments(cost, target_mask):
    shape = tuple(cost.shape)
    if len(shape) != 3 or shape[1] is None or shape[2] is None or shape[2] > shape[1]:
        raise ValueError(
            "`cost` must be a tensor `(batch_size, num_queries, num_targets)` with static "
            "`num_queries` and `num_targets`, and `num_targets <= num_queries` (every target "
            "needs its own query; transpose the problem otherwise). "
            f"Received: cost.shape={shape}"
        )
    dtype = keras.backend.standardize_dtype(cost.dtype)
    if "float" not in dtype:
        raise TypeError(f"`cost` must be a float tensor. Received: cost.dtype={dtype}")
    if target_mask is None:
        return
    mask_shape = tuple(target_mask.shape)
    expected = (shape[0], shape[2])
    if len(mask_shape) != 2 or any(
        a is not None and b is not None and a != b for a, b in zip(mask_shape, expected)
    ):
        raise ValueError(
            "`target_mask` must be `(batch_size, num_targets)`, matching `cost` "
            f"`(batch_size, num_queries, num_targets)`. Received: "
            f"target_mask.shape={mask_shape}, cost.shape={shape}"
        )
    mask_dtype = keras.backend.standardize_dtype(target_mask.dtype)
    if mask_dtype != "bool":
        raise TypeError(
            "`target_mask` must be a bool tensor (`True` = real target). "
            f"Received: target_mask.dtype={mask_dtype}"
        )


def _pick(mask, values, axis):
    """`values` where `mask` is `True`, summed over `axis` (kept): with one `True` along
    `axis`, the value there. A gather without index arithmetic (few ops in eager mode)."""
    return ops.sum(ops.where(mask, values, ops.zeros((), values.dtype)), axis=axis, keepdims=True)


def linear_sum_assignment(cost, target_mask=None):
    """Minimum-cost assignment of targets to queries, for a batch of cost matrices.

    Solves, for each example, the rectangular linear sum assignment problem of DETR's
    Hungarian matcher: give every (real) target its own query so that the total cost of the
    chosen pairs is as small as possible. The result is exact, not an approximation (such as
    a greedy or Sinkhorn matching): the same minimum total as
    `scipy.optimize.linear_sum_assignment` up to float round-off (which of several equally
    cheap assignments is returned can differ). Over SciPy it adds: a whole batch at once,
    `keras.ops` only with static shapes, so it runs eagerly, in a `tf.function` and under
    `tf.function(jit_compile=True)` (XLA, the TPU contract) with no host callback, and padded
    targets via `target_mask`.

    Costs are computed in float32 (float16 and bfloat16 are upcast) or float64 for float64
    input. They must be finite, with finite differences, and no check is made (give a
    forbidden pair a large finite cost rather than infinity). No gradient flows through the
    assignment: it is a constant with respect to `cost`. Both loops have a static trip
    bound: at most 2 bidding rounds and `num_targets * (num_targets + 1) / 2` shortest path
    steps (see the module docstring); random costs with 100 queries and 20 targets take
    about 4 in all.

    Args:
        cost: float tensor `(batch_size, num_queries, num_targets)`. `cost[b, q, t]` is the
            cost of giving target `t` to query `q`. `num_queries` and `num_targets` must be
            static, with `num_targets <= num_queries`.
        target_mask: optional bool tensor `(batch_size, num_targets)`; `True` marks real
            targets. Padded targets get no query, and their costs do not influence the
            assignment of the real ones (it is optimal for the real targets alone). An
            example without real targets gets an all-zero assignment. Defaults to `None`
            (every target is real).

    Returns:
        Tensor `(batch_size, num_queries, num_targets)` of `cost.dtype`, one-hot over queries:
        `1` where query `q` is assigned to target `t`, else `0`. Each real target's column
        holds exactly one `1`, each padded target's column none, and each query's row at
        most one.

    Example:
    ```python
    cost = np.array([[[4.0, 1.0], [2.0, 0.0], [3.5, 5.0]]], "float32")  # (1, 3 queries, 2 targets)
    assignment = keras_seq.ops.linear_sum_assignment(cost)
    # Target 0 -> query 1 (cost 2), target 1 -> query 0 (cost 1): total 3, where taking the
    # cheapest pair first (target 1 -> query 1, cost 0) would force a total of 3.5.
    np.testing.assert_array_equal(assignment[0], [[0, 1], [1, 0], [0, 0]])
    # A padded target gets no query and leaves the others their best choice.
    assignment = keras_seq.ops.linear_sum_assignment(cost, target_mask=np.array([[True, False]]))
    np.testing.assert_array_equal(assignment[0], [[0, 0], [1, 0], [0, 0]])
    ```

    References:
        - [Kuhn, 1955. The Hungarian method for the assignment problem](
          https://doi.org/10.1002/nav.3800020109)
        - [Jonker & Volgenant, 1987. A shortest augmenting path algorithm for dense and
          sparse linear assignment problems](https://doi.org/10.1007/BF02278710)
        - [Crouse, 2016. On implementing 2D rectangular assignment algorithms](
          https://doi.org/10.1109/TAES.2016.140952)
    """
    cost = ops.convert_to_tensor(cost)
    if target_mask is not None:
        target_mask = ops.convert_to_tensor(target_mask)
    _check_arguments(cost, target_mask)
    num_queries, num_targets = cost.shape[1], cost.shape[2]
    batch_size = ops.shape(cost)[0]
    if num_targets == 0:
        return ops.zeros((batch_size, num_queries, 0), cost.dtype)
    dtype = "float64" if keras.backend.standardize_dtype(cost.dtype) == "float64" else "float32"
    # Every per-column vector is kept as (B, Q, 1), every per-row vector as (B, 1, T) and
    # every per-example scalar as (B, 1, 1), so that they all broadcast against the costs
    # (B, Q, T) without reshapes (in eager mode the loops run op by op; each op counts).
    costs = ops.cast(ops.stop_gradient(cost), dtype)  # (B, Q, T)
    if target_mask is None:
        valid = ops.ones((batch_size, 1, num_targets), "bool")
    else:
        valid = ops.expand_dims(target_mask, 1)  # (B, 1, T)
    row_for_column, u, v = _bid(costs, valid)
    row_for_column = _augment(costs, valid, row_for_column, u, v)
    rows = np.arange(num_targets, dtype="int32").reshape(1, 1, -1)
    return ops.cast(ops.equal(row_for_column, rows), cost.dtype)  # (B, Q, 1) -> (B, Q, T)


def _bid(costs, valid):
    """Phase 1: bidding rounds from an empty matching. Returns `row_for_column` (B, Q, 1),
    -1 at a free column, and potentials `u` (B, 1, T), `v` (B, Q, 1)."""
    batch_size, num_queries, num_targets = ops.shape(costs)[0], costs.shape[1], costs.shape[2]
    dtype = costs.dtype
    rows = np.arange(num_targets, dtype="int32").reshape(1, 1, -1)  # (1, 1, T)
    # Among equally cheap columns a row prefers a free one, then the first at or after its
    # own index, cyclically (so that rows with identical costs spread out).
    spread = np.mod(np.arange(num_queries).reshape(1, -1, 1) - rows, num_queries)  # (1, Q, T)
    spread_free = ops.convert_to_tensor(spread, "int32")
    spread_taken = ops.convert_to_tensor(spread + num_queries, "int32")
    no_key = ops.convert_to_tensor(2 * num_queries, "int32")
    row_ids = ops.convert_to_tensor(rows)
    no_row = ops.convert_to_tensor(num_targets, "int32")
    inf = ops.convert_to_tensor(np.inf, dtype)
    no_bid = ops.convert_to_tensor(-1.0, dtype)

    def condition(go, *_):
        return go

    def round_(go, free, row_for_column, u, v):
        reduced = ops.subtract(costs, v)  # (B, Q, T) cost - v
        best = ops.min(reduced, axis=1, keepdims=True)  # (B, 1, T)
        key = ops.where(
            ops.equal(reduced, best),
            ops.where(ops.less(row_for_column, 0), spread_free, spread_taken),
            no_key,
        )
        min_key = ops.min(key, axis=1, keepdims=True)  # (B, 1, T)
        choice = ops.equal(key, min_key)  # (B, Q, T) one-hot over Q: each row's column
        if num_queries > 1:
            second = ops.min(ops.where(choice, inf, reduced), axis=1, keepdims=True)
        else:
            second = best
        gain = ops.subtract(second, best)  # (B, 1, T) >= 0
        # A row bids if it gains something: a free column, or a price it can lower.
        bidding = ops.logical_and(
            free, ops.logical_or(ops.less(min_key, num_queries), ops.greater(gain, 0))
        )
        bids = ops.logical_and(choice, bidding)  # (B, Q, T)
        top = ops.max(ops.where(bids, gain, no_bid), axis=2, keepdims=True)  # (B, Q, 1)
        winner = ops.min(
            ops.where(ops.logical_and(bids, ops.equal(gain, top)), row_ids, no_row),
            axis=2,
            keepdims=True,
        )  # (B, Q, 1) the first of the highest bidders; T if none
        sold = ops.less(winner, no_row)  # (B, Q, 1)
        # The winner's pair becomes tight at u = its second best, v = cost - second best =
        # v - gain; every other reduced cost grows or stays.
        v = ops.where(sold, v - top, v)
        row_for_column = ops.where(sold, winner, row_for_column)
        matched = ops.any(ops.equal(row_for_column, row_ids), axis=1, keepdims=True)
        u = ops.where(ops.logical_and(free, matched), second, u)
        free = ops.logical_and(valid, ops.logical_not(matched))
        return ops.logical_and(ops.any(sold), ops.any(free)), free, row_for_column, u, v

    state = (
        ops.any(valid),
        valid,
        ops.full((batch_size, num_queries, 1), -1, "int32"),
        ops.zeros((batch_size, 1, num_targets), dtype),
        ops.zeros((batch_size, num_queries, 1), dtype),
    )
    _, _, row_for_column, u, v = ops.while_loop(
        condition, round_, state, maximum_iterations=_BIDDING_ROUNDS
    )
    return row_for_column, u, v


def _augment(costs, valid, row_for_column, u, v):
    """Phase 2: match the free real rows by shortest augmenting paths. Returns the final
    `row_for_column` (B, Q, 1)."""
    batch_size, num_queries, num_targets = ops.shape(costs)[0], costs.shape[1], costs.shape[2]
    dtype = costs.dtype
    rows = np.arange(num_targets, dtype="int32").reshape(1, 1, -1)
    row_ids = ops.convert_to_tensor(rows)  # (1, 1, T)
    row_ids_down = ops.convert_to_tensor(rows.reshape(1, -1, 1))  # (1, T, 1)
    columns = np.arange(num_queries, dtype="int32").reshape(1, -1, 1)
    free_key = ops.convert_to_tensor(columns)  # (1, Q, 1)
    taken_key = ops.convert_to_tensor(columns + num_queries)
    no_key = ops.convert_to_tensor(2 * num_queries, "int32")
    no_row = ops.convert_to_tensor(num_targets, "int32")
    zero = ops.zeros((), dtype)
    inf = ops.convert_to_tensor(np.inf, dtype)

    left = ops.logical_and(
        valid, ops.logical_not(ops.any(ops.equal(row_for_column, rows), axis=1, keepdims=True))
    )  # (B, 1, T) rows still to match, in index order
    first = ops.min(ops.where(left, rows, num_targets), axis=2, keepdims=True)  # (B, 1, 1)

    def condition(active, *_):
        return ops.any(active)

    def step(
        active,
        current,
        scan,
        distance,
        column_distance,
        predecessor,
        settled,
        scanned,
        row_distance,
        row_paths,
        u,
        v,
        row_for_column,
    ):
        # Scan one row: relax the distances of the unsettled columns through it.
        reduced = _pick(ops.equal(row_ids, scan), ops.subtract(costs, u), axis=2)  # (B, Q, 1)
        reduced = ops.subtract(ops.add(distance, reduced), v)
        unsettled = ops.logical_not(settled)
        improve = ops.logical_and(unsettled, ops.less(reduced, column_distance))
        column_distance = ops.where(improve, reduced, column_distance)
        predecessor = ops.where(improve, scan, predecessor)
        # Settle the closest unsettled column; among equals a free one, then the first.
        lowest = ops.min(ops.where(settled, inf, column_distance), axis=1, keepdims=True)
        tied = ops.logical_and(unsettled, ops.equal(column_distance, lowest))
        key = ops.where(tied, ops.where(ops.less(row_for_column, 0), free_key, taken_key), no_key)
        column_hot = ops.equal(key, ops.min(key, axis=1, keepdims=True))  # (B, Q, 1)
        settled = ops.logical_or(settled, column_hot)
        next_row = _pick(column_hot, row_for_column, axis=1)  # (B, 1, 1), -1 at a free column
        sink = ops.less(next_row, 0)
        path_rows = ops.any(
            ops.logical_and(
                ops.equal(row_ids_down, _pick(column_hot, predecessor, axis=1)), row_paths
            ),
            axis=1,
            keepdims=True,
        )  # (B, 1, T) rows on the shortest path to the settled column
        # Not a free column: its row joins the tree (`next_hot` is all False at a sink).
        next_hot = ops.equal(row_ids, next_row)  # (B, 1, T)
        row_paths = ops.where(
            ops.equal(row_ids_down, next_row), ops.logical_or(path_rows, next_hot), row_paths
        )
        # A free column: move the potentials, flip the path, go to the next row.
        on_path = ops.logical_or(
            column_hot,
            ops.any(
                ops.logical_and(ops.equal(row_for_column, row_ids), path_rows),
                axis=2,
                keepdims=True,
            ),
        )  # (B, Q, 1) columns on the augmenting path
        row_for_column = ops.where(
            ops.logical_and(ops.logical_and(sink, active), on_path), predecessor, row_for_column
        )
        u = ops.where(ops.logical_and(sink, scanned), u + (lowest - row_distance), u)
        v = ops.where(ops.logical_and(sink, settled), v - (lowest - column_distance), v)
        first = ops.min(
            ops.where(ops.logical_and(left, ops.greater(row_ids, current)), row_ids, no_row),
            axis=2,
            keepdims=True,
        )  # (B, 1, 1) the next row to match; T if none
        return (
            ops.logical_and(active, ops.logical_or(ops.logical_not(sink), ops.less(first, no_row))),
            ops.where(sink, first, current),
            ops.where(sink, first, next_row),
            ops.where(sink, zero, lowest),
            ops.where(sink, inf, column_distance),
            ops.where(sink, first, predecessor),
            ops.logical_and(settled, ops.logical_not(sink)),
            ops.where(sink, ops.equal(row_ids, first), ops.logical_or(scanned, next_hot)),
            ops.where(sink, zero, ops.where(next_hot, lowest, row_distance)),
            row_paths,
            u,
            v,
            row_for_column,
        )

    state = (
        ops.less(first, num_targets),  # active: the example still has a row to match
        first,  # the row being matched
        first,  # the row scanned next
        ops.zeros((batch_size, 1, 1), dtype),  # distance of the last settled column
        ops.full((batch_size, num_queries, 1), np.inf, dtype),  # tentative column distances
        ops.broadcast_to(first, (batch_size, num_queries, 1)),  # predecessor row of a column
        ops.zeros((batch_size, num_queries, 1), "bool"),  # settled columns
        ops.equal(row_ids, first),  # scanned rows
        ops.zeros((batch_size, 1, num_targets), dtype),  # distance at which a row was reached
        # Rows on the shortest path to each scanned row (a row never scanned: itself).
        ops.broadcast_to(np.eye(num_targets, dtype=bool), (batch_size, num_targets, num_targets)),
        u,
        v,
        row_for_column,
    )
    state = ops.while_loop(
        condition, step, state, maximum_iterations=num_targets * (num_targets + 1) // 2
    )
    return state[-1]
