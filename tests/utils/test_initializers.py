"""An unseeded initializer instance shared by a block gives each weight its own values."""

import keras
import numpy as np
import pytest

from keras_seq.layers import MLP
from keras_seq.layers import BahdanauAttention
from keras_seq.layers import TokenAndPositionEmbedding
from keras_seq.layers import TransformerEncoder
from keras_seq.utils import clone_initializer


def _distinct(arrays):
    flat = [np.asarray(a).ravel() for a in arrays]
    return all(
        not np.allclose(flat[i][: len(flat[j])], flat[j][: len(flat[i])])
        for i in range(len(flat))
        for j in range(i)
    )


def test_an_unseeded_instance_repeats_its_values_and_clones_do_not():
    initializer = keras.initializers.RandomNormal()
    np.testing.assert_array_equal(initializer((3, 3)), initializer((3, 3)))  # the hazard
    assert _distinct([clone_initializer(initializer)((3, 3)) for _ in range(3)])
    assert isinstance(clone_initializer("glorot_uniform"), keras.initializers.GlorotUniform)


@pytest.mark.parametrize(
    "make",
    [
        lambda init: TransformerEncoder(
            num_heads=2, intermediate_dim=8, kernel_initializer=init, bias_initializer=init
        ),
        lambda init: MLP(intermediate_dim=8, kernel_initializer=init, bias_initializer=init),
    ],
    ids=["TransformerEncoder", "MLP"],
)
def test_blocks_give_every_kernel_its_own_values(make):
    layer = make(keras.initializers.RandomNormal())
    layer(np.zeros((1, 3, 8), "float32"))
    kernels = [w for w in layer.weights if w.path.endswith("kernel")]
    assert len(kernels) >= 2 and _distinct(kernels)


def test_additive_attention_projections_differ():
    layer = BahdanauAttention(units=8, kernel_initializer=keras.initializers.RandomNormal())
    layer([np.zeros((1, 2, 8), "float32"), np.zeros((1, 3, 8), "float32")])
    assert _distinct([layer.query_dense.kernel, layer.key_dense.kernel])


def test_token_and_position_tables_differ():
    layer = TokenAndPositionEmbedding(
        8, 8, 4, embeddings_initializer=keras.initializers.RandomNormal()
    )
    layer(np.zeros((1, 8), "int32"))
    assert _distinct([layer.token_embedding.embeddings, layer.position_embedding.weights[0]])
