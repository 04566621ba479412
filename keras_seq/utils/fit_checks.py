"""Checks of the data given to `fit` / `evaluate`, before Keras traces anything.

Keras reports some mismatches between a model and its data late and cryptically ("None
values not supported" for a dataset without targets, a graph broadcasting error for a batch
that does not fit a stateful RNN) and lets others pass silently (extra input keys are dropped;
a partial last batch is broadcast against a stateful RNN's states). `check_fit_data` turns the
mismatches users hit into `ValueError`s that name the argument, what was expected and what was
received. It looks only at shapes and structures (a dataset's `element_spec`), never at the
values, and never iterates a dataset. Call it before `fit` / `evaluate`, with the same
arguments, for keras_seq's models or any other Keras model (the `keras-seq` recipes do).
"""

import keras
from keras import tree

from keras_seq.utils.layer_walk import find_layers

# What Keras unpacks from one element of a dataset: inputs, targets, sample weights.
_ELEMENT = "`(inputs, targets)` or `(inputs, targets, sample_weight)`"


def _is_dataset(x):
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return isinstance(x, tf.data.Dataset)


def _shape(value):
    """The shape of an array, tensor, `tf.TensorSpec` or KerasTensor; `None` if it has none."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(None if dim is None else int(dim) for dim in shape)
    except TypeError:  # an unknown rank
        return None


def _describe(structure):
    """A short description of a nested structure of tensors / specs: shapes in place."""
    return repr(tree.map_structure(lambda v: _shape(v), structure))


def _split_element(spec):
    """A dataset element spec -> `(inputs, targets, sample_weight)` specs, as Keras unpacks."""
    if isinstance(spec, tuple) and 1 <= len(spec) <= 3:
        return tuple(spec) + (None,) * (3 - len(spec))
    return spec, None, None


def stateful_rnn_layers(model):
    """Every `keras.layers.RNN` with `stateful=True` in `model`, nested ones included."""
    return [
        layer
        for _, layer in find_layers(model, keras.layers.RNN)
        if layer.stateful
    ]


def _stateful_batch_size(layer):
    """The batch size a stateful RNN was built for, or `None` if it is not fixed."""
    states = getattr(layer, "states", None)
    if states:
        batch_size = _shape(states[0])
        if batch_size:
            return batch_size[0]
    try:
        return _shape(layer.input)[0]
    except (AttributeError, ValueError, TypeError, IndexError):
        return None


def _check_inputs(model, inputs, where):
    """`inputs` (arrays or specs) against the model's inputs: structure, keys and shapes."""
    try:
        # A functional model's (and a built Sequential's) input structure, as constructed.
        expected = model.input
    except (AttributeError, ValueError):  # a subclassed model: no declared inputs
        return
    if isinstance(expected, dict):
        if not isinstance(inputs, dict):
            raise ValueError(
                f"{model.name} takes a dict of inputs with keys {sorted(expected)}, but "
                f"{where} holds {_describe(inputs)}. Pass a dict with these keys."
            )
        missing = sorted(set(expected) - set(inputs))
        extra = sorted(set(inputs) - set(expected))
        if missing or extra:
            problems = [
                f"{label} keys {keys}"
                for label, keys in (("missing", missing), ("unexpected", extra))
                if keys
            ]
            raise ValueError(
                f"The inputs in {where} do not match {model.name}'s inputs: "
                f"{' and '.join(problems)}. Expected keys {sorted(expected)}; received keys "
                f"{sorted(inputs)}. (Keras would drop unexpected keys silently.)"
            )
        pairs = [(key, expected[key], inputs[key]) for key in sorted(expected)]
    elif isinstance(expected, (list, tuple)):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(expected):
            raise ValueError(
                f"{model.name} takes {len(expected)} inputs {_describe(expected)}, but "
                f"{where} holds {_describe(inputs)}."
            )
        pairs = [(index, e, r) for index, (e, r) in enumerate(zip(expected, inputs))]
    else:
        if isinstance(inputs, (dict, list, tuple)):
            raise ValueError(
                f"{model.name} takes one input of shape {_shape(expected)}, but {where} "
                f"holds {_describe(inputs)}."
            )
        pairs = [(None, expected, inputs)]
    for key, expected_tensor, received in pairs:
        expected_shape, received_shape = _shape(expected_tensor), _shape(received)
        if expected_shape is None or received_shape is None:
            continue
        compatible = len(expected_shape) == len(received_shape) and all(
            e is None or r is None or e == r for e, r in zip(expected_shape[1:], received_shape[1:])
        )
        if not compatible:
            name = "" if key is None else f" {key!r}"
            raise ValueError(
                f"The input{name} in {where} has shape {received_shape}, but {model.name} "
                f"expects {expected_shape} (batch axis first, None = any size)."
            )


