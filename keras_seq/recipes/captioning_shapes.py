"""Recipe `captioning-shapes`: an image captioner describes synthetic shapes in words.

32x32 images with one or two shapes of three classes (circle, square, triangle) on textured
backgrounds, captioned "a circle at the top left and a square at the center"
(`keras_seq.data.shapes_captioning_data`; nothing is downloaded), train an image captioner
whose decoder attends over the regions of a small CNN backbone: `--model transformer` (the
default: a `TransformerImageCaptioner`, two decoder blocks with cross-attention) or `--model
rnn` (an `RNNImageCaptioner`, Show, Attend and Tell: an attention LSTM). The held-out scores
are the exact-match rate of greedy captions and the rate of correct words.

Outputs beyond the runner's: `captions.png` (held-out images, their generated caption and,
for each word, where the decoder looked: the captioner's `generate_with_attention`),
`captions.txt` (held-out examples) and, in TensorBoard, sample captions after every epoch
(`GenerationLogger`).

The backbone is four 3x3 convolutions with batch normalization (32, 64, 64, 128 filters;
strides 2, 1, 2, 2: a 4x4 grid of regions). Measured on 2 shared CPU cores (Adam with a 5%
warm-up then a cosine decay, clipnorm 1, batch 64, width 64, 15 epochs on 8,000 images): the
transformer decoder gets 0.70 of 300 held-out captions exactly right (0.94 of the words) in
121 s (197 s on a busy machine), the attention LSTM 0.51 (0.92) in 208 s (busy). Tried
first, on 4,000 images for 20 epochs: the default three-convolution `CaptioningCNNBackbone`
(with the LSTM decoder) learned where the shapes are (89% of the position words) but hardly
which (40% of the shape words, chance 33%); the four convolutions without batch
normalization, with the transformer decoder, 52%; with batch normalization 74%, then 82% on
8,000 images. Captions of two shapes are the hard ones (0.57 exact against 0.83 for one
shape).
"""

import math

import keras
import numpy as np

from keras_seq.callbacks.generation_logger import GenerationLogger
from keras_seq.data.shapes_captioning import CAPTION_END_ID
from keras_seq.data.shapes_captioning import SHAPES_CAPTION_VOCABULARY
from keras_seq.data.shapes_captioning import decode_captions
from keras_seq.data.shapes_captioning import shapes_captioning_data
from keras_seq.models.captioning.rnn_image_captioner import RNNImageCaptioner
from keras_seq.models.captioning.transformer_image_captioner import TransformerImageCaptioner
from keras_seq.recipes import outputs

IMAGE_SIZE = 32
DATA = {"image_size": IMAGE_SIZE, "min_objects": 1, "max_objects": 2, "num_classes": 3}
LEARNING_RATES = {"transformer": 1e-3, "rnn": 3e-3}
# `--model` -> the captioner (the decoder put on the backbone).
CAPTIONERS = {"transformer": TransformerImageCaptioner, "rnn": RNNImageCaptioner}
NUM_PLOTTED = 4


