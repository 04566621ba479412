"""apply_multi_worker_fixes leaves models alone outside a multi-worker strategy, and is
switched off from KERAS_FIXED_IN on. The fixes themselves, with two worker processes:
integration_tests/test_multi_worker.py."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from packaging.version import Version

from keras_seq.utils.multi_worker import KERAS_FIXED_IN
from keras_seq.utils.multi_worker import _needs_fixes
from keras_seq.utils.multi_worker import apply_multi_worker_fixes

PATCHED = ("_maybe_symbolic_build", "train_step", "test_step")


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _assert_untouched(model):
    for name in PATCHED:
        assert name not in vars(model), name
    history = model.fit(np.ones((4, 3)), np.ones((4, 2)), batch_size=2, verbose=0)
    assert np.ndim(history.history["loss"][0]) == 0


def test_no_op_on_the_default_strategy():
    model = _model()
    assert apply_multi_worker_fixes(model) is False
    _assert_untouched(model)


def test_no_op_under_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _model()
    assert model.distribute_strategy is strategy
    assert apply_multi_worker_fixes(model) is False
    _assert_untouched(model)


@pytest.mark.parametrize(
    "keras_version, fixed_in, expected",
    [
        ("3.15.1", None, True),  # no fixed release known yet
        ("3.15.1", "3.16.0", True),
        ("3.16.0.dev2025120300", "3.16.0", True),  # a nightly before the release
        ("3.16.0", "3.16.0", False),
        ("3.17.2", "3.16.0", False),
    ],
)
def test_needs_fixes_before_the_fixed_release_only(keras_version, fixed_in, expected):
    assert _needs_fixes(keras_version, fixed_in) is expected


def test_fixed_in_is_none_or_a_version():
    assert KERAS_FIXED_IN is None or Version(KERAS_FIXED_IN) > Version("3.15.1")


@pytest.mark.slow  # a fresh TensorFlow process: about 10 s
def test_no_op_for_a_single_worker_multi_worker_strategy():
    # Without TF_CONFIG the strategy has one worker, where Keras' collective branches are not
    # taken and `fit` works as is. Own process: the strategy configures collectives globally.
    script = textwrap.dedent(
        """
        import os
        os.environ.pop("TF_CONFIG", None)
        import keras, numpy as np, tensorflow as tf
        from keras_seq.utils.multi_worker import apply_multi_worker_fixes
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        with strategy.scope():
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
            model.compile(optimizer="sgd", loss="mse")
        applied = apply_multi_worker_fixes(model)
        history = model.fit(np.ones((4, 3)), np.ones((4, 2)), batch_size=2, verbose=0)
        print("RESULT", applied, "train_step" in vars(model), history.history["loss"][0])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, result.stdout[-2000:] + result.stderr[-4000:]
    assert lines[0].split()[1:3] == ["False", "False"]
