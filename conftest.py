"""Test set-up shared by tests/ and integration_tests/: the environment before Keras is
imported, and a clean Keras state per test.

The tests run on the backend in `KERAS_BACKEND`, TensorFlow when it is unset. On another
backend (`KERAS_BACKEND=jax`) only the tests marked `backends` are collected: the others use
TensorFlow itself (tf.data, tf.function, tf.distribute) or compare against it. A marker
naming backends (`pytest.mark.backends("jax")`) limits a test to those (and TensorFlow):
tests checked on JAX whose NumPy comparisons do not yet detach PyTorch tensors.
"""

import os

# Both must be set before keras (and through it tensorflow) is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() != os.environ["KERAS_BACKEND"]:
    raise RuntimeError(
        f"KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}, but Keras was imported with the "
        f"{keras.backend.backend()!r} backend before conftest.py ran (a keras.json, or a "
        "plugin importing Keras first)."
    )


def pytest_collection_modifyitems(config, items):
    """Off TensorFlow, deselect the tests not marked `backends` (they need TensorFlow), and
    those whose marker names other backends."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return

    def runs_here(item):
        marker = item.get_closest_marker("backends")
        return marker is not None and (not marker.args or backend in marker.args)

    selected = [item for item in items if runs_here(item)]
    deselected = [item for item in items if not runs_here(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


# A full garbage collection after every test cost about 0.2 s each with TensorFlow loaded
# (more than the median test itself: 36 s of teardown for 28 s of tests in tests/ops and
# tests/layers/embeddings); Python's own collector runs in between, and a full one every
# `_COLLECT_EVERY` tests bounds what cycles may hold.
_COLLECT_EVERY = 25
_tests_since_collection = 0


@pytest.fixture(autouse=True)
def clean_keras_state():
    """Seed every test with 0; afterwards clear the session and restore the float32 policy."""
    global _tests_since_collection
    keras.utils.set_random_seed(0)
    yield
    _tests_since_collection += 1
    collect = _tests_since_collection >= _COLLECT_EVERY
    if collect:
        _tests_since_collection = 0
    keras.backend.clear_session(free_memory=collect)
    keras.config.set_dtype_policy("float32")
