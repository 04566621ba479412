"""TokenAndPositionEmbedding: token lookup + position table in NumPy, masks from mask_zero,
the reverse projection, decoding with start_index, the keras-hub peer, the contract harness
and argument errors."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_seq import testing
from keras_seq.layers.embeddings.token_and_position_embedding import TokenAndPositionEmbedding

rng = np.random.default_rng(7)
MASK = np.ones((3, 6), bool)
MASK[0, 4:] = False
MASK[2, 1:] = False
# Real tokens are >= 1; padding (id 0) exactly where MASK is False.
IDS = np.where(MASK, rng.integers(1, 1000, size=(3, 6)), 0).astype("int32")


def numpy_sine(length, width):
    t = np.arange(length)[:, None]
    i = np.arange(width)[None] // 2
    angles = t / 10000.0 ** (2 * i / width)
    return np.where(np.arange(width) % 2 == 0, np.sin(angles), np.cos(angles))


def randomized(layer, input_shape):
    layer.build(input_shape)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def test_learned_equals_token_lookup_plus_position_rows():
    layer = randomized(TokenAndPositionEmbedding(50, 10, 4), (None, None))
    ids = rng.integers(0, 50, size=(2, 7))
    tokens = np.asarray(layer.token_embedding.embeddings)
    positions = np.asarray(layer.position_embedding.embeddings)
    np.testing.assert_allclose(layer(ids), tokens[ids] + positions[None, :7], atol=1e-6)
    assert tokens.shape == (50, 4) and positions.shape == (10, 4)


def test_sine_equals_token_lookup_plus_formula_at_any_length():
    layer = randomized(TokenAndPositionEmbedding(50, None, 6, position="sine"), (None, None))
    ids = rng.integers(0, 50, size=(2, 300))
    tokens = np.asarray(layer.token_embedding.embeddings)
    np.testing.assert_allclose(layer(ids), tokens[ids] + numpy_sine(300, 6)[None], atol=1e-4)
    assert len(layer.weights) == 1


def test_interpolated_positions_at_twice_the_length():
    layer = randomized(TokenAndPositionEmbedding(50, 4, 3, interpolate=True), (None, None))
    ids = rng.integers(0, 50, size=(2, 8))
    tokens = np.asarray(layer.token_embedding.embeddings)
    table = np.asarray(layer.position_embedding.embeddings)
    coordinates = (np.arange(8) + 0.5) * 4 / 8 - 0.5
    resampled = np.stack([np.interp(coordinates, np.arange(4), table[:, c]) for c in range(3)], -1)
    np.testing.assert_allclose(layer(ids), tokens[ids] + resampled[None], atol=1e-5)


def test_decoding_one_token_at_a_time_equals_full_pass():
    for position in ("learned", "sine"):
        layer = randomized(TokenAndPositionEmbedding(50, 8, 4, position=position), (None, None))
        ids = rng.integers(0, 50, size=(2, 8))
        full = np.asarray(layer(ids))
        step = tf.function(lambda ids, s, layer=layer: layer(ids, start_index=s), jit_compile=True)
        steps = [step(ids[:, t : t + 1], tf.constant(t)) for t in range(8)]
        np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-6)


def test_mask_zero_masks_padding_and_downstream_layers_honour_it():
    layer = TokenAndPositionEmbedding(1000, 6, 4, mask_zero=True)
    np.testing.assert_array_equal(layer.compute_mask(IDS), IDS != 0)
    inputs = keras.Input((6,), dtype="int32")
    embedded = layer(inputs)
    pooled = keras.layers.GlobalAveragePooling1D()(embedded)
    per_step, means = keras.Model(inputs, [embedded, pooled])(IDS)
    expected = [np.asarray(per_step)[b, MASK[b]].mean(0) for b in range(3)]
    np.testing.assert_allclose(means, np.stack(expected), atol=1e-6)


def test_mask_combines_with_an_incoming_mask():
    incoming = np.array([[True, True, False, True]])
    ids = np.array([[3, 0, 4, 5]])
    masked = TokenAndPositionEmbedding(10, 4, 2, mask_zero=True).compute_mask(ids, incoming)
    np.testing.assert_array_equal(masked, [[True, False, False, True]])
    unmasked = TokenAndPositionEmbedding(10, 4, 2).compute_mask(ids, incoming)
    np.testing.assert_array_equal(unmasked, incoming)
    assert TokenAndPositionEmbedding(10, 4, 2).compute_mask(ids) is None


def test_reverse_projection_through_token_embedding():
    for tie_weights in (True, False):
        layer = TokenAndPositionEmbedding(30, 6, 4, mask_zero=True, tie_weights=tie_weights)
        randomized(layer, (None, 6))
        hidden = layer(IDS % 30)  # masked hidden states, as a language model's last layer sees
        logits = layer.token_embedding(hidden, reverse=True)
        matrix = (
            np.asarray(layer.token_embedding.embeddings).T
            if tie_weights
            else np.asarray(layer.token_embedding.reverse_embeddings)
        )
        assert logits.shape == (3, 6, 30)
        np.testing.assert_allclose(logits, np.asarray(hidden) @ matrix, atol=1e-5)


def test_sublayer_names_and_weight_paths_are_stable():
    layer = TokenAndPositionEmbedding(30, 6, 4, name="embed")
    layer.build((None, None))
    assert layer.token_embedding.name == "token_embedding"
    assert layer.position_embedding.name == "position_embedding"
    assert sorted(w.path for w in layer.weights) == [
        "embed/position_embedding/embeddings",
        "embed/token_embedding/embeddings",
    ]


def test_equals_keras_hub_given_the_same_weights():
    layer = randomized(TokenAndPositionEmbedding(1000, 6, 4), (None, 6))
    peer = keras_hub.layers.TokenAndPositionEmbedding(1000, 6, 4)
    peer.build((None, 6))
    peer.token_embedding.set_weights(layer.token_embedding.get_weights())
    peer.position_embedding.set_weights(layer.position_embedding.get_weights())
    np.testing.assert_allclose(layer(IDS), peer(IDS), atol=1e-6)
    np.testing.assert_allclose(
        layer(IDS[:, :2], start_index=3), peer(IDS[:, :2], start_index=3), atol=1e-6
    )


def test_sine_length_limit_when_sequence_length_is_given():
    layer = TokenAndPositionEmbedding(10, 4, 2, position="sine")
    layer(np.ones((1, 4), "int32"))
    with pytest.raises(ValueError, match=r"Received: sequence_length=4, input length=5"):
        layer(np.ones((1, 5), "int32"))
    with pytest.raises(ValueError, match=r"sequence_length=4, input length=1, start_index=4"):
        layer(np.ones((1, 1), "int32"), start_index=4)
    with pytest.raises(ValueError, match=r"`sequence_length`.*sequence_length=3, input length=6"):
        TokenAndPositionEmbedding(10, 3, 2).build((None, 6))


def test_output_spec():
    layer = TokenAndPositionEmbedding(10, 4, 2, dtype="mixed_float16")
    symbolic = layer(keras.KerasTensor((None, 3), "int32"), start_index=1)
    assert symbolic.shape == (None, 3, 2) and symbolic.dtype == "float16"


# The contract harness ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "init_kwargs,call_kwargs,num_weights",
    [
        ({"mask_zero": True}, {"start_index": 1}, 2),
        ({"position": "sine", "sequence_length": None, "embeddings_initializer": "ones"}, {}, 1),
        ({"tie_weights": False, "interpolate": True}, {}, 3),
    ],
    ids=["learned-mask_zero", "sine", "untied-interpolate"],
)
@pytest.mark.backends
def test_contract(init_kwargs, call_kwargs, num_weights):
    testing.run_layer_test(
        TokenAndPositionEmbedding,
        {"vocabulary_size": 1000, "sequence_length": 7, "embedding_dim": 4, **init_kwargs},
        IDS,
        call_kwargs=call_kwargs,
        expected_output_shape=(3, 6, 4),
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
        padding_mask=MASK,
        # The untied reverse matrix only serves reverse=True calls, so the forward pass
        # gives it no gradient; it is checked in test_reverse_projection_through_token_embedding.
        run_training_check=init_kwargs.get("tie_weights", True),
    )


# Validation ---------------------------------------------------------------------------------

VALID = {"vocabulary_size": 10, "sequence_length": 4, "embedding_dim": 2}


ARGUMENT_ERRORS = [
    ({"vocabulary_size": 0}, ValueError, r"`vocabulary_size` .* vocabulary_size=0"),
    ({"embedding_dim": None}, TypeError, r"`embedding_dim` .* embedding_dim=None"),
    ({"sequence_length": None}, ValueError, r"`sequence_length` is required .*=None"),
    ({"sequence_length": -3}, ValueError, r"`sequence_length` .* sequence_length=-3"),
    ({"mask_zero": "yes"}, TypeError, r"`mask_zero` must be a bool. Received: mask_zero="),
    ({"position": "rotary"}, ValueError, r"`position` must be one of .* position='rotary'"),
    ({"tie_weights": None}, TypeError, r"`tie_weights` .* tie_weights=None"),
    ({"interpolate": "no"}, TypeError, r"`interpolate` .* interpolate='no'"),
    (
        {"interpolate": True, "position": "sine"},
        ValueError,
        r"`interpolate` only applies .* interpolate=True, position='sine'",
    ),
    (
        {"embeddings_initializer": "nope"},
        ValueError,
        r"`embeddings_initializer` must be an initializer .*='nope'",
    ),
]


def test_argument_errors():
    for kwargs, error, pattern in ARGUMENT_ERRORS:
        with pytest.raises(error, match=pattern):
            TokenAndPositionEmbedding(**{**VALID, **kwargs})


def test_input_rank_error():
    with pytest.raises(ValueError, match=r"token ids of shape .* input_shape=\(2, 4, 3\)"):
        TokenAndPositionEmbedding(**VALID).build((2, 4, 3))
