"""The ```python examples in public docstrings run."""

import importlib
import inspect
import pathlib
import re

import keras
import numpy as np
import pytest

import keras_seq

EXAMPLE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def public_objects():
    modules = [keras_seq.layers, keras_seq.testing] + [
        getattr(keras_seq, name)
        for name in (
            "callbacks",
            "data",
            "generation",
            "losses",
            "metrics",
            "models",
            "ops",
            "schedules",
            "utils",
        )
        if hasattr(keras_seq, name)
    ]
    # keras_seq.recipes (behind the command line) is not imported by `import keras_seq`;
    # the showdown's examples run in tests/recipes/test_showdown.py.
    modules += [
        importlib.import_module(f"keras_seq.recipes.{name}")
        for name in (
            "registry",
            "runner",
            "outputs",
            "generate_text",
            "vocabulary_file",
            "learning_rates",
            "data_files",
            "caption_files",
            "detection_files",
            "model_files",
        )
    ]
    # The modules the command line starts with.
    modules += [
        importlib.import_module(f"keras_seq.{name}")
        for name in ("subpackages", "stderr_capture", "decoding_options")
    ]
    seen = {}
    for module in modules:
        for name, obj in vars(module).items():
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj)):
                if (obj.__module__ or "").startswith("keras_seq"):
                    seen[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return seen


EXAMPLES = [
    (f"{name}[{index}]", inspect.cleandoc(code))
    for name, obj in sorted(public_objects().items())
    for index, code in enumerate(EXAMPLE.findall(inspect.getdoc(obj) or ""))
]


def test_examples_were_found():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("name,code", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_docstring_example_runs(name, code):
    exec(compile(code, name, "exec"), {"np": np, "keras": keras, "keras_seq": keras_seq})


README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
README_EXAMPLES = EXAMPLE.findall(README.read_text())


def test_readme_has_examples():
    assert README_EXAMPLES


@pytest.mark.parametrize("code", README_EXAMPLES, ids=lambda c: c.splitlines()[0][:40])
def test_readme_example_runs(code):
    exec(compile(code, "README.md", "exec"), {})
