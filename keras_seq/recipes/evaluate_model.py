"""What `keras-seq evaluate` and `keras-seq predict` run on a model saved by `keras-seq train`.

The model's class says what it takes: an image classifier (`ViTImageClassifier`,
`SwinImageClassifier`) takes a directory with one sub-directory of images per class (named
as the model's `label_names`) and image files; a text classifier (`BERTTextClassifier` with
its tokenizer) takes CSV or TSV files of labeled texts (labels named as the `classes.json`
beside it) and texts; a causal language model (`RNNCausalLM`,
`GPTCausalLM`) takes text files and prompts; a sequence-to-sequence model (`RNNSeq2SeqLM`,
`TransformerSeq2SeqLM`) takes tab-separated pairs and source lines. The text models need the
`vocabulary.json` that `keras-seq train` wrote beside them, except a `GPTCausalLM` saved with
its tokenizer (`keras-seq train char-lm --from` a GPT-2 checkpoint), which reads text with it.

Errors are `GenerateOptionError`s whose message starts with the command-line argument
(`argument MODEL:`, `argument --data:`) and ends with the value received.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from keras_seq.data.teacher_forcing import teacher_forcing_inputs
from keras_seq.layers.preprocessing.image_preprocessor import ImagePreprocessor
from keras_seq.models.bert.bert_text_classifier import BERTTextClassifier
from keras_seq.models.captioning.image_captioning_task import ImageCaptioningTask
from keras_seq.models.detr.detr_object_detector import DETRObjectDetector
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM
from keras_seq.models.image_task import ImageClassifier
from keras_seq.recipes import caption_data
from keras_seq.recipes import caption_files
from keras_seq.recipes import data_files
from keras_seq.recipes import detection_results
from keras_seq.recipes import generate_text
from keras_seq.recipes import model_files
from keras_seq.recipes import text_classification
from keras_seq.recipes import vocabulary_file
from keras_seq.recipes.image_data import ImageFolders
from keras_seq.recipes.image_data import model_image_shape
from keras_seq.recipes.model_sources import GenerateOptionError
from keras_seq.recipes.text_data import CharWindows
from keras_seq.recipes.text_data import TokenWindows

# Windows of text for a recurrent model (a GPT's are its `sequence_length`).
EVALUATION_SEQUENCE_LENGTH = 64


def model_task(model):
    """`"image_classifier"`, `"text_classifier"`, `"captioner"`, `"detector"`,
    `"language_model"`, `"seq2seq"`, or `None`."""
    if isinstance(model, ImageClassifier):
        return "image_classifier"
    if isinstance(model, BERTTextClassifier):
        return "text_classifier"
    if isinstance(model, ImageCaptioningTask):
        return "captioner"
    if isinstance(model, DETRObjectDetector):
        return "detector"
    return generate_text.model_kind(model)


def load_saved_model(model_path):
    """The model of a `.keras` file, its task (`model_task`) and, for a text generation
    model, the vocabulary file beside it (`vocabulary_file.read_vocabulary_file`); for a
    text classifier, its class names (the `classes.json` beside it, else `"0"`, `"1"`, ...)."""
    model_path = os.fspath(model_path)
    reason = model_files.model_file_problem(model_path)
    if reason:
        raise GenerateOptionError(f"argument MODEL: the path {reason}. Received: {model_path!r}")
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:
        raise GenerateOptionError(
            f"argument MODEL: cannot load the model ({type(error).__name__}: {error}). "
            f"Received: {model_path!r}"
        ) from None
    task = model_task(model)
    if task is None:
        raise GenerateOptionError(
            "argument MODEL: not an image or text classifier, language model or "
            "sequence-to-sequence "
            f"model but a {type(model).__name__}. Received: {model_path!r}"
        )
    vocabulary = None
    if task == "text_classifier":
        return model, task, _text_class_names(model, model_path)
    if task == "captioner":
        return model, task, _caption_vocabulary(model, model_path)
    if task == "detector":
        return model, task, None
    if task != "image_classifier":
        path = os.path.join(os.path.dirname(os.path.abspath(model_path)), vocabulary_file.FILENAME)
        if task == "language_model" and generate_text.uses_tokenizer(model, None):
            return model, task, None  # a subword model: text through its tokenizer
        if not os.path.isfile(path):
            raise GenerateOptionError(
                f"argument MODEL: a text model needs the {vocabulary_file.FILENAME} that "
                f"`keras-seq train` writes beside it; {path} does not exist. Received: "
                f"{model_path!r}"
            )
        vocabulary = vocabulary_file.read_vocabulary_file(path)
    return model, task, vocabulary


def _text_class_names(model, model_path):
    if model.tokenizer is None:
        raise GenerateOptionError(
            "argument MODEL: the text classifier has no tokenizer to read text with. "
            f"Received: {model_path!r}"
        )
    try:
        names = text_classification.class_names_beside(model_path)
    except ValueError as error:
        raise GenerateOptionError(f"argument MODEL: {error}. Received: {model_path!r}") from None
    if names is None:
        names = [str(index) for index in range(model.num_classes)]
    if len(names) != model.num_classes:
        raise GenerateOptionError(
            f"argument MODEL: the {text_classification.CLASSES_FILE} beside it names "
            f"{len(names)} classes and the model has {model.num_classes}. Received: "
            f"{model_path!r}"
        )
    return names


def _caption_vocabulary(model, model_path):
    try:
        vocabulary = caption_data.vocabulary_beside(model_path)
    except ValueError as error:
        raise GenerateOptionError(f"argument MODEL: {error}. Received: {model_path!r}") from None
    if vocabulary is None:
        raise GenerateOptionError(
            f"argument MODEL: a captioner needs the {caption_data.FILENAME} that `keras-seq "
            f"train captioning-shapes --data` writes beside it. Received: {model_path!r}"
        )
    if len(vocabulary) != model.vocabulary_size:
        raise GenerateOptionError(
            f"argument MODEL: the {caption_data.FILENAME} beside it has {len(vocabulary)} "
            f"tokens and the model {model.vocabulary_size}. Received: {model_path!r}"
        )
    return vocabulary


def _evaluate_captions(model, data, vocabulary, batch_size):
    examples = caption_files.read_captions(data)
    size = model_image_shape(model.backbone)[0]
    pixels, captions, skipped = caption_data.captioned_images(examples, size, "images")
    targets, _ = vocabulary.encode(captions)  # (N, T), cut to the training captions' length
    target_in = teacher_forcing_inputs(targets, targets, start_token_id=caption_data.START_ID)
    inputs = {"images": pixels, "target_in": target_in["target_in"]}
    logits = np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), "float64")
    logits -= logits.max(axis=-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]  # (N, T)
    real = targets > 0
    loss = float(-picked[real].mean())
    generated = []
    for start in range(0, len(pixels), batch_size):
        generated.append(
            np.asarray(
                model.generate(
                    pixels[start : start + batch_size],
                    targets.shape[1],
                    stop_token_id=caption_data.END_ID,
                    jit_compile=False,
                )
            )[:, : targets.shape[1]]
        )
    generated = np.concatenate(generated)
    return {
        "examples": len(captions),
        "loss": loss,
        "perplexity": float(np.exp(loss)),
        "word_accuracy": float(np.mean((generated == targets)[real])),
        "exact_match": float(np.mean(np.all(generated == targets, axis=1))),
        "skipped_images": len(skipped),
    }


def _text_logits(model, texts, batch_size):
    """The logits `(N, C)` of raw texts, packed to the longest one's length (at most the
    backbone's `max_sequence_length`; longer texts are cut)."""
    limit = model.backbone.max_sequence_length
    length = text_classification.sequence_length_for(model.tokenizer, texts, limit)
    inputs, _ = text_classification.pack_texts(model.tokenizer, texts, length)
    return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), "float32")


