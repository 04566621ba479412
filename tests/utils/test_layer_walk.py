"""The layer walk: which layers `iter_layers` reaches and in what order, the paths it gives
them (the same for the same model however many layers the process built before), and the
contract of the private Keras method it stands on."""

import inspect
import pathlib
import re

import keras
import pytest

import keras_seq
from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.utils import find_layers
from keras_seq.utils import iter_layers


class Block(keras.layers.Layer):
    """Sublayers as attributes: a list, a shared layer passed in, an explicit name."""

    def __init__(self, shared, **kwargs):
        super().__init__(**kwargs)
        self.projections = [keras.layers.Dense(4), keras.layers.Dense(4, name="gate")]
        self.shared = shared
        self.norm = keras.layers.LayerNormalization(name="norm")

    def call(self, inputs):
        return self.norm(self.shared(self.projections[1](self.projections[0](inputs))))


def nested_model():
    """Every kind of nesting, automatic names everywhere but where a name is given."""
    shared = keras.layers.Dense(4, name="shared")
    inputs = keras.Input((6, 3), name="inputs")
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(inputs)
    hidden = Block(shared)(hidden)
    hidden = Block(shared, name="second_block")(hidden)
    inner_inputs = keras.Input((6, 4))
    inner = keras.Model(
        inner_inputs, keras.layers.RNN(ElmanCell(4), return_sequences=True)(inner_inputs)
    )
    hidden = inner(hidden)
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(2)(hidden)))


NESTED_PATHS = [
    "inputs",
    "bidirectional",
    "bidirectional/forward_lstm",
    "bidirectional/forward_lstm/lstm_cell",
    "bidirectional/backward_lstm",
    "bidirectional/backward_lstm/lstm_cell",
    "block",
    "block/dense",
    "block/gate",
    "block/shared",  # shared with second_block: listed once, at its first place
    "block/norm",
    "second_block",
    "second_block/dense",
    "second_block/gate",
    "second_block/norm",
    "functional",
    "functional/input_layer",
    "functional/rnn",
    "functional/rnn/elman_cell",
    "dense",
    "dense_1",
]


def test_paths_of_every_kind_of_nesting():
    model = nested_model()
    entries = list(iter_layers(model))
    assert [path for path, _ in entries] == NESTED_PATHS
    layers = [layer for _, layer in entries]
    assert len({id(layer) for layer in layers}) == len(layers)  # each layer once
    assert model not in layers
    by_path = dict(entries)
    assert by_path["second_block"] is model.get_layer("second_block")
    assert by_path["block/shared"] is by_path["second_block"].shared
    assert by_path["block/gate"] is by_path["block"].projections[1]
    assert by_path["functional/rnn/elman_cell"] is model.layers[4].layers[1].cell
    # Every layer that Keras itself counts as part of the model is reached.
    weights = {id(w) for _, layer in entries for w in layer.weights}
    assert {id(w) for w in model.weights} <= weights


def test_the_same_model_built_twice_has_the_same_paths():
    first, second = nested_model(), nested_model()
    first_names = [layer.name for _, layer in iter_layers(first)]
    second_names = [layer.name for _, layer in iter_layers(second)]
    # Keras numbered the second model's automatic names on ...
    assert first_names[1] == "bidirectional" and second_names[1] == "bidirectional_1"
    assert sum(a != b for a, b in zip(first_names, second_names)) >= 10
    # ... the paths do not move.
    assert [path for path, _ in iter_layers(second)] == NESTED_PATHS


