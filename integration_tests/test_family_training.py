"""Every model family's train step compiles with XLA (`jit_compile=True`: the TPU contract) and
equals the graph step, and every family trains under `mixed_float16` (with Keras' loss
scaling) and `mixed_bfloat16` without NaN or inf."""

import keras
import numpy as np
import pytest

from keras_seq.utils import find_layers
from tests.model_families import BATCH_SIZE
from tests.model_families import FAMILIES
from tests.model_families import make_case


def _max_relative_difference(first, second, initial):
    """Largest weight difference between two trained models, relative to the largest update."""
    error = max(float(np.max(np.abs(a - b))) for a, b in zip(first, second))
    update = max(float(np.max(np.abs(a - b))) for a, b in zip(first, initial))
    return error / update


# BERTMaskedLM's pooler takes no part in the masked-LM loss: Keras warns it gets no gradient.
GRADIENT_WARNING = "ignore:Gradients do not exist:UserWarning"


@pytest.mark.filterwarnings(GRADIENT_WARNING)
@pytest.mark.slow  # XLA compiles each family's train step: 3-30 s each
@pytest.mark.integration
@pytest.mark.parametrize("family", FAMILIES)
def test_xla_train_step_equals_graph_step(family):
    keras.utils.set_random_seed(0)
    case = make_case(family)
    graph = case.build(jit_compile=False)
    graph(case.x)
    initial = graph.get_weights()
    xla = case.build(jit_compile=True)
    xla(case.x)
    xla.set_weights(initial)
    losses = []
    for model in (graph, xla):
        history = model.fit(
            case.x,
            case.y,
            sample_weight=case.sample_weight,
            batch_size=BATCH_SIZE,
            epochs=2,
            shuffle=False,
            verbose=0,
        )
        losses.append(history.history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
    assert _max_relative_difference(graph.get_weights(), xla.get_weights(), initial) < 1e-3


@pytest.fixture
def dtype_policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    try:
        yield request.param
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.filterwarnings(GRADIENT_WARNING)
@pytest.mark.slow  # 22 fits: about a minute
@pytest.mark.integration
@pytest.mark.parametrize("dtype_policy", ["mixed_float16", "mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize("family", FAMILIES)
def test_mixed_precision_trains_without_nan(family, dtype_policy):
    keras.utils.set_random_seed(0)
    case = make_case(family)
    model = case.build(optimizer=keras.optimizers.Adam(1e-3))
    compute_dtype = dtype_policy.split("_")[1]
    assert model.dtype_policy.name == dtype_policy
    if dtype_policy == "mixed_float16":
        # Keras wraps the optimizer for a mixed_float16 model: dynamic loss scaling.
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    model(case.x)
    initial = model.get_weights()
    history = model.fit(
        case.x,
        case.y,
        sample_weight=case.sample_weight,
        batch_size=BATCH_SIZE // 2,
        # 16 steps: Keras' dynamic loss scale starts at 2**15 and halves at every step whose
        # float16 gradients overflow (skipped); DETR's first ~10 steps are skipped that way.
        epochs=8,
        shuffle=False,
        verbose=0,
    )
    assert np.all(np.isfinite(history.history["loss"])), history.history
    assert all(weight.dtype == "float32" for weight in model.trainable_weights)
    weights = model.get_weights()
    assert all(np.all(np.isfinite(weight)) for weight in weights)
    assert any(np.any(a != b) for a, b in zip(weights, initial)), "nothing was trained"
    # The layers compute in the low precision (outputs may be cast back to float32 at the end).
    computing = find_layers(
        model, lambda layer: bool(layer.weights) and layer.compute_dtype == compute_dtype
    )
    assert computing, f"no layer computes in {compute_dtype}"
