"""One attention registry: every name resolves through `get_attention`'s table, which the
transformer blocks and `AttentionCell` share."""

import numpy as np
import pytest

from keras_seq import layers
from keras_seq.layers.attention import get_attention as get_attention_module
from keras_seq.layers.recurrent import attention_cell as attention_cell_module

# Also run on JAX in CI (see conftest.py); not yet on PyTorch, where reading outputs that
# require grad as NumPy arrays fails in these tests.
pytestmark = pytest.mark.backends("jax")


@pytest.mark.parametrize(
    "name,kwargs,cls",
    [
        ("multi_head", {"num_heads": 2, "key_dim": 4}, layers.MultiHeadAttention),
        ("multi_head_attention", {"num_heads": 2, "key_dim": 4}, layers.MultiHeadAttention),
        ("bahdanau", {"units": 4}, layers.BahdanauAttention),
        ("Additive", {"units": 4}, layers.BahdanauAttention),
        ("luong", {}, layers.LuongAttention),
        ("multiplicative", {"score_mode": "general"}, layers.LuongAttention),
    ],
)
def test_names_and_aliases(name, kwargs, cls):
    assert type(layers.get_attention(name, **kwargs)) is cls


def test_one_table():
    assert attention_cell_module.ATTENTION_ALIASES is get_attention_module.ATTENTION_ALIASES


@pytest.mark.parametrize(
    "name,cls,score_mode",
    [
        ("additive", layers.BahdanauAttention, None),
        ("multiplicative", layers.LuongAttention, "general"),
    ],
)
def test_attention_cell_resolves_aliases_like_the_names(name, cls, score_mode):
    cell = layers.AttentionCell("gru", units=6, attention=name)
    assert type(cell.attention_layer) is cls
    if score_mode is None:
        assert cell.attention_layer.units == 6  # as many units as the cell's output
    else:
        assert cell.attention_layer.score_mode == score_mode
    cell.build((2, 4), (2, 3, 5))
    memory = np.zeros((2, 3, 5), "float32")
    output, _ = cell(np.zeros((2, 4), "float32"), cell.get_initial_state(2), memory=memory)
    assert tuple(output.shape) == (2, 6 + 5)


def test_unknown_name_lists_the_table():
    with pytest.raises(ValueError, match=r"Unknown `attention`: 'cosine'.*'bahdanau'.*'luong'"):
        layers.get_attention("cosine")
