"""Parity of `ViTBackbone` / `ViTImageClassifier` and `SwinBackbone` / `SwinImageClassifier`
with timm's reference models.

timm's weights are copied into ours by converters defined here (timm's checkpoint names stay
out of the library), then both models run in float32 inference on the same images: the
classifiers' logits against timm's, the backbones' outputs against timm's `forward_features`.
Also compared: parameter counts of every preset against timm's models of the same names, and
the resampling of ViT position tables and Swin relative position bias tables.

Skipped where torch or timm is not installed (CI does not install them).

Known differences from timm, pinned by the strict `xfail` tests below:

- Position tables: ours resamples with PyTorch's plain bicubic (`antialias=False`); timm's
  `dynamic_img_size`, `set_input_size` and checkpoint loading default to `antialias=True`,
  PyTorch's antialiased bicubic (Keys' kernel with `a = -0.5`, weights renormalized at the
  border), which differs even when upsampling.
- Swin bias tables: ours resamples bicubically (`resize_rel_pos_bias_table_simple`); timm's
  Swin uses `resize_rel_pos_bias_table`, the BEiT geometric-progression interpolation.
- Mean pooling: ours normalizes the tokens, then averages them; timm's `global_pool="avg"`
  averages first, then applies `fc_norm` (unless `fc_norm=False`, which ours equals).
"""

import functools

import numpy as np
import pytest

from keras_seq.layers.attention.window_attention import WindowAttention
from keras_seq.layers.embeddings.patch_position_embedding import PatchPositionEmbedding
from keras_seq.models import SwinBackbone
from keras_seq.models import SwinImageClassifier
from keras_seq.models import ViTBackbone
from keras_seq.models import ViTImageClassifier

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

timm_vit = timm.models.vision_transformer
timm_swin = timm.models.swin_transformer
resample_abs_pos_embed = timm.layers.resample_abs_pos_embed
resize_rel_pos_bias_table = timm.layers.resize_rel_pos_bias_table
resize_rel_pos_bias_table_simple = timm.layers.resize_rel_pos_bias_table_simple

ATOL = 1e-4

