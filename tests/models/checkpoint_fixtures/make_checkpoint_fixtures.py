"""Write small reference checkpoints for keras_seq's checkpoint-loading tests.

Every fixture is a folder holding exactly what the reference library itself
writes for a model (Hugging Face transformers' ``save_pretrained`` or timm's
``save_for_hf`` hub layout), plus ``reference.npz`` with a fixed input batch
and the reference library's outputs for it. keras_seq's tests have neither
torch nor network access: they load these folders with keras_seq's converters
and compare against ``reference.npz``.

Fixtures (folder names):

* ``hf_vit_model``: ``ViTModel`` with pooler + ``ViTImageProcessor`` config.
* ``hf_vit_classifier``: ``ViTForImageClassification`` (5 labels).
* ``hf_vit_classifier_sharded``: the same weights saved in several shards
  (``model.safetensors.index.json`` + ``model-0000k-of-0000n.safetensors``).
* ``hf_swin_model``: ``SwinModel`` (shifted windows exercised in both stages).
* ``hf_swin_classifier``: ``SwinForImageClassification`` (5 labels).
* ``hf_detr_timm_backbone``: ``DetrForObjectDetection`` on a timm ResNet
  (bottleneck) backbone.
* ``hf_detr_resnet_backbone``: ``DetrForObjectDetection`` on transformers'
  own ``ResNetBackbone`` (bottleneck).
* ``timm_vit_token``: timm ``vit_base_patch16_224`` layout, class-token pool.
* ``timm_vit_avg``: timm ViT with ``global_pool="avg"`` and ``fc_norm=True``
  (the final ``norm`` is then an Identity and the LayerNorm lives in
  ``fc_norm``, applied after averaging the patch tokens).
* ``timm_vit_no_class_token``: timm ViT with ``class_token=False`` and
  ``global_pool="avg"``.
* ``timm_swin``: timm ``swin_tiny_patch4_window7_224`` layout.

Other timm ViT options that published checkpoints use, without a fixture
here:

* ``qkv_bias=False``: no ``blocks.N.attn.qkv.bias`` (``vit_base_patch16_224_miil``).
* ``init_values``: LayerScale, ``blocks.N.ls1.gamma`` / ``ls2.gamma`` (DeiT III, DINOv2).
* ``no_embed_class=True``: ``pos_embed`` covers the patches only; the prefix
  tokens are concatenated after adding it (DeiT III).
* ``reg_tokens=N``: ``reg_token`` of shape (1, N, C) (``vit_base_patch16_reg4_gap_256``:
  class_token=False, no_embed_class=True, reg_tokens=4, global_pool="avg").
* ``fc_norm=False`` with avg pooling: the final ``norm`` stays, applied to all
  tokens before averaging, and there is no ``fc_norm`` (``vit_medium_patch16_gap_256``).
* ``pre_norm=True``: ``norm_pre`` before the blocks (CLIP towers, LayerNorm eps 1e-5).
* ``global_pool="map"``: attention-pool head ``attn_pool.*`` (SigLIP towers).
* ``dynamic_img_size=True``: position embeddings resampled to the input grid.

By default all models are tiny (widths 2-64, 1-2 blocks per stage, 32x32
images, 34x66 for DETR; about 1.9 MB in all). Every
``make_<name>(out_dir, full_size=False)`` function also takes
``full_size=True`` for the real widths (ViT-B/16 at 224, Swin-T at 224,
DETR with ResNet-50 widths), e.g. for an opt-in test writing into a
temporary folder.

Contents of ``reference.npz`` (all float32 except ``images_uint8``):

* ``pixel_values``: (2, H, W, 3) channels-last normalized input (seeded
  normal noise); the torch model got ``pixel_values.transpose(0, 3, 1, 2)``.
* the outputs named in each ``make_*`` function. Token tensors are (B, T, C);
  tensors with a channel axis are stored channels-last (timm Swin's
  ``forward_features`` is already NHWC).
* classifiers only: ``images_uint8`` (2, h, w, 3) random uint8 images and
  ``logits_from_uint8``: the model's logits on the reference library's
  preprocessing of them (the script checks that this preprocessing equals
  the plain steps below to 1e-5). For transformers the
  images have the processor's own size (32x32), so its resize is the
  identity and only rescale (1/255) + normalize act. For timm the images
  are ``floor(size / crop_pct)`` square (35x35 for size 32, crop_pct 0.9) so
  that timm's eval ``Resize`` is the identity and the ``CenterCrop`` (offset
  ``int(round((35 - 32) / 2)) == 2``) + ``ToTensor`` + ``Normalize`` act.

All parameters and floating-point persistent buffers are perturbed after
construction with a fixed generator (BatchNorm running variances are scaled
by ``1 + 0.1 * U[0, 1)`` to stay positive), so no norm weight is exactly 1 and
no bias exactly 0. Models are float32, eval mode. Each ``make_*`` reloads what
it wrote with the library's own loader (``from_pretrained`` /
``timm.create_model("local-dir:...", pretrained=True)``) and asserts that the
reloaded model reproduces ``reference.npz`` exactly.

The DETR timm fixture: transformers 5.x builds its timm backbone as
``timm.create_model(config.backbone_config.backbone, features_only=True,
in_chans=..., out_indices=..., output_stride=...)`` and has no way to pass
further timm arguments (``backbone_kwargs`` other than those fields are
dropped). So a tiny ResNet cannot be described by the config alone. This
script registers a timm model named ``resnet50_tiny`` (timm's ``ResNet`` with
the ResNet-50 ``Bottleneck`` layout but ``layers=(1, 2, 1, 1)``,
``channels=(64, 4, 4, 4)``, i.e. stage outputs 256/16/16/16; timm's plain
7x7 stem stays 64 wide whatever ``stem_width`` says; the first stage keeps
ResNet-50's width 64 because keras-hub's ``ResNetBackbone``, which keras_seq
loads these weights into, requires it) before building or reloading
that fixture; its state-dict key names are those of timm's ``resnet50``.
With ``full_size=True`` the backbone is timm's real ``resnet50``.

Environment (kept apart from the project's own virtualenv; CPU only):

    python3.11 -m venv /work/refenv
    /work/refenv/bin/pip install torch==2.13.0 transformers timm safetensors numpy pillow

Versions used for the checked-in fixtures: see ``manifest.json`` (torch
2.13.0+cpu, torchvision 0.28.0, transformers 5.25.0, timm 1.0.31,
safetensors 0.8.0, numpy 2.4.6, pillow 13.0.0).

torchvision workaround: timm imports torchvision, and the torchvision wheel
that pip resolves for torch 2.13.0 is a CUDA build whose C++ ops do not load
with the CPU torch. ``import torchvision`` then fails in
``torchvision/_meta_registrations.py``: the two decorators
``@torch.library.register_fake("torchvision::nms")`` and
``@torch.library.register_fake("torchvision::qnms")`` raise
``RuntimeError: operator torchvision::nms does not exist``. In the venv's
``site-packages/torchvision/_meta_registrations.py`` replace those two
decorators by ``@_register_fake_if_ops("torchvision::nms")`` /
``@_register_fake_if_ops("torchvision::qnms")`` and define, above the first
``@register_meta`` use::

    def _register_fake_if_ops(name):
        if torchvision.extension._has_ops():
            return torch.library.register_fake(name)
        return lambda fn: fn

(the file's own ``register_meta`` helper already skips registration when
``_has_ops()`` is false). None of timm's ViT / Swin / ResNet code uses
torchvision's ops.

Run (no network needed; ``HF_HUB_OFFLINE=1`` is set by the script):

    /work/refenv/bin/python tests/models/checkpoint_fixtures/make_checkpoint_fixtures.py
    ... --only hf_vit_model timm_swin      # a subset
    ... --out /tmp/full --full-size        # full-size variants elsewhere
"""

