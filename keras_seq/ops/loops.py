"""A counted loop in keras.ops that trains on every backend and compiles with XLA.

`keras.ops.fori_loop` and `keras.ops.while_loop` each fail one backend when the loop is
differentiated:

- TensorFlow: XLA compiles the gradient of a while loop only when its maximum number of
  iterations is known, which `ops.fori_loop` does not set; `ops.while_loop(...,
  maximum_iterations=n)` does.
- JAX: `ops.while_loop` is `jax.lax.while_loop`, which has no reverse-mode gradient at all;
  `ops.fori_loop` with a trip count known while tracing (a Python int, as every JAX shape is)
  is a `jax.lax.scan`, which has one.

PyTorch runs either as a Python loop. `counted_loop` picks the one that differentiates.
"""

import keras
from keras import ops


def counted_loop(num_iterations, body, init):
    """`body(index, value)` applied for `index = 0, 1, ..., num_iterations - 1`, from `init`.

    Equals `keras.ops.fori_loop(0, num_iterations, body, init)`, and is differentiable with
    respect to `init` and to whatever `body` closes over on TensorFlow (with and without
    XLA), JAX (where `num_iterations` is a Python int, as a static shape gives) and PyTorch.

    Args:
        num_iterations: int or scalar int tensor. Number of iterations.
        body: callable `(index, value) -> value`, `index` a scalar int32 tensor and `value`
            a nested structure of tensors shaped like `init`.
        init: nested structure of tensors. The initial value.

    Returns:
        The final value, structured like `init`.

    Example:
    ```python
    def body(index, value):
        return value + keras.ops.cast(index, "float32")

    total = keras_seq.ops.counted_loop(4, body, keras.ops.zeros(()))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(total), 0.0 + 1.0 + 2.0 + 3.0)
    ```
    """
    if keras.backend.backend() == "jax" and isinstance(num_iterations, int):
        return ops.fori_loop(0, num_iterations, body, init)
    _, result = ops.while_loop(
        lambda index, _: index < num_iterations,
        lambda index, value: (index + 1, body(index, value)),
        (ops.convert_to_tensor(0, "int32"), init),
        maximum_iterations=num_iterations,
    )
    return result
