"""Resetting stateful RNNs where streamed sequences end."""

import keras

from keras_seq.api import keras_seq_export
from keras_seq.utils.layer_walk import find_layers
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class ResetStatesAtSequenceBoundary(keras.callbacks.Callback):
    """Resets every stateful RNN of the model where a new group of sequences starts.

    The companion of `keras_seq.data.truncated_bptt_dataset` for streaming truncated
    backpropagation through time: each sequence arrives as `chunks_per_sequence`
    consecutive batches, and a stateful RNN must carry its state across those batches but
    start each new group of sequences from zero. This callback calls `reset_state()` on every
    `keras.layers.RNN` with `stateful=True` found anywhere in the model (inside wrappers
    such as `Bidirectional` or `keras_seq.layers.TruncatedBPTT`, and nested models: the
    layers of `keras_seq.utils.iter_layers`) at the start of training, evaluation and
    prediction, at the start of every epoch, and before every batch whose index is a
    multiple of `chunks_per_sequence`. Keras resets nothing by itself. Validation data must
    use the same layout.

    Args:
        chunks_per_sequence: int. Batches per group of sequences, i.e.
            `sequence_length // chunk_length`.

    Raises:
        ValueError: when training, evaluation or prediction starts on a model without a
            stateful RNN, or with `steps_per_execution` that does not divide
            `chunks_per_sequence` (Keras would then skip the batches where a reset is due).

    Example:
    ```python
    x = np.zeros((4, 12, 3), "float32")  # 4 sequences of 12 steps
    y = np.zeros((4, 12, 1), "float32")
    dataset = keras_seq.data.truncated_bptt_dataset(x, y, chunk_length=4, batch_size=2)
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(2, None, 3)),
            keras.layers.LSTM(8, return_sequences=True, stateful=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    reset = keras_seq.callbacks.ResetStatesAtSequenceBoundary(chunks_per_sequence=12 // 4)
    model.fit(dataset, shuffle=False, callbacks=[reset], verbose=0)
    ```
    """

    def __init__(self, chunks_per_sequence):
        validate_positive_int("chunks_per_sequence", chunks_per_sequence)
        super().__init__()
        self.chunks_per_sequence = chunks_per_sequence

    def _stateful_layers(self):
        return [
            layer
            for _, layer in find_layers(
                self.model, lambda layer: isinstance(layer, keras.layers.RNN) and layer.stateful
            )
        ]

    def _check_model(self):
        if not self._stateful_layers():
            raise ValueError(
                "ResetStatesAtSequenceBoundary found no `keras.layers.RNN` with "
                "`stateful=True` in the model, so it would do nothing. Build the RNNs with "
                f"`stateful=True`. Received: model={self.model.name!r}"
            )
        steps_per_execution = getattr(self.model, "steps_per_execution", 1) or 1
        if self.chunks_per_sequence % steps_per_execution:
            raise ValueError(
                "`chunks_per_sequence` must be a multiple of the model's "
                "`steps_per_execution`, or resets would fall inside a multi-step "
                "execution. Compile with a `steps_per_execution` that divides it. "
                f"Received: chunks_per_sequence={self.chunks_per_sequence}, "
                f"steps_per_execution={steps_per_execution}"
            )

    def reset_states(self):
        """Resets the states of every stateful RNN in the model."""
        for layer in self._stateful_layers():
            layer.reset_state()

    def _begin(self, logs=None):
        self._check_model()
        self.reset_states()

    def _batch_begin(self, batch, logs=None):
        if batch % self.chunks_per_sequence == 0:
            self.reset_states()

    on_train_begin = _begin
    on_test_begin = _begin
    on_predict_begin = _begin
    on_train_batch_begin = _batch_begin
    on_test_batch_begin = _batch_begin
    on_predict_batch_begin = _batch_begin

    def on_epoch_begin(self, epoch, logs=None):
        self.reset_states()

    def get_config(self):
        return {"chunks_per_sequence": self.chunks_per_sequence}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
