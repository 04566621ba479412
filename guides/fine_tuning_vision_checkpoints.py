"""
Title: Fine-tuning a pretrained vision checkpoint
Author: keras_seq contributors
Date created: 2026/12/08
Last modified: 2026/12/08
Description: Load a Hugging Face or timm ViT checkpoint with its head, label names and
    preprocessing, put a new head on it for scikit-learn's digits, train the head, then the
    whole model, try LoRA, and save the result as a preset and a `.keras` file.
Accelerator: GPU
"""

"""
## Introduction

Training a vision transformer from scratch needs far more images than most tasks have.
Transfer learning starts instead from a model someone trained on a large data set
(ImageNet, for the classic ViT checkpoints) and adapts it: the pretrained backbone already
turns pixels into useful features, so a small labelled set is enough to teach a new head
what the classes are, and then to nudge the whole network towards the new images.

`ViTImageClassifier.from_preset` reads such checkpoints directly into keras_seq's Keras
models. This guide:

1. loads a pretrained classifier as it was published (its head, its class names, its image
   preprocessing) and classifies raw `uint8` images with it;
2. loads the same checkpoint with a new 10-class head and fine-tunes it on the 8 x 8 digits
   bundled with scikit-learn: first the head alone on a frozen backbone, then everything at
   a lower learning rate;
3. adapts it with LoRA instead, training a few thousand parameters;
4. saves the fine-tuned model as a preset directory and as a `.keras` file, and checks that
   both reload to the same predictions.

The checkpoint defaults to `hf://google/vit-base-patch16-224` (ViT-B/16, 86 million
parameters, trained on ImageNet-21k and fine-tuned on ImageNet-1k at 224 x 224), which is
downloaded from the Hugging Face Hub the first time; fine-tuning it at full size wants a
GPU. Any other ViT checkpoint works: pass it as the first command-line argument or in the
`KERAS_SEQ_GUIDE_CHECKPOINT` environment variable. Set `KERAS_SEQ_GUIDE_FAST=1` to run a
few training steps on a subset of the data. The tests run this guide in fast mode on a tiny
ViT checkpoint (32 x 32 images, random weights, five made-up classes) stored in the
repository, so they need no network.
"""

"""
## Setup
"""

import os  # noqa: E402  (keras.io guides open with text cells)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seq  # noqa: E402

FAST = os.environ.get("KERAS_SEQ_GUIDE_FAST") == "1"
keras.utils.set_random_seed(0)
directory = tempfile.mkdtemp()  # Saved models go here, never into the checkout.
start_time = time.perf_counter()

"""
## Where checkpoints come from

`from_preset(handle)` accepts:

- a **local directory** holding a checkpoint: Hugging Face transformers' layout
  (`config.json` with a `model_type`, `model.safetensors` or sharded safetensors, and
  `preprocessor_config.json` for the image preprocessing), or timm's (`config.json` with an
  `architecture` and a `pretrained_cfg`, plus `model.safetensors`). The format is read from
  `config.json`;
- **`hf://owner/name`** (or `hf://owner/name@revision`): a repository on the Hugging Face
  Hub, downloaded with `huggingface_hub` into its usual cache (configuration, safetensors
  weights and preprocessing files only, never pickled PyTorch weights), then read as a
  local directory. Both transformers repositories (`hf://google/vit-base-patch16-224`) and
  timm ones (`hf://timm/vit_base_patch16_224.augreg2_in21k_ft_in1k`) work. With
  `HF_HUB_OFFLINE=1`, the cached copy is used without asking the network;
- a **Keras preset directory**, in keras-hub's layout (`config.json`, `model.weights.h5`,
  `task.json`, ...), as written by keras_seq's own `save_to_preset` (see the end of this
  guide) or by keras-hub for its own ViT and Swin models.

Any other string is taken for a keras-hub preset name (such as
`"vit_base_patch16_224_imagenet"`) or a `kaggle://` handle: keras-hub downloads and reads
it, and keras_seq converts the model it built. A name keras-hub does not list for the
family is an error that says what is accepted.

Careful: a bare architecture name such as `"vit_base_patch16_224"` is one of keras_seq's
built-in presets, which builds the architecture with *random* weights. Pretrained weights
always come from a checkpoint handle.

The checkpoint of this guide comes from the command line or the environment:
"""

