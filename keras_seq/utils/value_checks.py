"""Checks of data values (ids in range, finite boxes) where the user's data enters a loss or model.

Constructor arguments are checked once, in Python (`keras_seq.utils.validation`); tensors such
as a loss' targets are only known when the loss runs, possibly inside a compiled function.
`check_values` applies one policy to them, whatever the execution mode:

- eagerly (a loss called on arrays, `model.fit(..., run_eagerly=True)`), the values are
  read and a bad one raises `ValueError` at once;
- inside a `tf.function` graph (Keras' `fit` / `evaluate` on the TensorFlow backend, where
  `jit_compile="auto"` leaves XLA off on CPU-only machines) the check is a
  `tf.debugging.Assert` op, which fails the step with `tf.errors.InvalidArgumentError`
  carrying the same message (quote characters removed: `y_true[boxes]`), and the
  offending value and its position;
- compiled with XLA (`jit_compile=True`, the default of `fit` on GPUs and TPUs) the assert
  op is dropped by the compiler (TensorFlow logs "Ignoring Assert operator"): nothing is
  checked there, as in keras-hub and Hugging Face. Run one step with `jit_compile=False`
  (or eagerly) to check a data set.

The cost in a graph is a few element-wise comparisons and a reduction over the checked
tensor, small beside the loss it guards. Symbolic Keras tensors (functional model
construction) are not checked.

On the other backends the values are read and checked eagerly (JAX outside `jax.jit`,
PyTorch), and not checked inside `jax.jit` (XLA, as above). TensorFlow is imported only on
the TensorFlow backend.
"""

import keras
import numpy as np


def _describe(value):
    value = np.asarray(value)
    if value.ndim == 0:
        value = value.item()
        return repr(int(value)) if float(value).is_integer() else repr(value)
    return np.array2string(value, separator=", ")


def _is_traced(x):
    """Whether `x` is a JAX tracer (inside `jax.jit`), whose values cannot be read."""
    if keras.backend.backend() != "jax":
        return False
    import jax

    return isinstance(x, jax.core.Tracer)


def _raise_if_invalid(name, values, invalid, message, suffix):
    """Eagerly: raise `ValueError` naming the first entry flagged by `invalid`, if any."""
    invalid = keras.ops.convert_to_numpy(invalid)
    if not invalid.any():
        return
    position = tuple(int(i) for i in np.argwhere(invalid)[0])
    value = keras.ops.convert_to_numpy(values)[position]
    index = ", ".join(str(i) for i in position)
    raise ValueError(f"{message} {name}[{index}]={_describe(value)}{suffix}")


def check_values(name, values, invalid, requirement, details=""):
    """`values`, checked: raise unless no entry is flagged by the bool tensor `invalid`.

    Use the returned tensor: in a graph it depends on the check, so that nothing computed
    from it (a gather that fails on its own on CPU) runs before the check does.

    Args:
        name: str. The argument the values came in (`"y_true"`, `"y_true['boxes']"`).
        values: the tensor or array checked.
        invalid: bool tensor whose shape is `values.shape` or a prefix of it (e.g. one flag
            per box of `(batch_size, num_targets, 4)` boxes); `True` marks a bad entry.
        requirement: str. What the values must be, after "`name` must ".
        details: str. Other values the reader needs (e.g. `"vocabulary_size=8"`).

    Returns:
        `values` (in a graph, an identity of it that runs after the check).

    Raises:
        ValueError: eagerly, naming `name`, the first bad entry's position and value.
        tf.errors.InvalidArgumentError: when the graph built here runs with a bad entry
            (the same message). Nothing under XLA (see the module docstring).
    """
    if isinstance(values, keras.KerasTensor) or isinstance(invalid, keras.KerasTensor):
        return values
    suffix = f" ({details})" if details else ""
    message = f"`{name}` must {requirement}. Received:"
    if keras.backend.backend() != "tensorflow":
        if _is_traced(invalid):
            return values  # Compiled by JAX (XLA): not checked, as under XLA on TensorFlow.
        _raise_if_invalid(name, values, invalid, message, suffix)
        return values
    import tensorflow as tf

    if tf.executing_eagerly():
        _raise_if_invalid(name, values, invalid, message, suffix)
        return values
    invalid = tf.convert_to_tensor(invalid)
    values = tf.convert_to_tensor(values)
    flat = tf.reshape(invalid, [-1])
    first = tf.argmax(tf.cast(flat, tf.int32), output_type=tf.int32)
    row_shape = tf.shape(values)[invalid.shape.rank :]
    rows = tf.reshape(values, tf.concat([[tf.size(flat)], row_shape], 0))  # one row per flag
    # The position of `first` in `invalid` (tf.unravel_index does not compile with XLA).
    shape = tf.shape(invalid, out_type=tf.int32)
    position = (first // tf.math.cumprod(shape, exclusive=True, reverse=True)) % shape
    data = [f"{message} {name} at position", position, "holds", tf.gather(rows, first)]
    data += [details] if details else []
    # The error prints string tensors with quotes escaped (y_true[\'boxes\']): drop them.
    data = [
        item.replace("'", "").replace('"', "") if isinstance(item, str) else item for item in data
    ]
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(invalid)),
        data,
        summarize=16,
        name=f"check_{name.split('[')[0]}",
    )
    with tf.control_dependencies([check]):
        return tf.identity(values)


def check_token_ids(name, ids, vocabulary_size):
    """`ids`, checked as token ids of a vocabulary of `vocabulary_size`.

    An embedding lookup does not check its ids: under XLA an id `>= vocabulary_size` is
    clamped to the last row, a negative id wraps around to `vocabulary_size + id` in every
    mode, and float ids are truncated. So integer ids must lie in `[0, vocabulary_size)`
    (checked as `check_values` does) and float or bool ids are refused whatever their values.

    Raises:
        TypeError: for ids of a float, bool or non-numeric dtype.
        ValueError: eagerly, naming the first id out of range, its position and
            `vocabulary_size` (`tf.errors.InvalidArgumentError` in a graph).
    """
    if not hasattr(ids, "dtype"):
        ids = np.asarray(ids)
    try:
        dtype = keras.backend.standardize_dtype(ids.dtype)
    except ValueError:  # e.g. NumPy strings
        dtype = str(ids.dtype)
    if "int" not in dtype:
        hint = "; convert whole-number floats with `.astype('int32')`" if "float" in dtype else ""
        raise TypeError(
            f"`{name}` must be integer token ids. Received: {name} of dtype {dtype}{hint}"
        )
    if isinstance(ids, keras.KerasTensor):
        return ids
    invalid = keras.ops.logical_or(
        keras.ops.less(ids, 0),
        keras.ops.greater_equal(ids, keras.ops.cast(vocabulary_size, dtype)),
    )
    return check_values(
        name,
        ids,
        invalid,
        "hold token ids in [0, vocabulary_size)",
        f"vocabulary_size={vocabulary_size}",
    )
