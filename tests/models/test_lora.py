"""LoRA at the model level: enable, train, save / load the adapters alone, merge."""

import keras
import numpy as np
import pytest

from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM
from keras_seq.models import lora

TINY = dict(
    vocabulary_size=40,
    num_layers=2,
    hidden_dim=16,
    num_heads=2,
    intermediate_dim=32,
    sequence_length=12,
    dropout=0.0,
)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return GPTCausalLM(GPTBackbone(**TINY))


def _data(seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 40, size=(16, 9)).astype("int32")
    x = {"token_ids": ids[:, :-1], "padding_mask": np.ones_like(ids[:, :-1])}
    return x, ids[:, 1:]


def _train(model, epochs=3):
    x, y = _data()
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model.fit(x, y, batch_size=8, epochs=epochs, verbose=0)


def test_enable_lora_trains_only_the_adapters():
    model = _model()
    frozen = {weight.path: keras.ops.convert_to_numpy(weight) for weight in model.weights}
    adapted = model.enable_lora(4)
    # query and value projections of the two blocks' self-attention
    assert sorted(layer.name for layer in adapted) == ["query_dense"] * 2 + ["value_dense"] * 2
    assert len(model.trainable_weights) == 2 * len(adapted)
    assert all(weight.name.startswith("lora_") for weight in model.trainable_weights)
    x, _ = _data()
    before = np.asarray(model(x))  # b starts at zero: the model is unchanged
    _train(model)
    after = {weight.path: keras.ops.convert_to_numpy(weight) for weight in model.weights}
    assert len(after) == len(frozen) + 2 * len(adapted)
    for path, value in frozen.items():
        np.testing.assert_array_equal(after[path], value)
    assert np.abs(np.asarray(model(x)) - before).max() > 1e-3


def test_adapters_save_and_load_alone_and_merge(tmp_path):
    model = _model()
    model.enable_lora(2, target_layer_names=["query_dense", "output_dense"], lora_alpha=4.0)
    _train(model, epochs=2)
    x, _ = _data()
    expected = np.asarray(model(x))
    path = tmp_path / "adapters.safetensors"
    model.save_lora_weights(path)

    # A fresh copy of the base model (same base weights) takes the adapters from the file.
    fresh = _model()
    fresh.load_lora_weights(path)
    assert [layer.path for layer in lora.lora_layers(fresh)] == [
        layer.path for layer in lora.lora_layers(model)
    ]
    np.testing.assert_allclose(np.asarray(fresh(x)), expected, atol=1e-5)

    merged = model.merge_lora()
    assert not lora.lora_layers(merged)
    assert len(merged.weights) == len(model.weights) - 2 * len(lora.lora_layers(model))
    np.testing.assert_allclose(np.asarray(merged(x)), expected, atol=1e-5)
    # The merged kernel is the formula: kernel + a @ b * alpha / rank (Keras' factor shapes).
    for layer in lora.lora_layers(model):
        merged_layer = {item.path: item for item in lora._layers(merged).values()}[layer.path]
        update = np.matmul(np.asarray(layer.lora_kernel_a), np.asarray(layer.lora_kernel_b))
        formula = np.asarray(layer._kernel) + update * (4.0 / 2)
        np.testing.assert_allclose(np.asarray(merged_layer.kernel), formula, atol=1e-6)

    # A .keras file of the adapted model reloads to the same outputs.
    model.save(tmp_path / "adapted.keras")
    reloaded = keras.saving.load_model(tmp_path / "adapted.keras")
    np.testing.assert_allclose(np.asarray(reloaded(x)), expected, atol=1e-5)


def test_lora_errors(tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="target_layer_names"):
        model.enable_lora(2, target_layer_names=["nope"])
    with pytest.raises(TypeError, match="layer_norm"):
        model.enable_lora(2, target_layer_names=["layer_norm"])
    with pytest.raises(ValueError, match="rank"):
        model.enable_lora(0)
    with pytest.raises(ValueError, match="no LoRA adapters"):
        model.save_lora_weights(tmp_path / "none.safetensors")
    model.enable_lora(2)
    with pytest.raises(ValueError, match="already enabled"):
        model.enable_lora(2)
    model.save_lora_weights(tmp_path / "rank2.safetensors")
    other = _model()
    other.enable_lora(3)
    with pytest.raises(ValueError, match="rank 2"):
        other.load_lora_weights(tmp_path / "rank2.safetensors")
    partial = _model()
    partial.enable_lora(2, target_layer_names=["query_dense"])
    with pytest.raises(ValueError, match="value_dense"):
        partial.load_lora_weights(tmp_path / "rank2.safetensors")
