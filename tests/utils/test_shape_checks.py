"""Wrong mask shapes, empty sequences, wrong ranks and image sizes fail at the layer's boundary
with the argument's name and shape, not deep inside a backend op."""

import re

import keras
import numpy as np
import pytest

from keras_seq import layers
from keras_seq.models import ViTBackbone
from keras_seq.utils.shape_checks import check_attention_mask
from keras_seq.utils.shape_checks import check_padding_mask


def zeros(*shape):
    return np.zeros(shape, "float32")


def ones_mask(*shape):
    return np.ones(shape, bool)


def attention():
    return layers.MultiHeadAttention(num_heads=2, key_dim=4)


def encoder():
    return layers.TransformerEncoder(intermediate_dim=8, num_heads=2)


def decoder():
    return layers.TransformerDecoder(intermediate_dim=8, num_heads=2)


CASES = {
    "attention": [
        (
            lambda: layers.LuongAttention()(
                [zeros(2, 3, 8), zeros(2, 5, 8)], mask=[None, ones_mask(2, 4)]
            ),
            r"`mask\[1\]` must be .* = \(2, 5\), the first two axes of `value`.*\(2, 4\)",
        ),
        (
            lambda: layers.BahdanauAttention(units=4)(
                [zeros(2, 3, 8), zeros(2, 5, 8)], mask=[ones_mask(2, 4), None]
            ),
            r"`mask\[0\]` must be .* = \(2, 3\), the first two axes of `query`",
        ),
        (
            lambda: attention()(zeros(2, 5, 8), zeros(2, 3, 8), value_mask=ones_mask(2, 4)),
            r"`value_mask` must be .* = \(2, 3\).* value_mask.shape=\(2, 4\)",
        ),
        (
            lambda: attention()(zeros(2, 5, 8), query_mask=ones_mask(2, 4)),
            r"`query_mask` must be .*query_mask.shape=\(2, 4\)",
        ),
        (
            lambda: attention()(zeros(2, 5, 8), attention_mask=ones_mask(2, 4, 5)),
            r"`attention_mask` must broadcast to .* = \(2, 5, 5\).*mask.shape=\(2, 4, 5\)",
        ),
    ],
    "blocks": [
        (
            lambda: encoder()(zeros(2, 5, 8), padding_mask=ones_mask(2, 4)),
            r"`padding_mask` must be .* = \(2, 5\).*padding_mask.shape=\(2, 4\)",
        ),
        (
            lambda: encoder()(zeros(2, 5, 8), attention_mask=ones_mask(3, 5, 5)),
            r"`attention_mask` .*attention_mask.shape=\(3, 5, 5\)",
        ),
        (lambda: encoder()(zeros(2, 8)), r"`inputs` must have rank 3.*inputs.shape=\(2, 8\)"),
        (
            lambda: decoder()(zeros(2, 5, 8), decoder_padding_mask=ones_mask(2, 4)),
            r"`decoder_padding_mask` must be .*decoder_padding_mask.shape=\(2, 4\)",
        ),
        (
            lambda: decoder()(zeros(2, 5, 8), decoder_attention_mask=ones_mask(2, 5, 4)),
            r"`decoder_attention_mask` .*decoder_attention_mask.shape=\(2, 5, 4\)",
        ),
        (
            lambda: decoder()(zeros(2, 5, 8), zeros(2, 3, 8), encoder_padding_mask=ones_mask(2, 4)),
            r"`encoder_padding_mask` must be .* = \(2, 3\).*encoder_padding_mask.shape=\(2, 4\)",
        ),
        (
            lambda: decoder()(
                zeros(2, 5, 8), zeros(2, 3, 8), encoder_attention_mask=ones_mask(5, 4)
            ),
            r"`encoder_attention_mask` .* = \(2, 5, 3\).*encoder_attention_mask.shape=\(5, 4\)",
        ),
    ],
    "recurrent_and_embeddings": [
        (
            lambda: keras.layers.RNN(layers.LSTMCell(4))(zeros(2, 8)),
            r"`inputs` must have rank 2: one step .* of LSTMCell.*inputs.shape=\(2,\)",
        ),
        (
            lambda: keras.layers.RNN(layers.GRUCell(4))(zeros(2, 8)),
            r"`inputs` must have rank 2: one step .* of GRUCell",
        ),
        (
            lambda: layers.TruncatedBPTT(keras.layers.LSTM(4), chunk_length=2)(zeros(2, 0, 3)),
            r"`inputs` must have at least one step: its number of steps is 0",
        ),
        (
            lambda: layers.TruncatedBPTT(keras.layers.LSTM(4), chunk_length=2)(
                zeros(2, 4, 3), padding_mask=ones_mask(2, 3)
            ),
            r"`padding_mask` must be .*padding_mask.shape=\(2, 3\)",
        ),
        (
            lambda: layers.AttentionRNN(layers.AttentionCell("gru", units=4, attention_dim=4))(
                zeros(2, 0, 3), zeros(2, 5, 6)
            ),
            r"`inputs` must have at least one step",
        ),
        (
            lambda: layers.AttentionRNN(layers.AttentionCell("gru", units=4, attention_dim=4))(
                zeros(2, 3, 3), zeros(2, 5, 6), memory_mask=ones_mask(2, 6)
            ),
            r"`memory_mask` must be .* = \(2, 5\).*memory_mask.shape=\(2, 6\)",
        ),
        (
            lambda: layers.TokenAndPositionEmbedding(10, 8, 4)(np.zeros((2, 0), "int32")),
            r"`inputs` must have at least one step: its sequence_length is 0.*\(2, 0\)",
        ),
        (
            lambda: layers.PositionEmbedding(8)(zeros(2, 0, 4)),
            r"`inputs` must have at least one step",
        ),
    ],
}


