"""Transformer blocks: keras_hub parity, caches, causality, pluggable attention, contract."""

import os

import keras
import keras_hub
import numpy as np
import pytest

from keras_seq import layers
from keras_seq import testing

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")

RNG = np.random.default_rng(2)
TARGET = RNG.normal(size=(2, 6, 16)).astype("float32")
SOURCE = RNG.normal(size=(2, 5, 16)).astype("float32")
TARGET_PADDING = np.array([[True] * 6, [True] * 4 + [False] * 2])
SOURCE_PADDING = np.array([[True] * 3 + [False] * 2, [True] * 5])


@keras.saving.register_keras_serializable(package="my_lab")
class TalkingHeadsLite(layers.MultiHeadAttention):
    """A user's attention: multi-head attention whose logits get a learned per-head gain."""

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        self.head_gain = self.add_weight(shape=(self.num_heads, 1, 1), initializer="ones")

    def call(self, query, value=None, attention_bias=None, **kwargs):
        # The gain rescales a zero bias into a learned, input-independent head bias.
        gain_bias = (self.head_gain - 1.0)[None]
        bias = gain_bias if attention_bias is None else attention_bias + gain_bias
        return super().call(query, value, attention_bias=bias, **kwargs)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_encoder_equals_keras_hub(normalize_first):
    ours = layers.TransformerEncoder(
        num_heads=4, intermediate_dim=32, normalize_first=normalize_first
    )
    reference = keras_hub.layers.TransformerEncoder(32, 4, normalize_first=normalize_first)
    ours(TARGET)
    reference(TARGET)
    ours.set_weights(reference.get_weights())
    np.testing.assert_allclose(ours(TARGET), reference(TARGET), atol=1e-5)
    masked = ours(TARGET, padding_mask=TARGET_PADDING)
    expected = reference(TARGET, padding_mask=TARGET_PADDING)
    # Padded positions differ on purpose: ours gives them zero attention (no NaN, no
    # average of real tokens); only real positions are compared.
    np.testing.assert_allclose(
        np.asarray(masked)[TARGET_PADDING], np.asarray(expected)[TARGET_PADDING], atol=1e-5
    )
    _, scores = ours(TARGET, return_attention_scores=True)
    _, expected_scores = reference(TARGET, return_attention_scores=True)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)


@pytest.mark.parametrize("normalize_first", [False, True])
@pytest.mark.parametrize("cross", [False, True])
def test_decoder_equals_keras_hub(normalize_first, cross):
    ours = layers.TransformerDecoder(
        num_heads=4, intermediate_dim=32, normalize_first=normalize_first
    )
    reference = keras_hub.layers.TransformerDecoder(32, 4, normalize_first=normalize_first)
    source = SOURCE if cross else None
    ours(TARGET, source)
    reference(TARGET, source)
    ours.set_weights(reference.get_weights())
    kwargs = {"decoder_padding_mask": TARGET_PADDING}
    if cross:
        kwargs["encoder_padding_mask"] = SOURCE_PADDING
    np.testing.assert_allclose(
        np.asarray(ours(TARGET, source, **kwargs))[TARGET_PADDING],
        np.asarray(reference(TARGET, source, **kwargs))[TARGET_PADDING],
        atol=1e-5,
    )


@pytest.mark.parametrize("block", ["encoder", "decoder"])
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_mixed_float16_blocks_with_large_inputs_stay_finite(block, scale):
    # Post-norm blocks attend to their raw inputs: at scale 1000 the query-key products
    # pass float16's maximum, which gave all-NaN outputs while they were float16.
    keras.utils.set_random_seed(0)
    cls = layers.TransformerEncoder if block == "encoder" else layers.TransformerDecoder
    args = (TARGET * scale,) if block == "encoder" else (TARGET * scale, SOURCE * scale)
    reference = cls(num_heads=4, intermediate_dim=32)
    mixed = cls(num_heads=4, intermediate_dim=32, dtype="mixed_float16")
    reference(*args)
    mixed(*args)
    mixed.set_weights(reference.get_weights())
    actual = np.asarray(keras.ops.cast(mixed(*args), "float32"))
    assert np.isfinite(actual).all()
    np.testing.assert_allclose(actual, reference(*args), atol=2e-2)


