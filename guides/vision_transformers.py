"""
Title: Vision transformers: ViT and Swin
Author: keras_seq contributors
Date created: 2026/11/22
Last modified: 2026/12/06
Description: Presets, images of any size, feature maps, training small ViT and Swin models
    on scikit-learn's digits, and reading their attention maps.
Accelerator: None
"""

"""
## Introduction

A Vision Transformer (ViT, Dosovitskiy et al., 2020) cuts an image into patches, embeds
each patch as a token, prepends a class token, adds learned position embeddings and runs a
transformer encoder; the class token's final state is classified. Every token attends to
every other, so the cost grows with the square of the number of patches.

The Swin Transformer (Liu et al., 2021) attends within small windows only, shifts the
windows by half a window every second block so that information crosses window borders,
and merges 2 x 2 neighbouring tokens between stages: a pyramid of feature maps, like a CNN,
at a cost linear in the image area.

Each is a backbone, a functional Keras model that computes features
(`keras_seq.models.ViTBackbone`: the normalized tokens, class token first;
`keras_seq.models.SwinBackbone`: the last stage's feature map), and a task model that puts a
head on it (`ViTImageClassifier`, `SwinImageClassifier`: pooling and a linear layer). This
guide shows their presets, how they handle image sizes they were not built for, their
feature maps, trains small classifiers on the 8 x 8 digits bundled with scikit-learn
(nothing is downloaded), and reads their attention maps. Set `KERAS_SEQ_GUIDE_FAST=1` for
smaller sizes.
"""

"""
## Setup
"""

import os  # noqa: E402  (keras.io guides open with text cells)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tempfile  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
keras.utils.set_random_seed(0)
directory = tempfile.mkdtemp()

"""
## Presets

`from_preset(name, **overrides)` builds the architecture of a published model with random
weights (keras_seq downloads nothing). The presets belong to the backbones; a task's
`from_preset` builds the preset's backbone and its head (1,000 ImageNet classes). The
classifiers match the original models parameter for parameter (timm's counts):
"""

for name, preset in {
    **keras_seq.models.ViTBackbone.presets,
    **keras_seq.models.SwinBackbone.presets,
}.items():
    print(f"{name:>30}: {preset['description']}")

vit_tiny = keras_seq.models.ViTImageClassifier.from_preset("vit_tiny_patch16_224")
swin_tiny = keras_seq.models.SwinImageClassifier.from_preset("swin_tiny_patch4_window7_224")
print("ViT-Ti/16 parameters:", f"{vit_tiny.count_params():,}")
print("Swin-T parameters:   ", f"{swin_tiny.count_params():,}")
assert vit_tiny.count_params() == 5_717_416 and swin_tiny.count_params() == 28_288_354

"""
Overrides change any constructor argument of the backbone or of the task (each goes where it
belongs), for example the number of classes (the head shrinks accordingly). A backbone's own
`from_preset` builds it without a head:
"""

ten_classes = keras_seq.models.ViTImageClassifier.from_preset(
    "vit_tiny_patch16_224", num_classes=10
)
print("ViT-Ti/16 with 10 classes:", f"{ten_classes.count_params():,}")
assert vit_tiny.count_params() - ten_classes.count_params() == 990 * (192 + 1)
vit_tiny_backbone = keras_seq.models.ViTBackbone.from_preset("vit_tiny_patch16_224")
print("ViT-Ti/16 backbone:", f"{vit_tiny_backbone.count_params():,}")
assert vit_tiny.count_params() - vit_tiny_backbone.count_params() == 1000 * (192 + 1)
del vit_tiny, swin_tiny, ten_classes, vit_tiny_backbone

"""
## Data: scikit-learn's digits

`keras_seq.data.digits_data` scales the 1,797 8 x 8 digits to [0, 1], upsamples them
bilinearly (a blocky image would give patches of one repeated value) and splits them 80/20
with a seeded permutation.
"""

