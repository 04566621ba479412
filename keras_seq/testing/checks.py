"""The checks of the keras_seq layer contract; masks are in `masking.py`.

Each check is a plain function that raises `AssertionError` with a message saying what broke
and how to fix it, so it works under pytest, unittest or a script. Checks other than
`check_config` take `make_layer`, a callable returning a fresh, unbuilt layer; it accepts an
optional `dtype` keyword (a dtype policy name) for the mixed-precision check. `input_data` is
the first positional call argument (an array or a nested structure of arrays) and
`call_kwargs` the other call arguments; arrays inside `call_kwargs` become model inputs.
"""

import inspect
import json
import os
import tempfile

import keras
import numpy as np
from keras import ops
from keras import tree

# --------------------------------------------------------------------------------------------
# Helpers shared by the checks.


def _is_array(x):
    return isinstance(x, np.ndarray) or (
        hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, keras.KerasTensor)
    )


def _to_numpy(structure):
    return tree.map_structure(
        lambda x: None if x is None else np.asarray(ops.convert_to_numpy(x)), structure
    )


def _describe(layer):
    return f"{type(layer).__name__} (name={layer.name!r})"


def _float_leaves(structure):
    return [
        x
        for x in tree.flatten(structure)
        if x is not None and "float" in keras.backend.standardize_dtype(x.dtype)
    ]


def _flatten_shapes(shapes):
    """Flatten a shape or a nested structure of shapes into a list of tuples."""
    if isinstance(shapes, (tuple, list)) and all(d is None or isinstance(d, int) for d in shapes):
        return [tuple(shapes)]
    if isinstance(shapes, dict):
        shapes = [shapes[key] for key in sorted(shapes)]
    return [shape for item in shapes for shape in _flatten_shapes(item)]


def _assert_allclose(actual, expected, atol, rtol, what, same_structure=True):
    actual, expected = _to_numpy(actual), _to_numpy(expected)
    if same_structure:
        try:
            tree.assert_same_structure(actual, expected)
        except (ValueError, TypeError) as error:
            raise AssertionError(f"{what}: output structures differ: {error}") from None
    elif len(tree.flatten(actual)) != len(tree.flatten(expected)):
        raise AssertionError(
            f"{what}: {len(tree.flatten(actual))} outputs, expected {len(tree.flatten(expected))}."
        )
    for index, (a, e) in enumerate(zip(tree.flatten(actual), tree.flatten(expected))):
        if a.shape != e.shape:
            raise AssertionError(f"{what}: output {index} has shape {a.shape}, expected {e.shape}.")
        if not np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=False):
            diff = np.max(np.abs(a.astype("float64") - e.astype("float64")))
            raise AssertionError(
                f"{what}: output {index} differs by up to {diff:.3g} (atol={atol}, rtol={rtol})."
            )


def functional_model(layer, input_data, call_kwargs=None, wrap_inputs=None):
    """Build a functional model calling `layer` on inputs shaped like the given data.

    Every array leaf of `input_data` and of `call_kwargs` becomes a `keras.Input` with a fixed
    batch size; other `call_kwargs` values are passed through. `wrap_inputs(symbolic_inputs,
    symbolic_kwargs)` may rewrite the symbolic first argument before the call (the mask check
    uses it to attach a Keras mask). Returns `(model, flat_numpy_inputs)`.
    """
    call_kwargs = call_kwargs or {}
    flat_inputs, flat_values = [], []

    def to_input(x):
        if not _is_array(x):
            return x
        x = np.asarray(ops.convert_to_numpy(x))
        symbolic = keras.Input(
            shape=x.shape[1:], batch_size=x.shape[0], dtype=keras.backend.standardize_dtype(x.dtype)
        )
        flat_inputs.append(symbolic)
        flat_values.append(x)
        return symbolic

    symbolic_data = tree.map_structure(to_input, input_data)
    symbolic_kwargs = {
        key: tree.map_structure(to_input, value) if value is not None else None
        for key, value in call_kwargs.items()
    }
    if wrap_inputs is not None:
        symbolic_data = wrap_inputs(symbolic_data, flat_inputs, flat_values)
    outputs = layer(symbolic_data, **symbolic_kwargs)
    model = keras.Model(flat_inputs, outputs)
    return model, flat_values