def _evaluate_labeled_text(model, data, names, batch_size):
    files = data_files.text_files(data, suffix=data_files.LABELED_TEXT_SUFFIXES)
    rows = data_files.read_labeled_text(files)
    if not rows:
        raise data_files.DataPathError(" ".join(files), "holds no labeled row")
    labels = text_classification.label_ids(rows, names, " ".join(files))
    logits = _text_logits(model, [text for text, _ in rows], batch_size)
    top_k = min(5, model.num_classes)
    ranked = np.argsort(-logits, axis=-1, kind="stable")[:, :top_k]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    return {
        "examples": len(rows),
        "accuracy": float(np.mean(ranked[:, 0] == labels)),
        f"top_{top_k}_accuracy": float(np.mean(np.any(ranked == labels[:, None], axis=1))),
        "loss": float(loss),
    }


def _data_error(error):
    return GenerateOptionError(
        f"argument --data: the path {error.reason}. Received: {error.path!r}"
    )


def _image_geometry(model):
    size, channels = model_image_shape(model.backbone)
    preprocessor = model.preprocessor or ImagePreprocessor(image_size=size, dtype="float32")
    return size, channels, preprocessor


def _evaluate_images(model, data, batch_size):
    if len(data) != 1:
        raise GenerateOptionError(
            "argument --data: an image classifier is evaluated on one directory (one "
            f"sub-directory of images per class). Received: {' '.join(data)!r}"
        )
    size, channels, preprocessor = _image_geometry(model)
    label_names = model.label_names or [str(index) for index in range(model.num_classes)]
    folders = ImageFolders(
        data[0],
        image_size=size,
        channels=channels,
        normalization=preprocessor,
        label_names=label_names,
        validation_split=1.0,
    )
    pixels, labels = folders.validation_arrays(batch_size)
    logits = np.asarray(model.predict(pixels, batch_size=batch_size, verbose=0), "float32")
    top_k = min(5, model.num_classes)
    ranked = np.argsort(-logits, axis=-1, kind="stable")[:, :top_k]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    return {
        "examples": int(len(labels)),
        "accuracy": float(np.mean(ranked[:, 0] == labels)),
        f"top_{top_k}_accuracy": float(np.mean(np.any(ranked == labels[:, None], axis=1))),
        "loss": float(loss),
        # Image files that do not decode are left out (`ImageFolders`), and counted here.
        "skipped_images": len(folders.skipped),
    }


