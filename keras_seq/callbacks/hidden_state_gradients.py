"""The norm of dL/dh_t at every time step of a recurrent layer, by unrolling its loop.

`hidden_state_gradient_norms` is what `GradientNormLogger` logs and what the showdown demo
plots; the helpers here (the eager loss on a tape, the unrolled `inner_loop`, resolving
layers by name or path) are shared with the logger's per-layer weight-gradient norms.

Letter legend for shape comments: B batch, T time steps, O cell output size.

Keras has no backend-neutral tape, so the gradients are taken with each backend's own:
`tf.GradientTape`, `torch.autograd.grad` or `jax.grad` (`_loss_gradients`). TensorFlow is
imported where it is used, not with the module, so that `import keras_seq` works without it.
"""

import contextlib
import inspect

import keras
import numpy as np
from keras import ops
from keras import tree

from keras_seq.utils.layer_walk import find_layers


def hidden_state_gradient_norms(model, x, y, rnn_layer, sample_weight=None, per_example=False):
    """Norms of dL/dh_t: the total derivative of the training loss w.r.t. each hidden state.

    Runs `model` eagerly on one batch with `training=False` (no dropout noise) and takes the
    loss that training minimises, `model.compute_loss(..., training=False)`: the compiled
    loss plus regularization, unscaled. Meanwhile the loop of `rnn_layer` runs step by step
    in Python, so each h_t is a tensor of its own whose gradient is the total derivative,
    through all later steps and all layers above, not only the direct path through the
    output at step t. Vanishing or exploding gradients show as this curve shrinking or
    growing geometrically toward early steps (in processing order).

    h_t is the first state the cell returns: h for Elman, GRU and LSTM cells (not the LSTM
    cell state c). Entry t belongs to the state computed from input step t, also with
    `go_backwards=True`. At a masked step the cell's new state is discarded, so that
    example's gradient is zero. Weights are untouched; stateful RNNs get their states back.

    Args:
        model: a compiled Keras model that runs `rnn_layer` once per forward pass.
        x: the model's inputs for one batch, as for `model.fit`.
        y: the targets, as for `model.fit`.
        rnn_layer: a `keras.layers.RNN` (`LSTM`, `GRU`, ...) of `model`, also nested in
            `Bidirectional`, keras_seq wrappers or sub-models: the layer, its path as
            `keras_seq.utils.iter_layers` spells it (e.g. `"bidirectional/forward_lstm"`),
            or its Keras `name` or `path`.
        sample_weight: optional sample weights, as for `model.fit`. Defaults to `None`.
        per_example: bool. Return one norm per example instead of their batch mean.
            Defaults to `False`.

    Returns:
        float64 NumPy array `(sequence_length,)`: the batch mean of the per-example
        ||dL/dh_t||_2; `(batch_size, sequence_length)` with `per_example=True`.

    Example:
    ```python
    from keras_seq.callbacks import hidden_state_gradient_norms

    model = keras.Sequential(
        [keras.Input((12, 3)), keras.layers.SimpleRNN(8, name="rnn"), keras.layers.Dense(1)]
    )
    model.compile("sgd", "mse")
    x, y = np.random.randn(4, 12, 3), np.random.randn(4, 1)
    norms = hidden_state_gradient_norms(model, x, y, "rnn")  # (12,)
    ```
    """
    if not isinstance(per_example, bool):
        raise TypeError(
            "`per_example` must be a bool. "
            f"Received: per_example={per_example!r} of type {type(per_example).__name__}"
        )
    _check_probe_batch(x, y, sample_weight)
    if not isinstance(rnn_layer, (str, keras.layers.RNN)):
        raise TypeError(
            "`rnn_layer` must be a `keras.layers.RNN` of the model, or its name or path. "
            f"Received: rnn_layer={rnn_layer!r} of type {type(rnn_layer).__name__}"
        )
    received = getattr(rnn_layer, "name", rnn_layer)
    [entry] = _resolve_layers(model, [rnn_layer], "rnn_layer", recurrent=True, received=received)
    requested = ("rnn_layer", received)
    norms = _hidden_state_gradients(model, x, y, sample_weight, [entry], requested)[id(entry[1])]
    return norms if per_example else norms.mean(axis=0)


# === Probing ===


