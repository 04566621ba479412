"""`keras-seq` on another Keras backend: it says which backend it runs on, runs what the
backend allows and refuses what is TensorFlow's own with a message naming both.

The tests' process runs TensorFlow (conftest.py), so each command runs in a fresh process with
`KERAS_BACKEND=jax`; skipped where JAX is not installed, and slow (each imports Keras on JAX).
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed"),
]


def run_on_jax(*arguments, timeout=600):
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "keras_seq", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_info_reports_the_jax_backend_and_its_devices():
    result = run_on_jax("info", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["backend"] == "jax"
    # The same devices as JAX lists itself, asked in a process of its own.
    expected = subprocess.run(
        [sys.executable, "-c", "import jax; print(len(jax.devices()))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(info["devices"]) == int(expected.stdout.strip())
    assert {device["device_type"] for device in info["devices"]} == {"CPU"}


@pytest.mark.parametrize(
    "arguments,command",
    [
        (["train", "char-lm", "--quick"], "keras-seq train char-lm"),
        (["evaluate", "MODEL.keras", "--data", "x.txt"], "keras-seq evaluate"),
    ],
)
def test_tensorflow_only_commands_exit_with_a_message_naming_the_backend(
    tmp_path, arguments, command
):
    if arguments[0] == "train":
        arguments = [*arguments, "--output-dir", str(tmp_path / "run")]
    else:
        model = tmp_path / "MODEL.keras"  # a readable archive: refused before it is loaded
        with zipfile.ZipFile(model, "w") as archive:
            archive.writestr("config.json", "{}")
        arguments = [arguments[0], str(model), *arguments[2:]]
    result = run_on_jax(*arguments)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert f"{command} needs the TensorFlow backend" in result.stderr
    assert "KERAS_BACKEND='jax'" in result.stderr
    assert not (tmp_path / "run").exists()


def test_demo_runs_on_jax_and_says_so(tmp_path):
    result = run_on_jax("demo", "--quick", "--output-dir", str(tmp_path / "demo"), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == "Keras backend: jax"
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results, "the demo wrote no results"


def test_generate_on_jax_prints_what_tensorflow_prints(tmp_path):
    # A model saved on TensorFlow (this process), decoded on JAX in a process of its own
    # (compiled there with jax.jit), greedy and streamed, and sampled with a seed: each
    # prints the lines `keras-seq generate` prints on TensorFlow.
    import keras

    from keras_seq.models import GPTCausalLM

    keras.utils.set_random_seed(0)
    GPTCausalLM.from_preset("gpt_tiny", vocabulary_size=60).save(tmp_path / "gpt.keras")
    common = [str(tmp_path / "gpt.keras"), "--prompt", "1 2 3", "--prompt", "4 5"]
    common += ["--max-new-tokens", "6"]
    for options in ([], ["--stream"], ["--strategy", "beam", "--num-beams", "3"]):
        on_jax = run_on_jax("generate", *common, *options)
        assert on_jax.returncode == 0, on_jax.stderr[-3000:]
        env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=str(ROOT))
        on_tensorflow = subprocess.run(
            [sys.executable, "-m", "keras_seq", "generate", *common, *options],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
        )
        assert on_tensorflow.returncode == 0, on_tensorflow.stderr[-3000:]
        assert on_jax.stdout.splitlines()[-2:] == on_tensorflow.stdout.splitlines()[-2:]
        assert len(on_jax.stdout.splitlines()[-1].split()) == 2 + 6
