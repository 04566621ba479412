"""Every private Keras API keras_seq relies on, checked where it is used: a failure here means a
Keras release changed it, and names the module of keras_seq to fix. (keras_seq calls
`Layer._flatten_layers` only in keras_seq.utils.layer_walk, checked in
tests/utils/test_layer_walk.py.)"""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf


def test_keras_mask_accessors():
    # keras_seq.utils.masks (and the losses / metrics through it): the Keras mask a layer
    # attached to a tensor, as Keras' own losses read it (no public accessor exists).
    from keras.src.backend import get_keras_mask
    from keras.src.backend import set_keras_mask

    tensor = keras.ops.ones((2, 3))
    mask = keras.ops.convert_to_tensor(np.array([[True, False, True]] * 2))
    set_keras_mask(tensor, mask)
    np.testing.assert_array_equal(np.asarray(get_keras_mask(tensor)), np.asarray(mask))


def test_in_tf_graph():
    # keras_seq.layers.attention.attention_recorder: records eagerly, not while tracing.
    from keras.src.utils.backend_utils import in_tf_graph

    assert not in_tf_graph()
    assert tf.function(lambda: tf.constant(in_tf_graph()))().numpy()


def test_dropout_rnn_cell():
    # keras_seq.layers.recurrent.base_cell / attention_cell: the mixin that gives Keras' own
    # cells their cached dropout masks, which keras.layers.RNN prepares and resets.
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

    for method in ("get_dropout_mask", "get_recurrent_dropout_mask", "reset_dropout_mask"):
        assert callable(getattr(DropoutRNNCell, method)), method
    assert issubclass(keras.layers.LSTMCell, DropoutRNNCell)


def test_rnn_dropout_mask_hooks():
    # keras_seq.layers.recurrent.truncated_bptt: prepares the wrapped RNN's dropout masks as
    # RNN.call does, and reads whether a cell's call takes `training`.
    for name, arguments in (
        ("_maybe_config_dropout_masks", ["self", "cell", "input_sequence", "input_state"]),
        ("_maybe_reset_dropout_masks", ["self", "cell"]),
    ):
        method = getattr(keras.layers.RNN, name)
        assert list(inspect.signature(method).parameters) == arguments, name
    assert keras.layers.LSTMCell(2)._call_has_training_arg is True


def test_multi_worker_trainer_hooks():
    # keras_seq.utils.multi_worker: the per-model workaround replaces the symbolic build and
    # detects a multi-worker strategy; its integration test fails once Keras needs no fix.
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    assert "data_batch" in inspect.signature(TensorFlowTrainer._maybe_symbolic_build).parameters
    strategy = tf.distribute.get_strategy()
    assert hasattr(tf.distribute.MultiWorkerMirroredStrategy, "extended")
    assert not hasattr(strategy.extended, "_in_multi_worker_mode") or callable(
        strategy.extended._in_multi_worker_mode
    )


def test_keras_hub_byte_level_alphabet():
    # keras_seq.generation.stop_strings: the bytes of GPT-2's byte-level tokens, from
    # keras-hub's table of printable stand-ins (no public accessor).
    from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

    byte_list, unicode_list = bytes_to_unicode()
    assert sorted(byte_list) == [bytes([b]) for b in range(256)]
    assert len(set(unicode_list)) == 256 and unicode_list[byte_list.index(b" ")] == "\u0120"


def test_h5_store_entry_group(tmp_path):
    # keras_seq.utils.saved_weights: the h5py group of the entry an H5IOStore is positioned
    # on (the model's `vars` group), whose parent holds the model's layers.
    import h5py
    from keras.src.saving.saving_lib import H5IOStore

    path = str(tmp_path / "store.weights.h5")
    with h5py.File(path, "w") as file:
        file.create_group("vars")
        file.create_dataset("layers/dense/vars/0", data=np.zeros(2))
    store = H5IOStore(path, mode="r")
    try:
        entry = store.get("")
        assert isinstance(entry._h5_entry_group, h5py.Group)
        assert entry._h5_entry_group.name == "/vars"
        assert "layers/dense/vars/0" in entry._h5_entry_group.parent
    finally:
        store.close()


def test_torch_module_registry_appears_in_module_init():
    # keras_seq.models.functional_model: on the PyTorch backend, `FunctionalModel.__setattr__`
    # tells whether `torch.nn.Module.__init__` has run by the `_modules` entry it creates
    # (torch refuses sublayers assigned before it; no public flag says so).
    torch = pytest.importorskip("torch")
    module = torch.nn.Module.__new__(torch.nn.Module)
    assert "_modules" not in module.__dict__
    with pytest.raises(AttributeError, match="before Module.__init__"):
        module.child = torch.nn.Linear(1, 1)
    torch.nn.Module.__init__(module)
    assert "_modules" in module.__dict__


def test_torch_dynamo_counts_compiled_graphs():
    # tests/generation/generate_torch_probe.py: `torch._dynamo.utils.counters["stats"]
    # ["unique_graphs"]` counts the graphs `torch.compile` compiled, so that a second call of
    # the same shape can be shown to compile nothing (PyTorch has no public trace count)...
    torch = pytest.importorskip("torch")
    from torch._dynamo.utils import counters

    compiled = torch.compile(lambda x: x * 2 + 1, backend="eager")
    graphs = counters["stats"]["unique_graphs"]
    compiled(torch.ones(3))
    assert counters["stats"]["unique_graphs"] == graphs + 1
    compiled(torch.ones(3))
    assert counters["stats"]["unique_graphs"] == graphs + 1

    # ... and `counters["graph_break"]` the graph breaks (the probe asserts there are none).
    breaks = sum(counters["graph_break"].values())
    torch.compile(lambda x: x * x.sum().item(), backend="eager")(torch.ones(3))
    assert sum(counters["graph_break"].values()) > breaks


def test_enclosing_xla_context():
    # keras_seq.ops.linear: whether a TensorFlow trace is for XLA (one-row products take
    # another form there). Set under `tf.function(jit_compile=True)`, also inside its loops.
    def traced():
        return tf.constant(tf.__internal__.get_enclosing_xla_context() is not None)

    def in_loop():
        _, seen = tf.while_loop(
            lambda i, seen: i < 1, lambda i, seen: (i + 1, traced()), [0, False]
        )
        return seen

    assert tf.function(traced, jit_compile=True)().numpy()
    assert tf.function(in_loop, jit_compile=True)().numpy()
    assert not tf.function(traced, jit_compile=False)().numpy()
    assert not tf.function(traced)().numpy()