import argparse
import json
import os
import shutil
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
BATCH = 2
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CLASS_NAMES = ["tabby cat", "golden retriever", "goldfish", "school bus", "espresso"]
DETR_NAMES = ["person", "bicycle", "car", "dog"]
TIMM_TINY_RESNET = "resnet50_tiny"


# --------------------------------------------------------------------------
# helpers


def _seed(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _fresh_dir(path):
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@torch.no_grad()
def _perturb(model, seed):
    """Add small seeded noise to every parameter and float persistent buffer."""
    gen = torch.Generator().manual_seed(seed)
    persistent = set(model.state_dict().keys())
    seen = set()
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    for name, t in tensors:
        if name not in persistent or not t.is_floating_point():
            continue  # e.g. num_batches_tracked, relative_position_index, attn_mask
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        if name.endswith("running_var"):
            t.mul_(1.0 + 0.1 * torch.rand(t.shape, generator=gen))
        else:
            t.add_(0.02 * torch.randn(t.shape, generator=gen))
    model.eval()
    return model


def _pixels(seed, height, width):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, height, width, 3)).astype(np.float32)


def _uint8_images(seed, height, width):
    rng = np.random.default_rng(seed + 1)
    return rng.integers(0, 256, size=(BATCH, height, width, 3), dtype=np.uint8)


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _np(t, channels_first=False):
    a = t.detach().cpu().numpy().astype(np.float32)
    if channels_first:
        a = a.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(a)