@pytest.mark.parametrize("group", sorted(CASES))
def test_error_names_the_argument_and_shape(group):
    # A few cases per test: each is milliseconds, a test's setup and teardown are not.
    for call, match in CASES[group]:
        with pytest.raises(ValueError, match=match):
            call()


def test_swin_block_refuses_another_map_size():
    block = layers.SwinBlock(num_heads=2, intermediate_dim=8, window_size=4)
    block(zeros(1, 8, 8, 8))
    with pytest.raises(ValueError, match=r"built for, \(8, 8\).*inputs.shape=\(1, 9, 8, 8\)"):
        block(zeros(1, 9, 8, 8))


def test_vit_with_any_image_size_refuses_a_remainder():
    backbone = ViTBackbone(
        image_shape=(None, None, 3),
        patch_size=4,
        num_layers=1,
        hidden_dim=8,
        num_heads=2,
        intermediate_dim=8,
        position_grid_shape=(4, 4),
    )
    # 16 x 16 is 4 x 4 patches (16 tokens, a class token): fine.
    assert backbone(zeros(1, 16, 16, 3)).shape == (1, 17, 8)
    with pytest.raises(ValueError, match=r"image height=17, patch_size=4"):
        backbone(zeros(1, 17, 16, 3))
    with pytest.raises(ValueError, match=r"image width=18, patch_size=4"):
        backbone(zeros(1, 16, 18, 3))


def test_attention_mask_broadcasting_rule():
    # The rule is NumPy broadcasting to (batch_size, [num_heads,] query_length, key_length).
    for mask_shape in [(2, 5, 3), (1, 5, 3), (2, 1, 3), (5, 3), (2, 2, 5, 3), (1, 3)] + [
        (2, 5, 4),
        (3, 5, 3),
        (3,),
        (2, 2, 2, 5, 3),
    ]:
        target = (2, 2, 5, 3) if len(mask_shape) == 4 else (2, 5, 3)
        try:
            np.broadcast_to(np.ones(mask_shape), target)
            valid = 2 <= len(mask_shape) <= 4
        except ValueError:
            valid = False
        if valid:
            check_attention_mask("mask", np.ones(mask_shape), 2, 5, 3)
        else:
            with pytest.raises(ValueError, match=re.escape(f"mask.shape={mask_shape}")):
                check_attention_mask("mask", np.ones(mask_shape), 2, 5, 3)


def test_unknown_sizes_are_not_checked():
    # Symbolic tensors with unknown axes pass: only static shapes are compared.
    check_padding_mask("padding_mask", keras.KerasTensor((None, None)), "inputs", zeros(2, 5, 8))
    check_attention_mask("attention_mask", keras.KerasTensor((None, 5, None)), 2, 5, 3)
