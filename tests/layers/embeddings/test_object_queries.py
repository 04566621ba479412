"""ObjectQueries: the table repeated for the batch, trained, saved; contract and errors."""

import numpy as np
import pytest

from keras_seq import layers
from keras_seq import testing

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")


def test_returns_the_table_for_every_example():
    layer = layers.ObjectQueries(num_queries=4, hidden_dim=6)
    outputs = np.asarray(layer(np.zeros((3, 9, 6), "float32")))
    table = layer.embeddings.numpy()
    assert outputs.shape == (3, 4, 6)
    for example in outputs:
        np.testing.assert_array_equal(example, table)
    assert np.std(table) > 0.5  # standard-normal initialization, as nn.Embedding


def test_contract():
    testing.run_layer_test(
        layers.ObjectQueries,
        {"num_queries": 5, "hidden_dim": 8, "embeddings_initializer": "glorot_uniform"},
        np.random.default_rng(0).normal(size=(2, 7, 8)).astype("float32"),
        expected_output_shape=(2, 5, 8),
        expected_num_trainable_weights=1,
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_queries": 0, "hidden_dim": 8}, "num_queries"),
        ({"num_queries": 3, "hidden_dim": 2.5}, "hidden_dim"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        layers.ObjectQueries(**kwargs)