DEFAULT_CHECKPOINT = "hf://google/vit-base-patch16-224"
# `python fine_tuning_vision_checkpoints.py CHECKPOINT`; in a notebook, sys.argv holds the
# kernel's own arguments instead.
arguments = sys.argv[1:] if "ipykernel" not in sys.modules else []
CHECKPOINT = (
    arguments[0] if arguments else os.environ.get("KERAS_SEQ_GUIDE_CHECKPOINT", DEFAULT_CHECKPOINT)
)
print("checkpoint:", CHECKPOINT)


def load(**overrides):
    """`ViTImageClassifier.from_preset(CHECKPOINT, **overrides)`, exiting with an explanation
    when the checkpoint cannot be fetched (an `hf://` handle without network, say)."""
    try:
        return keras_seq.models.ViTImageClassifier.from_preset(CHECKPOINT, **overrides)
    except OSError as error:  # huggingface_hub's download errors are all OSErrors
        raise SystemExit(
            f"Could not load the checkpoint {CHECKPOINT!r}: {type(error).__name__}: {error}\n"
            "Downloading from the Hugging Face Hub needs network access (or a copy already in "
            "its cache, with HF_HUB_OFFLINE=1). To use a checkpoint on disk instead, pass its "
            "directory as the first argument of this script or set KERAS_SEQ_GUIDE_CHECKPOINT."
        ) from error


"""
## The checkpoint as published

Without other arguments, `from_preset` rebuilds the checkpoint's model: the backbone, the
pooling and the classification head, with the weights. A checkpoint that had a head also
brings its class names, `model.label_names` (from `id2label` in Hugging Face's
`config.json`), and its preprocessing, `model.preprocessor`: a
`keras_seq.layers.ImagePreprocessor` that resizes images to the size the model was trained
on and normalizes them with the training set's per-channel mean and standard deviation.
"""

pretrained = load()
names = pretrained.label_names  # None when the checkpoint names no classes
print("classes:", pretrained.num_classes, "- first names:", names[:5] if names else None)
preprocessor = pretrained.preprocessor
if preprocessor is None:  # no preprocessor_config.json (transformers) or pretrained_cfg (timm)
    raise SystemExit(f"{CHECKPOINT} stores no image preprocessing, which this guide uses.")
print(
    f"preprocessor: resize {preprocessor.resize!r} to {preprocessor.image_size}, "
    f"scale {preprocessor.scale:.5f}, mean {preprocessor.mean}, std {preprocessor.std}"
)
IMAGE_SIZE = pretrained.backbone.image_shape[0]
print("image size:", pretrained.backbone.image_shape)

"""
The data of this guide are scikit-learn's handwritten digits: 1,797 grey 8 x 8 images
shipped inside its wheel. `keras_seq.data.digits_data` returns them scaled to [0, 1] and
split 80/20; asked for `image_size=8` it leaves them at their size, and `channels=3`
repeats the grey channel for RGB backbones. Turned into `uint8` they are what a photo
decoder would return, only tiny.
"""

(train_x, train_y), (test_x, test_y) = keras_seq.data.digits_data(image_size=8, channels=3)
train_images = np.round(train_x * 255).astype("uint8")  # (1437, 8, 8, 3)
test_images = np.round(test_x * 255).astype("uint8")  # (360, 8, 8, 3)
if FAST:
    train_images, train_y = train_images[:256], train_y[:256]
    test_images, test_y = test_images[:128], test_y[:128]
print("train", train_images.shape, train_images.dtype, "held out", test_images.shape)