# --------------------------------------------------------------------------------------------
# 1. Config.


def check_config(layer):
    """Config is JSON-serializable, complete, registered and round-trips unchanged.

    Every parameter of `type(layer).__init__` (other than `*args` / `**kwargs`) must appear in
    `get_config()`; `from_config(get_config()).get_config()` must equal the original; the class
    must be registered so `keras.saving.deserialize_keras_object` finds it by name.
    """
    cls = type(layer)
    config = layer.get_config()
    try:
        encoded = json.dumps(config, sort_keys=True)
    except TypeError as error:
        raise AssertionError(
            f"{cls.__name__}.get_config() is not JSON-serializable ({error}). Serialize nested "
            "objects with keras.saving.serialize_keras_object; never put classes, callables "
            "or tensors in a config."
        ) from None
    parameters = [
        name
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self"
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    missing = [name for name in parameters if name not in config]
    if missing:
        raise AssertionError(
            f"{cls.__name__}.get_config() is missing constructor arguments {missing}. "
            "Return super().get_config() plus every constructor argument."
        )
    revived = cls.from_config(json.loads(encoded))
    revived_encoded = json.dumps(revived.get_config(), sort_keys=True)
    if revived_encoded != encoded:
        raise AssertionError(
            f"{cls.__name__}: from_config(get_config()).get_config() differs from the "
            f"original.\n  original: {encoded}\n  revived:  {revived_encoded}"
        )
    registered_name = keras.saving.get_registered_name(cls)
    if keras.saving.get_registered_object(registered_name) is not cls:
        raise AssertionError(
            f"{cls.__name__} is not registered for serialization, so a .keras file holding it "
            "cannot be reloaded. Decorate it with "
            "@keras.saving.register_keras_serializable(package=...)."
        )
    serialized = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    if type(clone) is not cls:
        raise AssertionError(
            f"deserialize_keras_object gave {type(clone).__name__}, expected {cls.__name__}."
        )
    return config


# --------------------------------------------------------------------------------------------
# 2. Build from shape.


def _weight_counts(layer):
    return len(layer.trainable_weights), len(layer.non_trainable_weights)


def check_build(
    make_layer,
    input_data,
    call_kwargs=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
):
    """Building from shapes alone creates every weight, with the expected counts.

    A layer called once records its build config; a fresh layer given only that config via
    `build_from_config` (what `.keras` loading does) must be built with exactly the same
    weights, and calling it afterwards must create none.
    """
    call_kwargs = call_kwargs or {}
    called = make_layer()
    called(input_data, **call_kwargs)
    counts = _weight_counts(called)
    build_config = called.get_build_config()
    if build_config is None:
        raise AssertionError(
            f"{_describe(called)} records no build config after a call; rely on Keras' "
            "default get_build_config() and implement build(input_shape)."
        )
    fresh = make_layer()
    fresh.build_from_config(build_config)
    if not fresh.built:
        raise AssertionError(f"{_describe(fresh)} is not built after build_from_config().")
    fresh_counts = _weight_counts(fresh)
    if fresh_counts != counts:
        raise AssertionError(
            f"{_describe(fresh)} built from shapes has (trainable, non-trainable) weights "
            f"{fresh_counts}, but {counts} after a call: build() must create every weight "
            "(and build every sublayer), never call()."
        )
    fresh(input_data, **call_kwargs)
    if _weight_counts(fresh) != fresh_counts:
        raise AssertionError(
            f"{_describe(fresh)} created weights in call() after being built: "
            f"{fresh_counts} -> {_weight_counts(fresh)}."
        )
    for expected, actual, kind in (
        (expected_num_trainable_weights, counts[0], "trainable"),
        (expected_num_non_trainable_weights, counts[1], "non-trainable"),
    ):
        if expected is not None and expected != actual:
            raise AssertionError(
                f"{_describe(called)} has {actual} {kind} weights; expected {expected}."
            )
    return counts


# --------------------------------------------------------------------------------------------
# 3. Symbolic call == eager call.


def check_symbolic_call(make_layer, input_data, call_kwargs=None, expected_output_shape=None):
    """A symbolic call gives the same structure, shapes and dtypes as the eager call."""
    call_kwargs = call_kwargs or {}

    def symbolic(x):
        if not _is_array(x):
            return x
        return keras.KerasTensor(tuple(x.shape), dtype=keras.backend.standardize_dtype(x.dtype))

    layer = make_layer()
    symbolic_outputs = layer(
        tree.map_structure(symbolic, input_data),
        **{
            k: tree.map_structure(symbolic, v) if v is not None else None
            for k, v in call_kwargs.items()
        },
    )
    eager_outputs = layer(input_data, **call_kwargs)
    try:
        tree.assert_same_structure(symbolic_outputs, eager_outputs)
    except (ValueError, TypeError) as error:
        raise AssertionError(
            f"{_describe(layer)}: symbolic and eager outputs differ in structure: {error}"
        ) from None
    for index, (s, e) in enumerate(
        zip(tree.flatten(symbolic_outputs), tree.flatten(eager_outputs))
    ):
        if tuple(s.shape) != tuple(e.shape):
            raise AssertionError(
                f"{_describe(layer)}: output {index} has symbolic shape {tuple(s.shape)} but "
                f"eager shape {tuple(e.shape)}; fix compute_output_shape/compute_output_spec."
            )
        s_dtype = keras.backend.standardize_dtype(s.dtype)
        e_dtype = keras.backend.standardize_dtype(e.dtype)
        if s_dtype != e_dtype:
            raise AssertionError(
                f"{_describe(layer)}: output {index} has symbolic dtype {s_dtype} but eager "
                f"dtype {e_dtype}."
            )
    if expected_output_shape is not None:
        actual = [tuple(x.shape) for x in tree.flatten(eager_outputs)]
        expected = _flatten_shapes(expected_output_shape)
        if actual != expected:
            raise AssertionError(
                f"{_describe(layer)}: output shapes {actual}, expected {expected}."
            )
    return eager_outputs


# --------------------------------------------------------------------------------------------
# 4. .keras round trip.


def check_saving(make_layer, input_data, call_kwargs=None, atol=1e-6):
    """Inside a functional model, a `.keras` save and reload keeps the class and outputs."""
    layer = make_layer()
    model, values = functional_model(layer, input_data, call_kwargs)
    expected = model(values)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    revived_layer = reloaded.get_layer(layer.name)
    if type(revived_layer) is not type(layer):
        raise AssertionError(
            f"After reload, layer {layer.name!r} is a {type(revived_layer).__name__}, "
            f"expected {type(layer).__name__}."
        )
    # A reloaded functional model returns lists where the original returned tuples: that is
    # Keras' functional serialization, not the layer, so outputs are compared leaf by leaf.
    _assert_allclose(
        reloaded(values),
        expected,
        atol,
        0.0,
        f".keras round trip of {_describe(layer)}",
        same_structure=False,
    )


# --------------------------------------------------------------------------------------------
# 6. One fit step with finite gradients.


class _ScalarPerExample(keras.layers.Layer):
    """Reduce every float output to one scalar per example: sum of mean squares and means."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # Takes masked outputs silently; returns no mask.

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, outputs):
        total = None
        for x in _float_leaves(outputs):
            x = ops.cast(x, "float32")
            axes = list(range(1, len(x.shape)))
            term = ops.mean(ops.square(x) + x, axis=axes) if axes else ops.square(x) + x
            total = term if total is None else total + term
        return ops.expand_dims(total, -1)

    def compute_output_spec(self, outputs):
        batch = tree.flatten(outputs)[0].shape[0]
        return keras.KerasTensor((batch, 1), dtype="float32")


def _is_float(value):
    return "float" in keras.backend.standardize_dtype(value.dtype)


def _gradients_tensorflow(model, values, sources):
    import tensorflow as tf

    tensors = [tf.convert_to_tensor(value) for value in values]
    with tf.GradientTape() as tape:
        for tensor in tensors:
            if tensor.dtype.is_floating:
                tape.watch(tensor)
        loss = ops.mean(model(tensors, training=True))
    targets = [tensors[source] if isinstance(source, int) else source for source in sources]
    return tape.gradient(loss, targets)


def _gradients_torch(model, values, sources):
    import torch

    tensors = [ops.convert_to_tensor(value) for value in values]
    for tensor in tensors:
        if tensor.is_floating_point():
            tensor.requires_grad_(True)
    loss = ops.mean(model(tensors, training=True))
    targets = [tensors[source] if isinstance(source, int) else source.value for source in sources]
    if not loss.requires_grad:  # no source reaches the loss (all behind stop_gradient)
        return [None] * len(targets)
    # allow_unused: None for a source the loss does not depend on, as with tf.GradientTape.
    return torch.autograd.grad(loss, targets, allow_unused=True)


def _jaxpr_inputs_used(closed_jaxpr):
    """Which inputs of a traced function its outputs depend on, walking its equations back.

    An equation counts as using all of its inputs (nested calls are not entered), so an
    input is reported unused only when no path leads from it to an output.
    """
    jaxpr = closed_jaxpr.jaxpr
    needed = {var for var in jaxpr.outvars if not hasattr(var, "val")}  # literals have .val
    for equation in reversed(jaxpr.eqns):
        if any(var in needed for var in equation.outvars):
            needed.update(var for var in equation.invars if not hasattr(var, "val"))
    return [var in needed for var in jaxpr.invars]


def _gradients_jax(model, values, sources):
    import jax

    trainable = model.trainable_variables
    non_trainable = [variable.value for variable in model.non_trainable_variables]
    float_positions = [index for index, value in enumerate(values) if _is_float(value)]

    def loss_of(trainable_values, float_values):
        inputs = list(values)
        for index, value in zip(float_positions, float_values):
            inputs[index] = value
        outputs, _ = model.stateless_call(
            trainable_values, non_trainable, inputs, training=True
        )
        return ops.mean(outputs)

    arguments = ([variable.value for variable in trainable], [values[i] for i in float_positions])
    weight_gradients, input_gradients = jax.grad(loss_of, argnums=(0, 1))(*arguments)
    # jax.grad gives zeros, not None, where no gradient flows to a source (unused, or behind
    # stop_gradient). The linearized function shows which: its tangent computation reads only
    # the tangents of the sources that a gradient reaches (symbolic zeros are dropped).
    _, linearized = jax.linearize(loss_of, *arguments)
    used = _jaxpr_inputs_used(jax.make_jaxpr(linearized)(*arguments))
    weight_used, input_used = used[: len(trainable)], used[len(trainable) :]
    gradients = []
    for source in sources:
        if isinstance(source, int):
            position = float_positions.index(source)
            gradient, is_used = input_gradients[position], input_used[position]
        else:
            position = next(i for i, variable in enumerate(trainable) if variable is source)
            gradient, is_used = weight_gradients[position], weight_used[position]
        gradients.append(gradient if is_used else None)
    return gradients


def _gradients(model, values, sources):
    """Gradients of `mean(model(values, training=True))` w.r.t. `sources` (trainable variables
    of `model`, or indices of float entries of `values`); `None` where the loss does not depend
    on a source. Keras has no backend-neutral tape, so each backend uses its own."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _gradients_tensorflow(model, values, sources)
    if backend == "jax":
        return _gradients_jax(model, values, sources)
    if backend == "torch":
        return _gradients_torch(model, values, sources)
    raise NotImplementedError(
        "check_training takes gradients with the TensorFlow, JAX or PyTorch backend. "
        f"Received: backend={backend!r}"
    )


def check_training(make_layer, input_data, call_kwargs=None):
    """One `fit` step runs with a finite loss; every trainable weight gets a finite gradient.

    A layer without trainable weights (stochastic depth, a fixed encoding) must instead pass a
    finite gradient back to its float inputs in training mode. Gradients are taken with the
    backend's own differentiation (`tf.GradientTape`, `jax.grad`, `torch.autograd.grad`).
    """
    layer = make_layer()
    model, values = functional_model(layer, input_data, call_kwargs)
    reduced = keras.Model(model.inputs, _ScalarPerExample()(model.outputs))
    weights = layer.trainable_weights
    if not weights:
        float_inputs = [index for index, value in enumerate(values) if _is_float(value)]
        if not float_inputs:
            raise AssertionError(
                f"{_describe(layer)} has neither trainable weights nor float inputs to train."
            )
        gradients = _gradients(reduced, values, float_inputs)
        if any(g is None or not np.all(np.isfinite(ops.convert_to_numpy(g))) for g in gradients):
            raise AssertionError(
                f"{_describe(layer)} has no trainable weights and does not pass a finite "
                "gradient back to its float inputs."
            )
        return
    gradients = _gradients(reduced, values, weights)
    missing = [w.path for w, g in zip(weights, gradients) if g is None]
    if missing:
        raise AssertionError(
            f"{_describe(layer)}: no gradient reaches trainable weights {missing}; every "
            "trainable weight must take part in the output."
        )
    non_finite = [
        w.path
        for w, g in zip(weights, gradients)
        if not np.all(np.isfinite(ops.convert_to_numpy(g)))
    ]
    if non_finite:
        raise AssertionError(f"{_describe(layer)}: non-finite gradients for {non_finite}.")
    reduced.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    batch_size = values[0].shape[0]
    history = reduced.fit(
        values, np.zeros((batch_size, 1), "float32"), batch_size=batch_size, epochs=1, verbose=0
    )
    if not np.isfinite(history.history["loss"][-1]):
        raise AssertionError(f"{_describe(layer)}: fit() gave a non-finite loss.")


# --------------------------------------------------------------------------------------------
# 7. XLA.


def check_jit_compile(make_layer, input_data, call_kwargs=None, atol=1e-5, rtol=1e-5):
    """`jit_compile=True` prediction equals the eager call, and compilation really stays on.

    `jit_compile=True` compiles with XLA on TensorFlow and JAX, with `torch.compile` on
    PyTorch.
    """
    compiler = "torch.compile" if keras.backend.backend() == "torch" else "XLA"
    layer = make_layer()
    model, values = functional_model(layer, input_data, call_kwargs)
    expected = model(values, training=False)
    model.compile(jit_compile=True)
    if model.jit_compile is not True:
        raise AssertionError(
            f"Keras turned jit_compile off for a model holding {_describe(layer)} "
            f"(a layer sets supports_jit=False): it would not compile with {compiler}."
        )
    try:
        actual = model.predict(values, batch_size=values[0].shape[0], verbose=0)
    except Exception as error:  # Compilers raise backend-specific error types.
        raise AssertionError(
            f"{_describe(layer)} does not compile with {compiler}: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from error
    _assert_allclose(
        actual, expected, atol, rtol, f"jit_compile=True vs eager for {_describe(layer)}"
    )


# --------------------------------------------------------------------------------------------
# 8. Mixed precision.


def check_mixed_precision(
    make_layer, input_data, call_kwargs=None, policies=("mixed_float16", "mixed_bfloat16")
):
    """Under each mixed policy: the layer keeps the policy (also through its config), outputs
    in the compute dtype, weights float32, no NaN."""
    for policy_name in policies:
        policy = keras.DTypePolicy(policy_name)
        layer = make_layer(dtype=policy_name)
        revived = type(layer).from_config(layer.get_config())
        for which, candidate in (("", layer), (" after from_config(get_config())", revived)):
            if candidate.dtype_policy.name != policy_name:
                raise AssertionError(
                    f"{_describe(layer)} built with dtype={policy_name!r} has the policy "
                    f"{candidate.dtype_policy.name!r}{which}: pass `dtype` on to the base "
                    "class so that the policy is kept and saved."
                )
        outputs = layer(input_data, **(call_kwargs or {}))
        for index, x in enumerate(_float_leaves(outputs)):
            dtype = keras.backend.standardize_dtype(x.dtype)
            if dtype != policy.compute_dtype:
                raise AssertionError(
                    f"{_describe(layer)} under {policy_name}: output {index} is {dtype}, "
                    f"expected the compute dtype {policy.compute_dtype}."
                )
            values = np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))
            if not np.all(np.isfinite(values)):
                raise AssertionError(
                    f"{_describe(layer)} under {policy_name}: output {index} has NaN or inf."
                )
        wrong = [
            f"{w.path} ({keras.backend.standardize_dtype(w.dtype)})"
            for w in layer.weights
            if "float" in keras.backend.standardize_dtype(w.dtype)
            and keras.backend.standardize_dtype(w.dtype) != policy.variable_dtype
        ]
        if wrong:
            raise AssertionError(
                f"{_describe(layer)} under {policy_name}: weights must be "
                f"{policy.variable_dtype}; received {wrong}."
            )
