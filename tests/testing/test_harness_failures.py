"""Each contract check fails on a layer broken in the way it guards against.

Every broken layer here is correct except for the one defect its check exists to catch, and
each test asserts on the message, so a check that silently stopped checking would fail here.
They run on every backend (marker `backends`), except where a defect is TensorFlow's own.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_seq import testing

pytestmark = pytest.mark.backends

PACKAGE = "keras_seq_harness_tests"
X = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
MASK = np.array([[True] * 5, [True, True, True, False, False]])


@keras.saving.register_keras_serializable(package=PACKAGE)
class GoodScale(keras.layers.Layer):
    """A correct layer: the control for every broken one below."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.supports_masking = True

    def build(self, input_shape):
        self.gain = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gain")

    def call(self, inputs):
        return inputs * self.gain * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def make(cls, **kwargs):
    return lambda dtype=None: cls(**kwargs, **({"dtype": dtype} if dtype else {}))


def test_good_layer_passes_every_check():
    testing.run_layer_test(
        GoodScale,
        {"factor": 3.0},
        X,
        expected_output_shape=(2, 5, 3),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
        padding_mask=MASK,
    )


# 1. Config ------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class ForgetsArgument(GoodScale):
    def __init__(self, factor=2.0, offset=0.0, **kwargs):
        super().__init__(factor=factor, **kwargs)
        self.offset = offset


@keras.saving.register_keras_serializable(package=PACKAGE)
class NonJsonConfig(GoodScale):
    def get_config(self):
        return {**super().get_config(), "factor": np.float32(self.factor).reshape(1)}


class Unregistered(GoodScale):
    pass


@keras.saving.register_keras_serializable(package=PACKAGE)
class DriftingConfig(GoodScale):
    def get_config(self):
        return {**super().get_config(), "factor": self.factor + 1.0}


def test_config_check_catches_missing_argument():
    with pytest.raises(AssertionError, match=r"missing constructor arguments \['offset'\]"):
        testing.check_config(ForgetsArgument())


def test_config_check_catches_non_json_config():
    with pytest.raises(AssertionError, match="not JSON-serializable"):
        testing.check_config(NonJsonConfig())


def test_config_check_catches_unregistered_class():
    with pytest.raises(AssertionError, match="not registered"):
        testing.check_config(Unregistered())


def test_config_check_catches_config_that_does_not_round_trip():
    with pytest.raises(AssertionError, match="differs from the original"):
        testing.check_config(DriftingConfig())