def check_fit_data(
    model,
    x=None,
    y=None,
    batch_size=None,
    sample_weight=None,
    name="x",
    validation_data=None,
    validation_batch_size=None,
):
    """Check the data of a `fit` / `evaluate` call against `model`; raise `ValueError` early.

    Checks, on shapes and structures only:
    - a `tf.data.Dataset` yields `(inputs, targets)` (or with sample weights) when the model
      was compiled with a loss; a dataset of single dicts (what `tensorflow_datasets` gives
      by default) or of inputs alone has no targets;
    - the inputs match the model's inputs: dict keys (missing and unexpected ones), number
      of inputs, and every static dimension after the batch axis;
    - the global batch size is divisible by the number of replicas of the model's
      `tf.distribute` strategy (each replica then gets the same share);
    - a model with stateful RNNs gets batches of exactly the batch size they were built
      for, and NumPy data that divides into such batches;
    - the token ids of a generative task's in-memory input (prompt or source) are integers
      in `[0, vocabulary_size)` (an embedding would clamp or wrap others silently); a
      dataset's values are not read.
    A dataset whose batch axis is not static (`batch(..., drop_remainder=False)`) is checked
    for everything but its batch size.

    Args:
        model: a built or functional `keras.Model`.
        x: the `x` of `fit`: arrays, a dict or list of arrays, or a `tf.data.Dataset`;
            other types (generators, `PyDataset`) are not checked.
        y: the `y` of `fit`, or `None`.
        batch_size: the `batch_size` of `fit` (`None`: Keras' default of 32 for arrays).
        sample_weight: the `sample_weight` of `fit`, or `None`.
        name: str. What the messages call `x`, e.g. `"validation_data"`. Defaults to `"x"`.
        validation_data: the `validation_data` of `fit`, checked the same way (as Keras
            batches it: by `validation_batch_size`, else `batch_size`), or `None`.
        validation_batch_size: the `validation_batch_size` of `fit`, or `None`.

    Raises:
        ValueError: naming the argument, the expected and the received value.
        TypeError: float token ids.
    """
    del sample_weight  # Its structure follows `y`; Keras checks it.
    if validation_data is not None:
        if isinstance(validation_data, tuple):
            x_val, y_val = (tuple(validation_data) + (None,))[:2]
        else:
            x_val, y_val = validation_data, None
        check_fit_data(
            model, x_val, y_val, validation_batch_size or batch_size, name="validation_data"
        )
    if _is_dataset(x):
        inputs, targets, _ = _split_element(x.element_spec)
        where = f"each element of the dataset `{name}` ({_describe(x.element_spec)})"
        leaves = tree.flatten(inputs)
        batch = _shape(leaves[0])[0] if leaves and _shape(leaves[0]) else None
        batch_name = f"the batch size of the dataset `{name}`"
        num_examples = None
        if targets is None and getattr(model, "loss", None) is not None:
            raise ValueError(
                f"{model.name} was compiled with a loss, but the dataset `{name}` yields no "
                f"targets: each element is {_describe(x.element_spec)}. Make it yield "
                f"{_ELEMENT}, e.g. `dataset.map(lambda e: (e['image'], e['label']))` for a "
                "dataset of dicts."
            )
    elif isinstance(x, (dict, list, tuple)) or _shape(x) is not None:
        inputs, where = x, f"`{name}`"
        leaves = tree.flatten(x)
        num_examples = _shape(leaves[0])[0] if leaves and _shape(leaves[0]) else None
        batch = batch_size if batch_size is not None else 32
        if num_examples is not None:
            batch = min(batch, num_examples)
        batch_name = "`batch_size`"
        if y is None and getattr(model, "loss", None) is not None:
            raise ValueError(
                f"{model.name} was compiled with a loss, but `fit` got no targets: "
                "received y=None. Pass the targets as `y`."
            )
    else:
        return
    _check_inputs(model, inputs, where)
    if not _is_dataset(x) and hasattr(model, "check_token_inputs"):
        # A generative task's token-id input (prompt or source), in memory: its values.
        model.check_token_inputs(inputs)

    strategy = getattr(model, "distribute_strategy", None)
    num_replicas = getattr(strategy, "num_replicas_in_sync", 1)
    if batch is not None and num_replicas > 1 and batch % num_replicas:
        raise ValueError(
            f"The global batch must be divisible by the number of replicas: "
            f"{batch_name} is {batch}, and the strategy has {num_replicas} replicas. Use a "
            f"multiple of {num_replicas} (each replica gets batch / {num_replicas} examples)."
        )

    for layer in stateful_rnn_layers(model):
        stateful_batch = _stateful_batch_size(layer)
        if stateful_batch is None:
            raise ValueError(
                f"The stateful RNN {layer.name!r} has no fixed batch size: a stateful layer "
                "keeps one state per example, so the model needs a static batch size. "
                "Build it with `keras.Input(batch_shape=(batch_size, ...))`."
            )
        if batch is not None and batch != stateful_batch:
            raise ValueError(
                f"The stateful RNN {layer.name!r} was built for batches of "
                f"{stateful_batch}, but {batch_name} is {batch}. Use batches of exactly "
                f"{stateful_batch}."
            )
        if num_examples is not None and num_examples % stateful_batch:
            raise ValueError(
                f"The stateful RNN {layer.name!r} needs every batch to hold "
                f"{stateful_batch} examples, but `{name}` holds {num_examples} examples, leaving "
                f"a last batch of {num_examples % stateful_batch} (Keras would broadcast it "
                f"against the states silently). Pass a multiple of {stateful_batch} examples."
            )