def _hidden_state_gradients(model, x, y, sample_weight, entries, requested=None):
    """`{id(layer): (B, T) per-example norms of dL/dh_t}` for the layers whose loop ran.

    `entries` holds `(path, layer)` pairs. With `requested=(argument, value)`, a layer whose
    loop never ran is an error.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            raise RuntimeError("dL/dh_t is computed eagerly; call this outside `tf.function`.")
    layers = [layer for _, layer in entries]
    calls = {id(layer): [] for layer in layers}
    gradients, _ = _loss_gradients(model, x, y, sample_weight, layers, calls)
    idle = [(path, layer) for path, layer in entries if not calls[id(layer)]]
    if idle and requested:
        raise ValueError(
            f"The forward pass never runs the loop of {_describe(idle)} (a `TruncatedBPTT` "
            f"runs its `truncated_rnn`, not the wrapped layer). RNN layers: "
            f"{_describe(_rnn_layers(model))}. Received: {requested[0]}={requested[1]!r}"
        )
    for path, layer in entries:
        if len(calls[id(layer)]) > 1:
            raise ValueError(
                f"The forward pass runs the RNN layer {path!r} "
                f"{len(calls[id(layer)])} times; dL/dh_t is defined for a layer run once."
            )
    hidden = {id(layer): calls[id(layer)][0] for layer in layers if calls[id(layer)]}
    return {
        key: np.stack([_per_example_norm(gradients[id(h)]) for h in steps], axis=1)  # (B, T)
        for key, steps in hidden.items()
    }


def _loss_gradients(model, x, y, sample_weight, layers=(), calls=None, variables=()):
    """The gradients of the loss of one eager forward pass, `layers` unrolled.

    Returns `({id(h_t): dL/dh_t}, [dL/dv for v in variables])` as float64 NumPy arrays
    (zeros where the loss does not depend on it); the h_t are those appended to `calls`.
    TensorFlow takes them off a `tf.GradientTape`; PyTorch and JAX through a zero tensor
    added to each h_t (whose gradient is dL/dh_t): `torch.autograd.grad`, and `jax.grad`
    of a second, stateless pass (the first one records the h_t).
    """
    backend = keras.backend.backend()
    calls = {} if calls is None else calls
    variables = list(variables)
    if backend == "tensorflow":
        loss, tape = _loss_on_tape(model, x, y, sample_weight, layers, calls)
        sources = [h for runs in calls.values() for steps in runs for h in steps]
        gradients = tape.gradient(loss, sources + variables, unconnected_gradients="zero")
        gradients = [_to_float64(gradient) for gradient in gradients]
        return dict(zip(map(id, sources), gradients)), gradients[len(sources) :]
    x, y, sample_weight = (
        None if value is None else tree.map_structure(ops.convert_to_tensor, value)
        for value in (x, y, sample_weight)
    )
    if backend == "torch":
        import torch

        perturbations = {}

        def probe(h):
            zero = torch.zeros_like(h, requires_grad=True)
            h = h + zero
            perturbations[id(h)] = zero
            return h

        with _preserved_rnn_states(model):
            with _unrolled_rnn_loops(layers, probe, calls):
                y_pred = model(x, training=False)
            loss = _compute_loss(model, x, y, y_pred, sample_weight)
        sources = list(perturbations.values()) + [variable.value for variable in variables]
        gradients = torch.autograd.grad(loss, sources, allow_unused=True)
        gradients = [
            np.zeros(tuple(source.shape), "float64")
            if gradient is None
            else gradient.detach().cpu().numpy().astype("float64")
            for source, gradient in zip(sources, gradients)
        ]
        return dict(zip(perturbations, gradients)), gradients[len(perturbations) :]
    if backend != "jax":
        raise NotImplementedError(
            f"Gradients of the probe loss need the TensorFlow, JAX or PyTorch backend. "
            f"Received: backend={backend!r}"
        )
    import jax

    recorded = []  # the h_t of the first pass, in the order they are computed
    with _preserved_rnn_states(model), _unrolled_rnn_loops(layers, recorded.append, calls):
        model(x, training=False)

    def loss_of(perturbations, values):
        added = iter(perturbations)
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            with _unrolled_rnn_loops(
                layers, lambda h: h + next(added), {id(layer): [] for layer in layers}
            ):
                y_pred = model(x, training=False)
            return _compute_loss(model, x, y, y_pred, sample_weight)

    zeros = [ops.zeros_like(h) for h in recorded]
    values = [variable.value for variable in variables]
    hidden, weights = jax.grad(loss_of, argnums=(0, 1))(zeros, values)
    hidden = [np.asarray(gradient, "float64") for gradient in hidden]
    weights = [np.asarray(gradient, "float64") for gradient in weights]
    return {id(h): gradient for h, gradient in zip(recorded, hidden)}, weights


def _loss_on_tape(model, x, y, sample_weight, layers=(), calls=None):
    """The training loss of one eager forward pass, `layers` unrolled, and its tape."""
    import tensorflow as tf

    x, y, sample_weight = (
        None if value is None else tree.map_structure(tf.convert_to_tensor, value)
        for value in (x, y, sample_weight)
    )
    with _preserved_rnn_states(model), tf.GradientTape() as tape:
        with _unrolled_rnn_loops(layers, tape.watch, calls):
            y_pred = model(x, training=False)
        loss = _compute_loss(model, x, y, y_pred, sample_weight)
    return loss, tape


def _compute_loss(model, x, y, y_pred, sample_weight):
    """The loss as the train step computes it, through the model's own `compute_loss`."""
    if not getattr(model, "compiled", False):
        raise ValueError(
            "The model must be compiled with a loss: gradients are taken of "
            f"`model.compute_loss`. Received: model={model.name!r}, not compiled"
        )
    kwargs = {"x": x, "y": y, "y_pred": y_pred, "sample_weight": sample_weight}
    # `training` was added to `compute_loss` in Keras 3.3; user overrides may lack it.
    if "training" in inspect.signature(model.compute_loss).parameters:
        kwargs["training"] = False
    return model.compute_loss(**kwargs)


