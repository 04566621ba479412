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

With `--data DIR CAPTIONS` (`run.data`: an image directory and a COCO captions `.json` or a
`file_name TAB caption` `.tsv`, read by `keras_seq.recipes.caption_files`) the captioner
learns the user's captioned images instead (`keras_seq.recipes.caption_data`): RGB, resized
to 32x32 (to the input size of a model given with `--from`); the vocabulary is the training
captions' words, saved as `caption_vocabulary.json`; a seeded fifth of the images (with all
their captions) validates, shuffled batches of `tf.data` train. Images that do not decode are
skipped with a warning. The held-out scores are the validation captions' perplexity
(teacher-forced, per word) and word accuracy of greedy captions. With `--from` a captioner
saved by such a run (its `caption_vocabulary.json` beside it) is fine-tuned, with its
vocabulary (other words read as `<unk>`).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_seq.callbacks.generation_logger import GenerationLogger
from keras_seq.data.shapes_captioning import CAPTION_END_ID
from keras_seq.data.shapes_captioning import SHAPES_CAPTION_VOCABULARY
from keras_seq.data.shapes_captioning import decode_captions
from keras_seq.data.shapes_captioning import shapes_captioning_data
from keras_seq.data.teacher_forcing import teacher_forcing_inputs
from keras_seq.models.captioning.rnn_image_captioner import RNNImageCaptioner
from keras_seq.models.captioning.transformer_image_captioner import TransformerImageCaptioner
from keras_seq.recipes import caption_data
from keras_seq.recipes import caption_files
from keras_seq.recipes import outputs
from keras_seq.recipes.data_files import FromModelError
from keras_seq.recipes.image_data import model_image_shape

IMAGE_SIZE = 32
DATA = {"image_size": IMAGE_SIZE, "min_objects": 1, "max_objects": 2, "num_classes": 3}
LEARNING_RATES = {"transformer": 1e-3, "rnn": 3e-3}
# `--model` -> the captioner (the decoder put on the backbone).
CAPTIONERS = {"transformer": TransformerImageCaptioner, "rnn": RNNImageCaptioner}
NUM_PLOTTED = 4


def _backbone(quick, image_size=IMAGE_SIZE):
    filters = (8, 8, 16, 16) if quick else (32, 64, 64, 128)
    strides = (2, 1, 2, 2)
    layers = [keras.Input((image_size, image_size, 3))]
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
                    extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5),
                    vmin=0.0,
                    vmax=max(float(grid.max()), 1e-6),
                )
                ax.set_title(caption_words[column - 1], fontsize=7)
        axes[row, 0].axis("off")
    figure.suptitle("generated captions: attention over the regions for each word")
    return figure


def _detokenize(ids):
    return decode_captions(np.asarray(ids)[None, :])[0]


def _builtin_data(run, sizes):
    """The synthetic shapes: `(train, validation, test_inputs, test_targets, vocabulary
    size, detokenize, stop id)`."""
    inputs, targets = shapes_captioning_data(sizes["train"], seed=0, **DATA)
    validation = shapes_captioning_data(sizes["held_out"], seed=1, **DATA)
    test_inputs, test_targets = shapes_captioning_data(sizes["held_out"], seed=2, **DATA)
    return (
        (inputs, targets),
        validation,
        test_inputs,
        test_targets,
        len(SHAPES_CAPTION_VOCABULARY),
        _detokenize,
        CAPTION_END_ID,
    )


def _split_by_image(examples, seed):
    """A seeded fifth of the images, with all their captions, validates."""
    images = sorted({image for image, _ in examples})
    order = np.random.default_rng(seed).permutation(len(images))
    chosen = {images[i] for i in order[: max(1, round(len(images) * 0.2))].tolist()}
    train = [example for example in examples if example[0] not in chosen]
    return train, [example for example in examples if example[0] in chosen]


def _caption_arrays(pixels, captions, vocabulary):
    """`({"images", "target_in"}, targets, cut)` of captioned images."""
    targets, cut = vocabulary.encode(captions)  # (N, T)
    target_in = teacher_forcing_inputs(targets, targets, start_token_id=caption_data.START_ID)
    return {"images": pixels, "target_in": target_in["target_in"]}, targets, cut


def load_base_model(path):
    """The captioner `--from` names (a `.keras` file) and the vocabulary beside it."""
    model = keras.saving.load_model(path, compile=False)
    if not isinstance(model, tuple(CAPTIONERS.values())):
        raise FromModelError(
            path,
            f"holds a {type(model).__name__}; recipe captioning-shapes fine-tunes a "
            "TransformerImageCaptioner or an RNNImageCaptioner",
        )
    try:
        vocabulary = caption_data.vocabulary_beside(path)
    except ValueError as error:
        raise FromModelError(path, str(error)) from None
    if vocabulary is None or len(vocabulary) != model.vocabulary_size:
        raise FromModelError(
            path,
            f"does not match the {caption_data.FILENAME} beside it (the model has "
            f"{model.vocabulary_size} tokens)",
        )
    return model, vocabulary


