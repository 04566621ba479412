"""What `keras-seq evaluate` and `predict` run on a `DETRObjectDetector` saved by
`keras-seq train detr-shapes`.

`evaluate_detector` scores it on an image directory and COCO detection annotations
(`keras_seq.recipes.detection_files`; categories matched to the model's `label_names` by
name) with `keras_seq.metrics.evaluate_detection`: COCO mAP over IoU 0.5:0.95, at 0.5 and
0.75, and recall. `predict_detector` detects on image files (through the model's
`preprocessor`), prints the detections scoring at least `score_threshold` in each image's own
pixels, and with `output` writes them as JSON and draws them on a PNG beside it.
"""

import os

import numpy as np

from keras_seq.layers.preprocessing.image_preprocessor import ImagePreprocessor
from keras_seq.metrics.detection_evaluation import evaluate_detection
from keras_seq.recipes import outputs
from keras_seq.recipes.data_files import DataPathError
from keras_seq.recipes.detection_files import read_detection_data
from keras_seq.recipes.detr_shapes import detection_arrays
from keras_seq.recipes.detr_shapes import detections_figure
from keras_seq.recipes.image_data import decode_image_file
from keras_seq.recipes.image_data import model_image_shape
from keras_seq.recipes.model_sources import GenerateOptionError


def _preprocessor(model):
    if model.preprocessor is not None:
        return model.preprocessor
    return ImagePreprocessor(image_size=model_image_shape(model.backbone)[0], dtype="float32")


def class_names_of(model):
    """The model's `label_names`, or `"0"`, `"1"`, ... without them."""
    return list(model.label_names or [str(index) for index in range(model.num_classes)])


def evaluate_detector(model, data, batch_size):
    """The scores of `keras-seq evaluate` for a detector on `data` (`[directory,
    annotations]`)."""
    file_names, entries = read_detection_data(data)
    names = class_names_of(model)
    unknown = [name for name in file_names if name not in names]
    if unknown:
        raise DataPathError(
            " ".join(data),
            f"has categories the model does not know: {unknown[:10]} (its classes: "
            f"{', '.join(names)})",
        )
    images, targets, skipped = detection_arrays(entries, _preprocessor(model))
    mapping = np.asarray([names.index(name) for name in file_names] + [-1])
    targets["labels"] = mapping[targets["labels"]]  # -1 (padding) stays -1
    scores = evaluate_detection(
        model, (images, targets), batch_size=batch_size, num_classes=model.num_classes
    )
    return {
        "examples": int(len(images)),
        **{key: float(scores[key]) for key in ("map", "map_50", "map_75", "mar_100")},
        "skipped_images": len(skipped),
    }


def predict_detector(model, paths, score_threshold=0.5, output=None):
    """One line per image: `PATH: name score [x_min, y_min, x_max, y_max]; ...` in the
    image's own pixels (`none` without a detection at `score_threshold`); with `output` (a
    `.json` path), the detections as JSON there and the images with their boxes as a PNG
    of the same name beside it."""
    preprocessor = _preprocessor(model)
    names = class_names_of(model)
    lines, records, shown, found = [], [], [], []
    for path in paths:
        image = decode_image_file(path, channels=3)
        if image is None:
            raise GenerateOptionError(
                f"argument INPUTS: the path is not a readable image. Received: {path!r}"
            )
        size = np.asarray([image.shape[:2]], "float32")  # (1, 2): (height, width)
        raw = model.predict(np.asarray(preprocessor(image[None])), verbose=0)
        detections = model.postprocess(raw, image_sizes=size)
        boxes = np.asarray(detections["boxes"])[0]
        scores = np.asarray(detections["scores"])[0]
        labels = np.asarray(detections["labels"])[0]
        keep = np.argsort(-scores, kind="stable")
        keep = keep[scores[keep] >= score_threshold]
        kept = [
            {
                "label": names[int(labels[i])],
                "score": round(float(scores[i]), 4),
                "box": [round(float(v), 1) for v in boxes[i]],
            }
            for i in keep
        ]
        text = "; ".join(f"{d['label']} {d['score']:.3f} {d['box']}" for d in kept) or "none"
        lines.append(f"{path}: {text}")
        records.append({"image": os.path.abspath(path), "detections": kept})
        shown.append(np.asarray(image))
        found.append((boxes[keep], scores[keep], labels[keep]))
    if output is not None:
        outputs.write_json(output, {"score_threshold": score_threshold, "images": records})
        figure = detections_figure(
            [image / 255.0 for image in shown],
            {
                "boxes": [boxes for boxes, _, _ in found],
                "scores": [scores for _, scores, _ in found],
                "labels": [labels for _, _, labels in found],
            },
            class_names=names,
            titles=[os.path.basename(path) for path in paths],
            score_threshold=score_threshold,
        )
        outputs.save_figure(figure, os.path.splitext(output)[0] + ".png")
    return lines
