"""SequenceCrossEntropy under MirroredStrategy on two logical CPUs: the replicas' values add up
to the mean over the real tokens of the global batch, however the padding is spread (a fresh
process: logical devices must be configured before TensorFlow runs anything)."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from keras_seq.losses import SequenceCrossEntropy

    rng = np.random.default_rng(0)
    y_true = rng.integers(1, 7, size=(4, 6)).astype("int32")
    y_true[2, 2:] = 0  # replica 0 (rows 0, 1) holds 12 real tokens, replica 1 holds 3
    y_true[3, 1:] = 0
    logits = rng.normal(size=(4, 6, 7)).astype("float32")
    weights = rng.uniform(0.5, 2.0, size=(4, 6)).astype("float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    dataset = tf.data.Dataset.from_tensor_slices((y_true, logits, weights)).batch(4)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    def replica_sum(loss, use_weights):
        def step(y, p, w):
            return loss(y, p, sample_weight=w if use_weights else None)
        values = strategy.run(step, args=batch)
        return float(strategy.reduce("SUM", values, axis=None))

    results = {}
    for reduction in ("mean_with_sample_weight", "sum_over_batch_size", "sum"):
        for use_weights in (False, True):
            loss = SequenceCrossEntropy(ignore_index=0, reduction=reduction)
            single = float(loss(y_true, logits, sample_weight=weights if use_weights else None))
            results[f"{reduction}/{use_weights}"] = [single, replica_sum(loss, use_weights)]
    # Keras' own masked loss averages the replicas' means: the control.
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    results["keras"] = [float(keras_loss(y_true, logits)), replica_sum(keras_loss, False)]
    print("RESULT " + json.dumps(results))
    """
)


def test_replica_shares_add_up_to_the_global_mean():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stdout[-2000:] + result.stderr[-4000:]
    results = json.loads(lines[0][len("RESULT ") :])
    for key, (single, distributed) in results.items():
        if key == "keras":
            continue
        assert abs(distributed - single) <= 1e-6 * abs(single), (key, single, distributed)
    # The control: averaging each replica's own mean is measurably different here, so the
    # comparisons above can fail.
    single, distributed = results["keras"]
    assert abs(distributed - single) > 0.01 * abs(single), results["keras"]
