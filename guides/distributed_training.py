"""
Title: Distributed training, mixed precision, XLA and TPUs with keras_seq
Author: keras_seq contributors
Date created: 2026/11/22
Last modified: 2026/12/06
Description: Train keras_seq models with tf.distribute strategies (one machine, several
    workers, TPUs), in mixed precision and with XLA; watch and resume the training.
Accelerator: None
"""

"""
## Introduction

keras_seq adds no distribution machinery of its own: its models are Keras models and train
with `model.fit` under TensorFlow's `tf.distribute` strategies. What keras_seq takes care of
is what those strategies leave to the model:

- **Losses that divide by a count** (the real tokens of a batch, DETR's boxes) divide by the
  count of the *global* batch, summed over the replicas: `keras_seq.losses.SequenceCrossEntropy`
  and `keras_seq.losses.DETRLoss` train exactly as on one device however the padding is
  spread over the replicas. (Keras' own masked losses average each replica's own mean.)
- **The TPU contract**: every model's train step compiles with XLA (`jit_compile=True`):
  static shapes, no host callbacks (DETR's Hungarian matching included).
- **Mixed precision**: softmax, layer norm and the losses run in float32 under the
  `mixed_float16` / `mixed_bfloat16` policies.
- **Clear errors** when the data does not fit the model or the strategy (a global batch
  not divisible by the number of replicas, a dataset without targets, unexpected input keys).
- **Multiple workers**: Keras 3.15's `fit` fails under `MultiWorkerMirroredStrategy`;
  `keras_seq.utils.apply_multi_worker_fixes(model)` is a small, isolated workaround you call
  before `fit`.

This guide runs on a CPU: it splits the CPU into two logical devices to show
`MirroredStrategy` with two replicas. Set `KERAS_SEQ_GUIDE_FAST=1` for smaller sizes.
"""

"""
## Setup

Logical devices must be configured before TensorFlow runs anything, so this comes first.
On a machine with GPUs, skip it: `MirroredStrategy()` uses every GPU.
"""

import os  # noqa: E402  (keras.io guides open with text cells)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import tempfile  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
NUM_SEQUENCES = 64 if FAST else 512
EPOCHS = 2 if FAST else 6
keras.utils.set_random_seed(0)

"""
## Data: a character corpus, padded

Sequences of different lengths, right-padded with the id 0. The loss ignores the padding.
"""

VOCABULARY, LENGTH = 30, 24
rng = np.random.default_rng(0)
lengths = rng.integers(4, LENGTH + 2, size=NUM_SEQUENCES)
token_ids = rng.integers(1, VOCABULARY, size=(NUM_SEQUENCES, LENGTH + 1)).astype("int32")
token_ids[np.arange(LENGTH + 1)[None, :] >= lengths[:, None]] = 0
x, y = token_ids[:, :-1], token_ids[:, 1:]
print("inputs", x.shape, "real tokens", int((y > 0).sum()))

"""
## Two replicas with `MirroredStrategy`

Create the model and compile it inside `strategy.scope()`. Batch the dataset with the
**global** batch size: each replica gets `global_batch / num_replicas` examples.
"""

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
print("replicas:", strategy.num_replicas_in_sync)
GLOBAL_BATCH = 16


def build_model():
    model = keras_seq.models.RNNCausalLM(
        keras_seq.models.RNNBackbone(
            vocabulary_size=VOCABULARY, embedding_dim=16, hidden_dim=32, num_layers=2
        )
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras_seq.losses.SequenceCrossEntropy(ignore_index=0),
    )
    return model


with strategy.scope():
    mirrored = build_model()
single = build_model()
mirrored(x[:1])
single(x[:1])
single.set_weights(mirrored.get_weights())

dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
mirrored_history = mirrored.fit(dataset, epochs=EPOCHS, verbose=0)
single_history = single.fit(dataset, epochs=EPOCHS, verbose=0)
for epoch, (a, b) in enumerate(
    zip(mirrored_history.history["loss"], single_history.history["loss"])
):
    print(f"epoch {epoch}: two replicas {a:.6f}   one device {b:.6f}")
difference = max(
    float(np.abs(a - b).max()) for a, b in zip(mirrored.get_weights(), single.get_weights())
)
print("largest weight difference:", difference)

"""
The two runs agree to float32 rounding, although the replicas hold different numbers of
real tokens in most batches: `SequenceCrossEntropy` sums its count over the replicas.

A global batch that the replicas cannot share evenly is refused before anything is traced:
"""

try:
    keras_seq.utils.check_fit_data(mirrored, x, y, batch_size=15)
except ValueError as error:
    print("ValueError:", error)

"""
`keras_seq.utils.check_fit_data(model, x, y, batch_size)` takes the arguments of `fit` and
checks them against any Keras model before anything is traced (also a dataset of dicts
without targets, unexpected input keys, a stateful RNN fed the wrong batch size); call it
before `fit` and `evaluate`. Keras' `fit` itself is unchanged.

## XLA: the TPU contract

Every keras_seq model's train step compiles with `jit_compile=True`. On a CPU, Keras'
default `jit_compile="auto"` leaves XLA off; ask for it explicitly:
"""