"""
`classify(images, top_k)` runs raw images through the preprocessor and the model and
returns the most probable classes with their probabilities. An ImageNet classifier has no
digit classes, so what it sees in them is mostly a curiosity; the point is that any image
size and `uint8` pixels go straight in, and that `classify` is the preprocessor followed by
the model:
"""

for label, predictions in zip(test_y[:3], pretrained.classify(test_images[:3], top_k=3)):
    named = ", ".join(f"{name} ({probability:.2f})" for name, probability in predictions)
    print(f"digit {label}: {named}")
logits = pretrained(preprocessor(test_images[:3]), training=False)
probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
np.testing.assert_allclose(
    [top[0][1] for top in pretrained.classify(test_images[:3])],
    probabilities.max(axis=-1),
    rtol=1e-5,
)
del pretrained

"""
## A new head for the digits

Passing `num_classes` puts a new head on the pretrained backbone: the checkpoint's
classifier is dropped (noted in the log at INFO level) and the new `Dense` head starts at
zero, so the untrained model gives every class the same probability. Other task arguments
pass through as well, such as `label_names` for `classify`, and so do the backbone's
arguments that keep the checkpoint's weights valid: dropout rates, and `image_shape`, for
which the position embeddings are resampled to the new patch grid as they load (more on
that below). Here `image_shape` is the checkpoint's own size, so the preprocessor that
comes with the model upsamples the digits to exactly what the backbone takes.
"""

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
model = load(num_classes=10, label_names=DIGIT_NAMES, image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
print("parameters:", f"{model.count_params():,}")
assert not np.any(keras.ops.convert_to_numpy(model.head.kernel))  # a new, zero head


def to_pixels(images, batch_size=256):
    """`images` through the model's preprocessor, in batches, as one float32 array."""
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(model.preprocessor(images[i : i + batch_size]))
            for i in range(0, len(images), batch_size)
        ]
    )


train_pixels, test_pixels = to_pixels(train_images), to_pixels(test_images)
print("pixels", train_pixels.shape, f"mean {train_pixels.mean():.2f} std {train_pixels.std():.2f}")

"""
Preprocessing the whole (small) data set once keeps the training steps short. For larger
sets, map `model.preprocessor` over a `tf.data` pipeline instead: it is an ordinary Keras
layer.

Two measures follow the training: the accuracy on the held-out digits, and the
cross-entropy on the training images (the quantity the training lowers; checking that it
went down is what this guide asserts in fast mode, where a few steps promise no accuracy).
"""

BATCH_SIZE = 32
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def predict_logits(model, pixels, batch_size=128):
    """The logits of `model` on `pixels`, in batches (eager calls: nothing to trace)."""
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(model(pixels[i : i + batch_size], training=False))
            for i in range(0, len(pixels), batch_size)
        ]
    )


def evaluate(model):
    """`(training loss, held-out accuracy)` of `model`."""
    train_loss = float(loss_fn(train_y, predict_logits(model, train_pixels)))
    predictions = np.argmax(predict_logits(model, test_pixels), axis=-1)
    return train_loss, float(np.mean(predictions == test_y))


def fit(model, epochs, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss_fn,
        metrics=["accuracy"],
        run_eagerly=FAST,  # a few steps: tracing the train step would cost more than them
    )
    history = model.fit(
        train_pixels, train_y, batch_size=BATCH_SIZE, epochs=epochs, shuffle=True, verbose=0
    )
    return [round(loss, 3) for loss in history.history["loss"]]


initial_loss, initial_accuracy = evaluate(model)
print(f"before fine-tuning: loss {initial_loss:.3f}, held-out accuracy {initial_accuracy:.3f}")
np.testing.assert_allclose(initial_loss, np.log(10), rtol=1e-5)  # a zero head: uniform
# (Equal logits: argmax says "zero" for every image, right for about a tenth of them.)