def _user_data(run, vocabulary=None, image_size=IMAGE_SIZE):
    """The `--data` captioned images (see the module docstring)."""
    directory = run.data[0]
    train, validation = _split_by_image(caption_files.read_captions(run.data), run.seed)
    size = (image_size, image_size)
    # The images that decode (the others are skipped with a warning), then the vocabulary of
    # their captions.
    pixels, captions, skipped = caption_data.captioned_images(train, size, f"images of {directory}")
    test_pixels, test_captions, skipped_test = caption_data.captioned_images(
        validation, size, f"validation images of {directory}"
    )
    if vocabulary is None:
        vocabulary = caption_data.CaptionVocabulary.from_captions(captions)
    inputs, targets, cut = _caption_arrays(pixels, captions, vocabulary)
    test_inputs, test_targets, cut_test = _caption_arrays(test_pixels, test_captions, vocabulary)
    run.details["data_captions"] = {
        "train": len(targets),
        "validation": len(test_targets),
        "words": len(vocabulary.words),
        "cut_captions": int(cut + cut_test),
        "skipped_images": len(skipped) + len(skipped_test),
    }
    batch_size = min(run.batch_size, len(targets))
    batches = (
        tf.data.Dataset.from_tensor_slices((inputs, targets))
        .shuffle(len(targets), seed=run.seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    validation_data = (test_inputs, test_targets)
    return (
        (batches, None),
        validation_data,
        test_inputs,
        test_targets,
        len(vocabulary),
        lambda ids: vocabulary.decode(np.asarray(ids)[None, :])[0],
        caption_data.END_ID,
    ), vocabulary


def train_captioning_shapes(run):
    """Train the `captioning-shapes` recipe (see the module docstring) for a `RecipeRun`."""
    sizes = SIZES["quick" if run.quick else "full"]
    base = vocabulary = None
    image_size = IMAGE_SIZE
    if run.from_model is not None:
        with run.scope():
            base, vocabulary = load_base_model(run.from_model)
        image_size = model_image_shape(base.backbone, IMAGE_SIZE)[0][0]
        run.details["from_model_class"] = type(base).__name__
    if run.data is None:
        loaded = _builtin_data(run, sizes)
    else:
        loaded, vocabulary = _user_data(run, vocabulary, image_size)
        vocabulary.write(run.path(caption_data.FILENAME))
        run.add_file(caption_data.FILENAME)
    (inputs, targets), validation, test_inputs, test_targets, size, detokenize, end_id = loaded
    caption_length = test_targets.shape[1]

    width = sizes["hidden_dim"]
    decoder_options = {}
    if run.model_name == "transformer":
        decoder_options = {"num_layers": 2, "num_heads": 4, "intermediate_dim": 2 * width}
    num_examples = len(targets) if targets is not None else run.details["data_captions"]["train"]
    steps = run.epochs * math.ceil(num_examples / run.batch_size)
    with run.scope():
        if base is not None:
            model = base
        else:
            model = CAPTIONERS[run.model_name](
                _backbone(run.quick, image_size),
                vocabulary_size=size,
                hidden_dim=width,
                dropout=0.0,
                **decoder_options,
            )
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0,
            steps,
            warmup_target=LEARNING_RATES.get(run.model_name, 1e-3),
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
        detokenize=detokenize,
        generate_kwargs={"stop_token_id": end_id, "jit_compile": False},
    )
    fit_options = {} if targets is not None else {"shuffle": False}  # the dataset reshuffles
    run.fit(model, inputs, targets, validation_data=validation, callbacks=[samples], **fit_options)
    run.save_model(model, probe_inputs={key: value[:8] for key, value in test_inputs.items()})

    generated, attention = model.generate_with_attention(
        test_inputs["images"], caption_length, stop_token_id=end_id, jit_compile=False
    )
    generated = np.asarray(generated)  # (N, T)
    words = float(np.mean((generated == test_targets)[test_targets > 0]))
    if run.data is None:
        exact = float(np.mean(np.all(generated == test_targets, axis=1)))
        run.report(exact_match=exact, word_accuracy=words)
        predicted = decode_captions(generated)
        expected = decode_captions(test_targets)
    else:
        loss = model.evaluate(test_inputs, test_targets, verbose=0, return_dict=True)["loss"]
        run.report(perplexity=math.exp(loss), word_accuracy=words)
        predicted = vocabulary.decode(generated)
        expected = vocabulary.decode(test_targets)
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
