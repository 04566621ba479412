"""MaskedLMHead: keras_hub parity, gathering, tied weights, building, contract, errors."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_seq import testing
from keras_seq.layers.heads.masked_lm_head import MaskedLMHead

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

RNG = np.random.default_rng(1)
ENCODED = RNG.normal(size=(2, 6, 16)).astype("float32")
POSITIONS = np.array([[1, 2, 0], [3, 5, 5]], "int32")


def embedding(dtype=None):
    return keras_hub.layers.ReversibleEmbedding(50, 16, dtype=dtype, name="token_embedding")


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "own_kernel"])
def test_equals_keras_hub_masked_lm_head(tied):
    kwargs = {"intermediate_activation": "gelu", "layer_norm_epsilon": 1e-12}
    kwargs.update({"token_embedding": embedding()} if tied else {"vocabulary_size": 50})
    ours = MaskedLMHead(**kwargs)
    reference = keras_hub.layers.MaskedLMHead(**kwargs)
    ours(ENCODED, mask_positions=POSITIONS)
    reference(ENCODED, mask_positions=POSITIONS)
    theirs = {w.path.split("/", 1)[1]: w for w in reference.weights}
    mine = {w.path.split("/", 1)[1]: w for w in ours.weights}
    assert sorted(mine) == sorted(theirs)
    for path, weight in mine.items():
        if not path.startswith("token_embedding"):  # Shared when tied.
            weight.assign(theirs[path])
    np.testing.assert_allclose(
        ours(ENCODED, mask_positions=POSITIONS),
        reference(ENCODED, mask_positions=POSITIONS),
        atol=1e-5,
    )


def test_predicts_at_the_given_positions_with_the_tied_table():
    table = embedding()
    head = MaskedLMHead(token_embedding=table, activation="softmax")
    probabilities = np.asarray(head(ENCODED, mask_positions=POSITIONS))
    assert probabilities.shape == (2, 3, 50)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    # Every position alone gives the same result: the head is per-position.
    everywhere = np.asarray(head(ENCODED, mask_positions=np.tile(np.arange(6), (2, 1))))
    expected = np.take_along_axis(everywhere, POSITIONS[..., None], axis=1)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    # The logits are `transform(x) @ table.T + bias`.
    head = MaskedLMHead(token_embedding=table)
    logits = np.asarray(head(ENCODED, mask_positions=POSITIONS))
    transformed = head.intermediate_layer_norm(head.intermediate_dense(ENCODED[:1, 1:2]))
    expected = np.asarray(transformed) @ np.asarray(table.embeddings).T + np.asarray(
        head.output_bias
    )
    np.testing.assert_allclose(logits[:1, :1], expected, atol=1e-5)


def test_build_builds_the_tied_embedding():
    # keras_hub's head leaves an unbuilt embedding unbuilt, so a head restored from its
    # config has no table; ours builds it.
    head = MaskedLMHead(token_embedding=embedding())
    head.build((None, 6, 16), (None, 3))
    assert head.token_embedding.built
    assert len(head.weights) == 6
    revived = MaskedLMHead.from_config(head.get_config())
    revived.build_from_config(head.get_build_config())
    assert [tuple(w.shape) for w in revived.weights] == [tuple(w.shape) for w in head.weights]


def test_masked_inputs_are_accepted_and_no_mask_is_returned():
    head = MaskedLMHead(vocabulary_size=50)
    inputs = keras.Input((6, 16))
    masked = keras.layers.Masking()(inputs)
    outputs = head(masked, mask_positions=keras.Input((3,), dtype="int32"))
    assert tuple(outputs.shape) == (None, 3, 50)
    assert getattr(outputs, "_keras_mask", None) is None


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "own_kernel"])
def test_contract(tied):
    # The tied embedding is one instance shared by the heads the harness makes, as in a
    # model; its config is saved inside the head's.
    init_kwargs = {"token_embedding": embedding()} if tied else {"vocabulary_size": 50}
    testing.run_layer_test(
        MaskedLMHead,
        init_kwargs,
        ENCODED,
        call_kwargs={"mask_positions": POSITIONS},
        expected_output_shape=(2, 3, 50),
        # Transform dense 2, layer norm 2, output bias 1, plus the table or own kernel.
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=0,
    )


INVALID_ARGUMENTS = [
    ({}, "vocabulary_size"),
    ({"vocabulary_size": 0}, "vocabulary_size"),
    ({"vocabulary_size": 49, "token_embedding": embedding()}, "vocabulary_size"),
    ({"token_embedding": keras.layers.Embedding(50, 16)}, "token_embedding"),
    ({"vocabulary_size": 50, "intermediate_activation": "nope"}, "intermediate_activation"),
    ({"vocabulary_size": 50, "activation": "nope"}, "activation"),
    ({"vocabulary_size": 50, "layer_norm_epsilon": -1.0}, "layer_norm_epsilon"),
    ({"vocabulary_size": 50, "kernel_initializer": "nope"}, "kernel_initializer"),
    ({"vocabulary_size": 50, "bias_initializer": "nope"}, "bias_initializer"),
]


def test_invalid_arguments():
    # One test for all cases: the per-test Keras clean-up costs more than the checks.
    for kwargs, match in INVALID_ARGUMENTS:
        with pytest.raises((ValueError, TypeError), match=match):
            MaskedLMHead(**kwargs)


def test_invalid_shapes():
    head = MaskedLMHead(vocabulary_size=50)
    for inputs_shape, positions_shape, match in [
        ((2, 6), (2, 3), "inputs"),
        ((2, 6, 16), (2, 3, 1), "mask_positions"),
    ]:
        with pytest.raises(ValueError, match=match):
            head(
                np.zeros(inputs_shape, "float32"), mask_positions=np.zeros(positions_shape, "int32")
            )