def _evaluate_text(model, data, vocabulary, batch_size):
    files = data_files.text_files(data)
    length = EVALUATION_SEQUENCE_LENGTH
    if isinstance(model, GPTCausalLM):
        length = min(length, model.backbone.sequence_length)
    if vocabulary is None:  # the model's tokenizer
        windows = TokenWindows(files, length, model.tokenizer)
    else:
        windows = CharWindows(files, length, vocabulary["source"])
    if isinstance(model, GPTCausalLM):

        def to_inputs(token_ids):
            return {"token_ids": token_ids, "padding_mask": tf.ones_like(token_ids)}

    else:

        def to_inputs(token_ids):
            return token_ids

    total = 0.0
    count = 0
    for inputs, targets in windows.every_window(batch_size, to_inputs):
        logits = tf.cast(model(inputs, training=False), "float32")
        losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        total += float(tf.reduce_sum(losses))
        count += int(tf.size(losses))
    loss = total / count
    return {
        "examples": windows.num_train + windows.num_validation,
        "loss": loss,
        "perplexity": float(np.exp(loss)),
    }


def _evaluate_pairs(model, data, vocabulary, batch_size):
    pairs = data_files.read_pairs(data_files.text_files(data, suffix=data_files.PAIRS_SUFFIX))
    sources = [source for source, _ in pairs]
    targets = [target for _, target in pairs]
    source_length = max([vocabulary.get("source_length") or 0] + [len(s) for s in sources])
    target_length = max(len(target) for target in targets) + 1  # with <end>
    try:
        source_ids = vocabulary["source"].encode(sources, length=source_length)
        target_ids = vocabulary["target"].encode(targets, length=target_length, add_end=True)
    except ValueError as error:
        raise GenerateOptionError(
            f"argument --data: the pairs do not fit the model's vocabulary: {error}"
        ) from None
    generated = []
    for start in range(0, len(pairs), batch_size):
        generated.append(
            np.asarray(
                model.generate(
                    source_ids[start : start + batch_size],
                    max_new_tokens=target_length,
                    stop_token_id=vocabulary.get("stop_token_id"),
                    jit_compile=False,
                )
            )
        )
    generated = np.concatenate(generated)[:, :target_length]  # (N, T)
    return {
        "examples": len(pairs),
        "exact_match": float(np.mean(np.all(generated == target_ids, axis=1))),
        "character_accuracy": float(np.mean((generated == target_ids)[target_ids > 0])),
    }


