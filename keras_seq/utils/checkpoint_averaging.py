"""Averaging the weights of several checkpoints of one architecture (Vaswani et al.)."""

import os

import keras
import numpy as np


def _is_float(array):
    # `str` also names ml_dtypes' bfloat16, which NumPy does not count as floating.
    return keras.backend.is_float_dtype(str(array.dtype))


def average_weight_lists(weight_lists, names=None, sources=None):
    """Average lists of weight arrays given in the same order.

    Floating-point weights are averaged (in float64, then cast back to their dtype); other
    weights (integer counters, int8 quantized kernels) are copied from the last list.

    Args:
        weight_lists: non-empty sequence of lists of NumPy arrays, one list per checkpoint.
        names: optional list of weight names (paths) used in error messages.
        sources: optional list of checkpoint descriptions used in error messages.

    Returns:
        List of NumPy arrays: the averaged weights.

    Raises:
        ValueError: when the lists differ in length, or a weight in shape or dtype; the
            message names the offending weight.
    """
    if not weight_lists:
        raise ValueError(f"Need at least one checkpoint to average. Received: {weight_lists!r}")
    reference = weight_lists[-1]
    names = names or [f"weight {index}" for index in range(len(reference))]
    sources = sources or [f"checkpoint {index}" for index in range(len(weight_lists))]
    for source, weights in zip(sources, weight_lists):
        if len(weights) != len(reference):
            raise ValueError(
                "All checkpoints must have the same architecture. Received: "
                f"{len(weights)} weights in {source} but {len(reference)} in {sources[-1]}"
            )
        for index, (name, array, expected) in enumerate(zip(names, weights, reference)):
            if array.shape != expected.shape or array.dtype != expected.dtype:
                raise ValueError(
                    "All checkpoints must have the same architecture. Weight "
                    f"{name!r} (index {index}) has shape {array.shape} and dtype "
                    f"{array.dtype} in {source} but shape {expected.shape} and dtype "
                    f"{expected.dtype} in {sources[-1]}"
                )
    averaged = []
    for index, expected in enumerate(reference):
        if _is_float(expected):
            stacked = np.stack([np.asarray(w[index], "float64") for w in weight_lists])
            averaged.append(stacked.mean(axis=0).astype(expected.dtype))
        else:
            averaged.append(np.array(expected))
    return averaged


def _describe(checkpoint, index):
    if isinstance(checkpoint, keras.Model):
        return f"checkpoint {index} (model {checkpoint.name!r})"
    if isinstance(checkpoint, (str, os.PathLike)):
        return f"checkpoint {index} ({os.fspath(checkpoint)!r})"
    return f"checkpoint {index}"


def average_checkpoints(checkpoints, model=None):
    """Average the weights of checkpoints of the same architecture, e.g. the last five.

    Vaswani et al. (2017) report the base transformer with the average of the last 5
    checkpoints (written every 10 minutes), the big one with the last 20: an average of
    points along the end of the trajectory, often better than the last one. Weights are
    matched by position in `model.weights` order (the order of `Model.set_weights`), since
    names of separately built models differ, and must agree in shape and dtype.
    Floating-point weights are averaged, non-trainable ones included (e.g.
    `BatchNormalization` moving statistics: the average of the statistics, which
    approximates those of the averaged model; re-estimate them if that matters); other
    weights (integer counters, int8 quantized kernels) are copied from the last
    checkpoint. Optimizer state is not averaged.

    Args:
        checkpoints: non-empty list of `.keras` files (loaded with
            `keras.saving.load_model(path, compile=False)`; custom objects must be
            registered), `.weights.h5` files (loaded into `model`, which is then required)
            and `keras.Model` objects, in any mix.
        model: optional `keras.Model`. If given, the averaged weights are assigned to it;
            required for `.weights.h5` files.

    Returns:
        List of NumPy arrays, in `model.weights` order: the averaged weights.

    Raises:
        ValueError: for an empty list, an unknown file type, `.weights.h5` files without
            `model`, or checkpoints of different architectures (the message names the
            offending weight and checkpoint).

    Example:
    ```python
    def make_model():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    models = [make_model() for _ in range(3)]
    target = make_model()
    averaged = keras_seq.utils.average_checkpoints(models, model=target)
    expected = np.mean([m.layers[0].kernel.numpy() for m in models], axis=0)
    np.testing.assert_allclose(target.layers[0].kernel.numpy(), expected, rtol=1e-6)
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762), section 6.1.
    """
    if isinstance(checkpoints, (str, os.PathLike, keras.Model)) or not checkpoints:
        raise ValueError(
            "`checkpoints` must be a non-empty list of `.keras` / `.weights.h5` paths or "
            f"`keras.Model` objects. Received: checkpoints={checkpoints!r}"
        )
    if model is not None and not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a `keras.Model` or `None`. Received: model={model!r} of type "
            f"{type(model).__name__}"
        )
    original = None if model is None else model.get_weights()
    weight_lists, sources, names = [], [], None
    try:
        for index, checkpoint in enumerate(checkpoints):
            source = _describe(checkpoint, index)
            if isinstance(checkpoint, keras.Model):
                loaded = checkpoint
            elif isinstance(checkpoint, (str, os.PathLike)):
                path = os.fspath(checkpoint)
                if path.endswith(".weights.h5"):
                    if model is None:
                        raise ValueError(
                            "`model` is required to load `.weights.h5` files: pass a model "
                            f"of the same architecture. Received: checkpoints[{index}]="
                            f"{path!r}, model=None"
                        )
                    try:
                        model.load_weights(path)
                    except ValueError as error:  # Keras names the mismatched weight.
                        raise ValueError(
                            f"All checkpoints must have the same architecture: {source} does "
                            f"not fit model {model.name!r}. Keras reported: {error}"
                        ) from error
                    loaded = model
                elif path.endswith(".keras"):
                    loaded = keras.saving.load_model(path, compile=False)
                else:
                    raise ValueError(
                        "`checkpoints` paths must end in `.keras` or `.weights.h5`. "
                        f"Received: checkpoints[{index}]={path!r}"
                    )
            else:
                raise ValueError(
                    "`checkpoints` must hold `.keras` / `.weights.h5` paths or `keras.Model` "
                    f"objects. Received: checkpoints[{index}]={checkpoint!r}"
                )
            weight_lists.append([w.numpy() for w in loaded.weights])
            sources.append(source)
            names = names or [w.path for w in loaded.weights]
        if model is not None:
            # The model itself must match too: check it as one more (unaveraged) list.
            average_weight_lists(
                [weight_lists[-1], original], names, [sources[-1], f"model {model.name!r}"]
            )
        averaged = average_weight_lists(weight_lists, names, sources)
    except Exception:
        if model is not None:
            model.set_weights(original)
        raise
    if model is not None:
        model.set_weights(averaged)
    return averaged