# 2. Build from shape ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class UnbuiltSublayer(GoodScale):
    """Leaves its sublayer to build on first call, so build() alone misses its weights."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, name="dense")

    def call(self, inputs):
        return self.dense(inputs * self.gain)


def test_build_check_catches_sublayer_not_built_in_build():
    with pytest.raises(AssertionError, match="build\\(\\) must create every weight"):
        testing.check_build(make(UnbuiltSublayer), X)


def test_build_check_catches_wrong_weight_count():
    with pytest.raises(AssertionError, match="has 1 trainable weights; expected 2"):
        testing.check_build(make(GoodScale), X, expected_num_trainable_weights=2)


# 3. Symbolic == eager ------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class WrongOutputShape(GoodScale):
    def compute_output_shape(self, input_shape):
        return input_shape[:-1] + (7,)


def test_symbolic_check_catches_wrong_compute_output_shape():
    with pytest.raises(AssertionError, match="symbolic shape \\(2, 5, 7\\) but eager shape"):
        testing.check_symbolic_call(make(WrongOutputShape), X)


def test_symbolic_check_catches_unexpected_shape():
    with pytest.raises(AssertionError, match="expected"):
        testing.check_symbolic_call(make(GoodScale), X, expected_output_shape=(2, 5, 4))


# 4. .keras round trip -------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class UnsavedState(GoodScale):
    """Keeps a random projection as a plain array, which a .keras file does not hold."""

    def build(self, input_shape):
        super().build(input_shape)
        self.projection = np.random.normal(size=(input_shape[-1], input_shape[-1]))

    def call(self, inputs):
        return ops.matmul(inputs * self.gain, ops.cast(self.projection, inputs.dtype))


def test_saving_check_catches_state_lost_on_reload():
    with pytest.raises(AssertionError, match=".keras round trip .* differs"):
        testing.check_saving(make(UnsavedState), X)


# 5. Masks --------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class LeakyGlobalMean(GoodScale):
    """Accepts a mask but adds the mean over every position, padding included."""

    def call(self, inputs, mask=None):
        return inputs * self.gain + ops.mean(inputs, axis=1, keepdims=True)

    def compute_mask(self, inputs, mask=None):
        return mask


@keras.saving.register_keras_serializable(package=PACKAGE)
class IgnoresExplicitMask(GoodScale):
    """Zeroes padded steps only when the mask arrives implicitly, not through `mask=`."""

    def call(self, inputs, mask=None, padding_mask=None):
        keep = mask if padding_mask is None else None
        if keep is not None:
            inputs = inputs * ops.cast(keep, inputs.dtype)[..., None]
        return inputs * self.gain


@keras.saving.register_keras_serializable(package=PACKAGE)
class DropsOutputMask(GoodScale):
    def compute_mask(self, inputs, mask=None):
        return None


def test_mask_check_catches_leaking_padding():
    with pytest.raises(AssertionError, match="padded positions leak"):
        testing.check_masking(make(LeakyGlobalMean), X, MASK)


def test_mask_check_catches_explicit_and_keras_mask_disagreeing():
    with pytest.raises(AssertionError, match="Keras-mask path vs explicit mask"):
        testing.check_masking(make(IgnoresExplicitMask), X, MASK, mask_argument="padding_mask")


def test_mask_check_catches_missing_output_mask():
    with pytest.raises(AssertionError, match="returned no mask"):
        testing.check_masking(make(DropsOutputMask), X, MASK)


def test_mask_check_rejects_a_mask_that_hides_nothing():
    with pytest.raises(ValueError, match="`padding_mask` must hide at least one position"):
        testing.check_masking(make(GoodScale), X, np.ones((2, 5), bool))


def test_mask_check_rejects_fewer_masks_than_list_inputs():
    with pytest.raises(ValueError, match="one mask \\(or `None`\\) per input"):
        testing.check_masking(make(GoodScale), [X, X], [MASK])


# 6. Fit step and gradients ---------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class UnusedWeight(GoodScale):
    def build(self, input_shape):
        super().build(input_shape)
        self.unused = self.add_weight(shape=(1,), initializer="ones", name="unused")


@keras.saving.register_keras_serializable(package=PACKAGE)
class InfiniteGradient(GoodScale):
    def build(self, input_shape):
        self.gain = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="gain")

    def call(self, inputs):
        return inputs + ops.sqrt(ops.abs(self.gain))


def test_training_check_catches_weight_without_gradient():
    with pytest.raises(AssertionError, match="no gradient reaches trainable weights .*unused"):
        testing.check_training(make(UnusedWeight), X)


def test_training_check_catches_non_finite_gradient():
    with pytest.raises(AssertionError, match="non-finite gradients"):
        testing.check_training(make(InfiniteGradient), X)


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightlessScale(keras.layers.Layer):
    """No weights; `block` cuts the gradient to the inputs (the defect)."""

    def __init__(self, block=False, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def call(self, inputs):
        return 2.0 * (ops.stop_gradient(inputs) if self.block else inputs)

    def get_config(self):
        return {**super().get_config(), "block": self.block}


def test_training_check_of_a_weightless_layer_needs_a_gradient_to_the_inputs():
    testing.check_training(make(WeightlessScale), X)
    with pytest.raises(AssertionError, match="does not pass a finite gradient back"):
        testing.check_training(make(WeightlessScale, block=True), X)


# 7. XLA ----------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class HostCallback(GoodScale):
    def call(self, inputs):
        import tensorflow as tf

        doubled = tf.numpy_function(lambda x: 2 * x, [inputs], tf.float32, stateful=False)
        return tf.ensure_shape(doubled, inputs.shape) * self.gain


@keras.saving.register_keras_serializable(package=PACKAGE)
class OptsOutOfXLA(GoodScale):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_jit = False


@keras.saving.register_keras_serializable(package=PACKAGE)
class EagerOnlyBranch(GoodScale):
    def call(self, inputs):
        shift = 0.0 if _compiling(inputs) else 1.0
        return inputs * self.gain + shift


def _compiling(inputs):
    """Whether `inputs` are traced for a compiled function, asked of the backend itself."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    if backend == "jax":
        import jax

        return isinstance(inputs, jax.core.Tracer)
    import torch

    return torch.compiler.is_compiling()


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.numpy_function is TensorFlow's host callback, which XLA cannot compile; "
    "JAX compiles its own (jax.pure_callback) and torch.compile breaks the graph around it",
)
def test_jit_check_catches_host_callback():
    with pytest.raises(AssertionError, match="does not compile with XLA"):
        testing.check_jit_compile(make(HostCallback), X)


def test_jit_check_catches_layer_that_turns_xla_off():
    with pytest.warns(UserWarning, match="doesn't support `jit_compile=True`"):
        with pytest.raises(AssertionError, match="turned jit_compile off"):
            testing.check_jit_compile(make(OptsOutOfXLA), X)


def test_jit_check_catches_compiled_result_that_differs():
    with pytest.raises(AssertionError, match="jit_compile=True vs eager .* differs"):
        testing.check_jit_compile(make(EagerOnlyBranch), X)


# 8. Mixed precision ----------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class Float32Output(GoodScale):
    def call(self, inputs):
        return ops.cast(inputs * self.gain, "float32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class LowPrecisionWeight(GoodScale):
    def build(self, input_shape):
        self.gain = self.add_weight(
            shape=(input_shape[-1],), initializer="ones", dtype=self.compute_dtype, name="gain"
        )


@keras.saving.register_keras_serializable(package=PACKAGE)
class Overflows(GoodScale):
    def call(self, inputs):
        return ops.exp(inputs * self.gain + 20.0)


def test_mixed_precision_check_catches_float32_output():
    with pytest.raises(AssertionError, match="expected the compute dtype float16"):
        testing.check_mixed_precision(make(Float32Output), X)


def test_mixed_precision_check_catches_half_precision_weight():
    with pytest.raises(AssertionError, match="weights must be float32"):
        testing.check_mixed_precision(make(LowPrecisionWeight), X)


def test_mixed_precision_check_catches_overflow():
    with pytest.raises(AssertionError, match="NaN or inf"):
        testing.check_mixed_precision(make(Overflows), X, policies=("mixed_float16",))
