"""`generate()` compiled on JAX and on PyTorch (`jit_compile=True`): equal to TensorFlow's
tokens for the same weights, equal to its own uncompiled loop, compiled once per shape, and
reading the current weights.

Each check runs in a fresh process with `KERAS_BACKEND=jax`
(tests/generation/generate_backend_probe.py) or `KERAS_BACKEND=torch`
(tests/generation/generate_torch_probe.py, which imports torch); skipped where the backend is
not installed, and slow (the process imports Keras and compiles each strategy).
"""

import importlib.util
import json

import keras
import numpy as np
import pytest

from keras_seq.models import GPTCausalLM
from tests.generation.generate_backend_probe import RESULTS_PREFIX
from tests.test_backends import run_python


def run_probe(backend, probe, directory, timeout):
    """Save a tiny GPT and TensorFlow's greedy and beam tokens in `directory`, run
    `python -m tests.generation.<probe> directory` on `backend`, and fail on any check that
    is not "ok"."""
    keras.utils.set_random_seed(3)
    model = GPTCausalLM.from_preset("gpt_tiny", vocabulary_size=60)
    prompts = np.random.default_rng(0).integers(1, 60, size=(2, 5)).astype("int32")
    outputs = {
        strategy: np.asarray(model.generate(prompts, 8, strategy=strategy))
        for strategy in ("greedy", "beam")
    }
    model.save(directory / "gpt.keras")
    np.savez(directory / "gpt.npz", prompts=prompts, **outputs)
    result = run_python(
        backend, ["-m", f"tests.generation.{probe}", str(directory)], timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULTS_PREFIX)]
    assert len(lines) == 1, result.stdout[-3000:]
    failures = {k: v for k, v in json.loads(lines[0][len(RESULTS_PREFIX) :]).items() if v != "ok"}
    assert not failures, "\n".join(f"{k}:\n{v}" for k, v in failures.items())


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_generate_is_compiled_on_jax(tmp_path):
    run_probe("jax", "generate_backend_probe", tmp_path, timeout=900)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_generate_is_compiled_on_torch(tmp_path):
    # `jit_compile=True` on PyTorch: the model's step under `torch.compile`, checked against
    # TensorFlow's tokens and the eager loop (tests/generation/generate_torch_probe.py).
    run_probe("torch", "generate_torch_probe", tmp_path, timeout=1800)
