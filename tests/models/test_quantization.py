"""`model.quantize("int8")` quantizes every projection of every family (the attention
projections and tied embeddings included), and the quantized model round-trips `.keras`."""

import warnings

import keras
import numpy as np
import pytest

from keras_seq.utils import find_layers
from tests.model_families import FAMILIES
from tests.model_families import make_case

# Layers Keras can quantize to int8.
QUANTIZABLE = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding)


def _quantizable_layers(model):
    return [layer for _, layer in find_layers(model, QUANTIZABLE)]


# The default run covers an attention stack with a tied embedding, a vision model and the
# RNN language model (whose padded steps were no longer skipped once its int8 embedding had
# dropped the Keras mask); the other families run with the slow tests.
DEFAULT_FAMILIES = ("gpt", "rnn_language_model", "transformer_seq2seq", "vit")


def _marks(family):
    return [] if family in DEFAULT_FAMILIES else [pytest.mark.slow]


@pytest.mark.parametrize(
    "family", [pytest.param(family, marks=_marks(family)) for family in FAMILIES]
)
def test_int8_quantizes_every_projection_and_round_trips(family, tmp_path):
    case = make_case(family)
    model = case.build_model()
    reference = keras.tree.flatten(model(case.x))
    with warnings.catch_warnings():
        # Keras warns for every layer without weights to quantize (norms, dropout, ...).
        warnings.simplefilter("ignore", UserWarning)
        model.quantize("int8")
    layers = _quantizable_layers(model)
    assert layers
    skipped = [layer.path for layer in layers if layer.quantization_mode != "int8"]
    assert not skipped, skipped
    quantized = keras.tree.flatten(model(case.x))
    for value, expected in zip(quantized, reference):
        value, expected = np.asarray(value, "float32"), np.asarray(expected, "float32")
        scale = np.abs(expected).max() + 1e-6
        assert np.abs(value - expected).max() / scale < 0.1  # int8 rounding, not garbage

    path = tmp_path / f"{family}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    for value, expected in zip(keras.tree.flatten(reloaded(case.x)), quantized):
        np.testing.assert_allclose(np.asarray(value), np.asarray(expected), atol=1e-6)


def test_swin_with_stochastic_depth_quantizes():
    # Its DropPath layers (no weights) were never built: Keras refused to quantize the model.
    from keras_seq.models import SwinBackbone
    from keras_seq.models import SwinImageClassifier

    model = SwinImageClassifier(
        SwinBackbone(
            image_shape=(16, 16, 3),
            patch_size=2,
            hidden_dim=8,
            num_layers=(1, 1),
            num_heads=(2, 2),
            window_size=4,
            drop_path_rate=0.1,
        ),
        num_classes=5,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.quantize("int8")
    assert all(layer.quantization_mode == "int8" for layer in _quantizable_layers(model))