@pytest.mark.parametrize("cross", [False, True])
def test_decoder_cached_generation_equals_full_pass(cross):
    decoder = layers.TransformerDecoder(num_heads=4, intermediate_dim=32, normalize_first=True)
    source = SOURCE if cross else None
    full = np.asarray(decoder(TARGET, source))
    self_cache = np.zeros((2, 2, 6, 4, 4), "float32")
    kwargs = {}
    if cross:
        # Compute the encoder's keys and values once (written at index 0), then reuse them.
        _, _, cross_cache = decoder(
            TARGET[:, :1],
            SOURCE,
            self_attention_cache=self_cache,
            self_attention_cache_update_index=0,
            cross_attention_cache=np.zeros((2, 2, 5, 4, 4), "float32"),
            cross_attention_cache_update_index=0,
        )
        kwargs["cross_attention_cache"] = cross_cache
    steps = []
    for t in range(6):
        outputs = decoder(
            TARGET[:, t : t + 1],
            self_attention_cache=self_cache,
            self_attention_cache_update_index=t,
            **kwargs,
        )
        steps.append(np.asarray(outputs[0]))
        self_cache = outputs[1]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_decoder_is_causal():
    decoder = layers.TransformerDecoder(num_heads=4, intermediate_dim=32)
    base = np.asarray(decoder(TARGET, SOURCE))
    for t in range(1, 6):
        changed = TARGET.copy()
        changed[:, t:] += 1.0
        out = np.asarray(decoder(changed, SOURCE))
        np.testing.assert_allclose(out[:, :t], base[:, :t], atol=1e-5)
        assert not np.allclose(out[:, t:], base[:, t:])


def test_decoder_returns_self_and_cross_scores():
    decoder = layers.TransformerDecoder(num_heads=4, intermediate_dim=32)
    outputs, scores = decoder(
        TARGET, SOURCE, encoder_padding_mask=SOURCE_PADDING, return_attention_scores=True
    )
    self_scores = np.asarray(scores["self_attention"])
    cross_scores = np.asarray(scores["cross_attention"])
    assert self_scores.shape == (2, 4, 6, 6) and cross_scores.shape == (2, 4, 6, 5)
    assert np.all(np.triu(self_scores, k=1) == 0.0)  # Causal.
    assert np.all(cross_scores[0, :, :, 3:] == 0.0)  # Padded source positions.
    np.testing.assert_allclose(cross_scores.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        outputs, decoder(TARGET, SOURCE, encoder_padding_mask=SOURCE_PADDING)
    )


def test_encoder_attention_bias_reaches_the_attention():
    encoder = layers.TransformerEncoder(num_heads=4, intermediate_dim=32)
    bias = np.full((1, 4, 6, 6), -1e4, "float32")
    bias[..., 0] = 0.0  # Every query may attend only to the first key.
    _, scores = encoder(TARGET, attention_bias=bias, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(scores)[..., 0], 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "attention",
    [
        "my_lab>TalkingHeadsLite",
        TalkingHeadsLite(num_heads=2, key_dim=8),
        keras.saving.serialize_keras_object(TalkingHeadsLite(num_heads=2, key_dim=8)),
    ],
    ids=["name", "instance", "config"],
)
def test_pluggable_attention_saves_and_reloads(tmp_path, attention):
    num_heads = 2 if isinstance(attention, str) else None
    block = layers.TransformerEncoder(num_heads=num_heads, intermediate_dim=32, attention=attention)
    inputs = keras.Input((6, 16))
    model = keras.Model(inputs, block(inputs))
    assert isinstance(block.self_attention, TalkingHeadsLite)
    block.self_attention.head_gain.assign(np.array([[[0.5]], [[2.0]]], "float32"))
    expected = model.predict(TARGET, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.layers[-1].self_attention, TalkingHeadsLite)
    np.testing.assert_allclose(reloaded.predict(TARGET, verbose=0), expected, atol=1e-6)


def test_memory_efficient_attention_plugs_in():
    plain = layers.TransformerEncoder(num_heads=4, intermediate_dim=32)
    chunked = layers.TransformerEncoder(
        intermediate_dim=32,
        attention=layers.MultiHeadAttention(num_heads=4, key_dim=4, query_chunk_size=2),
    )
    plain(TARGET)
    chunked(TARGET)
    chunked.set_weights(plain.get_weights())
    np.testing.assert_allclose(
        np.asarray(chunked(TARGET, padding_mask=TARGET_PADDING))[TARGET_PADDING],
        np.asarray(plain(TARGET, padding_mask=TARGET_PADDING))[TARGET_PADDING],
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "init_kwargs,call_kwargs",
    [
        ({}, {}),
        ({"normalize_first": True, "dropout": 0.1, "activation": "gelu"}, {}),
        ({}, {"return_attention_scores": True}),
    ],
    ids=["post_norm", "pre_norm_dropout", "scores"],
)
def test_encoder_contract(init_kwargs, call_kwargs):
    testing.run_layer_test(
        layers.TransformerEncoder,
        {"num_heads": 4, "intermediate_dim": 32, **init_kwargs},
        TARGET,
        call_kwargs=call_kwargs,
        expected_num_trainable_weights=16,
        padding_mask=TARGET_PADDING,
        mask_argument="padding_mask",
    )


