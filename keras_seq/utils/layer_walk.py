"""The one rule for finding the layers nested in a model, and for naming them stably.

Callbacks that pick layers by name (attention maps, gradient norms, stateful-RNN resets) and
write TensorBoard tags all walk a model here, so that they find the same layers and spell a
layer's place the same way in every run.
"""

import collections
import re

import keras

# Keras names its copies of a layer inside `Bidirectional` "forward_<name>" and
# "backward_<name>"; those names count as automatic too.
_AUTO_PREFIXES = "(?:forward_|backward_)?"


def iter_layers(model):
    """Every layer nested in `model`, depth first, as `(path, layer)` pairs.

    The walk reaches every tracked sublayer: the layers of functional and `Sequential` models
    (their `InputLayer`s included), nested models, the sublayers a layer holds as attributes
    (also in lists and dicts), an RNN's cell, `Bidirectional`'s forward and backward copies.
    Children come in the order Keras tracks them, each before its own sublayers. A layer
    reached along several ways (a shared layer) is listed once, at its first place; `model`
    itself is not listed.

    `path` names the layer's place relative to `model` (the model's own name is left out):
    one segment per nesting level, joined by "/", e.g. `"decoder/cross_attention"` or
    `"bidirectional/forward_lstm/lstm_cell"`. A segment is the layer's `name` if it was given
    explicitly. A name in Keras' automatic form, the layer's class name in snake case
    optionally followed by `_<number>` (`dense`, `dense_7`, `elman_cell_2`, and
    `Bidirectional`'s `forward_lstm_3`), is replaced by that snake-case stem numbered among
    its siblings of the same stem, in order: `dense`, `dense_1`, `dense_2`, ... (names a
    sibling holds explicitly are skipped; a repeated explicit name is numbered the same way).
    Keras' automatic numbers count every layer built in the process, so they change with how
    many models were built before; paths do not: the same model built twice, or in another
    process, gives the same paths. An explicit name of the automatic form (`dense_1` for a
    `Dense`) is renumbered too.

    Args:
        model: a `keras.Model` or `keras.layers.Layer` whose nested layers to list.

    Returns:
        An iterator of `(path, layer)`: str and `keras.layers.Layer`.

    Example:
    ```python
    model = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.LSTM(4, name="rnn"), keras.layers.Dense(1)]
    )
    paths = [path for path, _ in keras_seq.utils.iter_layers(model)]
    # ["input_layer", "rnn", "rnn/lstm_cell", "dense"], whatever numbers Keras gave the names
    ```
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            "`model` must be a `keras.Model` or `keras.layers.Layer`. "
            f"Received: model={model!r} of type {type(model).__name__}"
        )
    seen = {id(model)}

    def visit(layer, prefix):
        children = _sublayers(layer)
        for child, segment in zip(children, _sibling_segments(children)):
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{prefix}/{segment}" if prefix else segment
            yield path, child
            yield from visit(child, path)

    return visit(model, "")


def find_layers(model, predicate):
    """The `(path, layer)` pairs of `iter_layers(model)` whose layer satisfies `predicate`.

    Args:
        model: a `keras.Model` or `keras.layers.Layer`.
        predicate: a class or tuple of classes (an `isinstance` test), or a callable taking
            a layer and returning a bool.

    Returns:
        A list of `(path, layer)`, in the order of `iter_layers`; paths as described there.

    Example:
    ```python
    inputs = keras.Input((5, 3))
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(4))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    rnns = keras_seq.utils.find_layers(model, keras.layers.RNN)
    # [("bidirectional/forward_lstm", ...), ("bidirectional/backward_lstm", ...)]
    ```
    """
    if isinstance(predicate, (type, tuple)):
        classes = predicate
        if isinstance(classes, tuple) and not all(isinstance(c, type) for c in classes):
            raise TypeError(
                "`predicate` must be a class, a tuple of classes or a callable. "
                f"Received: predicate={predicate!r}"
            )

        def predicate(layer):
            return isinstance(layer, classes)

    elif not callable(predicate):
        raise TypeError(
            "`predicate` must be a class, a tuple of classes or a callable. "
            f"Received: predicate={predicate!r} of type {type(predicate).__name__}"
        )
    return [(path, layer) for path, layer in iter_layers(model) if predicate(layer)]


def _sublayers(layer):
    """The layers `layer` tracks directly, in Keras' order, each once."""
    # The one use of private Keras API in keras_seq's layer walk: Keras 3 has no public way
    # to list the sublayers of a layer (`Model.layers` is this same call, but only models
    # have it, and an RNN's cell or a block's attention is no model). Keras walks layers
    # with it itself (`Model.layers`, the trainers' build checks).
    # tests/utils/test_layer_walk.py fails if its name or meaning changes.
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is None:
        raise RuntimeError(
            "keras_seq finds nested layers through `keras.layers.Layer._flatten_layers`, "
            f"which this Keras ({keras.__version__}) does not have. Install a Keras version "
            "that keras_seq supports (see its setup.py)."
        )
    return list(flatten(include_self=False, recursive=False))


def _snake_case(name):
    # Keras' own conversion of a class name into its automatic layer names
    # (`keras.src.utils.naming.to_snake_case`, not public).
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _automatic_stem(layer):
    """`"dense"` for a `Dense` named `dense` or `dense_7`; `None` for an explicit name."""
    stem = re.escape(_snake_case(type(layer).__name__))
    match = re.fullmatch(f"({_AUTO_PREFIXES}{stem})(?:_[0-9]+)?", layer.name)
    return match.group(1) if match else None


def _sibling_segments(children):
    """The path segments of sibling layers, in order: unique, free of automatic numbers."""
    # First every explicit name claims its segment (a repeated one is numbered below).
    taken = set()
    stems = []
    for child in children:
        stem = _automatic_stem(child)
        if stem is None:
            if child.name in taken:
                stem = child.name
            taken.add(child.name)
        stems.append(stem)
    counts = collections.Counter()
    segments = []
    for child, stem in zip(children, stems):
        if stem is None:
            segments.append(child.name)
            continue
        while True:
            number = counts[stem]
            counts[stem] += 1
            candidate = f"{stem}_{number}" if number else stem
            if candidate not in taken:
                break
        taken.add(candidate)
        segments.append(candidate)
    return segments
