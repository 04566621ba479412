"""One worker of integration_tests/test_multi_worker.py (not a test module itself).

    TF_CONFIG='{"cluster": ..., "task": ...}' python multi_worker_worker.py OUTPUT_DIR MODE

creates a `tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG` before TensorFlow runs
any op, then, with MODE:
- `fixed`: for each model of `MODELS`, builds and compiles it in the strategy's scope, calls
  `apply_multi_worker_fixes(model)`, fits it on the global batches of `dataset(name)`
  (auto-sharded by DATA), evaluates and predicts, and writes
  `OUTPUT_DIR/{name}_{task index}.npz`;
- `unfixed`: calls `fit`, `evaluate`, `train_on_batch` and `test_on_batch` of a GPT's graph
  in a plain `keras.Model`, without the fixes, and writes what each raised to
  `OUTPUT_DIR/unfixed_{task index}.json`.

The test imports the data and model builders below to train the single-device reference.
"""

import json
import os
import sys

import keras
import numpy as np

from keras_seq.losses.sequence_loss import SequenceCrossEntropy
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM
from keras_seq.utils.multi_worker import apply_multi_worker_fixes

MODELS = ("gpt", "rnn_causal_lm")
GLOBAL_BATCH_SIZE = 8  # 4 per worker
NUM_EXAMPLES = 24  # 3 steps per epoch
EPOCHS = 2
LENGTH = 8
VOCABULARY = 23


def build_model(name):
    """A fresh compiled tiny model (no dropout: replicas would draw different masks)."""
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
        loss = SequenceCrossEntropy()
    else:
        backbone = RNNBackbone(vocabulary_size=VOCABULARY, embedding_dim=8, hidden_dim=16)
        model = RNNCausalLM(backbone)
        loss = SequenceCrossEntropy(ignore_index=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    return model


def data(name):
    """`(x, y)` numpy arrays of `NUM_EXAMPLES` next-token examples. For the recurrent model
    the rows are right-padded with 0 (its Embedding masks id 0): the first half of each
    global batch (worker 0's share) holds full rows, the second half (worker 1's) short ones,
    so the two workers see different numbers of real tokens."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCABULARY, size=(NUM_EXAMPLES, LENGTH + 1)).astype("int32")
    if name == "gpt":
        x = {"token_ids": ids[:, :-1], "padding_mask": np.ones((NUM_EXAMPLES, LENGTH), "int32")}
        return x, ids[:, 1:]
    half = GLOBAL_BATCH_SIZE // 2
    lengths = np.where(np.arange(NUM_EXAMPLES) % GLOBAL_BATCH_SIZE < half, LENGTH + 1, 3)
    ids[np.arange(LENGTH + 1)[None, :] >= lengths[:, None]] = 0
    return ids[:, :-1], ids[:, 1:]


def dataset(name):
    """The global batches of `data(name)`, in order, sharded by DATA under a strategy."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = tf.data.Dataset.from_tensor_slices(data(name)).batch(GLOBAL_BATCH_SIZE)
    return batches.with_options(options)


def _fixed(strategy, output_dir, index):
    for name in MODELS:
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = build_model(name)
        initial = model.get_weights()
        applied = apply_multi_worker_fixes(model)  # True: two workers, a Keras with the bugs
        history = model.fit(dataset(name), epochs=EPOCHS, verbose=0)
        evaluation = model.evaluate(dataset(name), verbose=0)
        predictions = model.predict(dataset(name), verbose=0)
        np.savez(
            os.path.join(output_dir, f"{name}_{index}.npz"),
            applied=applied,
            loss=np.array(history.history["loss"]),
            evaluation=evaluation,
            predictions=predictions,
            **{f"initial_{i}": weight for i, weight in enumerate(initial)},
            **{f"final_{i}": weight for i, weight in enumerate(model.get_weights())},
        )


def _unfixed(strategy, output_dir, index):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        gpt = build_model("gpt")
        # The same graph as a plain Keras model, without the fixes.
        model = keras.Model(gpt.input, gpt.output)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=SequenceCrossEntropy())
    x, y = data("gpt")
    batch = ({key: value[:GLOBAL_BATCH_SIZE] for key, value in x.items()}, y[:GLOBAL_BATCH_SIZE])
    calls = {
        "fit": lambda: model.fit(dataset("gpt"), epochs=1, verbose=0),
        "evaluate": lambda: model.evaluate(dataset("gpt"), verbose=0),
        "train_on_batch": lambda: model.train_on_batch(*batch),
        "test_on_batch": lambda: model.test_on_batch(*batch),
    }
    errors = {}
    for call_name, call in calls.items():
        try:
            call()
            errors[call_name] = None
        except Exception as error:  # recorded for the test to match against the known bugs
            errors[call_name] = f"{type(error).__name__}: {error}"[:2000]
    with open(os.path.join(output_dir, f"unfixed_{index}.json"), "w") as file:
        json.dump({"keras_version": keras.__version__, "errors": errors}, file)


def main(output_dir, mode):
    import tensorflow as tf

    # First TensorFlow call of the process: collectives are configured at start-up.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    {"fixed": _fixed, "unfixed": _unfixed}[mode](strategy, output_dir, index)


if __name__ == "__main__":
    main(*sys.argv[1:])