@contextlib.contextmanager
def _unrolled_rnn_loops(layers, probe, calls):
    """For one forward pass, runs each layer's loop step by step, recording each h_t.

    Each h_t goes through `probe` (`tape.watch`, or one that returns h_t plus a zero tensor
    whose gradient is dL/dh_t), and what it returns is recorded and used in its place.

    `keras.layers.RNN.call` delegates its time loop to `inner_loop` (a `tf.while_loop`
    whose step tensors are out of reach). Keras has no hook into it, and sub-models cut
    at the RNN would not reach RNNs inside `Bidirectional`, wrappers or subclassed models,
    so each chosen layer instance gets its own `inner_loop` meanwhile, computing the same
    with one tensor per step. `use_cudnn` is off meanwhile so that `Bidirectional` cannot
    take its fused cuDNN path past the layers. Everything is restored on exit.
    """
    saved = []
    try:
        for layer in layers:
            saved.append((layer, layer.__dict__.get("use_cudnn", _MISSING)))
            if hasattr(layer, "use_cudnn"):
                layer.use_cudnn = False
            layer.inner_loop = _UnrolledLoop(layer, probe, calls[id(layer)])
        yield
    finally:
        for layer, use_cudnn in saved:
            if "inner_loop" in layer.__dict__:
                del layer.inner_loop
            if use_cudnn is not _MISSING:
                layer.use_cudnn = use_cudnn


_MISSING = object()


class _UnrolledLoop:
    """`RNN.inner_loop` unrolled in Python, as the TF backend's `rnn` without `unroll`.

    A masked step keeps the states and repeats the previous output (zeros with
    `zero_output_for_mask`); `go_backwards` reads the last step first and returns outputs
    in that order. Appends the h_t tensors, indexed by input position, to `calls`.
    """

    def __init__(self, layer, probe, calls):
        self.layer, self.probe, self.calls = layer, probe, calls

    def __call__(self, sequences, initial_state, mask, training=False):
        layer, cell = self.layer, self.layer.cell
        if tree.is_nested(mask):
            mask = mask[0]
        cell_kwargs = {}
        if isinstance(cell, keras.layers.Layer) and cell._call_has_training_arg:
            cell_kwargs["training"] = training
        states = tuple(initial_state) if tree.is_nested(initial_state) else (initial_state,)
        num_steps = tree.flatten(sequences)[0].shape[1]
        hidden = [None] * num_steps
        outputs = []
        for index in range(num_steps):
            t = num_steps - 1 - index if layer.go_backwards else index
            step_inputs = tree.map_structure(lambda s, t=t: s[:, t], sequences)  # (B, F)
            output, new_states = cell(step_inputs, states, **cell_kwargs)  # (B, O)
            if not tree.is_nested(new_states):
                new_states = [new_states]
            flat = tree.flatten(new_states)
            probed = self.probe(flat[0])
            if probed is not None and probed is not flat[0]:  # h_t replaced by probe's
                output = probed if output is flat[0] else output
                new_states = tree.pack_sequence_as(new_states, [probed] + flat[1:])
                flat[0] = probed
            hidden[t] = flat[0]
            if mask is not None:
                keep = ops.cast(mask[:, t], "bool")  # (B,)
                if layer.zero_output_for_mask or not outputs:
                    previous = ops.zeros_like(output)
                else:
                    previous = outputs[-1]
                output = _select(keep, output, previous)
                flat = [
                    _select(keep, new, old)
                    for new, old in zip(tree.flatten(new_states), tree.flatten(states))
                ]
                new_states = tree.pack_sequence_as(new_states, flat)
            outputs.append(output)
            states = tuple(new_states)
        self.calls.append(hidden)
        return outputs[-1], ops.stack(outputs, axis=1), list(states)  # (B, O), (B, T, O)