def _save_npz(out_dir, arrays):
    np.savez_compressed(Path(out_dir) / "reference.npz", **arrays)


def _assert_same(expected, actual, what):
    for key, value in actual.items():
        ref = expected[key]
        if ref.shape != value.shape or not np.array_equal(ref, value):
            diff = np.max(np.abs(ref - value)) if ref.shape == value.shape else "shape"
            raise AssertionError(f"{what}: reloaded {key} differs from reference ({diff})")


def _id2label(names):
    return {i: n for i, n in enumerate(names)}


# --------------------------------------------------------------------------
# transformers: ViT


def _hf_vit_config(full_size, **extra):
    from transformers import ViTConfig

    if full_size:
        return ViTConfig(**extra)  # ViT-B/16 at 224
    return ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        **extra,
    )


def make_hf_vit_model(out_dir, full_size=False):
    """ViTModel (with pooler): outputs last_hidden_state, pooler_output."""
    from transformers import ViTImageProcessor
    from transformers import ViTModel

    name = "hf_vit_model"
    out = _fresh_dir(out_dir)
    torch.manual_seed(_seed(name))
    config = _hf_vit_config(full_size)
    model = _perturb(ViTModel(config), _seed(name))
    size = config.image_size
    processor = ViTImageProcessor(size={"height": size, "width": size})

    def run(m):
        pv = _pixels(_seed(name), size, size)
        with torch.no_grad():
            o = m(pixel_values=_nchw(pv))
        return {
            "pixel_values": pv,
            "last_hidden_state": _np(o.last_hidden_state),
            "pooler_output": _np(o.pooler_output),
        }

    ref = run(model)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    _save_npz(out, ref)
    _assert_same(ref, run(ViTModel.from_pretrained(out).eval()), name)
    return {
        "model_class": "transformers.ViTModel",
        "description": "HF ViTModel with pooler "
        "(tiny: 32px, patch 8, hidden 32, 2 layers, 2 heads).",
    }


def _hf_vit_classifier(name, full_size):
    from transformers import ViTForImageClassification
    from transformers import ViTImageProcessor

    torch.manual_seed(_seed(name))
    labels = _id2label(CLASS_NAMES)
    config = _hf_vit_config(full_size, id2label=labels, label2id={v: k for k, v in labels.items()})
    model = _perturb(ViTForImageClassification(config), _seed(name))
    size = config.image_size
    processor = ViTImageProcessor(
        size={"height": size, "width": size},
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )
    return model, processor