VIT = {"patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2}
SWIN = {"patch_size": 4, "embed_dim": 32, "window_size": 4}


# === Converters: timm state dicts -> keras_seq variables, by variable path ===


def _numpy_state(module):
    """timm module's parameters as NumPy arrays (buffers such as index tables left out)."""
    return {name: p.detach().cpu().numpy() for name, p in module.named_parameters()}


def _assign(model, values):
    """Assign `{variable path: array}` to `model`'s variables, every one exactly once."""
    variables = {v.path: v for v in model.weights}
    assert set(values) == set(variables), (
        f"unassigned: {sorted(set(variables) - set(values))}, "
        f"unknown: {sorted(set(values) - set(variables))}"
    )
    for path, value in values.items():
        assert tuple(variables[path].shape) == value.shape, (path, variables[path].shape)
        variables[path].assign(value)


class _State:
    """A timm state dict whose entries must each be consumed once (`take`)."""

    def __init__(self, module):
        self._state = _numpy_state(module)

    def __contains__(self, name):
        return name in self._state

    def take(self, name):
        return self._state.pop(name)

    def check_consumed(self):
        assert not self._state, f"timm parameters not converted: {sorted(self._state)}"


def _layer_norm(state, source, target):
    return {
        f"{target}/gamma": state.take(f"{source}.weight"),
        f"{target}/beta": state.take(f"{source}.bias"),
    }


def _dense(state, source, target, use_bias=True):
    values = {f"{target}/kernel": state.take(f"{source}.weight").T}  # torch (out, in)
    if use_bias:
        values[f"{target}/bias"] = state.take(f"{source}.bias")
    return values


def _attention(state, source, target, num_heads):
    """timm's fused `qkv` (3 * N * H, C) and `proj` (C, N * H) -> our EinsumDense kernels."""
    qkv_kernel, qkv_bias = state.take(f"{source}.qkv.weight"), state.take(f"{source}.qkv.bias")
    channels = qkv_kernel.shape[1]
    head_size = qkv_kernel.shape[0] // 3 // num_heads
    values = {}
    for index, name in enumerate(("query", "key", "value")):
        rows = slice(index * num_heads * head_size, (index + 1) * num_heads * head_size)
        values[f"{target}/{name}_dense/kernel"] = qkv_kernel[rows].T.reshape(
            channels, num_heads, head_size
        )
        values[f"{target}/{name}_dense/bias"] = qkv_bias[rows].reshape(num_heads, head_size)
    proj_kernel = state.take(f"{source}.proj.weight")  # (C, N * H)
    values[f"{target}/output_dense/kernel"] = proj_kernel.T.reshape(num_heads, head_size, -1)
    values[f"{target}/output_dense/bias"] = state.take(f"{source}.proj.bias")
    return values


def _mlp(state, source, target):
    return {
        **_dense(state, f"{source}.fc1", f"{target}/intermediate_dense"),
        **_dense(state, f"{source}.fc2", f"{target}/output_dense"),
    }


def _conv(state, source, target):
    return {
        f"{target}/kernel": state.take(f"{source}.weight").transpose(2, 3, 1, 0),  # OIHW->HWIO
        f"{target}/bias": state.take(f"{source}.bias"),
    }


def load_timm_vit(model, timm_model):
    """Copy a timm `VisionTransformer` (class token, no register tokens) into our
    `ViTImageClassifier` (variable paths are the backbone's layers' and the head's).

    timm's final norm is `norm`, or `fc_norm` when it normalizes after pooling; either goes
    to our `layer_norm` (which normalizes before pooling: see `test_vit_fc_norm_differs`).
    """
    state = _State(timm_model)
    num_heads = timm_model.blocks[0].attn.num_heads
    values = {
        **_conv(state, "patch_embed.proj", "patch_embedding/projection"),
        "position_embedding/class_token": state.take("cls_token"),
        "position_embedding/position_embeddings": state.take("pos_embed")[0],
        **_dense(state, "head", "head"),
    }
    final_norm = "fc_norm" if "fc_norm.weight" in state else "norm"
    values.update(_layer_norm(state, final_norm, "layer_norm"))
    for index in range(len(timm_model.blocks)):
        source, target = f"blocks.{index}", f"encoder_layer_{index}"
        values.update(_layer_norm(state, f"{source}.norm1", f"{target}/self_attention_layer_norm"))
        values.update(_attention(state, f"{source}.attn", f"{target}/self_attention", num_heads))
        values.update(_layer_norm(state, f"{source}.norm2", f"{target}/feedforward_layer_norm"))
        values.update(_mlp(state, f"{source}.mlp", f"{target}/feedforward"))
    state.check_consumed()
    _assign(model, values)


def load_timm_swin(model, timm_model):
    """Copy a timm `SwinTransformer` into our `SwinImageClassifier`.

    Recent timm (>= 0.9) holds the patch merging at the start of the next stage
    (`layers.{s + 1}.downsample`); the original checkpoints and older timm at the end of the
    stage (`layers.{s}.downsample`): both layouts are read. timm's merging concatenates
    (even row, even col), (odd, even), (even, odd), (odd, odd), our order, so the reduction
    kernel is copied without permutation.
    """
    state = _State(timm_model)
    merging_at_start = "layers.0.downsample.reduction.weight" not in state
    values = {
        **_conv(state, "patch_embed.proj", "patch_embedding/projection"),
        **_layer_norm(state, "patch_embed.norm", "patch_layer_norm"),
        **_layer_norm(state, "norm", "layer_norm"),
        **_dense(state, "head.fc", "head"),
    }
    num_stages = len(timm_model.layers)
    for stage, timm_stage in enumerate(timm_model.layers):
        num_heads = timm_stage.blocks[0].attn.num_heads
        for index in range(len(timm_stage.blocks)):
            source = f"layers.{stage}.blocks.{index}"
            target = f"stage_{stage + 1}_block_{index}"
            attention = f"{target}/window_attention"
            values.update(_layer_norm(state, f"{source}.norm1", f"{target}/attention_layer_norm"))
            values[f"{attention}/relative_position_bias_table"] = state.take(
                f"{source}.attn.relative_position_bias_table"
            )
            values.update(
                _attention(state, f"{source}.attn", f"{attention}/self_attention", num_heads)
            )
            values.update(_layer_norm(state, f"{source}.norm2", f"{target}/feedforward_layer_norm"))
            values.update(_mlp(state, f"{source}.mlp", f"{target}/feedforward"))
        if stage < num_stages - 1:  # Our patch_merging_{s + 1} sits between stages s and s + 1.
            source = f"layers.{stage + 1 if merging_at_start else stage}.downsample"
            target = f"patch_merging_{stage + 1}"
            values.update(_layer_norm(state, f"{source}.norm", f"{target}/layer_norm"))
            values.update(_dense(state, f"{source}.reduction", f"{target}/reduction", False))
    state.check_consumed()
    _assign(model, values)


# === Helpers ===


def _randomize(timm_model, seed=0):
    """Random weights everywhere (timm zero-initializes some), norm scales around 1."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in timm_model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * 0.2
            is_norm_scale = "norm" in name and name.endswith(".weight")
            parameter.copy_(noise + 1.0 if is_norm_scale else noise)
    return timm_model.eval()


def _images(height, width, batch_size=2, seed=0):
    return np.random.RandomState(seed).randn(batch_size, height, width, 3).astype("float32")


def _timm_logits(timm_model, images):
    with torch.no_grad():
        return timm_model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()


def _timm_features(timm_model, images):
    """timm's `forward_features`: ViT tokens `(B, T, C)`, Swin's NHWC map `(B, H, W, C)`."""
    with torch.no_grad():
        return timm_model.forward_features(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()


def _our_logits(model, images):
    return np.asarray(model(images, training=False))


def _our_features(model, images):
    return np.asarray(model.backbone(images, training=False))


def _assert_close(actual, expected, atol=ATOL):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    difference = float(np.max(np.abs(actual - expected)))
    print(f"max abs difference {difference:.3g}")
    assert difference <= atol, f"max abs difference {difference:.3g} > {atol}"


def _vit_pair(pooling="token", timm_kwargs=None, image_shape=(32, 32, 3), **ours):
    timm_model = _randomize(
        timm_vit.VisionTransformer(img_size=32, num_classes=10, **VIT, **(timm_kwargs or {}))
    )
    backbone = ViTBackbone(
        image_shape=image_shape,
        patch_size=VIT["patch_size"],
        num_layers=VIT["depth"],
        hidden_dim=VIT["embed_dim"],
        num_heads=VIT["num_heads"],
        intermediate_dim=VIT["embed_dim"] * VIT["mlp_ratio"],
        **ours,
    )
    model = ViTImageClassifier(backbone, num_classes=10, pooling=pooling)
    load_timm_vit(model, timm_model)
    return model, timm_model


def _swin_pair(image_size, depths, num_heads):
    timm_model = _randomize(
        timm_swin.SwinTransformer(
            img_size=image_size, depths=depths, num_heads=num_heads, num_classes=10, **SWIN
        )
    )
    backbone = SwinBackbone(
        image_shape=(*image_size, 3),
        patch_size=SWIN["patch_size"],
        hidden_dim=SWIN["embed_dim"],
        num_layers=depths,
        num_heads=num_heads,
        window_size=SWIN["window_size"],
        drop_path_rate=0.0,
    )
    model = SwinImageClassifier(backbone, num_classes=10)
    load_timm_swin(model, timm_model)
    return model, timm_model


# === ViT ===


def test_vit_token_pooling_matches_timm():
    model, timm_model = _vit_pair("token", {"global_pool": "token"})
    images = _images(32, 32)
    _assert_close(_our_logits(model, images), _timm_logits(timm_model, images))


def test_vit_backbone_matches_timm_forward_features():
    # The normalized tokens, class token first (HF ViTModel's last_hidden_state too).
    model, timm_model = _vit_pair("token", {"global_pool": "token"})
    images = _images(32, 32)
    _assert_close(_our_features(model, images), _timm_features(timm_model, images))


def test_vit_mean_pooling_matches_timm_without_fc_norm():
    # Ours: norm, then the mean of the patch tokens = timm's avg pooling with fc_norm=False.
    model, timm_model = _vit_pair("mean", {"global_pool": "avg", "fc_norm": False})
    images = _images(32, 32)
    _assert_close(_our_logits(model, images), _timm_logits(timm_model, images))


@pytest.mark.xfail(
    raises=AssertionError,
    reason="timm's avg pooling defaults to fc_norm: mean, then norm; ours: norm, mean",
)
def test_vit_fc_norm_differs():
    model, timm_model = _vit_pair("mean", {"global_pool": "avg"})
    assert not isinstance(timm_model.fc_norm, torch.nn.Identity)
    images = _images(32, 32)
    _assert_close(_our_logits(model, images), _timm_logits(timm_model, images))


@pytest.mark.parametrize("size", [(48, 48), (40, 56)])
def test_vit_other_image_size_matches_timm_dynamic_without_antialias(monkeypatch, size):
    # Built for a 4 x 4 grid (32 x 32), run at 6 x 6 and 5 x 7: the table is resampled per call.
    model, timm_model = _vit_pair(
        "token",
        {"dynamic_img_size": True},
        image_shape=(None, None, 3),
        position_grid_shape=(4, 4),
    )
    monkeypatch.setattr(
        timm_vit,
        "resample_abs_pos_embed",
        functools.partial(resample_abs_pos_embed, antialias=False),
    )
    images = _images(*size)
    _assert_close(_our_logits(model, images), _timm_logits(timm_model, images))


@pytest.mark.xfail(
    raises=AssertionError,
    reason="timm's dynamic_img_size resamples with antialias=True; ours without",
)
def test_vit_other_image_size_vs_timm_dynamic_default():
    model, timm_model = _vit_pair(
        "token",
        {"dynamic_img_size": True},
        image_shape=(None, None, 3),
        position_grid_shape=(4, 4),
    )
    images = _images(48, 48)
    _assert_close(_our_logits(model, images), _timm_logits(timm_model, images))


def _our_resampled_table(table, grid_shape, new_grid):
    """Our layer's table at call time on `new_grid`: class token zero, patches zero."""
    layer = PatchPositionEmbedding(grid_shape)
    layer.build((None, *grid_shape, table.shape[-1]))
    layer.class_token.assign(np.zeros((1, 1, table.shape[-1]), "float32"))
    layer.position_embeddings.assign(table)
    return np.asarray(layer(np.zeros((1, *new_grid, table.shape[-1]), "float32")))[0]


@pytest.mark.parametrize("new_grid", [(6, 6), (5, 7), (3, 3)])
def test_position_table_resampling_matches_timm(new_grid):
    table = np.random.RandomState(0).randn(1 + 16, 8).astype("float32")
    expected = resample_abs_pos_embed(
        torch.from_numpy(table[None]),
        new_size=new_grid,
        old_size=(4, 4),
        num_prefix_tokens=1,
        interpolation="bicubic",
        antialias=False,
    )[0].numpy()
    _assert_close(_our_resampled_table(table, (4, 4), new_grid), expected, atol=1e-5)


@pytest.mark.xfail(
    raises=AssertionError,
    reason="timm's resample_abs_pos_embed defaults to antialias=True; ours without",
)
def test_position_table_resampling_vs_timm_default_antialias():
    table = np.random.RandomState(0).randn(1 + 16, 8).astype("float32")
    expected = resample_abs_pos_embed(
        torch.from_numpy(table[None]), new_size=(6, 6), old_size=(4, 4), num_prefix_tokens=1
    )[0].numpy()
    _assert_close(_our_resampled_table(table, (4, 4), (6, 6)), expected, atol=1e-5)


# === Swin ===


@pytest.mark.parametrize(
    "image_size, depths, num_heads",
    [
        ((64, 64), (2, 2), (2, 4)),
        ((64, 96), (2, 2), (2, 4)),  # non-square
        ((64, 64), (2, 2, 2), (2, 4, 8)),  # last stage 4 x 4 = window: no shift
    ],
)
def test_swin_matches_timm(image_size, depths, num_heads):
    model, timm_model = _swin_pair(image_size, depths, num_heads)
    images = _images(*image_size)
    _assert_close(_our_logits(model, images), _timm_logits(timm_model, images))
    # The backbone's output is timm's forward_features (the normalized NHWC map of the last
    # stage; timm >= 0.9).
    _assert_close(_our_features(model, images), _timm_features(timm_model, images))


def _our_resized_bias_table(table, num_heads, window_size):
    layer = WindowAttention(num_heads=num_heads, window_size=window_size)
    layer.build((None, window_size * window_size, 8))
    layer.load_own_variables({"0": table})
    return np.asarray(layer.relative_position_bias_table)


def test_bias_table_resize_matches_timm_bicubic():
    table = np.random.RandomState(0).randn(7 * 7, 2).astype("float32")  # window 4
    expected = resize_rel_pos_bias_table_simple(
        torch.from_numpy(table), new_window_size=(6, 6), new_bias_shape=(11 * 11, 2)
    ).numpy()
    _assert_close(_our_resized_bias_table(table, 2, 6), expected, atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")  # timm's interpolation helper
@pytest.mark.xfail(
    raises=AssertionError,
    reason="timm's Swin resizes bias tables with BEiT's geometric interpolation",
)
def test_bias_table_resize_vs_timm_swin():
    table = np.random.RandomState(0).randn(7 * 7, 2).astype("float32")
    expected = resize_rel_pos_bias_table(
        torch.from_numpy(table),
        new_window_size=(6, 6),
        new_bias_shape=(11 * 11, 2),
        old_window_size=(4, 4),
    ).numpy()
    _assert_close(_our_resized_bias_table(table, 2, 6), expected, atol=1e-5)


# === Parameter counts of the presets ===

# timm 1.0 has no ViT-Ti/32 (no such model was published): its Ti/16 with 32 x 32 patches.
_TIMM_STAND_INS = {"vit_tiny_patch32_224": ("vit_tiny_patch16_224", {"patch_size": 32})}


def _timm_parameter_count(name):
    # num_classes explicitly: some timm defaults are headless (vit_large_patch32_224's
    # default weights are in21k features, num_classes=0).
    name, overrides = _TIMM_STAND_INS.get(name, (name, {}))
    timm_model = timm.create_model(name, pretrained=False, num_classes=1000, **overrides)
    count = sum(p.numel() for p in timm_model.parameters())
    del timm_model
    return count


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            f"vit_{size}_patch{patch}_224",
            marks=[pytest.mark.slow] if size == "large" else [],  # about 30 s each
        )
        for size in ("tiny", "small", "base", "large")
        for patch in (16, 32)
    ],
)
def test_vit_preset_parameter_count_matches_timm(name):
    expected = _timm_parameter_count(name)
    assert ViTImageClassifier.from_preset(name).count_params() == expected


@pytest.mark.parametrize(
    "name",
    [f"swin_{size}_patch4_window7_224" for size in ("tiny", "small", "base")],
)
def test_swin_preset_parameter_count_matches_timm(name):
    expected = _timm_parameter_count(name)
    assert SwinImageClassifier.from_preset(name).count_params() == expected
