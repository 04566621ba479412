"""The memory-efficient path's peak training memory grows linearly with sequence length.

Each measurement runs in a fresh process: TensorFlow's peak-memory counter is process-wide.
"""

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
import pytest
from keras_seq import layers

length, chunked = int(sys.argv[1]), sys.argv[2] == "chunked"
layer = layers.MultiHeadAttention(
    num_heads=2, key_dim=32, query_chunk_size=256 if chunked else None, key_chunk_size=512
)
x = tf.constant(np.random.default_rng(0).normal(size=(1, length, 64)).astype("float32"))
layer(x[:, :8])

@tf.function
def train_step():
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x, use_causal_mask=True)))
    return tape.gradient(loss, layer.trainable_weights)

tf.config.experimental.reset_memory_stats("CPU:0")
grads = train_step()
assert all(np.isfinite(g.numpy()).all() for g in grads)
print(json.dumps(tf.config.experimental.get_memory_info("CPU:0")["peak"]))
"""


def peak_memory(length, path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(length), path],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # over 15 s on 2 cores; the default run stays within its budget
def test_peak_memory_grows_linearly_and_stays_below_plain():
    plain_2048 = peak_memory(2048, "plain")
    chunked_2048 = peak_memory(2048, "chunked")
    chunked_8192 = peak_memory(8192, "chunked")
    # Quadratic growth would be 16x from 2048 to 8192; linear is 4x, plus fixed costs.
    growth = chunked_8192 / chunked_2048
    assert growth < 6.0, (chunked_2048, chunked_8192, growth)
    assert chunked_2048 < plain_2048, (chunked_2048, plain_2048)