def _hf_classifier_reference(name, model, processor, base, size):
    """Outputs of an HF image classifier; `base` is its backbone attribute."""
    pv = _pixels(_seed(name), size, size)
    images = _uint8_images(_seed(name), size, size)
    with torch.no_grad():
        out = model(pixel_values=_nchw(pv))
        base_out = getattr(model, base)(pixel_values=_nchw(pv))
        proc = processor(images=list(images), return_tensors="pt")["pixel_values"]
        logits_u8 = model(pixel_values=proc).logits
    ref = {
        "pixel_values": pv,
        "logits": _np(out.logits),
        "last_hidden_state": _np(base_out.last_hidden_state),
        "images_uint8": images,
        "logits_from_uint8": _np(logits_u8),
    }
    _check_rescale_normalize(images, _np(proc, channels_first=True), processor, name)
    if getattr(base_out, "pooler_output", None) is not None:
        ref["pooler_output"] = _np(base_out.pooler_output)
    return ref


def _check_rescale_normalize(images, processed, processor, what):
    """The processor's output must be plain rescale + normalize (identity resize)."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.array(processor.image_mean, np.float32)) / np.array(processor.image_std, np.float32)
    np.testing.assert_allclose(x, processed, atol=1e-5, err_msg=what)


def make_hf_vit_classifier(
    out_dir, full_size=False, *, _name="hf_vit_classifier", max_shard_size=None
):
    """ViTForImageClassification: logits, last_hidden_state (final-normed, from model.vit)."""
    from transformers import ViTForImageClassification

    out = _fresh_dir(out_dir)
    seed_name = "hf_vit_classifier"  # the sharded fixture holds the same weights
    model, processor = _hf_vit_classifier(seed_name, full_size)
    size = model.config.image_size
    ref = _hf_classifier_reference(seed_name, model, processor, "vit", size)
    kwargs = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
    model.save_pretrained(out, **kwargs)
    processor.save_pretrained(out)
    _save_npz(out, ref)
    reloaded = ViTForImageClassification.from_pretrained(out).eval()
    _assert_same(ref, _hf_classifier_reference(seed_name, reloaded, processor, "vit", size), _name)
    return {
        "model_class": "transformers.ViTForImageClassification",
        "description": "HF ViT classifier, 5 labels, ImageNet mean/std processor; "
        "last_hidden_state is model.vit's final LayerNorm output.",
    }


def make_hf_vit_classifier_sharded(out_dir, full_size=False):
    """Same weights and reference as hf_vit_classifier, written as several shards."""
    info = make_hf_vit_classifier(
        out_dir,
        full_size,
        _name="hf_vit_classifier_sharded",
        max_shard_size="40KB" if not full_size else "100MB",
    )
    shards = sorted(Path(out_dir).glob("model-*.safetensors"))
    if not (Path(out_dir) / "model.safetensors.index.json").exists() or len(shards) < 2:
        raise AssertionError("expected a sharded checkpoint")
    info["description"] = (
        f"hf_vit_classifier's weights saved in {len(shards)} shards "
        "with model.safetensors.index.json."
    )
    return info


# --------------------------------------------------------------------------
# transformers: Swin


def _hf_swin_config(full_size, **extra):
    from transformers import SwinConfig

    if full_size:
        return SwinConfig(**extra)  # Swin-T at 224
    # 32px / patch 2 -> 16x16 tokens, then 8x8 after merging: both larger than
    # the 4x4 window, so both stages use shifted windows (odd blocks).
    return SwinConfig(
        image_size=32,
        patch_size=2,
        embed_dim=16,
        depths=[2, 2],
        num_heads=[2, 4],
        window_size=4,
        mlp_ratio=2.0,
        **extra,
    )


def make_hf_swin_model(out_dir, full_size=False):
    """SwinModel: outputs last_hidden_state, pooler_output."""
    from transformers import SwinModel
    from transformers import ViTImageProcessor

    name = "hf_swin_model"
    out = _fresh_dir(out_dir)
    torch.manual_seed(_seed(name))
    config = _hf_swin_config(full_size)
    model = _perturb(SwinModel(config), _seed(name))
    size = config.image_size
    processor = ViTImageProcessor(
        size={"height": size, "width": size},
        resample=3,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )

    def run(m):
        pv = _pixels(_seed(name), size, size)
        with torch.no_grad():
            o = m(pixel_values=_nchw(pv))
        return {
            "pixel_values": pv,
            "last_hidden_state": _np(o.last_hidden_state),
            "pooler_output": _np(o.pooler_output),
        }

    ref = run(model)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    _save_npz(out, ref)
    _assert_same(ref, run(SwinModel.from_pretrained(out).eval()), name)
    return {
        "model_class": "transformers.SwinModel",
        "description": "HF SwinModel (tiny: 32px, patch 2, dim 16, depths [2,2], heads [2,4], "
        "window 4, mlp_ratio 2; shifted windows in both stages).",
    }


def make_hf_swin_classifier(out_dir, full_size=False):
    """SwinForImageClassification: logits (+ last_hidden_state, pooler_output of model.swin)."""
    from transformers import SwinForImageClassification
    from transformers import ViTImageProcessor

    name = "hf_swin_classifier"
    out = _fresh_dir(out_dir)
    torch.manual_seed(_seed(name))
    labels = _id2label(CLASS_NAMES)
    config = _hf_swin_config(full_size, id2label=labels, label2id={v: k for k, v in labels.items()})
    model = _perturb(SwinForImageClassification(config), _seed(name))
    size = config.image_size
    processor = ViTImageProcessor(
        size={"height": size, "width": size},
        resample=3,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )
    ref = _hf_classifier_reference(name, model, processor, "swin", size)
    # A size that is no multiple of the window at any stage (maps 18 x 22 and 9 x 11 with
    # window 4 at tiny size): Swin pads the maps, and the padded tokens take part in attention.
    padded_size = (36, 44) if not full_size else (232, 200)
    padded = np.random.default_rng(_seed(name) + 1).standard_normal(
        (BATCH, *padded_size, 3)
    ).astype(np.float32)
    with torch.no_grad():
        padded_logits = model(pixel_values=torch.from_numpy(padded.transpose(0, 3, 1, 2))).logits
    ref["pixel_values_padded"] = padded
    ref["logits_padded"] = _np(padded_logits)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    _save_npz(out, ref)
    reloaded = SwinForImageClassification.from_pretrained(out).eval()
    reloaded_ref = _hf_classifier_reference(name, reloaded, processor, "swin", size)
    _assert_same({k: v for k, v in ref.items() if not k.endswith("_padded")}, reloaded_ref, name)
    return {
        "model_class": "transformers.SwinForImageClassification",
        "description": "HF Swin classifier, 5 labels, ImageNet mean/std processor (bicubic); "
        "also logits at a size that needs padding (pixel_values_padded, logits_padded).",
    }


# --------------------------------------------------------------------------
# transformers: DETR


def _register_tiny_timm_resnet():
    """Register timm model `resnet50_tiny`: resnet50's layout, tiny widths."""
    import timm
    from timm.models import register_model
    from timm.models.resnet import Bottleneck
    from timm.models.resnet import _create_resnet

    if timm.is_model(TIMM_TINY_RESNET):
        return

    def resnet50_tiny(pretrained=False, **kwargs):
        # timm's plain 7x7 stem is always 64 wide (stem_width only acts on deep stems).
        args = dict(block=Bottleneck, layers=(1, 2, 1, 1), channels=(64, 4, 4, 4))
        return _create_resnet(TIMM_TINY_RESNET, pretrained, **dict(args, **kwargs))

    resnet50_tiny.__module__ = "timm.models.resnet"
    register_model(resnet50_tiny)