def _select(keep, new, old):
    keep = ops.reshape(keep, (-1,) + (1,) * (len(new.shape) - 1))  # (B, 1, ...)
    return ops.where(keep, new, ops.cast(old, new.dtype))


@contextlib.contextmanager
def _preserved_rnn_states(model):
    """Restores the states of stateful RNNs, which a probe forward pass would advance."""
    saved = [
        (variable, variable.numpy())
        for _, layer in _rnn_layers(model)
        if layer.stateful and layer.states is not None
        for variable in tree.flatten(layer.states)
    ]
    try:
        yield
    finally:
        for variable, value in saved:
            variable.assign(value)


# === Layers and arguments ===


def _rnn_layers(model):
    """`(path, layer)` for every `keras.layers.RNN` nested in `model`."""
    return find_layers(model, keras.layers.RNN)


def _describe(entries):
    return ", ".join(
        repr(path) + (f" ({layer.name})" if path != layer.name else "") for path, layer in entries
    )


def _resolve_layers(model, names, argument, recurrent, received=None):
    """`(path, layer)` for each of `names`: a layer, its path (`iter_layers`), or its Keras
    `name` or `path`; a path of the walk wins over a Keras name or path."""
    received = names if received is None else received
    if not names:
        return []
    if recurrent:
        available = _rnn_layers(model)
        kind = "RNN layers (keras.layers.RNN)"
        if not available:
            raise ValueError(
                f"`{argument}` names RNN layers, but the model {model.name!r} has no "
                f"`keras.layers.RNN`. Received: {argument}={received!r}"
            )
    else:
        available = find_layers(model, lambda layer: bool(layer.trainable_weights))
        kind = "layers with trainable weights"
    entries = []
    for name in names:
        matches = [entry for entry in available if name is entry[1] or name == entry[0]] or [
            (path, layer) for path, layer in available if name in (layer.name, layer.path)
        ]
        if not matches:
            raise ValueError(
                f"`{argument}` names no layer of the model among the {kind}: "
                f"{_describe(available)}. Received: {argument}={received!r}"
            )
        if len(matches) > 1:
            raise ValueError(
                f"`{argument}`: several layers are named {name!r}; use their paths instead: "
                f"{_describe(matches)}. Received: {argument}={received!r}"
            )
        entries.append(matches[0])
    return entries


def _check_names(argument, names):
    if names is None:
        return
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise TypeError(
            f"`{argument}` must be a list of layer names or paths, or None. "
            f"Received: {argument}={names!r} of type {type(names).__name__}"
        )
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"Every entry of `{argument}` must be a non-empty str (a layer name or "
                f"path). Received: {argument}={names!r}"
            )


def _check_probe_batch(x, y, sample_weight):
    """Every array of the probe batch has a batch axis, of one size throughout."""
    if x is None:
        raise TypeError("`x` must hold the probe batch's inputs. Received: x=None")
    sizes = {}
    for argument, value in (("x", x), ("y", y), ("sample_weight", sample_weight)):
        if value is None:
            continue
        for leaf in tree.flatten(value):
            shape = tuple(leaf.shape) if hasattr(leaf, "shape") else np.shape(leaf)
            if not shape:
                raise ValueError(
                    f"Every array of `{argument}` needs a batch axis. "
                    f"Received: {argument} containing a scalar {leaf!r}"
                )
            sizes.setdefault(argument, set()).add(int(shape[0]))
    if len(set().union(*sizes.values())) > 1:
        received = ", ".join(f"{name} batch sizes {sorted(s)}" for name, s in sizes.items())
        raise ValueError(
            "`x`, `y` and `sample_weight` must share one batch size (first dimension). "
            f"Received: {received}"
        )


def _to_float64(gradient):
    import tensorflow as tf

    return tf.cast(tf.convert_to_tensor(gradient), tf.float64).numpy()  # IndexedSlices summed


def _per_example_norm(gradient):
    """`(B, ...)` float64 array -> `(B,)` L2 norms."""
    values = np.asarray(gradient, "float64")
    return np.sqrt(np.sum(np.square(values.reshape(values.shape[0], -1)), axis=1))
