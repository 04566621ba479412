"""`model.fit` under `tf.distribute.MultiWorkerMirroredStrategy`: per-model fixes for Keras 3.

Keras 3 (up to at least 3.15.1) cannot train, evaluate or `train_on_batch` with two or more
workers of a `MultiWorkerMirroredStrategy` (keras-team/keras#20585, tensorflow/tensorflow#72388);
`predict` works. Two separate bugs in keras/src/backend/tensorflow/trainer.py (3.15.1):

1. `TensorFlowTrainer._maybe_symbolic_build` (lines 731-735), called by `fit` and `evaluate`
   to build the model from the first batch, "reduces" the whole distributed batch:
   `data_batch = self.distribute_strategy.reduce("MEAN", maybe_distributed_data_batch,
   axis=None)`. `Strategy.reduce` takes one value, not a nest ("TODO(josh11b): support `value`
   being a nest" in tensorflow's distribute_lib.py). MirroredStrategy's `_reduce_to` maps over
   the nest; the collective strategy's passes the whole batch to its all-reduce: "ValueError:
   Attempt to convert a value ({...: PerReplica:{...}}) with an unsupported type (<class
   'dict'>) to a Tensor." (for a GPT's dict of inputs). A mean of token ids over the workers
   would be meaningless anyway: building needs only shapes and dtypes.
2. The train and test step functions reduce the per-replica logs with `reduce_per_replica(
   outputs, self.distribute_strategy, reduction="auto")` (line 138, hard-coded: the model's
   `distribute_reduction_method` never reaches it); `"auto"` becomes `"mean"` (line 831), and
   for a multi-worker collective strategy `_reduce` returns `strategy.reduce("MEAN", v, axis=0)`
   (line 841). Logs are scalars, which have no axis 0: "ValueError: Invalid reduction dimension
   0 for input with 0 dimensions." `axis=None` would be right.

`apply_multi_worker_fixes(model)` patches one model instance, and only when the model trains
under a multi-worker collective strategy with a Keras that still has these bugs (before
`KERAS_FIXED_IN`); Keras classes are never touched. With the fixes, `fit` on two workers ends
with the weights and the losses of one device trained on the same global batches
(integration_tests/test_multi_worker.py). That test also runs `fit` without the fixes and
fails, telling the maintainer to set `KERAS_FIXED_IN`, once an installed Keras no longer
needs them.
"""

import types

import keras
from keras import tree
from packaging.version import Version

# The first Keras release that trains under MultiWorkerMirroredStrategy without these fixes;
# `None` while no release does. From that version on `apply_multi_worker_fixes` does nothing.
KERAS_FIXED_IN = None


def apply_multi_worker_fixes(model):
    """Make `model.fit` and `model.evaluate` work with two or more workers of a
    `tf.distribute.MultiWorkerMirroredStrategy` under Keras 3.

    Does nothing (and returns `False`) unless the model's `distribute_strategy` is a
    `MultiWorkerMirroredStrategy` (TensorFlow's `CollectiveAllReduceStrategy`) running in
    multi-worker mode, on the TensorFlow backend, with a Keras older than `KERAS_FIXED_IN`.
    Otherwise it replaces three methods of this model instance, each delegating to Keras' own:
    `_maybe_symbolic_build` builds from this worker's first local batch instead of a collective
    "mean" of the batch, and `train_step` / `test_step` return their logs with a leading axis of
    size 1, which Keras' multi-worker reduction (a mean along axis 0) then removes, averaging the
    replicas' logs. The model's class and every other model are left alone; calling it again
    changes nothing.

    The path that trains like one device on the global batch (each worker runs the same
    script; integration_tests/multi_worker_worker.py is a complete one):
    1. Set `TF_CONFIG` (the workers' addresses and this worker's index) and create
       `strategy = tf.distribute.MultiWorkerMirroredStrategy()` before TensorFlow runs any op.
    2. Build and compile the model inside `with strategy.scope():` (Keras records the
       strategy when the model is created).
    3. Call `apply_multi_worker_fixes(model)` before `fit` (the `keras-seq` recipes do).
    4. Fit on a `tf.data.Dataset`, the same on every worker, batched with the global batch
       size (per-replica batch size times `strategy.num_replicas_in_sync`), with
       `options.experimental_distribute.auto_shard_policy =
       tf.data.experimental.AutoShardPolicy.DATA` (`dataset.with_options(options)`): each
       global batch is then split across the workers.

    Args:
        model: a compiled `keras.Model`.

    Returns:
        bool. `True` when the model carries the fixes after the call (applied by this call or
        an earlier one), `False` when it needs none.

    Example:
    ```python
    model = keras_seq.models.GPTCausalLM(
        keras_seq.models.GPTBackbone(
            vocabulary_size=50, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32
        )
    )
    model.compile("adam", loss=keras_seq.losses.SequenceCrossEntropy())
    applied = keras_seq.utils.apply_multi_worker_fixes(model)  # False: no multi-worker strategy
    ```
    """
    if keras.backend.backend() != "tensorflow":
        return False
    if not _needs_fixes(keras.__version__, KERAS_FIXED_IN):
        return False
    if not _is_multi_worker(model.distribute_strategy):
        return False
    if getattr(vars(model).get("train_step"), "__func__", None) is _train_step:
        return True  # applied before
    for name, replacement in _REPLACEMENTS.items():
        setattr(model, name, types.MethodType(replacement, model))
    # Step functions made before the fix captured Keras' own steps: make them again.
    model.train_function = None
    model.test_function = None
    return True


def _needs_fixes(keras_version, fixed_in):
    """Whether Keras `keras_version` (a version string) needs the fixes, given `fixed_in`,
    the first fixed version string or `None` when no fixed release is known."""
    return fixed_in is None or Version(keras_version) < Version(fixed_in)


def _is_multi_worker(strategy):
    """Whether Keras takes its collective multi-worker branches for `strategy`: the same test
    as `keras.src.backend.tensorflow.trainer._collective_all_reduce_multi_worker` (3.15.1). A
    single-worker MultiWorkerMirroredStrategy trains correctly without the fixes."""
    import tensorflow as tf

    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras' `_maybe_symbolic_build`, given this worker's first local batch instead of the
    iterator, whose batch Keras would reduce with a collective (bug 1)."""
    if iterator is not None and self._distribute_strategy is not None:
        strategy = self.distribute_strategy
        for _, _, distributed_iterator in iterator:
            batch = next(distributed_iterator)
            data_batch = tree.map_structure(
                lambda value: strategy.experimental_local_results(value)[0], batch
            )
            break
    return type(self)._maybe_symbolic_build(self, data_batch=data_batch)


def _train_step(self, data):
    """Keras' (or the model class's) `train_step`, logs given a replica axis (bug 2)."""
    return _with_replica_axis(type(self).train_step(self, data))


def _test_step(self, data):
    """Keras' (or the model class's) `test_step`, logs given a replica axis (bug 2)."""
    return _with_replica_axis(type(self).test_step(self, data))


def _with_replica_axis(logs):
    """Each log `(...)` as `(1, ...)`: Keras' `strategy.reduce("MEAN", v, axis=0)` then means
    over the replicas (and the size-1 axis) and returns `(...)` again."""
    import tensorflow as tf

    return tree.map_structure(lambda value: tf.expand_dims(value, 0), logs)


_REPLACEMENTS = {
    "_maybe_symbolic_build": _maybe_symbolic_build,
    "train_step": _train_step,
    "test_step": _test_step,
}