"""
### Step 1: the head alone

Freezing the backbone (`model.backbone.trainable = False`) leaves only the head's weights
trainable: training becomes logistic regression on the pretrained features (a "linear
probe"), quick and safe. Training everything at once would let the errors of a head that
is still far from right flow back into the pretrained weights and disturb what they
learned; once the head makes sense, the gradients that reach the backbone do too. As
always in Keras, a change of `trainable` takes effect at the next `compile`.
"""

HEAD_EPOCHS = 1 if FAST else 5
model.backbone.trainable = False
print("trainable weights:", [weight.path for weight in model.trainable_weights])
print("losses:", fit(model, HEAD_EPOCHS, learning_rate=3e-3))
head_loss, head_accuracy = evaluate(model)
print(f"head trained: loss {head_loss:.3f}, held-out accuracy {head_accuracy:.3f}")
assert head_loss < initial_loss, (head_loss, initial_loss)

"""
### Step 2: everything, gently

Then the backbone is unfrozen and the whole model trains with a learning rate a hundred
times lower, so that the pretrained weights move only as far as the new task needs.

(The tiny checkpoint the tests use has random weights: its features hardly tell one image
from another, so its head learns little more than how common each digit is, and
fine-tuning at this learning rate barely moves it. With a pretrained checkpoint the
accuracy climbs from the first epoch.)
"""

FULL_EPOCHS = 1 if FAST else 3
model.backbone.trainable = True
print("trainable parameters:", f"{sum(int(np.prod(w.shape)) for w in model.trainable_weights):,}")
print("losses:", fit(model, FULL_EPOCHS, learning_rate=3e-5))
final_loss, final_accuracy = evaluate(model)
print(f"fine-tuned: loss {final_loss:.3f}, held-out accuracy {final_accuracy:.3f}")
assert final_loss < initial_loss, (final_loss, initial_loss)
if not FAST and CHECKPOINT == DEFAULT_CHECKPOINT:
    assert final_accuracy > 0.5, final_accuracy  # pretrained features: far above chance

for label, predictions in zip(test_y[:3], model.classify(test_images[:3], top_k=3)):
    named = ", ".join(f"{name} ({probability:.2f})" for name, probability in predictions)
    print(f"digit {label}: {named}")

"""
## LoRA: a small share of the parameters instead

Fine-tuning everything keeps a full copy of the model per task. Low-rank adaptation
(LoRA, Hu et al., 2021) freezes every pretrained weight and adds to chosen projection
kernels a trainable product of two thin matrices, `W + A @ B` with `A` of shape
`(d, rank)` and `B` of shape `(rank, d')`. `model.enable_lora(rank)` does this for the
attention's query and value projections of every encoder block; `trainable_layer_names`
keeps other layers fully trainable, here the new head.
"""

lora_model = load(num_classes=10, label_names=DIGIT_NAMES)
lora_model.enable_lora(4, trainable_layer_names=("head",))
lora_trainable = sum(int(np.prod(w.shape)) for w in lora_model.trainable_weights)
print(f"LoRA: {lora_trainable:,} trainable of {lora_model.count_params():,} parameters")
print("losses:", fit(lora_model, HEAD_EPOCHS, learning_rate=3e-3))
lora_loss, lora_accuracy = evaluate(lora_model)
print(f"LoRA: loss {lora_loss:.3f}, held-out accuracy {lora_accuracy:.3f}")
assert lora_loss < initial_loss, (lora_loss, initial_loss)

"""
The adapters save alone (`save_lora_weights`, a small safetensors file to apply to the
same checkpoint later with `load_lora_weights`), and `merge_lora()` folds them into the
kernels: a plain model, as fast as the original, with the same outputs.
"""

adapters_path = os.path.join(directory, "digits_lora.safetensors")
lora_model.save_lora_weights(adapters_path)
print("adapter file:", f"{os.path.getsize(adapters_path):,} bytes")
merged = lora_model.merge_lora()
np.testing.assert_allclose(
    predict_logits(merged, test_pixels[:16]),
    predict_logits(lora_model, test_pixels[:16]),
    atol=1e-4,
)
del lora_model, merged