def evaluate_saved_model(model_path, data, batch_size=32):
    """Evaluate the model at `model_path` on `data` (a list of paths, as `--data` takes for
    its task); returns a JSON-serializable dict: `model`, `task`, `class`, `examples` and
    the task's metrics (image or text classifier: `accuracy`, `top_k_accuracy`, `loss`; language
    model: `loss`, `perplexity`; seq2seq: `exact_match`, `character_accuracy` of greedy
    decoding; captioner, on an image directory and a captions file: `loss` and `perplexity`
    per word (teacher-forced), `word_accuracy` and `exact_match` of greedy captions;
    detector, on an image directory and COCO annotations: `map`, `map_50`, `map_75`,
    `mar_100`)."""
    model, task, vocabulary = load_saved_model(model_path)
    data = data_files.as_path_list(data)
    try:
        if task == "image_classifier":
            metrics = _evaluate_images(model, data, batch_size)
        elif task == "text_classifier":
            metrics = _evaluate_labeled_text(model, data, vocabulary, batch_size)
        elif task == "captioner":
            metrics = _evaluate_captions(model, data, vocabulary, batch_size)
        elif task == "detector":
            metrics = detection_results.evaluate_detector(model, data, batch_size)
        elif task == "language_model":
            metrics = _evaluate_text(model, data, vocabulary, batch_size)
        else:
            metrics = _evaluate_pairs(model, data, vocabulary, batch_size)
    except data_files.DataPathError as error:
        raise _data_error(error) from None
    return {
        "model": os.path.abspath(model_path),
        "task": task,
        "class": type(model).__name__,
        "data": [os.path.abspath(path) for path in data],
        **metrics,
    }


def _read_image(path, channels):
    try:
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
        message = error.message.splitlines()[0] if error.message else type(error).__name__
        raise GenerateOptionError(
            f"argument INPUTS: the path is not a readable image ({message}). Received: {path!r}"
        ) from None
    return np.asarray(image)