IMAGE_SIZE = 32
(train_x, train_y), (test_x, test_y) = keras_seq.data.digits_data(image_size=IMAGE_SIZE)
if FAST:
    train_x, train_y = train_x[:512], train_y[:512]
print("train", train_x.shape, "held out", test_x.shape)

"""
Both models train with the settings measured in `integration_tests/test_vision_learning.py`:
AdamW with one epoch of warm-up then a cosine decay, gradient clipping, batches of 64. The
dataset drops the last, smaller batch of each epoch, which would otherwise trace the train
step a second time. (In fast mode the few training steps run eagerly: tracing the train step
would take longer than they do.)
"""

BATCH_SIZE = 64


def train(model, epochs, learning_rate, callbacks=()):
    steps_per_epoch = len(train_y) // BATCH_SIZE
    batches = (
        tf.data.Dataset.from_tensor_slices((train_x, train_y))
        .shuffle(len(train_y), seed=0, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE, drop_remainder=True)
    )
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        max(1, (epochs - 1) * steps_per_epoch),
        warmup_target=learning_rate,
        warmup_steps=steps_per_epoch,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=FAST,
    )
    history = model.fit(
        batches, epochs=epochs, shuffle=False, callbacks=list(callbacks), verbose=0
    )  # `batches` reshuffles itself
    return [round(loss, 3) for loss in history.history["loss"]]


def accuracy(model, images, labels):
    logits = model(images, training=False)  # eager: small models, nothing to trace
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


"""
## A small ViT

Patches of 8 x 8 pixels give a 4 x 4 grid: 16 patch tokens plus the class token.

`keras_seq.callbacks.AttentionMapLogger` writes attention heatmaps of chosen layers on a
fixed probe batch to TensorBoard (under `log_dir/attention`) while the model trains; here
the last encoder block's, after the last epoch.
"""

VIT_EPOCHS = 1 if FAST else 12
vit_backbone = keras_seq.models.ViTBackbone(
    image_shape=(IMAGE_SIZE, IMAGE_SIZE, 1),
    patch_size=8,
    num_layers=4,
    hidden_dim=64,
    num_heads=4,
    intermediate_dim=128,
)
vit = keras_seq.models.ViTImageClassifier(vit_backbone, num_classes=10)
print("ViT parameters:", f"{vit.count_params():,}")
log_dir = os.path.join(directory, "logs")
logger = keras_seq.callbacks.AttentionMapLogger(
    log_dir=log_dir,
    probe_inputs=test_x[:2],
    layer_names=["encoder_layer_3"],
    every_n_epochs=VIT_EPOCHS,
)
print("losses:", train(vit, VIT_EPOCHS, learning_rate=2e-3, callbacks=[logger]))
vit_accuracy = accuracy(vit, test_x, test_y)
print(f"ViT held-out accuracy: {vit_accuracy:.3f}")
if not FAST:
    assert vit_accuracy >= 0.9, vit_accuracy  # Measured: 0.964.
print("TensorBoard files:", sorted(os.listdir(os.path.join(log_dir, "attention"))))
maps = logger.attention_maps()  # {"encoder_layer_3": (2, heads, 17, 17)}
print("logged map:", {name: value.shape for name, value in maps.items()})

"""
## A small Swin

Patches of 4 x 4 pixels give an 8 x 8 map: four 4 x 4 windows, shifted in the second block;
after merging, a 4 x 4 map in a single window.
"""

SWIN_EPOCHS = 1 if FAST else 15
swin_backbone = keras_seq.models.SwinBackbone(
    image_shape=(IMAGE_SIZE, IMAGE_SIZE, 1),
    patch_size=4,
    hidden_dim=32,
    num_layers=(2, 2),
    num_heads=(2, 4),
    window_size=4,
    drop_path_rate=0.0,
)
swin = keras_seq.models.SwinImageClassifier(swin_backbone, num_classes=10)
print("Swin parameters:", f"{swin.count_params():,}")
print("losses:", train(swin, SWIN_EPOCHS, learning_rate=3e-3))
swin_accuracy = accuracy(swin, test_x, test_y)
print(f"Swin held-out accuracy: {swin_accuracy:.3f}")
if not FAST:
    assert swin_accuracy >= 0.9, swin_accuracy  # Measured: 0.933.

