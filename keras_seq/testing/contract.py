"""Run the whole layer contract on a layer class or a recurrent cell class."""

import keras

from keras_seq.testing import checks
from keras_seq.testing import masking


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    call_kwargs=None,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    padding_mask=None,
    mask_argument="mask",
    expected_output_mask="same",
    run_training_check=True,
    run_jit_check=True,
    run_mixed_precision_check=True,
    mixed_precision_policies=("mixed_float16", "mixed_bfloat16"),
):
    """Run the eight checks of the keras_seq layer contract on `layer_cls(**init_kwargs)`.

    The public entry point of the harness: users test their own layers with it, exactly as
    keras_seq tests its own. Each check raises `AssertionError` naming what broke. Every check
    runs on the TensorFlow, JAX and PyTorch backends (gradients with each backend's own
    differentiation; `jit_compile=True` is XLA on TensorFlow and JAX, `torch.compile` on
    PyTorch).

    Args:
        layer_cls: the layer class under test.
        init_kwargs: dict of constructor arguments.
        input_data: the first call argument: an array or a list / dict of arrays, with a
            batch axis first.
        call_kwargs: dict of other call arguments; arrays in it become model inputs.
        expected_output_shape: optional shape (or structure of shapes) of the outputs.
        expected_num_trainable_weights, expected_num_non_trainable_weights: optional exact
            weight counts after building.
        padding_mask: optional bool array `(batch_size, sequence_length)`, `True` = real
            token (a list for list inputs); runs the mask check when given.
        mask_argument: name of the explicit mask call argument. Defaults to `"mask"`.
        expected_output_mask: see `check_masking`. Defaults to `"same"`.
        run_training_check, run_jit_check, run_mixed_precision_check: bools to skip a check
            that does not apply; say why in the calling test.
        mixed_precision_policies: policies of the mixed-precision check.

    Example:
    ```python
    @keras.saving.register_keras_serializable(package="my_package")
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor
            self.supports_masking = True

        def build(self, input_shape):
            self.gain = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, inputs):
            return inputs * self.gain * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    keras_seq.testing.run_layer_test(
        Scale, {"factor": 3.0}, np.ones((2, 5, 3), "float32"),
        expected_output_shape=(2, 5, 3), expected_num_trainable_weights=1,
        padding_mask=np.array([[True] * 5, [True, True, False, False, False]]),
    )
    ```
    """

    def make_layer(dtype=None):
        kwargs = dict(init_kwargs)
        if dtype is not None:
            kwargs["dtype"] = dtype
        return layer_cls(**kwargs)

    checks.check_config(make_layer())
    _run_model_checks(
        make_layer,
        input_data,
        call_kwargs=call_kwargs,
        expected_output_shape=expected_output_shape,
        expected_num_trainable_weights=expected_num_trainable_weights,
        expected_num_non_trainable_weights=expected_num_non_trainable_weights,
        padding_mask=padding_mask,
        mask_argument=mask_argument,
        expected_output_mask=expected_output_mask,
        run_training_check=run_training_check,
        run_jit_check=run_jit_check,
        run_mixed_precision_check=run_mixed_precision_check,
        mixed_precision_policies=mixed_precision_policies,
    )


def run_cell_test(cell_cls, init_kwargs, input_data, rnn_kwargs=None, **options):
    """Run the contract on a recurrent cell, inside `keras.layers.RNN`.

    The config check runs on the cell itself; every other check runs on
    `keras.layers.RNN(cell, **rnn_kwargs)` called on `input_data` `(batch_size, time, ...)`,
    which is how cells are used. `rnn_kwargs` defaults to `{"return_sequences": True}`;
    with `padding_mask`, the mask check uses the RNN's `mask` argument. `**options` are the
    keyword arguments of `run_layer_test` other than `mask_argument` (`call_kwargs`,
    `expected_output_shape`, `padding_mask`, `run_jit_check`, ...).

    Example:
    ```python
    keras_seq.testing.run_cell_test(
        keras_seq.layers.GRUCell, {"units": 4}, np.ones((2, 5, 3), "float32"),
        expected_output_shape=(2, 5, 4), expected_num_trainable_weights=3,
    )
    ```
    """
    rnn_kwargs = {"return_sequences": True} if rnn_kwargs is None else dict(rnn_kwargs)
    checks.check_config(cell_cls(**init_kwargs))

    def make_layer(dtype=None):
        kwargs = dict(init_kwargs)
        layer_kwargs = dict(rnn_kwargs)
        if dtype is not None:
            kwargs["dtype"] = dtype
            layer_kwargs["dtype"] = dtype
        return keras.layers.RNN(cell_cls(**kwargs), **layer_kwargs)

    _run_model_checks(make_layer, input_data, mask_argument="mask", **options)


def _run_model_checks(
    make_layer,
    input_data,
    *,
    call_kwargs=None,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    padding_mask=None,
    mask_argument="mask",
    expected_output_mask="same",
    run_training_check=True,
    run_jit_check=True,
    run_mixed_precision_check=True,
    mixed_precision_policies=("mixed_float16", "mixed_bfloat16"),
):
    call_kwargs = call_kwargs or {}
    checks.check_build(
        make_layer,
        input_data,
        call_kwargs,
        expected_num_trainable_weights=expected_num_trainable_weights,
        expected_num_non_trainable_weights=expected_num_non_trainable_weights,
    )
    checks.check_symbolic_call(make_layer, input_data, call_kwargs, expected_output_shape)
    checks.check_saving(make_layer, input_data, call_kwargs)
    if padding_mask is not None:
        masking.check_masking(
            make_layer,
            input_data,
            padding_mask,
            call_kwargs,
            mask_argument=mask_argument,
            expected_output_mask=expected_output_mask,
        )
    if run_training_check:
        checks.check_training(make_layer, input_data, call_kwargs)
    if run_jit_check:
        checks.check_jit_compile(make_layer, input_data, call_kwargs)
    if run_mixed_precision_check:
        checks.check_mixed_precision(
            make_layer, input_data, call_kwargs, policies=mixed_precision_policies
        )
