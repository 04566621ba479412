"""Set-up for the end-to-end tests: the same environment and per-test Keras state as tests/.

Every test collected from this directory is marked `integration`, so
`pytest integration_tests -m integration` selects all of them.
"""

import os
import pathlib

# Both must be set before keras (and through it tensorflow) is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"  # the tests target the TensorFlow backend

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise RuntimeError(
        "keras_seq's integration tests need the TensorFlow backend, but Keras was imported with "
        f"the {keras.backend.backend()!r} backend before integration_tests/conftest.py could set "
        "KERAS_BACKEND=tensorflow."
    )

HERE = pathlib.Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def clean_keras_state():
    """Seed every test with 0; afterwards clear the session and restore the float32 policy."""
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
    keras.config.set_dtype_policy("float32")
