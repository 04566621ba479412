"""Test set-up shared by tests/ and integration_tests/: the environment before Keras is
imported, and a clean Keras state per test."""

import os

# Both must be set before keras (and through it tensorflow) is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"  # the tests target the TensorFlow backend

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise RuntimeError(
        "keras_seq's tests need the TensorFlow backend, but Keras was imported with the "
        f"{keras.backend.backend()!r} backend before conftest.py could set "
        "KERAS_BACKEND=tensorflow."
    )


@pytest.fixture(autouse=True)
def clean_keras_state():
    """Seed every test with 0; afterwards clear the session and restore the float32 policy."""
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
    keras.config.set_dtype_policy("float32")