def test_sibling_numbering():
    """Explicit names stay; automatic ones are numbered among siblings of the same stem,
    skipping names a sibling holds explicitly; a repeated explicit name is numbered too."""

    class Holder(keras.layers.Layer):
        def __init__(self, layers, **kwargs):
            super().__init__(**kwargs)
            self.children = layers

    keras.layers.Dense(1)  # `dense`: the next ones are dense_1, dense_2, ...
    holder = Holder(
        [
            keras.layers.Dense(1),  # dense_1
            keras.layers.Dense(1, name="dense_7"),  # explicit, but of the automatic form
            keras.layers.Dropout(0.1, name="dense_1"),  # explicit: a Dropout is no `dense`
            keras.layers.Dense(1),  # dense_2
            keras.layers.Dense(1, name="head"),
            keras.layers.Dense(1, name="head"),
            keras.layers.Dense(1, name="head_1"),
        ]
    )
    assert [path for path, _ in iter_layers(holder)] == [
        "dense",
        "dense_2",  # dense_1 is the Dropout's
        "dense_1",
        "dense_3",
        "head",
        "head_2",  # head_1 is taken
        "head_1",
    ]


def test_find_layers():
    model = nested_model()
    assert [path for path, _ in find_layers(model, keras.layers.RNN)] == [
        "bidirectional/forward_lstm",
        "bidirectional/backward_lstm",
        "functional/rnn",
    ]
    cells = find_layers(model, (keras.layers.LSTMCell, ElmanCell))
    assert [path for path, _ in cells] == [
        "bidirectional/forward_lstm/lstm_cell",
        "bidirectional/backward_lstm/lstm_cell",
        "functional/rnn/elman_cell",
    ]
    named = find_layers(model, lambda layer: layer.name in ("gate", "norm"))
    assert [path for path, _ in named] == [
        "block/gate",
        "block/norm",
        "second_block/gate",
        "second_block/norm",
    ]
    with pytest.raises(TypeError, match="predicate='rnn'"):
        find_layers(model, "rnn")
    with pytest.raises(TypeError, match="predicate=.*'rnn'"):
        find_layers(model, (keras.layers.RNN, "rnn"))
    with pytest.raises(TypeError, match="model=3"):
        list(iter_layers(3))


def test_flatten_layers_contract():
    """The walk's one call of private Keras API: `Layer._flatten_layers(include_self=False,
    recursive=False)`, a layer's directly tracked sublayers in tracking order, each once.
    This fails if Keras renames the method or changes what it returns."""
    assert hasattr(keras.layers.Layer, "_flatten_layers"), (
        "Keras removed `Layer._flatten_layers`: keras_seq/utils/layer_walk.py needs another "
        "way to list a layer's sublayers."
    )
    parameters = inspect.signature(keras.layers.Layer._flatten_layers).parameters
    assert {"include_self", "recursive"} <= set(parameters)

    def children(layer):
        return list(layer._flatten_layers(include_self=False, recursive=False))

    shared = keras.layers.Dense(4, name="shared")
    block = Block(shared)
    assert children(block) == [*block.projections, shared, block.norm]
    rnn = keras.layers.RNN(ElmanCell(3))
    assert children(rnn) == [rnn.cell]
    assert children(rnn.cell) == []
    bidirectional = keras.layers.Bidirectional(keras.layers.LSTM(2))
    assert children(bidirectional) == [bidirectional.forward_layer, bidirectional.backward_layer]
    model = nested_model()
    assert children(model) == model.layers  # the public list, where models have one
    # Only direct children: no grandchildren, not the layer itself, no repeats.
    holder = Block(shared)
    holder.again = shared  # tracked twice, listed once
    assert children(holder) == [*holder.projections, shared, holder.norm]


def test_only_the_layer_walk_uses_flatten_layers():
    """keras_seq calls the private method in one place. Modules listed in `PENDING` still
    call it themselves until they switch to `keras_seq.utils.iter_layers`."""
    PENDING = set()
    package = pathlib.Path(keras_seq.__file__).resolve().parent
    users = {
        path.relative_to(package.parent).as_posix()
        for path in package.rglob("*.py")
        if "_flatten_layers" in path.read_text(encoding="utf-8")
    }
    assert users - PENDING == {"keras_seq/utils/layer_walk.py"}
    source = (package / "utils" / "layer_walk.py").read_text(encoding="utf-8")
    code = [line for line in source.splitlines() if not line.lstrip().startswith("#")]
    assert len(re.findall(r"getattr\(layer, \"_flatten_layers\"", "\n".join(code))) == 1