def _backbone(quick):
    filters = (8, 8, 16, 16) if quick else (32, 64, 64, 128)
    strides = (2, 1, 2, 2)
    layers = [keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))]
    for count, stride in zip(filters, strides):
        layers += [
            keras.layers.Conv2D(count, 3, strides=stride, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
    return keras.Sequential(layers, name="backbone")


# Images for training and for each of validation and held-out data; model width.
SIZES = {
    "quick": {"train": 128, "held_out": 32, "hidden_dim": 16},
    "full": {"train": 8000, "held_out": 300, "hidden_dim": 64},
}


def captions_figure(images, captions, attention):
    """Each image, then the attention map of each generated word over the region grid."""
    # Each word and the end token, as far as there are maps (an untrained model may not stop).
    words = [
        (caption.split() + ["<end>"])[: len(maps)] for caption, maps in zip(captions, attention)
    ]
    columns = 1 + max(len(w) for w in words)
    figure = outputs.new_figure(1.3 * columns, 1.5 * len(images))
    axes = figure.subplots(len(images), columns, squeeze=False)
    for row, (image, caption_words, maps) in enumerate(zip(images, words, attention)):
        axes[row, 0].imshow(image)
        axes[row, 0].set_title("image", fontsize=7)
        for column in range(1, columns):
            ax = axes[row, column]
            ax.axis("off")
            if column - 1 < len(caption_words):
                ax.imshow(image)
                grid = np.asarray(maps[column - 1], "float32")  # (H', W')
                ax.imshow(
                    grid,
                    cmap="inferno",
                    alpha=0.55,
                    interpolation="bilinear",
                    extent=(-0.5, IMAGE_SIZE - 0.5, IMAGE_SIZE - 0.5, -0.5),
                    vmin=0.0,
                    vmax=max(float(grid.max()), 1e-6),
                )
                ax.set_title(caption_words[column - 1], fontsize=7)
        axes[row, 0].axis("off")
    figure.suptitle("generated captions: attention over the regions for each word")
    return figure


def _detokenize(ids):
    return decode_captions(np.asarray(ids)[None, :])[0]


def train_captioning_shapes(run):
    """Train the `captioning-shapes` recipe (see the module docstring) for a `RecipeRun`."""
    sizes = SIZES["quick" if run.quick else "full"]
    inputs, targets = shapes_captioning_data(sizes["train"], seed=0, **DATA)
    validation = shapes_captioning_data(sizes["held_out"], seed=1, **DATA)
    test_inputs, test_targets = shapes_captioning_data(sizes["held_out"], seed=2, **DATA)
    caption_length = targets.shape[1]

    width = sizes["hidden_dim"]
    decoder_options = {}
    if run.model_name == "transformer":
        decoder_options = {"num_layers": 2, "num_heads": 4, "intermediate_dim": 2 * width}
    steps = run.epochs * math.ceil(len(targets) / run.batch_size)
    with run.scope():
        model = CAPTIONERS[run.model_name](
            _backbone(run.quick),
            vocabulary_size=len(SHAPES_CAPTION_VOCABULARY),
            hidden_dim=width,
            dropout=0.0,
            **decoder_options,
        )
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0,
            steps,
            warmup_target=LEARNING_RATES[run.model_name],
            warmup_steps=max(1, steps // 20),
        )
        model.compile(
            optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
            jit_compile=run.compile_jit(),
        )
    samples = GenerationLogger(
        run.log_dir,
        test_inputs["images"][:4],
        max_new_tokens=caption_length,
        detokenize=_detokenize,
        generate_kwargs={"stop_token_id": CAPTION_END_ID, "jit_compile": False},
    )
    run.fit(model, inputs, targets, validation_data=validation, callbacks=[samples])
    run.save_model(model, probe_inputs={key: value[:8] for key, value in test_inputs.items()})

    generated, attention = model.generate_with_attention(
        test_inputs["images"], caption_length, stop_token_id=CAPTION_END_ID, jit_compile=False
    )
    generated = np.asarray(generated)  # (N, T)
    exact = float(np.mean(np.all(generated == test_targets, axis=1)))
    words = float(np.mean((generated == test_targets)[test_targets > 0]))
    run.report(exact_match=exact, word_accuracy=words)

    predicted = decode_captions(generated)
    expected = decode_captions(test_targets)
    lines = [
        f"{'ok ' if p == e else 'BAD'} {p} (expected: {e})"
        for p, e in zip(predicted[:20], expected[:20])
    ]
    run.write_text("captions.txt", "\n".join(lines) + "\n")
    run.save_figure(
        captions_figure(
            test_inputs["images"][:NUM_PLOTTED],
            predicted[:NUM_PLOTTED],
            np.asarray(attention)[:NUM_PLOTTED],
        ),
        "captions.png",
    )