def _detr_common(full_size):
    labels = _id2label(DETR_NAMES)
    common = dict(id2label=labels, label2id={v: k for k, v in labels.items()})
    if not full_size:
        common.update(
            d_model=32,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            num_queries=5,
        )
    return common


def _detr_processor(full_size):
    from transformers import DetrImageProcessor

    if full_size:
        return DetrImageProcessor()
    return DetrImageProcessor(size={"shortest_edge": 34, "longest_edge": 66})


def _make_detr(name, out_dir, config, full_size):
    from transformers import DetrForObjectDetection

    out = _fresh_dir(out_dir)
    torch.manual_seed(_seed(name))
    model = _perturb(DetrForObjectDetection(config), _seed(name))
    # Tiny: 34x66 -> 17x33 -> 9x17 -> 5x9 -> 3x5 -> 2x3 (even input, odd intermediate sizes,
    # so both torch's symmetric padding of even maps and ceil'd odd maps are exercised).
    height, width = (224, 320) if full_size else (34, 66)

    def run(m):
        pv = _pixels(_seed(name), height, width)
        with torch.no_grad():
            o = m(pixel_values=_nchw(pv))
        return {
            "pixel_values": pv,
            "logits": _np(o.logits),
            "pred_boxes": _np(o.pred_boxes),
            "last_hidden_state": _np(o.last_hidden_state),
            "encoder_last_hidden_state": _np(o.encoder_last_hidden_state),
        }

    ref = run(model)
    model.save_pretrained(out)
    _detr_processor(full_size).save_pretrained(out)
    _save_npz(out, ref)
    _assert_same(ref, run(DetrForObjectDetection.from_pretrained(out).eval()), name)