def predict_saved_model(
    model_path, inputs, top_k=None, max_new_tokens=None, score_threshold=None, output=None
):
    """One line per input: for an image classifier, `PATH: label probability, ...` (the
    `top_k` best, default up to 5); for a text classifier `TEXT: label probability, ...`
    likewise; for a captioner `PATH: caption`; for a detector `PATH: label score box; ...`
    (`score_threshold`, default 0.5; with `output`, a `.json` path, also that file and a PNG
    beside it, `detection_results.predict_detector`); for a language model the prompt and
    its greedy continuation; for a seq2seq model the greedy translation."""
    model, task, vocabulary = load_saved_model(model_path)
    if task != "detector":
        for name, value in (("--score-threshold", score_threshold), ("--output", output)):
            if value is not None:
                raise GenerateOptionError(f"argument {name}: only for detectors. Received: {value}")
    else:
        for name, value in (("--top-k", top_k), ("--max-new-tokens", max_new_tokens)):
            if value is not None:
                raise GenerateOptionError(
                    f"argument {name}: not for a detector (see --score-threshold). "
                    f"Received: {value}"
                )
        return detection_results.predict_detector(
            model, inputs, 0.5 if score_threshold is None else score_threshold, output
        )
    if task == "text_classifier":
        return _predict_texts(model, vocabulary, inputs, top_k, max_new_tokens)
    if task == "captioner":
        return _predict_captions(model, vocabulary, inputs, top_k, max_new_tokens)
    if task != "image_classifier":
        if top_k is not None:
            raise GenerateOptionError(
                f"argument --top-k: only for image and text classifiers. Received: {top_k}"
            )
        try:
            return generate_text.generate_from_saved_model(
                model_path,
                list(inputs),
                vocabulary=vocabulary,
                max_new_tokens=max_new_tokens,
                model=model,
                stop_token_id=(vocabulary or {}).get("stop_token_id"),
                strategy="greedy",
                jit_compile=False,
            )
        except GenerateOptionError as error:  # `generate` calls the inputs --prompt
            message = str(error).replace("argument --prompt:", "argument INPUTS:")
            raise GenerateOptionError(message) from None
    top_k = _classifier_top_k(model, top_k, max_new_tokens)
    size, channels, preprocessor = _image_geometry(model)
    lines = []
    for path in inputs:
        pixels = preprocessor(_read_image(path, channels)[None])  # (1, H, W, C)
        logits = model(pixels, training=False)
        probabilities = np.asarray(keras.ops.softmax(keras.ops.cast(logits, "float32")))[0]
        ranked = np.argsort(-probabilities, kind="stable")[:top_k]
        best = ", ".join(
            f"{model.label_name(int(index))} {probabilities[index]:.3f}" for index in ranked
        )
        lines.append(f"{path}: {best}")
    return lines


def _classifier_top_k(model, top_k, max_new_tokens):
    """`--top-k` of a classifier (default: up to 5), checked."""
    if max_new_tokens is not None:
        raise GenerateOptionError(
            f"argument --max-new-tokens: only for text generation models. Received: "
            f"{max_new_tokens}"
        )
    top_k = min(5, model.num_classes) if top_k is None else top_k
    if top_k > model.num_classes:
        raise GenerateOptionError(
            f"argument --top-k: the model has {model.num_classes} classes. Received: {top_k}"
        )
    return top_k


def _predict_texts(model, names, texts, top_k, max_new_tokens):
    top_k = _classifier_top_k(model, top_k, max_new_tokens)
    empty = [text for text in texts if not text.strip()]
    if empty:
        raise GenerateOptionError(f"argument INPUTS: a text is empty. Received: {empty[0]!r}")
    logits = _text_logits(model, list(texts), batch_size=32)
    probabilities = np.asarray(keras.ops.softmax(logits))  # (N, C)
    lines = []
    for text, row in zip(texts, probabilities):
        ranked = np.argsort(-row, kind="stable")[:top_k]
        best = ", ".join(f"{names[int(index)]} {row[index]:.3f}" for index in ranked)
        lines.append(f"{text}: {best}")
    return lines


def _predict_captions(model, vocabulary, paths, top_k, max_new_tokens):
    if top_k is not None:
        raise GenerateOptionError(
            f"argument --top-k: only for image and text classifiers. Received: {top_k}"
        )
    size, _ = model_image_shape(model.backbone)
    lines = []
    for path in paths:
        image = tf.cast(_read_image(path, 3), "float32")[None] / 255.0  # (1, H, W, 3)
        pixels = np.asarray(keras.ops.image.resize(image, size, antialias=True), "float32")
        generated = model.generate(
            np.clip(pixels, 0.0, 1.0),
            max_new_tokens or vocabulary.max_new_tokens,
            stop_token_id=caption_data.END_ID,
            jit_compile=False,
        )
        lines.append(f"{path}: {vocabulary.decode(np.asarray(generated))[0]}")
    return lines
