"""`.keras` files saved by keras_seq 0.1.0, before the backbone / task redesign, still load and
compute what they computed then (tests/models/legacy_files/make_legacy_files.py wrote them)."""

import pathlib

import keras
import numpy as np
import pytest

import keras_seq  # noqa: F401  (registers the classes the files name)

HERE = pathlib.Path(__file__).parent / "legacy_files"
FAMILIES = sorted(path.stem for path in HERE.glob("*.keras"))


def test_every_family_has_a_file():
    assert len(FAMILIES) == 11


@pytest.mark.parametrize("family", FAMILIES)
def test_legacy_file_loads_and_computes_the_same(family):
    model = keras.saving.load_model(HERE / f"{family}.keras")
    arrays = np.load(HERE / f"{family}.npz")
    inputs = {key[len("input_"):]: arrays[key] for key in arrays if key.startswith("input_")}
    if list(inputs) == ["inputs"]:
        inputs = inputs["inputs"]
    expected = [arrays[f"output_{index}"] for index in range(len(arrays) - len(
        [key for key in arrays if key.startswith("input_")]))]
    outputs = keras.tree.flatten(model.predict(inputs, verbose=0))
    assert len(outputs) == len(expected)
    for output, reference in zip(outputs, expected):
        np.testing.assert_allclose(np.asarray(output), reference, atol=1e-5)
