"""keras.distribution on JAX with two virtual CPU devices: a tiny GPT trains with the losses of
one device under data parallelism and under model parallelism with
`keras_seq.utils.transformer_layout_map`, whose weights are really split.

The tests' process runs TensorFlow (conftest.py) and JAX fixes its device count when it
starts, so the training runs in a fresh process (tests/jax_distribution_probe.py); skipped
where JAX is not installed, and slow.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_seq.utils import transformer_layout_map
from tests.jax_distribution_probe import SHARDED

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The split axis of each weight in SHARDED: by heads, by the heads read, by columns, by rows,
# along the hidden axis.
EXPECTED_SHARDINGS = (
    "P(None, 'model', None)",
    "P('model', None, None)",
    "P(None, 'model')",
    "P('model', None)",
    "P(None, 'model')",
)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_data_and_model_parallel_losses_equal_one_device():
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.jax_distribution_probe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULTS "))
    results = json.loads(line.removeprefix("RESULTS "))
    assert results["devices"] == ["cpu:0", "cpu:1"]
    single = np.array(results["single"])
    assert single[-1] < single[0]  # it trains
    np.testing.assert_allclose(results["data_parallel"], single, rtol=0, atol=1e-5)
    np.testing.assert_allclose(results["model_parallel"], single, rtol=0, atol=1e-5)
    assert [results["shardings"][path] for path in SHARDED] == list(EXPECTED_SHARDINGS)


@pytest.mark.backends
@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="keras.distribution has no PyTorch implementation (list_devices, DeviceMesh)",
)
def test_layout_map_argument_errors():
    devices = keras.distribution.list_devices()
    mesh = keras.distribution.DeviceMesh((1, len(devices)), ("batch", "model"), devices)
    with pytest.raises(TypeError, match="`device_mesh` must be a keras.distribution.DeviceMesh"):
        transformer_layout_map("mesh")
    with pytest.raises(ValueError, match="`model_axis` must name an axis.*Received: model_axis="):
        transformer_layout_map(mesh, model_axis="tensor")