xla = build_model()
xla.compile(
    optimizer=keras.optimizers.SGD(0.5),
    loss=keras_seq.losses.SequenceCrossEntropy(ignore_index=0),
    jit_compile=True,
)
xla_history = xla.fit(dataset, epochs=1, verbose=0)
print("XLA train step, first epoch loss:", xla_history.history["loss"][0])

"""
## TPUs

On a Cloud TPU VM the same code runs under `TPUStrategy`; only the strategy changes. A TPU
compiles every step with XLA, so shapes must be static: batch with
`drop_remainder=True` and pad sequences to a fixed length (keras_seq's data helpers, e.g.
`keras_seq.data.mask_tokens`, already return static shapes).

```python
resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
tf.config.experimental_connect_to_cluster(resolver)
tf.tpu.experimental.initialize_tpu_system(resolver)
strategy = tf.distribute.TPUStrategy(resolver)

with strategy.scope():
    model = keras_seq.models.GPTCausalLM.from_preset("gpt2_small", vocabulary_size=32000)
    model.compile(
        optimizer=keras.optimizers.AdamW(3e-4),
        loss=keras_seq.losses.SequenceCrossEntropy(ignore_index=0),
        steps_per_execution=32,  # fewer host round trips per epoch
    )
dataset = dataset.batch(global_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
model.fit(dataset, epochs=3)
```

With `mixed_bfloat16` (below) TPUs compute in bfloat16 natively; there is no loss scaling
to configure.

## Mixed precision

Set the policy before building the model. Under `mixed_float16` Keras wraps the optimizer in
a `LossScaleOptimizer` (dynamic loss scaling: a step whose float16 gradients overflow is
skipped and the scale halved); under `mixed_bfloat16` nothing else is needed.
"""

keras.config.set_dtype_policy("mixed_float16")
half = build_model()
print("optimizer:", type(half.optimizer).__name__)
half_history = half.fit(dataset, epochs=EPOCHS, verbose=0)
print("mixed_float16 losses:", [round(v, 4) for v in half_history.history["loss"]])
keras.config.set_dtype_policy("float32")

"""
## Watching the training: TensorBoard callbacks

`keras_seq.callbacks.GradientNormLogger` logs gradient norms per layer and, for recurrent
models, the norm of dL/dh_t at every time step (the vanishing-gradient picture).
`AttentionMapLogger` logs attention heatmaps of chosen layers and `GenerationLogger` text
samples from `generate()`. They write next to `keras.callbacks.TensorBoard`'s logs:
`tensorboard --logdir` shows all of them.
"""

log_dir = tempfile.mkdtemp()
single.fit(
    dataset,
    epochs=1,
    verbose=0,
    callbacks=[
        keras.callbacks.TensorBoard(log_dir),
        keras_seq.callbacks.GradientNormLogger(log_dir, x[:8], y[:8]),
        keras_seq.callbacks.GenerationLogger(log_dir, prompts=x[:2, :4], max_new_tokens=8),
    ],
)
print(sorted(os.listdir(log_dir)))

"""
## Resuming after an interruption

`keras.callbacks.BackupAndRestore` saves the model and optimizer state; after a crash (or a
preempted TPU VM) the same script resumes where the last backup was taken. With
`save_freq="epoch"` a resumed run ends with exactly the weights of an uninterrupted one,
provided the data order of an epoch does not depend on the process (no dropout, or a data
pipeline seeded per epoch); with a mid-epoch `save_freq`, Keras 3.15 replays the interrupted
epoch from its first batch on top of the mid-epoch weights.
"""

backup_dir = tempfile.mkdtemp()
single.fit(
    dataset,
    epochs=2,
    verbose=0,
    callbacks=[keras.callbacks.BackupAndRestore(backup_dir, save_freq="epoch")],
)

"""
## Several machines: `MultiWorkerMirroredStrategy`

Each worker runs the same script with its own `TF_CONFIG` (the cluster's addresses and its
own index). Create the strategy before anything else touches TensorFlow, build and compile
in its scope, and shard the dataset by data:

```python
# worker i of N: TF_CONFIG='{"cluster": {"worker": ["host0:port", "host1:port"]},
#                            "task": {"type": "worker", "index": i}}'
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = keras_seq.models.GPTCausalLM(keras_seq.models.GPTBackbone(...))
    model.compile(optimizer="adamw", loss=keras_seq.losses.SequenceCrossEntropy())
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
dataset = dataset.batch(global_batch_size).with_options(options)
keras_seq.utils.apply_multi_worker_fixes(model)
model.fit(dataset, epochs=3)
```

Keras 3.15's `fit` and `evaluate` fail under this strategy (keras-team/keras#20585: the first
batch is reduced across workers to build the model, and the logs are reduced along an axis
they do not have). Call `keras_seq.utils.apply_multi_worker_fixes(model)` after `compile`
(the example above needs it before `model.fit`): a per-model workaround for any Keras model
that does nothing under other strategies and switches itself off for a Keras release that
fixes the bugs.
"""
