"""The public layer-contract harness: test any Keras layer or recurrent cell the way
keras_seq tests its own, on the TensorFlow, JAX or PyTorch backend."""

from keras_seq.testing.checks import check_build
from keras_seq.testing.checks import check_config
from keras_seq.testing.checks import check_jit_compile
from keras_seq.testing.checks import check_mixed_precision
from keras_seq.testing.checks import check_saving
from keras_seq.testing.checks import check_symbolic_call
from keras_seq.testing.checks import check_training
from keras_seq.testing.checks import functional_model
from keras_seq.testing.contract import run_cell_test
from keras_seq.testing.contract import run_layer_test
from keras_seq.testing.masking import check_masking