@pytest.mark.parametrize(
    "call_kwargs,num_weights",
    [
        ({}, 16),
        ({"encoder_sequence": SOURCE, "return_attention_scores": True}, 26),
    ],
    ids=["decoder_only", "cross_scores"],
)
def test_decoder_contract(call_kwargs, num_weights):
    testing.run_layer_test(
        layers.TransformerDecoder,
        {"num_heads": 4, "intermediate_dim": 32, "normalize_first": True},
        TARGET,
        call_kwargs=call_kwargs,
        expected_num_trainable_weights=num_weights,
        padding_mask=TARGET_PADDING,
        mask_argument="decoder_padding_mask",
    )


def test_mlp_equals_formula_and_contract():
    mlp = layers.MLP(intermediate_dim=8, output_dim=3, activation="relu")
    w1, b1, w2, b2 = (w.numpy() for w in (mlp(TARGET), *mlp.weights)[1:])
    expected = np.maximum(TARGET @ w1 + b1, 0.0) @ w2 + b2
    np.testing.assert_allclose(mlp(TARGET), expected, atol=1e-5)
    testing.run_layer_test(
        layers.MLP,
        {"intermediate_dim": 8, "dropout": 0.1},
        TARGET,
        expected_output_shape=(2, 6, 16),
        expected_num_trainable_weights=4,
        padding_mask=TARGET_PADDING,
    )