def make_hf_detr_timm_backbone(out_dir, full_size=False):
    """DetrForObjectDetection on a timm ResNet: logits, pred_boxes, last_hidden_state,
    encoder_last_hidden_state.

    Checkpoint keys: the timm backbone sits under
    ``model.backbone.conv_encoder.model.`` with timm's resnet names
    (``conv1``, ``bn1``, ``layer{1-4}.{i}.conv{1-3}`` / ``bn{1-3}`` /
    ``downsample.{0,1}``; BatchNorms are DETR's frozen BN: weight, bias,
    running_mean, running_var, no num_batches_tracked; no ``fc``), then
    ``model.input_projection``, ``model.query_position_embeddings``,
    ``model.encoder.layers.N.{self_attn.{q,k,v,out}_proj, self_attn_layer_norm,
    fc1, fc2, final_layer_norm}``, ``model.decoder.layers.N.{self_attn,
    encoder_attn, ..._layer_norm, fc1, fc2}``, ``model.decoder.layernorm``,
    ``class_labels_classifier``, ``bbox_predictor.layers.{0,1,2}``.
    """
    from transformers import DetrConfig

    name = "hf_detr_timm_backbone"
    backbone = "resnet50"
    if not full_size:
        _register_tiny_timm_resnet()
        backbone = TIMM_TINY_RESNET
    config = DetrConfig(
        use_timm_backbone=True,
        backbone=backbone,
        use_pretrained_backbone=False,
        **_detr_common(full_size),
    )
    _make_detr(name, out_dir, config, full_size)
    return {
        "model_class": "transformers.DetrForObjectDetection",
        "description": "HF DETR on a timm backbone; tiny: timm ResNet bottleneck registered as "
        f"'{TIMM_TINY_RESNET}' (layers 1,2,1,1; channels 64,4,4,4 -> "
        "outputs 256,16,16,16; 64-wide 7x7 stem), "
        "d_model 32, 2+2 layers, 5 queries, 4 labels, 34x66 (HxW) input.",
    }


def make_hf_detr_resnet_backbone(out_dir, full_size=False):
    """DetrForObjectDetection on transformers' ResNetBackbone (bottleneck); same outputs."""
    from transformers import DetrConfig
    from transformers import ResNetConfig

    name = "hf_detr_resnet_backbone"
    if full_size:
        backbone_config = ResNetConfig(out_features=["stage4"])  # ResNet-50
    else:
        backbone_config = ResNetConfig(
            embedding_size=4,  # != hidden_sizes[0], so stage 0 has its shortcut conv like ResNet-50
            hidden_sizes=[256, 16, 16, 16],
            depths=[1, 2, 1, 1],  # stage 1's second block has no shortcut
            layer_type="bottleneck",
            out_features=["stage4"],
        )
    config = DetrConfig(
        use_timm_backbone=False,
        backbone_config=backbone_config,
        use_pretrained_backbone=False,
        **_detr_common(full_size),
    )
    _make_detr(name, out_dir, config, full_size)
    return {
        "model_class": "transformers.DetrForObjectDetection",
        "description": "HF DETR on transformers' ResNetBackbone; tiny: embedding 4, hidden "
        "[256,16,16,16], depths [1,2,1,1], bottleneck; d_model 32, 2+2 layers, "
        "5 queries, 4 labels, 34x66 (HxW) input.",
    }


