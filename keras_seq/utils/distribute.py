"""Cross-replica reductions for losses that normalize by a count (tf.distribute).

Under a `tf.distribute` strategy each replica computes the loss on its share of the batch
and the gradients are summed. A loss normalized by a count of its own (DETR's number of
boxes, a count of real tokens) must divide by the count over the whole global batch, or
replicas with fewer targets weigh more. These helpers are no-ops outside a strategy and on
backends other than TensorFlow.
"""

import keras


def num_replicas_in_sync():
    """Number of replicas summing their gradients in the current replica context; 1 outside
    a `tf.distribute` strategy, in a cross-replica context and on other backends."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def cross_replica_sum(value):
    """Sum of `value` over the replicas in sync, from within a replica; `value` outside one.

    Args:
        value: float tensor, the same shape on every replica.

    Returns:
        Tensor of the same shape: the sum over all replicas of the current
        `tf.distribute` strategy, or `value` itself with one replica or no strategy.
    """
    if num_replicas_in_sync() == 1:
        return value
    import tensorflow as tf

    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)