"""
## Saving and reloading

`save_to_preset(directory)` writes the model in keras-hub's preset layout: the backbone's
config and weights (`config.json`, `model.weights.h5`), the task's (`task.json`,
`task.weights.h5`, with the preprocessor and the label names) and `metadata.json`.
`from_preset(directory)` reads it back, and so does `ViTBackbone.from_preset(directory)` for
the backbone alone, e.g. to put yet another head on it. A `.keras` file holds the same
model in one archive.
"""

preset_dir = os.path.join(directory, "vit_digits")
model.save_to_preset(preset_dir)
print("preset files:", sorted(os.listdir(preset_dir)))
keras_path = os.path.join(directory, "vit_digits.keras")
model.save(keras_path)

from_preset = keras_seq.models.ViTImageClassifier.from_preset(preset_dir)
from_file = keras.saving.load_model(keras_path)
expected = predict_logits(model, test_pixels)
for reloaded in (from_preset, from_file):
    assert type(reloaded) is keras_seq.models.ViTImageClassifier
    assert reloaded.label_names == DIGIT_NAMES
    assert reloaded.preprocessor.get_config() == model.preprocessor.get_config()
    np.testing.assert_allclose(predict_logits(reloaded, test_pixels), expected, atol=1e-5)
    for ours, theirs in zip(model.classify(test_images[:8]), reloaded.classify(test_images[:8])):
        assert ours[0][0] == theirs[0][0]  # the same digit, named
        np.testing.assert_allclose(ours[0][1], theirs[0][1], atol=1e-5)
print("reloaded from the preset and from the .keras file: same predictions")

"""
## Another resolution

A ViT's weights do not depend on the image size except through the position embeddings,
one per patch of the grid it was trained on. Passing `image_shape` to `from_preset`
builds the model for another size and resamples the stored table (bicubically, in 2-D) to
the new grid while loading. Attention costs grow with the square of the number of patches,
so a lower resolution makes fine-tuning much cheaper, at some cost in accuracy; higher
resolutions are the usual last step of fine-tuning on detailed images. Half the size:
"""

patch_size = model.backbone.patch_size
half = max(patch_size, IMAGE_SIZE // 2 // patch_size * patch_size)
small = load(num_classes=10, image_shape=(half, half, 3))
table = small.backbone.get_layer("position_embedding").position_embeddings
print(f"at {half} x {half}: position table {tuple(table.shape)}")  # 1 + (half / patch)^2 rows

"""
The images must then reach the model at its new size: the checkpoint's preprocessing with
another target size does that.
"""

small_preprocessor = keras_seq.layers.ImagePreprocessor.from_config(
    {**preprocessor.get_config(), "image_size": (half, half)}
)
print("logits:", tuple(small(small_preprocessor(test_images[:4])).shape))

"""
## Recap

- `ViTImageClassifier.from_preset(handle)` reads Hugging Face transformers and timm ViT
  checkpoints (a local directory or `hf://owner/name`) and keras_seq's own presets, with
  the checkpoint's head, `label_names` and `preprocessor`; `classify(images, top_k)` takes
  raw images.
- `from_preset(handle, num_classes=N)` puts a new, zero-initialized head on the pretrained
  backbone; `image_shape` picks another resolution.
- Fine-tune in two steps: `model.backbone.trainable = False` and train the head, then
  unfreeze and train everything at a lower learning rate (recompile after each change).
- `model.enable_lora(rank, trainable_layer_names=("head",))` trains adapters and the head
  only; `save_lora_weights` and `merge_lora` store and fold them.
- `model.save_to_preset(directory)` and `model.save("model.keras")` save the result;
  `from_preset(directory)` and `keras.saving.load_model` reload it.
"""

print(f"done in {time.perf_counter() - start_time:.0f} s")