# --------------------------------------------------------------------------
# timm


def _timm_fixture(
    name, out_dir, architecture, model_args, tiny_args, full_size, channels_last_features
):
    """Build, perturb, save (timm hub layout) and check a timm classifier."""
    import timm
    from PIL import Image

    out = _fresh_dir(out_dir)
    args = dict(model_args)
    if not full_size:
        args.update(tiny_args)
    torch.manual_seed(_seed(name))
    model = timm.create_model(architecture, pretrained=False, num_classes=len(CLASS_NAMES), **args)
    _perturb(model, _seed(name))

    # Save first: the preprocessing is what a user of the saved folder gets,
    # resolve_data_config on the reloaded model (its pretrained_cfg carries the
    # checkpoint's input_size; the freshly built model's still says 224).
    timm.models.save_for_hf(
        model,
        out,
        model_args=args,
        safe_serialization=True,
        model_config={"label_names": list(CLASS_NAMES)},
    )
    config = json.loads((out / "config.json").read_text())
    if config.get("architecture") != architecture or "model_args" not in config:
        raise AssertionError(f"{name}: unexpected timm config.json {config}")
    reloaded = timm.create_model("local-dir:" + str(out), pretrained=True).eval()

    data_config = timm.data.resolve_data_config({}, model=reloaded)
    transform = timm.data.create_transform(**data_config)
    size = data_config["input_size"][1]
    scale = int(size / data_config["crop_pct"])  # eval Resize target -> identity

    def run(m):
        pv = _pixels(_seed(name), size, size)
        images = _uint8_images(_seed(name), scale, scale)
        with torch.no_grad():
            feats = m.forward_features(_nchw(pv))
            logits = m.forward_head(feats)
            proc = torch.stack([transform(Image.fromarray(im)) for im in images])
            logits_u8 = m(proc)
            np.testing.assert_array_equal(_np(logits), _np(m(_nchw(pv))))
        if channels_last_features and not (feats.ndim == 4 and feats.shape[-1] == m.num_features):
            raise AssertionError(f"{name}: expected NHWC features, got {tuple(feats.shape)}")
        return {
            "pixel_values": pv,
            "features": _np(feats),  # already NHWC for Swin, (B, T, C) for ViT
            "logits": _np(logits),
            "images_uint8": images,
            "logits_from_uint8": _np(logits_u8),
        }, _np(proc, channels_first=True)

    ref, processed = run(model)
    # timm's eval transform here is centre crop + rescale + normalize only.
    off = int(round((scale - size) / 2.0))
    x = ref["images_uint8"][:, off : off + size, off : off + size].astype(np.float32) / 255.0
    x = (x - np.array(data_config["mean"], np.float32)) / np.array(data_config["std"], np.float32)
    np.testing.assert_allclose(x, processed, atol=1e-5, err_msg=name)
    _save_npz(out, ref)
    _assert_same(ref, run(reloaded)[0], name)
    return {
        "model_class": f"timm.models.{type(model).__name__} ({architecture})",
        "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()},
    }


VIT_TINY = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0)


def make_timm_vit_token(out_dir, full_size=False):
    """timm vit_base_patch16_224 layout, class-token pool: features (B, 1+T, C), logits."""
    info = _timm_fixture(
        "timm_vit_token", out_dir, "vit_base_patch16_224", {}, VIT_TINY, full_size, False
    )
    info["description"] = (
        "timm ViT (vit_base_patch16_224 args overridden to 32px, patch 8, "
        "dim 32, "
        "depth 2, 2 heads, mlp 2), global_pool 'token', final norm in `norm`."
    )
    return info