"""
Both save to and reload from `.keras` files (the backbone inside the task's file):
"""

for model in (vit, swin):
    path = os.path.join(directory, f"{model.name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is type(model)
    np.testing.assert_allclose(reloaded(test_x), model(test_x), atol=1e-6)
print("reloaded: same predictions")

"""
## Any image size

ViT's position table belongs to one patch grid. Given another image size, the backbone
resamples the table in 2-D (bicubic) to the new grid at call time. Build the backbone with
`image_shape=(None, None, channels)` and the grid of the table, `position_grid_shape`, to
take any size; the weights are the same variables, so the trained ones copy across. Here the
digits at 48 x 48, a 6 x 6 patch grid the model never saw:
"""

any_size_vit = keras_seq.models.ViTImageClassifier(
    keras_seq.models.ViTBackbone(
        image_shape=(None, None, 1),
        position_grid_shape=(4, 4),
        patch_size=8,
        num_layers=4,
        hidden_dim=64,
        num_heads=4,
        intermediate_dim=128,
    ),
    num_classes=10,
)
any_size_vit.set_weights(vit.get_weights())
for shape in ((32, 32), (48, 64)):
    print(f"{shape} ->", tuple(any_size_vit(np.zeros((2, *shape, 1), "float32")).shape))
_, (large_x, large_y) = keras_seq.data.digits_data(image_size=48)
print(f"ViT at 48 x 48: held-out accuracy {accuracy(any_size_vit, large_x, large_y):.3f}")

"""
It runs, but it is less accurate than at 32 x 32: each 8 x 8 patch now covers a smaller
piece of the digit than in training. In practice one fine-tunes briefly at the new
resolution, starting from these weights.
"""

"""
Weights saved at one size also load into a model built for another: the stored table is
resampled once, at load time, and gives what the call-time resampling gives.
"""

weights_path = os.path.join(directory, "vit_32.weights.h5")
vit.save_weights(weights_path)
vit_48 = keras_seq.models.ViTImageClassifier(
    keras_seq.models.ViTBackbone(
        image_shape=(48, 48, 1),
        patch_size=8,
        num_layers=4,
        hidden_dim=64,
        num_heads=4,
        intermediate_dim=128,
    ),
    num_classes=10,
)
vit_48.load_weights(weights_path)
table = vit_48.backbone.get_layer("position_embedding").weights[-1]
print("position table of the 48 x 48 model:", tuple(table.shape))  # 1 + 6 * 6 rows
np.testing.assert_allclose(vit_48(large_x), any_size_vit(large_x), atol=1e-4)

"""
Swin pads images and feature maps to multiples of the patch and window sizes (the padding
is masked out of attention), clamps a window larger than its map, and pads odd maps before
merging. Non-square sizes work too (a backbone alone, no head needed):
"""

for shape in ((100, 100), (96, 160)):
    odd = keras_seq.models.SwinBackbone(
        image_shape=(*shape, 3),
        hidden_dim=16,
        num_layers=(2, 2, 2),
        num_heads=(2, 2, 4),
        window_size=7,
    )
    features = odd.feature_extractor()(np.zeros((1, *shape, 3), "float32"))
    print(f"Swin at {shape}:", {k: tuple(v.shape[1:]) for k, v in features.items()})

"""
## Feature maps

A backbone's `feature_extractor()` returns a model sharing its weights that outputs feature
maps, e.g. for a detector or segmenter: the patch tokens on their grid for ViT, every stage
for Swin. The trained classifiers' backbones are `vit.backbone` and `swin.backbone`:
"""

vit_features = vit.backbone.feature_extractor()(test_x[:2])
swin_features = swin.backbone.feature_extractor()(test_x[:2])
print("ViT:", {k: tuple(v.shape) for k, v in vit_features.items()})
print("Swin:", {k: tuple(v.shape) for k, v in swin_features.items()})
assert vit_features["feature_map"].shape == (2, 4, 4, 64)

"""
## Attention maps

The scores of an attention layer deep inside a model are not outputs of the model.
`keras_seq.layers.record_attention_scores(layers)` collects them during eager calls,
without changing the outputs. For the ViT's last block: how much the class token attends
to each of the 16 patches, averaged over heads, next to the digit.
"""

attention = vit.backbone.get_layer("encoder_layer_3").self_attention
with keras_seq.layers.record_attention_scores([attention]) as (calls,):
    vit(test_x[:3])
scores = calls[0]  # (3, heads, 17, 17): the class token first, then 16 patches
print("scores", scores.shape)
np.testing.assert_allclose(scores.sum(axis=-1), 1.0, atol=1e-5)
np.testing.assert_allclose(maps["encoder_layer_3"], scores[:2], atol=1e-5)  # the logger's


def shade(grid):
    """A 2-D array in [0, 1] as rows of characters, darker = larger."""
    characters = " .:-=+*#%@"
    return [
        "".join(characters[min(int(v * len(characters)), len(characters) - 1)] * 2 for v in row)
        for row in grid
    ]


for image, label, example in zip(test_x[:3], test_y[:3], scores):
    digit = image[..., 0].reshape(8, 4, 8, 4).mean(axis=(1, 3))  # (8, 8)
    from_class_token = example[:, 0, 1:].mean(axis=0).reshape(4, 4)  # (4, 4)
    spread = from_class_token - from_class_token.min()
    cells = np.kron(spread / max(spread.max(), 1e-9), np.ones((2, 2)))  # (8, 8), min-max
    print(f"digit {label}        class token -> patches")
    for left, right in zip(shade(digit), shade(cells)):
        print(f"  {left}   {right}")

"""
Inside Swin, `WindowAttention` runs on a batch of windows: the scores are `(batch *
windows, heads, tokens, tokens)`. In the shifted block, windows that straddle the edges of
the (cyclically shifted) map hold tokens from different image regions; a mask keeps them
from attending to each other, so part of their scores is exactly zero:
"""

blocks = [swin.backbone.get_layer(f"stage_1_block_{index}") for index in (0, 1)]
layers = [block.window_attention.self_attention for block in blocks]
with keras_seq.layers.record_attention_scores(layers) as recordings:
    swin(test_x[:2])
for block, (window_scores,) in zip(blocks, recordings):
    print(
        f"{block.name}: scores {window_scores.shape},"
        f" share of exact zeros {np.mean(window_scores == 0.0):.3f}"
    )
assert np.mean(recordings[0][0] == 0.0) == 0.0 and np.mean(recordings[1][0] == 0.0) > 0.1

"""
## Recap

- Backbones (`ViTBackbone`, `SwinBackbone`) compute features; task models
  (`ViTImageClassifier`, `SwinImageClassifier`) put a head on any backbone of the right kind.
- `ViTImageClassifier.from_preset("vit_base_patch16_224", num_classes=...)`,
  `SwinBackbone.from_preset("swin_tiny_patch4_window7_224")`: the published architectures,
  random weights, any override, at either level.
- Any image size: ViT resamples its position table (at call time, or once when loading
  weights saved at another size); Swin pads and masks.
- `backbone.feature_extractor()` for feature maps; `.keras` saving for both.
- `record_attention_scores` reads any keras_seq attention layer during an eager call;
  `AttentionMapLogger` writes the maps to TensorBoard while training.
"""