@pytest.mark.parametrize(
    "cls,kwargs,match",
    [
        (layers.TransformerEncoder, {"num_heads": 0, "intermediate_dim": 8}, "num_heads"),
        (layers.TransformerEncoder, {"num_heads": 2}, "intermediate_dim"),
        (
            layers.TransformerEncoder,
            {"num_heads": 2, "intermediate_dim": 8, "dropout": -0.1},
            "dropout",
        ),
        (
            layers.TransformerEncoder,
            {"num_heads": 2, "intermediate_dim": 8, "attention_dropout": 1.5},
            "attention_dropout",
        ),
        (
            layers.TransformerDecoder,
            {"num_heads": 2, "intermediate_dim": 8, "normalize_first": 1},
            "normalize_first",
        ),
        (
            layers.TransformerDecoder,
            {"num_heads": 2, "intermediate_dim": 8, "layer_norm_epsilon": 0},
            "layer_norm_epsilon",
        ),
        (
            layers.TransformerEncoder,
            {"num_heads": 2, "intermediate_dim": 8, "activation": "no_such_activation"},
            "no_such_activation",
        ),
        (
            layers.TransformerEncoder,
            {"num_heads": 2, "intermediate_dim": 8, "attention": "no_such_attention"},
            "attention",
        ),
        (
            layers.TransformerEncoder,
            {"num_heads": 2, "intermediate_dim": 8, "attention": layers.MultiHeadAttention(2, 4)},
            "num_heads",
        ),
        (
            layers.TransformerEncoder,
            {"num_heads": 2, "intermediate_dim": 8, "attention": 3},
            "attention",
        ),
        (layers.MLP, {"intermediate_dim": 0}, "intermediate_dim"),
    ],
)
def test_invalid_arguments(cls, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cls(**kwargs)(TARGET)


def test_invalid_shapes_and_calls():
    with pytest.raises(ValueError, match="num_heads"):
        layers.TransformerEncoder(num_heads=5, intermediate_dim=8)(TARGET)
    decoder_only = layers.TransformerDecoder(num_heads=2, intermediate_dim=8)
    decoder_only(TARGET)
    with pytest.raises(ValueError, match="encoder_sequence"):
        decoder_only(TARGET, SOURCE)
    with_cross = layers.TransformerDecoder(num_heads=2, intermediate_dim=8)
    with_cross(TARGET, SOURCE)
    with pytest.raises(ValueError, match="encoder_sequence"):
        with_cross(TARGET)


def test_encoder_padding_mask_applies_to_a_read_only_cross_attention_cache():
    rng = np.random.default_rng(0)
    decoder = layers.TransformerDecoder(num_heads=2, intermediate_dim=16)
    target = rng.normal(size=(1, 1, 8)).astype("float32")
    source = rng.normal(size=(1, 4, 8)).astype("float32")
    mask = np.array([[True, True, False, False]])
    expected = np.asarray(decoder(target, source, encoder_padding_mask=mask))
    _, _, cross_cache = decoder(
        target,
        source,
        encoder_padding_mask=mask,
        self_attention_cache=np.zeros((1, 2, 1, 2, 4), "float32"),
        self_attention_cache_update_index=0,
        cross_attention_cache=np.zeros((1, 2, 4, 2, 4), "float32"),
        cross_attention_cache_update_index=0,
    )
    outputs, _ = decoder(target, encoder_padding_mask=mask, cross_attention_cache=cross_cache)
    np.testing.assert_allclose(np.asarray(outputs), expected, atol=1e-6)


def numpy_post_norm_block(layer, x, attentions, epsilon=1e-5):
    """DETR's post-norm layer from `layer`'s weights: for each `(name, query_pos, value,
    key_pos)` in `attentions`, x = LN(x + MHA(x + query_pos, value + key_pos, value)); then
    x = LN(x + FFN(x)). Positions enter queries and keys only."""
    w = {v.path.split("/", 1)[1]: v.numpy() for v in layer.weights}

    def norm(h, name):
        mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
        return (h - mean) / np.sqrt(var + epsilon) * w[f"{name}/gamma"] + w[f"{name}/beta"]

    def attention(name, query, key, value):
        def project(h, dense):
            return np.einsum("btd,dnh->btnh", h, w[f"{dense}/kernel"]) + w[f"{dense}/bias"]

        q = project(query, f"{name}/query_dense")
        k = project(key, f"{name}/key_dense")
        v = project(value, f"{name}/value_dense")
        logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = np.einsum("bnts,bsnh->btnh", probs, v)
        return (
            np.einsum("btnh,nhd->btd", context, w[f"{name}/output_dense/kernel"])
            + w[f"{name}/output_dense/bias"]
        )

    for name, query_pos, value, key_pos in attentions:
        value = x if value is None else value
        out = attention(name, x + query_pos, value + key_pos, value)
        x = norm(x + out, f"{name}_layer_norm")
    hidden = np.maximum(
        x @ w["feedforward/intermediate_dense/kernel"] + w["feedforward/intermediate_dense/bias"],
        0,
    )
    out = hidden @ w["feedforward/output_dense/kernel"] + w["feedforward/output_dense/bias"]
    return norm(x + out, "feedforward_layer_norm")


def test_encoder_position_embedding_enters_queries_and_keys_only():
    position = RNG.normal(size=(1, 6, 16)).astype("float32")  # broadcast over the batch
    encoder = layers.TransformerEncoder(num_heads=4, intermediate_dim=32)
    outputs = encoder(TARGET, position_embedding=position)
    expected = numpy_post_norm_block(
        encoder, TARGET, [("self_attention", position, None, position)]
    )
    np.testing.assert_allclose(outputs, expected, atol=1e-4)
    assert np.abs(np.asarray(outputs) - np.asarray(encoder(TARGET))).max() > 1e-2


def test_decoder_position_embeddings_detr_style():
    query_position = RNG.normal(size=(2, 6, 16)).astype("float32")
    source_position = RNG.normal(size=(2, 5, 16)).astype("float32")
    decoder = layers.TransformerDecoder(num_heads=4, intermediate_dim=32)
    outputs = decoder(
        TARGET,
        SOURCE,
        decoder_position_embedding=query_position,
        encoder_position_embedding=source_position,
        use_causal_mask=False,
    )
    expected = numpy_post_norm_block(
        decoder,
        TARGET,
        [
            ("self_attention", query_position, None, query_position),
            ("cross_attention", query_position, SOURCE, source_position),
        ],
    )
    np.testing.assert_allclose(outputs, expected, atol=1e-4)
    with pytest.raises(ValueError, match="encoder_position_embedding"):
        decoder(
            TARGET,
            None,
            cross_attention_cache=np.zeros((2, 2, 5, 4, 4), "float32"),
            encoder_position_embedding=source_position,
        )


def test_encoder_contract_with_position_embedding():
    testing.run_layer_test(
        layers.TransformerEncoder,
        {"num_heads": 4, "intermediate_dim": 32, "normalize_first": True},
        TARGET,
        call_kwargs={"position_embedding": RNG.normal(size=(2, 6, 16)).astype("float32")},
        expected_num_trainable_weights=16,
        padding_mask=TARGET_PADDING,
        mask_argument="padding_mask",
    )