def make_timm_vit_avg(out_dir, full_size=False):
    """timm ViT, global_pool='avg', fc_norm=True: `norm` is Identity, LayerNorm in `fc_norm`."""
    info = _timm_fixture(
        "timm_vit_avg",
        out_dir,
        "vit_base_patch16_224",
        dict(global_pool="avg", fc_norm=True),
        VIT_TINY,
        full_size,
        False,
    )
    info["description"] = (
        "timm ViT with global_pool 'avg' + fc_norm: features are un-normed "
        "tokens "
        "(incl. class token); head = fc_norm(mean of patch tokens) -> head."
    )
    return info


def make_timm_vit_no_class_token(out_dir, full_size=False):
    """timm ViT, class_token=False, global_pool='avg' (fc_norm by default)."""
    info = _timm_fixture(
        "timm_vit_no_class_token",
        out_dir,
        "vit_base_patch16_224",
        dict(class_token=False, global_pool="avg"),
        VIT_TINY,
        full_size,
        False,
    )
    info["description"] = (
        "timm ViT without class token (no cls_token key, pos_embed has T "
        "positions), global_pool 'avg', fc_norm."
    )
    return info


def make_timm_swin(out_dir, full_size=False):
    """timm swin_tiny_patch4_window7_224 layout: features (B, H, W, C) NHWC, logits."""
    tiny = dict(
        img_size=32,
        patch_size=2,
        embed_dim=16,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
        mlp_ratio=2.0,
    )
    info = _timm_fixture(
        "timm_swin", out_dir, "swin_tiny_patch4_window7_224", {}, tiny, full_size, True
    )
    info["description"] = (
        "timm Swin (swin_tiny_patch4_window7_224 args overridden to 32px, "
        "patch 2, dim 16, depths (2,2), heads (2,4), window 4, mlp 2); "
        "features NHWC after norm."
    )
    return info


# --------------------------------------------------------------------------

FIXTURES = {
    "hf_vit_model": make_hf_vit_model,
    "hf_vit_classifier": make_hf_vit_classifier,
    "hf_vit_classifier_sharded": make_hf_vit_classifier_sharded,
    "hf_swin_model": make_hf_swin_model,
    "hf_swin_classifier": make_hf_swin_classifier,
    "hf_detr_timm_backbone": make_hf_detr_timm_backbone,
    "hf_detr_resnet_backbone": make_hf_detr_resnet_backbone,
    "timm_vit_token": make_timm_vit_token,
    "timm_vit_avg": make_timm_vit_avg,
    "timm_vit_no_class_token": make_timm_vit_no_class_token,
    "timm_swin": make_timm_swin,
}


def _versions():
    import PIL
    import safetensors
    import timm
    import torchvision
    import transformers

    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "transformers": transformers.__version__,
        "timm": timm.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output folder (default: this script's)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(FIXTURES),
        metavar="NAME",
        help="fixtures to write (default: all)",
    )
    parser.add_argument(
        "--full-size",
        action="store_true",
        help="real widths (ViT-B/16, Swin-T, DETR-R50) instead of tiny ones",
    )
    args = parser.parse_args(argv)

    names = args.only or list(FIXTURES)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest = {"fixtures": {}}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
    manifest["versions"] = _versions()
    manifest["full_size"] = args.full_size
    total = 0
    for name in names:
        folder = args.out / name
        info = FIXTURES[name](folder, full_size=args.full_size)
        files = sorted(p.name for p in folder.iterdir())
        size = sum((folder / f).stat().st_size for f in files)
        total += size
        with np.load(folder / "reference.npz") as ref:
            arrays = {k: f"{ref[k].dtype}{list(ref[k].shape)}" for k in ref.files}
        manifest["fixtures"][name] = dict(info, files=files, reference_npz=arrays)
        print(f"{name}: {len(files)} files, {size / 1024:.1f} KiB, reloaded outputs match")
    manifest["fixtures"] = dict(sorted(manifest["fixtures"].items()))
    manifest = {
        "versions": manifest["versions"],
        "full_size": manifest["full_size"],
        "fixtures": manifest["fixtures"],
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"written: {total / 1024:.1f} KiB in {len(names)} fixtures")


if __name__ == "__main__":
    main()
