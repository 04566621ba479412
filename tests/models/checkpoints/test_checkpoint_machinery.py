"""The loader's bookkeeping: every checkpoint tensor taken or skipped, every variable set."""

import json

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

from keras_seq.models.checkpoints.tensors import CheckpointTensors
from keras_seq.models.checkpoints.weight_assignment import WeightAssignment


def _write(directory, tensors, shards=None):
    if shards is None:
        save_file(tensors, str(directory / "model.safetensors"))
        return
    weight_map = {}
    for index, names in enumerate(shards):
        filename = f"model-{index}.safetensors"
        save_file({name: tensors[name] for name in names}, str(directory / filename))
        weight_map.update({name: filename for name in names})
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


@pytest.mark.parametrize("shards", [None, [["a"], ["b", "c"]]])
def test_tensors_are_read_as_float32_and_accounted_for(tmp_path, shards):
    tensors = {
        "a": np.arange(6, dtype="float16").reshape(2, 3),
        "b": np.ones(3, "float32"),
        "c": np.arange(4, dtype="int64"),
    }
    _write(tmp_path, tensors, shards)
    checkpoint = CheckpointTensors(tmp_path)
    assert checkpoint.keys() == ["a", "b", "c"] and "a" in checkpoint and "z" not in checkpoint
    assert checkpoint.shape("a") == (2, 3)
    value = checkpoint.take("a")
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, tensors["a"].astype("float32"))
    assert checkpoint.take("c").dtype == np.int64  # Integers keep their type.
    with pytest.raises(ValueError, match=r"1 tensor\(s\).*\['b'\]"):
        checkpoint.check_all_used("the test model")
    checkpoint.skip(["b"], "a reason")
    checkpoint.check_all_used()
    assert checkpoint.skipped == {"b": "a reason"}
    with pytest.raises(ValueError, match="no tensor 'z'"):
        checkpoint.take("z")
    with pytest.raises(ValueError, match="no tensor 'z'"):
        checkpoint.skip(["z"], "typo")
    checkpoint.close()


def test_index_without_a_weight_map(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}}))
    with pytest.raises(ValueError, match="weight_map"):
        CheckpointTensors(tmp_path)


def _model():
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, name="head")(keras.layers.Dense(4, name="body")(inputs))
    return keras.Model(inputs, outputs)


def test_weight_assignment_sets_each_variable_once_with_its_shape():
    model = _model()
    assignment = WeightAssignment(model)
    assert assignment.paths("body/") == ["body/bias", "body/kernel"]
    assignment.set("body/kernel", np.full((3, 4), 2.0), "w")
    np.testing.assert_array_equal(np.asarray(model.get_layer("body").kernel), 2.0)
    with pytest.raises(ValueError, match="set the variable 'body/kernel' twice"):
        assignment.set("body/kernel", np.zeros((3, 4)), "w")
    with pytest.raises(ValueError, match=r"Shape mismatch.*'b'.*\(5,\).*'body/bias'"):
        assignment.set("body/bias", np.zeros(5), "b")
    with pytest.raises(ValueError, match="does not have"):
        assignment.set("tail/kernel", np.zeros(2), "t")
    with pytest.raises(ValueError, match=r"3 variable\(s\).*random"):
        assignment.check_all_set()
    assignment.leave("head/", "a new head")
    with pytest.raises(ValueError, match=r"\['body/bias'\]"):
        assignment.check_all_set()


def test_weight_assignment_excludes_paths():
    model = _model()
    body = {variable.path for variable in model.get_layer("body").weights}
    assignment = WeightAssignment(model, exclude=body)
    assert assignment.paths() == ["head/bias", "head/kernel"]
    assignment.set("head/kernel", np.zeros((4, 2)))
    assignment.set("head/bias", np.zeros(2))
    assignment.check_all_set()
