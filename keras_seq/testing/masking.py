"""Check 5 of the keras_seq layer contract: masks.

Keras mask == explicit mask, padded positions don't leak into real ones, and the output mask
is right. Shares its helpers with the other checks in `keras_seq.testing.checks`.
"""

import inspect

import keras
import numpy as np
from keras import ops
from keras import tree

from keras_seq.testing.checks import _assert_allclose
from keras_seq.testing.checks import _describe
from keras_seq.testing.checks import _to_numpy
from keras_seq.testing.checks import functional_model


class _AttachMask(keras.layers.Layer):
    """Identity on `inputs[0]` whose output carries `inputs[1]` as its Keras mask."""

    def call(self, inputs):
        return inputs[0]

    def compute_mask(self, inputs, mask=None):
        return ops.cast(inputs[1], "bool")

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, dtype=inputs[0].dtype)


def _attach_masks(padding_mask):
    """`wrap_inputs` hook of `functional_model` attaching `padding_mask` as Keras masks."""

    def wrap(symbolic_data, flat_inputs, flat_values):
        masks = padding_mask if isinstance(symbolic_data, (list, tuple)) else [padding_mask]
        data = list(symbolic_data) if isinstance(symbolic_data, (list, tuple)) else [symbolic_data]
        wrapped = []
        for x, mask in zip(data, masks):
            if mask is None:
                wrapped.append(x)
                continue
            mask = np.asarray(mask, dtype="bool")
            mask_input = keras.Input(shape=mask.shape[1:], batch_size=mask.shape[0], dtype="bool")
            flat_inputs.append(mask_input)
            flat_values.append(mask)
            wrapped.append(_AttachMask()([x, mask_input]))
        return (
            type(symbolic_data)(wrapped) if isinstance(symbolic_data, (list, tuple)) else wrapped[0]
        )

    return wrap


def _perturb_padded(input_data, padding_mask, rng):
    """Replace the padded positions of every masked input with large random values."""
    data = input_data if isinstance(input_data, (list, tuple)) else [input_data]
    masks = padding_mask if isinstance(input_data, (list, tuple)) else [padding_mask]
    perturbed = []
    for x, mask in zip(data, masks):
        x = np.array(ops.convert_to_numpy(x))
        if mask is not None:
            mask = np.asarray(mask, dtype="bool")
            padded = ~mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
            noise = (rng.standard_normal(x.shape) * 10.0).astype(x.dtype)
            x = np.where(padded, noise, x)
        perturbed.append(x)
    return type(input_data)(perturbed) if isinstance(input_data, (list, tuple)) else perturbed[0]


def _accepts_argument(layer, name):
    parameters = inspect.signature(layer.call).parameters
    return name in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def _time_mask(padding_mask):
    masks = padding_mask if isinstance(padding_mask, (list, tuple)) else [padding_mask]
    return np.asarray(next(m for m in masks if m is not None), dtype="bool")


def check_masking(
    make_layer,
    input_data,
    padding_mask,
    call_kwargs=None,
    mask_argument="mask",
    expected_output_mask="same",
    atol=1e-6,
):
    """Keras mask == explicit mask; padded positions don't leak; the output mask is right.

    `padding_mask` is a bool array `(batch_size, sequence_length)` (`True` = real token),
    or, for a list of inputs, a list with one mask or `None` per input; it must hide at least
    one position. The explicit path passes it as `mask_argument`; the implicit path attaches
    it as a Keras mask upstream in a functional model. Outputs whose leading axes match the
    mask are compared at unmasked positions when padded inputs are perturbed; other outputs
    (final states, pooled vectors) are compared whole. `expected_output_mask`: `"same"` (every
    non-`None` mask returned by `compute_mask` equals the input mask, and there is one),
    `None` (no output mask), or an explicit structure of arrays / `None`.
    """
    call_kwargs = dict(call_kwargs or {})
    if isinstance(input_data, (list, tuple)) and (
        not isinstance(padding_mask, (list, tuple)) or len(padding_mask) != len(input_data)
    ):
        raise ValueError(
            "For list inputs, `padding_mask` must be a list with one mask (or `None`) per "
            f"input. Received {len(input_data)} inputs and padding_mask of type "
            f"{type(padding_mask).__name__}"
            + (
                f" with {len(padding_mask)} entries."
                if isinstance(padding_mask, (list, tuple))
                else "."
            )
        )
    time_mask = _time_mask(padding_mask)
    if time_mask.all():
        raise ValueError(
            "`padding_mask` must hide at least one position, otherwise the mask check proves "
            f"nothing. Received a mask of shape {time_mask.shape} that is all True."
        )
    layer = make_layer()
    implicit_model, implicit_values = functional_model(
        layer, input_data, call_kwargs, wrap_inputs=_attach_masks(padding_mask)
    )
    implicit = implicit_model(implicit_values)
    if _accepts_argument(layer, mask_argument):
        # Layers whose call() has no mask argument only receive masks implicitly.
        explicit_kwargs = dict(call_kwargs)
        explicit_kwargs[mask_argument] = padding_mask
        explicit_model, explicit_values = functional_model(layer, input_data, explicit_kwargs)
        explicit = explicit_model(explicit_values)
        _assert_allclose(
            implicit, explicit, atol, 0.0, f"{_describe(layer)}: Keras-mask path vs explicit mask"
        )

    # Model inputs are the data leaves, then the kwargs leaves, then the attached masks.
    perturbed_data = _perturb_padded(input_data, padding_mask, np.random.default_rng(0))
    num_data = len(tree.flatten(input_data))
    perturbed = implicit_model(tree.flatten(perturbed_data) + implicit_values[num_data:])
    for index, (a, b) in enumerate(
        zip(tree.flatten(_to_numpy(implicit)), tree.flatten(_to_numpy(perturbed)))
    ):
        if a.shape[: time_mask.ndim] == time_mask.shape:
            a, b = a[time_mask], b[time_mask]
        if not np.allclose(a, b, atol=atol, rtol=0.0):
            raise AssertionError(
                f"{_describe(layer)}: output {index} changes at unmasked positions when "
                f"padded inputs change (max difference {np.max(np.abs(a - b)):.3g}): padded "
                "positions leak into real ones."
            )

    output_mask = layer.compute_mask(input_data, padding_mask)
    leaves = (
        [m for m in tree.flatten(output_mask) if m is not None] if output_mask is not None else []
    )
    if expected_output_mask == "same":
        if not leaves:
            raise AssertionError(
                f"{_describe(layer)}.compute_mask returned no mask; expected the input mask to "
                "propagate (pass expected_output_mask=None if the layer consumes it)."
            )
        for leaf in leaves:
            if not np.array_equal(np.asarray(ops.convert_to_numpy(leaf)), time_mask):
                raise AssertionError(
                    f"{_describe(layer)}.compute_mask returned a mask that differs from the "
                    "input mask."
                )
    elif expected_output_mask is None:
        if leaves:
            raise AssertionError(f"{_describe(layer)}.compute_mask returned a mask; expected none.")
    else:
        expected = tree.map_structure(
            lambda m: None if m is None else np.asarray(m, bool), expected_output_mask
        )
        actual = tree.map_structure(
            lambda m: None if m is None else np.asarray(ops.convert_to_numpy(m)), output_mask
        )
        if tree.flatten(
            tree.map_structure(lambda m: None if m is None else m.tolist(), actual)
        ) != tree.flatten(
            tree.map_structure(lambda m: None if m is None else m.tolist(), expected)
        ):
            raise AssertionError(
                f"{_describe(layer)}.compute_mask returned {actual}, expected {expected}."
            )
