"""keras_seq on the JAX and PyTorch backends, checked from this TensorFlow process.

The tests' own process runs TensorFlow (conftest.py), so the checks on another backend run in
a fresh process with `KERAS_BACKEND` set (tests/backend_probe.py); they are skipped where
that backend is not installed, and marked slow (each process imports Keras and compiles).
`test_no_module_imports_tensorflow_on_import` needs no other backend.
"""

import ast
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_seq.subpackages import SUBPACKAGES
from tests.backend_probe import CHECKS
from tests.backend_probe import GENERATIVE_FAMILIES
from tests.backend_probe import RESULTS_PREFIX
from tests.backend_probe import generation_outputs
from tests.model_families import FAMILIES
from tests.model_families import make_case

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_seq"
# What the JAX and PyTorch backends must not need.
TENSORFLOW_MODULES = ("tensorflow", "tensorflow_text", "tensorflow_datasets", "tensorboard")
# TensorFlow Datasets builders: `import keras_seq` leaves them out (their docstrings say so).
TENSORFLOW_ONLY_MODULES = (
    "keras_seq.data.synthetic_builders",
    "keras_seq.data.shapes_detection_builder",
)
BACKENDS = [
    pytest.param(
        backend,
        marks=[
            pytest.mark.slow,
            pytest.mark.skipif(
                importlib.util.find_spec(backend) is None, reason=f"{backend} is not installed"
            ),
        ],
    )
    for backend in ("jax", "torch")
]


def module_name(path):
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports_on_import(path):
    """The modules that `path` imports when it is imported: its imports outside functions."""
    names = []
    pending = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module)
        pending.extend(ast.iter_child_nodes(node))
    return names


def modules_imported_by_keras_seq():
    """{module name: path} of the modules under `import keras_seq`'s subpackages."""
    paths = [PACKAGE / "__init__.py"]
    for name in SUBPACKAGES:
        paths.extend(sorted((PACKAGE / name).rglob("*.py")))
    return {module_name(path): path for path in paths}


def test_no_module_imports_tensorflow_on_import():
    # TensorFlow-specific code imports TensorFlow where it is used, so that `import keras_seq`
    # works on JAX and PyTorch without it.
    modules = modules_imported_by_keras_seq()
    for name in TENSORFLOW_ONLY_MODULES:
        assert name in modules
    offenders = {}
    for name, path in modules.items():
        imported = imports_on_import(path)
        for other in TENSORFLOW_ONLY_MODULES:
            assert other not in imported, f"{name} imports {other}"
        if name not in TENSORFLOW_ONLY_MODULES:
            found = [m for m in imported if m.split(".")[0] in TENSORFLOW_MODULES]
            if found:
                offenders[name] = found
    assert offenders == {}


def test_import_scan_sees_module_level_and_skips_function_imports(tmp_path):
    path = tmp_path / "module.py"
    path.write_text(
        "import os\n"
        "try:\n    import tensorflow as tf\nexcept ImportError:\n    tf = None\n"
        "class A:\n    from tensorboard import summary\n"
        "    def method(self):\n        import tensorflow_text\n"
        "def function():\n    from tensorflow_datasets import core\n"
    )
    assert sorted(imports_on_import(path)) == ["os", "tensorboard", "tensorflow"]


def run_python(backend, arguments, timeout):
    """Python run with `arguments` and `KERAS_BACKEND=backend`, this checkout first on its
    path."""
    path = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": path},
        timeout=timeout,
    )


def run_on(backend, *arguments):
    """Run `python -m tests.backend_probe *arguments` with `KERAS_BACKEND=backend`; its
    results."""
    result = run_python(backend, ["-m", "tests.backend_probe", *arguments], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULTS_PREFIX)]
    assert len(lines) == 1, result.stdout[-3000:]
    return json.loads(lines[0][len(RESULTS_PREFIX) :])


@pytest.mark.parametrize("backend", BACKENDS)
def test_import_keras_seq_without_tensorflow(backend):
    # TensorFlow made unimportable, as where it is not installed.
    code = (
        "import sys\n"
        f"for name in {TENSORFLOW_MODULES!r}:\n"
        "    sys.modules[name] = None\n"
        "import keras, keras_seq\n"
        "print(keras.backend.backend(), keras_seq.layers.GRUCell.__name__)\n"
    )
    result = run_python(backend, ["-c", code], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == [backend, "GRUCell"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_layers_losses_metrics_and_callbacks_on_backend(backend):
    # GRUCell, Perplexity.reset_state, the chunked attention path and AttentionRNN (whose
    # loops JAX could not differentiate), the data checks of a compiled loss and dL/dh_t,
    # each against its reference (tests/backend_probe.py).
    assert run_on(backend, "checks") == {name: "ok" for name in CHECKS}


def save_family(family, directory):
    """Write `<family>.keras` (built on TensorFlow) and `<family>.npz` (its inputs, and its
    outputs here)."""
    case = make_case(family)
    keras.utils.set_random_seed(1)
    model = case.build_model()
    # Weights initialized to zeros (biases, ViT's classifier head) get random values, so that
    # no output is zero, or a constant, whatever the backend computes before them.
    rng = np.random.default_rng(1)
    for variable in model.weights:
        if "float" in variable.dtype and not np.any(keras.ops.convert_to_numpy(variable)):
            variable.assign(rng.normal(scale=0.1, size=variable.shape).astype(variable.dtype))
    outputs = keras.tree.flatten(model.predict(case.x, verbose=0))
    for output in outputs:
        assert np.ptp(np.asarray(output, "float64")) > 0, family
    model.save(directory / f"{family}.keras")
    x = case.x if isinstance(case.x, dict) else {"": case.x}
    arrays = {f"x_{key}": value for key, value in x.items()}
    arrays.update({f"y_{index}": np.asarray(value) for index, value in enumerate(outputs)})
    np.savez(directory / f"{family}.npz", **arrays)


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_files_saved_on_tensorflow_reload_on_backend(backend, tmp_path):
    for family in FAMILIES:
        save_family(family, tmp_path)
    differences = run_on(backend, "load", str(tmp_path))
    assert sorted(differences) == FAMILIES
    failures = {
        family: difference
        for family, difference in differences.items()
        if not (isinstance(difference, float) and difference <= 1e-5)
    }
    assert failures == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_generation_of_files_saved_on_tensorflow_equals_on_backend(backend, tmp_path):
    # Beam search and greedy decoding (tokens and scores) of the encoder-decoders, and the
    # captioners' attention maps, computed again from the same .keras files on `backend`.
    for family in GENERATIVE_FAMILIES:
        save_family(family, tmp_path)
        case = make_case(family)
        model = keras.saving.load_model(tmp_path / f"{family}.keras")
        np.savez(tmp_path / f"{family}.generated.npz", **generation_outputs(model, case, family))
    comparisons = run_on(backend, "generate", str(tmp_path))
    assert sorted(comparisons) == sorted(GENERATIVE_FAMILIES)
    failures = {}
    for family, report in comparisons.items():
        if not isinstance(report, dict):
            failures[family] = report
            continue
        for name, comparison in report.items():
            ok = (
                comparison == "equal"
                if name.endswith("tokens")
                else (isinstance(comparison, float) and comparison <= 1e-5)
            )
            if not ok:
                failures[f"{family} {name}"] = comparison
    assert failures == {}
