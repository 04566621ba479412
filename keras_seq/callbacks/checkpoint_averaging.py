"""Averaging the last few snapshots of the weights during training (Vaswani et al.)."""

import collections
import warnings

import keras

from keras_seq.api import keras_seq_export
from keras_seq.utils.checkpoint_averaging import average_weight_lists
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class CheckpointAveraging(keras.callbacks.Callback):
    """Keeps the last `num_checkpoints` snapshots of the weights; sets their average at the end.

    Checkpoint averaging without files: Vaswani et al. (2017) evaluate the average of the
    last 5 checkpoints (20 for the big model), written every 10 minutes. This callback
    copies `model.weights` to host memory as NumPy arrays at the end of every epoch
    (`save_freq="epoch"`) or each time the optimizer's update count passes a multiple of
    `save_freq` (with `steps_per_execution=k`, at the end of that execution), keeps the last
    `num_checkpoints` copies, and at the end of `fit` sets the model's weights to their
    average (`apply_on_train_end=True`). The copies are in `snapshots` (oldest first; each a
    list in `model.weights` order) and `averaged_weights()` returns their average at any
    time. Memory: `num_checkpoints` host copies of the weights.

    What is averaged, as in `keras_seq.utils.average_checkpoints`: every floating-point
    weight, trainable or not (so `BatchNormalization` moving statistics are averaged too);
    non-float weights (integer counters, int8 quantized kernels) are taken from the last
    snapshot. The optimizer state is neither stored nor changed: training continued after
    the average starts from the averaged weights with the last moments. Snapshots are
    cleared at the start of each `fit`. To average checkpoints written to disk instead
    (e.g. by `keras.callbacks.ModelCheckpoint`), use `keras_seq.utils.average_checkpoints`.

    Args:
        num_checkpoints: int. How many of the most recent snapshots to average. Defaults
            to `5`.
        save_freq: `"epoch"` or int. Snapshot at the end of every epoch, or every this many
            optimizer updates. Defaults to `"epoch"`.
        apply_on_train_end: bool. Whether `on_train_end` sets the model's weights to the
            average. Defaults to `True`.

    Example:
    ```python
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    averaging = keras_seq.callbacks.CheckpointAveraging(num_checkpoints=2)
    x, y = np.random.randn(16, 3), np.random.randn(16, 1)
    model.fit(x, y, epochs=3, callbacks=[averaging], verbose=0)
    assert len(averaging.snapshots) == 2  # epochs 2 and 3; the model holds their mean
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762), section 6.1.
    """

    def __init__(self, num_checkpoints=5, save_freq="epoch", apply_on_train_end=True):
        validate_positive_int("num_checkpoints", num_checkpoints)
        if save_freq != "epoch":
            if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
                raise ValueError(
                    "`save_freq` must be 'epoch' or a positive integer number of steps. "
                    f"Received: save_freq={save_freq!r}"
                )
        validate_bool("apply_on_train_end", apply_on_train_end)
        super().__init__()
        self.num_checkpoints = num_checkpoints
        self.save_freq = save_freq
        self.apply_on_train_end = apply_on_train_end
        # The most recent snapshots, oldest first; each a list of NumPy arrays.
        self.snapshots = collections.deque(maxlen=num_checkpoints)
        self._last_interval = 0

    def snapshot(self):
        """Appends a host copy of `model.weights` to `snapshots`."""
        self.snapshots.append([w.numpy() for w in self.model.weights])

    def averaged_weights(self):
        """The average of the stored snapshots, as a list in `model.weights` order."""
        if not self.snapshots:
            raise ValueError(
                "No snapshot has been taken yet: train for at least one epoch (or "
                f"`save_freq` steps). Received: save_freq={self.save_freq!r}"
            )
        names = [w.path for w in self.model.weights]
        return average_weight_lists(list(self.snapshots), names)

    def _interval(self):
        # The optimizer's update count is exact across several `fit` calls and under
        # `steps_per_execution`, where this callback only sees every k-th batch.
        return int(self.model.optimizer.iterations.numpy()) // self.save_freq

    def on_train_begin(self, logs=None):
        self.snapshots.clear()
        if self.save_freq != "epoch":
            self._last_interval = self._interval()

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch" and self._interval() > self._last_interval:
            self.snapshot()
            self._last_interval = self._interval()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self.snapshot()

    def on_train_end(self, logs=None):
        if not self.apply_on_train_end:
            return
        if not self.snapshots:
            warnings.warn(
                "CheckpointAveraging took no snapshot during training, so the weights were "
                f"left unchanged. Received: save_freq={self.save_freq!r}",
                stacklevel=2,
            )
            return
        self.model.set_weights(self.averaged_weights())

    def get_config(self):
        return {
            "num_checkpoints": self.num_checkpoints,
            "save_freq": self.save_freq,
            "apply_on_train_end": self.apply_on_train_end,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
