"""The training process of integration_tests/test_fault_tolerance.py (not a test module itself).

    python fault_tolerance_worker.py MODEL WORK_DIR [--save-freq N] [--pause-at EPOCH BATCH]

trains a tiny keras_seq model (`gpt` or `rnn_causal_lm`) for `EPOCHS` epochs with
`keras.callbacks.BackupAndRestore(WORK_DIR/backup)`, resuming from that backup if one is
there, and writes to WORK_DIR:
- `progress`: a line `epoch batch` at the end of every batch (flushed and fsynced);
- `epochs`: a line per epoch begun;
- `final.npz`: the weights at the end of training.

`--pause-at EPOCH BATCH` stops the process after that batch has ended and its line is written,
until it is killed: the test's SIGKILL then lands at a known point of the epoch whatever the
speed of the machine. `--save-freq N` backs up every N batches instead of every epoch.

No dropout, no random op during training, the same batches in the same order every epoch
(arrays, `shuffle=False`): an epoch's updates depend only on the weights and optimizer state it
starts from.
"""

import argparse
import os
import time

import keras
import numpy as np

from keras_seq.losses.sequence_loss import SequenceCrossEntropy
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM

EPOCHS = 4
BATCH_SIZE = 8
NUM_EXAMPLES = 48  # 6 batches per epoch
LENGTH = 8
VOCABULARY = 23


def build_model(name):
    if name == "gpt":
        backbone = GPTBackbone(
            vocabulary_size=VOCABULARY,
            num_layers=1,
            hidden_dim=16,
            num_heads=2,
            intermediate_dim=32,
            sequence_length=LENGTH,
            dropout=0.0,
        )
        model = GPTCausalLM(backbone)
    else:
        backbone = RNNBackbone(vocabulary_size=VOCABULARY, embedding_dim=8, hidden_dim=16)
        model = RNNCausalLM(backbone)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=SequenceCrossEntropy())
    return model


def data(name):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCABULARY, size=(NUM_EXAMPLES, LENGTH + 1)).astype("int32")
    x = ids[:, :-1]
    if name == "gpt":
        x = {"token_ids": x, "padding_mask": np.ones_like(x)}
    return x, ids[:, 1:]


def _append_line(path, line):
    with open(path, "a") as file:
        file.write(line + "\n")
        file.flush()
        os.fsync(file.fileno())


class Progress(keras.callbacks.Callback):
    """Records each epoch begun and each batch ended; optionally pauses at one batch."""

    def __init__(self, work_dir, pause_at=None):
        super().__init__()
        self.work_dir = work_dir
        self.pause_at = pause_at
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        _append_line(os.path.join(self.work_dir, "epochs"), str(epoch))

    def on_train_batch_end(self, batch, logs=None):
        _append_line(os.path.join(self.work_dir, "progress"), f"{self.epoch} {batch}")
        if self.pause_at == (self.epoch, batch):
            while True:  # until the test kills the process
                time.sleep(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=["gpt", "rnn_causal_lm"])
    parser.add_argument("work_dir")
    parser.add_argument("--save-freq", type=int, default=None)
    parser.add_argument("--pause-at", type=int, nargs=2, default=None)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = build_model(args.model)
    x, y = data(args.model)
    backup = keras.callbacks.BackupAndRestore(
        os.path.join(args.work_dir, "backup"),
        save_freq=args.save_freq or "epoch",
        delete_checkpoint=True,
    )
    pause_at = None if args.pause_at is None else tuple(args.pause_at)
    progress = Progress(args.work_dir, pause_at)
    model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        shuffle=False,
        callbacks=[backup, progress],
        verbose=0,
    )
    np.savez(os.path.join(args.work_dir, "final.npz"), *model.get_weights())


if __name__ == "__main__":
    main()
