"""Heatmaps of chosen attention layers on a fixed probe batch, written to TensorBoard.

Legend for shape comments: B probe batch (or batch * windows), N heads, T query length,
S key length, H / W image height / width.

TensorFlow (`tf.summary`) is imported where the logs are written, not with the module, so
that `import keras_seq` works without TensorFlow on the JAX and PyTorch backends.
"""

import math
import os
import warnings

import keras
import numpy as np

from keras_seq.api import keras_seq_export
from keras_seq.callbacks.figure_image import axes_at
from keras_seq.callbacks.figure_image import figure_to_image
from keras_seq.callbacks.figure_image import new_figure
from keras_seq.layers.attention.attention_recorder import record_attention_scores
from keras_seq.layers.attention.base_attention import BaseAttention
from keras_seq.layers.attention.multi_head_attention import MultiHeadAttention
from keras_seq.utils.layer_walk import iter_layers
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int

RECORDABLE = (MultiHeadAttention, BaseAttention)
# Auto `cell_size`: the smallest integer scale that makes the heatmap's longer side this many
# pixels.
_AUTO_SIDE = 128
# Layout of an attention image, in pixels: the heatmap's top-left corner (room for a title
# above, the query axis's label to the left) and what the image adds below it (the key axis)
# and to its right (the colour bar and its labels).
HEATMAP_TOP = 16
HEATMAP_LEFT = 40
_BOTTOM_MARGIN = 30
_RIGHT_MARGIN = 60
_COLORBAR_GAP, _COLORBAR_WIDTH = 6, 8
_FONT_SIZE = 7  # points


def render_attention_map(weights, cell_size=None, colormap="gray", normalize=False, title=None):
    """One `(T, S)` map -> uint8 RGB image `(H, W, 3)`: a matplotlib heatmap with axes.

    The heatmap draws each weight as a `cell_size` square of pixels (nearest neighbour,
    query rows top to bottom, key columns left to right) with its top-left pixel at
    `(HEATMAP_TOP, HEATMAP_LEFT)`, so `H = HEATMAP_TOP + T * cell_size + 30` and
    `W = HEATMAP_LEFT + S * cell_size + 60`; around it, integer tick labels, the axis labels
    "key" and "query", an optional `title`, and a colour bar with its two ends as ticks.
    Raw values map `[0, 1]` onto `colormap` (clipped); `normalize=True` maps the map's own
    minimum to maximum instead (a constant map gives the middle colour). `cell_size=None`
    picks the smallest cell that makes the longer side at least 128 pixels.
    """
    from matplotlib.ticker import MaxNLocator

    weights = np.asarray(weights, dtype="float64")  # (T, S)
    rows, columns = weights.shape
    if cell_size is None:
        cell_size = max(1, math.ceil(_AUTO_SIDE / max(rows, columns)))
    low, high = (weights.min(), weights.max()) if normalize else (0.0, 1.0)
    height, width = rows * cell_size, columns * cell_size
    figure = new_figure(HEATMAP_LEFT + width + _RIGHT_MARGIN, HEATMAP_TOP + height + _BOTTOM_MARGIN)
    axes = axes_at(figure, HEATMAP_LEFT, HEATMAP_TOP, width, height)
    heatmap = axes.imshow(
        weights, cmap=colormap, vmin=low, vmax=high, interpolation="nearest", aspect="auto"
    )
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_locator(MaxNLocator(nbins="auto", integer=True, min_n_ticks=1))
    # No spines and no tick marks: they would paint over the heatmap's edge pixels.
    axes.set_frame_on(False)
    axes.tick_params(labelsize=_FONT_SIZE, length=0, pad=2)
    axes.set_xlabel("key", fontsize=_FONT_SIZE, labelpad=1)
    axes.set_ylabel("query", fontsize=_FONT_SIZE, labelpad=1)
    if title:
        axes.set_title(title, fontsize=_FONT_SIZE, pad=3)
    bar_axes = axes_at(
        figure, HEATMAP_LEFT + width + _COLORBAR_GAP, HEATMAP_TOP, _COLORBAR_WIDTH, height
    )
    bar = figure.colorbar(heatmap, cax=bar_axes, ticks=sorted({low, high}), format="%.3g")
    bar.outline.set_visible(False)
    bar_axes.tick_params(labelsize=_FONT_SIZE, length=0, pad=2)
    return figure_to_image(figure)


def _probe_batch_size(probe):
    sizes = {int(np.shape(x)[0]) if np.ndim(x) else None for x in keras.tree.flatten(probe)}
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        raise ValueError(
            "`probe_inputs` must be the model's inputs (an array, or a dict / list of "
            "arrays) with one non-empty batch axis shared by every array. Received: "
            f"probe_inputs with shapes {keras.tree.map_structure(np.shape, probe)}"
        )
    return sizes.pop()


@keras_seq_export
class AttentionMapLogger(keras.callbacks.Callback):
    """Writes attention heatmaps of chosen layers on a fixed probe batch to TensorBoard.

    Every `every_n_epochs` epochs the callback calls the model eagerly on `probe_inputs`
    (`training=False`) inside `record_attention_scores` (module
    `keras_seq.layers.attention.attention_recorder`), which collects the probabilities of
    the chosen attention layers, then writes them as `tf.summary.image`s to
    `log_dir/attention` at step `epoch` (0-based, the step of Keras' `TensorBoard` epoch
    scalars). The probe runs outside the compiled training step, which it never changes;
    it costs one eager forward pass.

    Why a recording hook: the scores of a nested attention are not outputs of the model
    (a block's, a Swin window's, the per-step alignment of a recurrent decoder inside its
    loop), and a second model exposing them would have to mirror every architecture. The
    hook reads them where keras_seq's attention layers compute them, at any depth:
    `MultiHeadAttention` (the self- and cross-attention of `TransformerEncoder` /
    `TransformerDecoder` blocks, the GPT and DETR backbones, Swin's `WindowAttention`) and
    `BahdanauAttention` / `LuongAttention` (also inside `AttentionRNN` and `RNNSeq2SeqLM`);
    other attention layers (e.g. `keras.layers.MultiHeadAttention`) cannot be recorded.
    What is drawn for each name of `layer_names`:

    - multi-head attention: per example, the `(query_length, key_length)` probabilities
      averaged over heads (`average_heads=True`) or one image per head; a DETR decoder's
      `cross_attention` gives one row per object query over the image tokens.
    - a recurrent decoder calls its attention once per step: the per-step rows are stacked
      into the `(target_length, source_length)` alignment, the same as
      `RNNSeq2SeqLM.attention_weights` (every call of one forward pass is concatenated along
      the query axis).
    - Swin windows: when the attention's batch axis is a multiple of the probe batch (the
      `(batch_size * num_windows, ...)` windows of `WindowAttention`), the first
      `max_windows` windows of the first example, each `(tokens, tokens)`.

    A name is a layer's path, or a trailing part of it, matched against the end of each
    layer's path in the model (`"self_attention"` if only one layer has that name,
    `"encoder_layer_0/self_attention"`, `"decoder_layer_1/cross_attention"`); it may also
    name a layer holding exactly one attention layer (`"encoder_layer_0"`, a Swin block
    `"stage_1_block_0"`, an `RNNSeq2SeqLM` decoder `"decoder_layer_0"`). Paths are those of
    `keras_seq.utils.iter_layers`: names joined by "/" from the model down, with Keras'
    automatic names (`transformer_encoder_3`) numbered among their siblings instead
    (`transformer_encoder_1`), so that they do not depend on how many layers the process
    built before. A path spelled with a layer's Keras names is accepted too. Names are
    resolved at the start of training; an unknown or ambiguous name raises a `ValueError`
    that lists the paths of the model's attention layers.

    Images: each map is drawn with matplotlib (its own Agg canvas, no pyplot state) as a
    heatmap with the key positions across, the query positions down, tick labels, axis
    labels and a colour bar, in an RGB image (3 channels, also for `"gray"`). The heatmap
    draws each weight as a `cell_size` square of pixels (nearest neighbour) whose top-left
    pixel is at row `HEATMAP_TOP`, column `HEATMAP_LEFT` (module constants) of the image,
    which is `HEATMAP_TOP + 30` pixels taller and `HEATMAP_LEFT + 60` wider than the
    heatmap. The colour scale is the probabilities' `[0, 1]`, or each map's own minimum to
    maximum (`normalize=True`, for long sequences whose weights are all small; the colour
    bar shows the two values). Tags are `attention/<name>/example_<i>` (or
    `.../window_<k>`), each holding one image (titled with the number of heads averaged),
    or one per head (titled `head <h>`). `<name>` is the `layer_names` entry as given when
    it is spelled as a path; one spelled with Keras' automatic names is written as the same
    number of trailing path segments, so tags are the same in every run. Read them in
    TensorBoard's Images tab; `attention_maps()` returns the arrays for plotting elsewhere.

    Args:
        log_dir: str or path. TensorBoard log directory (the one given to
            `keras.callbacks.TensorBoard`); images go to its `attention` subdirectory.
        probe_inputs: the model's inputs for the probe batch: an array, or a dict / list of
            arrays as the model takes them, with a shared batch axis. Fixed for the whole
            training so that the maps of different epochs compare.
        layer_names: list of str. The attention layers to draw (see above).
        every_n_epochs: int. Write after every this many epochs. Defaults to `1`.
        max_examples: int. Draw at most this many probe examples (the first ones).
            Defaults to `2`.
        max_windows: int. Windowed attention (Swin): draw at most this many windows of the
            first example. Defaults to `4`.
        average_heads: bool. Draw the mean over heads; `False` writes one image per head.
            Defaults to `True`.
        normalize: bool. Min-max normalize each image instead of drawing the raw
            probabilities. Defaults to `False`.
        colormap: str. The name of a matplotlib colormap (`"gray"`, `"viridis"`,
            `"magma"`, ...). Defaults to `"gray"`.
        cell_size: int or `None`. Side in pixels of each attention weight; `None` makes the
            longer side of the heatmap at least 128 pixels. Defaults to `None`.

    Example:
    ```python
    import tempfile

    inputs = keras.Input((6, 8))
    hidden = keras_seq.layers.TransformerEncoder(
        num_heads=2, intermediate_dim=16, name="encoder"
    )(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile("sgd", "mse")
    x = np.random.rand(4, 6, 8).astype("float32")
    logger = keras_seq.callbacks.AttentionMapLogger(
        log_dir=tempfile.mkdtemp(), probe_inputs=x[:2], layer_names=["encoder"]
    )
    model.fit(x, np.zeros((4, 6, 1)), epochs=1, callbacks=[logger], verbose=0)
    maps = logger.attention_maps()  # {"encoder": (2, 2, 6, 6)}: (batch, heads, T, S)
    ```
    """

    def __init__(
        self,
        log_dir,
        probe_inputs,
        layer_names,
        every_n_epochs=1,
        max_examples=2,
        max_windows=4,
        average_heads=True,
        normalize=False,
        colormap="gray",
        cell_size=None,
    ):
        if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
            raise TypeError(
                f"`log_dir` must be a non-empty str or path. Received: log_dir={log_dir!r}"
            )
        if probe_inputs is None:
            raise ValueError(
                "`probe_inputs` must be the model's inputs for the probe batch (an array or "
                "a dict / list of arrays). Received: probe_inputs=None"
            )
        probe = keras.tree.map_structure(np.asarray, probe_inputs)
        batch_size = _probe_batch_size(probe)
        if (
            not isinstance(layer_names, (list, tuple))
            or not layer_names
            or not all(isinstance(name, str) and name.strip("/") for name in layer_names)
        ):
            raise TypeError(
                "`layer_names` must be a non-empty list of layer names (str). "
                f"Received: layer_names={layer_names!r}"
            )
        if len(set(layer_names)) != len(layer_names):
            raise ValueError(
                f"`layer_names` must not repeat a name. Received: layer_names={layer_names!r}"
            )
        validate_positive_int("every_n_epochs", every_n_epochs)
        validate_positive_int("max_examples", max_examples)
        validate_positive_int("max_windows", max_windows)
        validate_bool("average_heads", average_heads)
        validate_bool("normalize", normalize)
        _validate_colormap(colormap)
        if cell_size is not None:
            validate_positive_int("cell_size", cell_size)
        super().__init__()
        self.log_dir = log_dir
        self.probe_inputs = probe_inputs
        self.layer_names = layer_names
        self.every_n_epochs = every_n_epochs
        self.max_examples = max_examples
        self.max_windows = max_windows
        self.average_heads = average_heads
        self.normalize = normalize
        self.colormap = colormap
        self.cell_size = cell_size
        self._probe = probe
        self._batch_size = batch_size
        self._resolved = None  # (model, {name: layer}) once resolved
        self._writer = None

    def _resolve_layers(self):
        """`{name: (tag name, attention layer)}` for `layer_names` in the current model."""
        if self._resolved is not None and self._resolved[0] is self.model:
            return self._resolved[1]
        entries = list(iter_layers(self.model))
        try:
            resolved = self._match(entries)
        except ValueError:
            if all(layer.built for _, layer in entries):
                raise
            # Sublayers created in `build` (e.g. a subclassed model's blocks) exist once the
            # model has run: run it, then look again.
            self.model(self._probe, training=False)
            resolved = self._match(list(iter_layers(self.model)))
        self._resolved = (self.model, resolved)
        return resolved

    def _match(self, entries):
        # Each layer's place spelled two ways: its stable path, and its Keras names joined
        # with "/" (which may hold automatic numbers; accepted as before, never in tags).
        name_paths = {}
        for path, layer in entries:
            parent = path.rpartition("/")[0]
            name_paths[path] = f"{name_paths[parent]}/{layer.name}" if parent else layer.name
        attention = [(path, layer) for path, layer in entries if isinstance(layer, RECORDABLE)]
        resolved = {}
        for name in self.layer_names:
            key = name.strip("/")

            def ends_with_key(spelling, key=key):
                return spelling == key or spelling.endswith("/" + key)

            matches = [path for path, _ in entries if ends_with_key(path)] or [
                path for path, _ in entries if ends_with_key(name_paths[path])
            ]
            found = {}  # id -> (path, layer): the attention layers at or under a match
            for path in matches:
                for inner_path, inner in attention:
                    if inner_path == path or inner_path.startswith(path + "/"):
                        found.setdefault(id(inner), (inner_path, inner))
            if len(found) != 1:
                if not matches:
                    problem = "names no layer of the model"
                elif not found:
                    problem = "names a layer that is not and holds no attention layer"
                else:
                    problem = (
                        "is ambiguous: it matches the attention layers "
                        f"{sorted(path for path, _ in found.values())}; give a longer path"
                    )
                raise ValueError(
                    f"`layer_names` entry {name!r} {problem}. Attention layers of model "
                    f"'{self.model.name}' (paths; any trailing part unique in the model "
                    f"works): {[path for path, _ in attention]}. "
                    f"Received: layer_names={self.layer_names!r}"
                )
            # The tag: as many trailing segments of the matched layer's path as `name` has.
            tag_name = "/".join(matches[0].split("/")[-len(key.split("/")) :])
            resolved[name] = (tag_name, next(iter(found.values()))[1])
        return resolved

    def attention_maps(self):
        """Run the probe batch; return `{name: float32 array (batch, heads, T, S)}`.

        `batch` is the probe batch, or `batch_size * num_windows` for windowed attention;
        `heads` is 1 for `BahdanauAttention` / `LuongAttention`. The calls of one forward
        pass (the steps of a recurrent decoder) are concatenated along the query axis.
        """
        resolved = {name: layer for name, (_, layer) in self._resolve_layers().items()}
        layers = list({id(layer): layer for layer in resolved.values()}.values())
        with record_attention_scores(layers) as recordings:
            self.model(self._probe, training=False)
        by_layer = {id(layer): calls for layer, calls in zip(layers, recordings)}
        maps = {}
        for name, layer in resolved.items():
            calls = [
                np.asarray(x, "float32")[:, None] if np.ndim(x) == 3 else np.asarray(x, "float32")
                for x in by_layer[id(layer)]
            ]  # each (B, N, T_call, S)
            if not calls:
                warnings.warn(
                    f"AttentionMapLogger: attention layer '{layer.name}' ({name!r}) was not "
                    "called on the probe inputs; nothing to draw for it.",
                    stacklevel=2,
                )
                continue
            if any(
                x.shape[:2] + x.shape[3:] != calls[0].shape[:2] + calls[0].shape[3:] for x in calls
            ):
                warnings.warn(
                    f"AttentionMapLogger: attention layer '{layer.name}' ({name!r}) was "
                    "called several times on different shapes in one forward pass; drawing "
                    f"its first call only. Shapes: {[x.shape for x in calls]}",
                    stacklevel=2,
                )
                calls = calls[:1]
            maps[name] = np.concatenate(calls, axis=2)  # (B, N, T, S)
        return maps

    def attention_images(self):
        """`{tag: uint8 RGB images (num_images, H, W, 3)}` as `log_attention_maps` writes
        them; one image per head, or a single one when `average_heads=True`."""
        tag_names = {name: tag_name for name, (tag_name, _) in self._resolve_layers().items()}
        images = {}
        for name, maps in self.attention_maps().items():
            num_heads = maps.shape[1]
            if self.average_heads:
                maps = maps.mean(axis=1, keepdims=True)  # (B, 1, T, S)
                titles = [f"mean of {num_heads} heads" if num_heads > 1 else None]
            else:
                titles = [f"head {head}" for head in range(num_heads)]
            if maps.shape[0] != self._batch_size and maps.shape[0] % self._batch_size == 0:
                # Windows of window_partition, image-major: the first ones are example 0's.
                count = min(self.max_windows, maps.shape[0] // self._batch_size)
                label = "window"
            else:
                count = min(self.max_examples, maps.shape[0])
                label = "example"
            for index in range(count):
                images[f"attention/{tag_names[name]}/{label}_{index}"] = np.stack(
                    [
                        render_attention_map(
                            head, self.cell_size, self.colormap, self.normalize, title
                        )
                        for head, title in zip(maps[index], titles)
                    ]
                )  # (N or 1, H, W, 3)
        return images

    def log_attention_maps(self, step):
        """Run the probe batch and write its heatmaps at `step`."""
        import tensorflow as tf

        images = self.attention_images()
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(os.fspath(self.log_dir), "attention")
            )
        with self._writer.as_default():
            for tag, data in images.items():
                tf.summary.image(tag, data, step=step, max_outputs=len(data))
        self._writer.flush()

    def get_config(self):
        # Registration needs a config; `probe_inputs` (arrays) is left out, so this describes
        # the callback rather than rebuilding it, as callbacks are never saved in models.
        return {
            "log_dir": os.fspath(self.log_dir),
            "layer_names": list(self.layer_names),
            "every_n_epochs": self.every_n_epochs,
            "max_examples": self.max_examples,
            "max_windows": self.max_windows,
            "average_heads": self.average_heads,
            "normalize": self.normalize,
            "colormap": self.colormap,
            "cell_size": self.cell_size,
        }

    def on_train_begin(self, logs=None):
        self._resolve_layers()  # Unknown names fail before the first epoch.

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self.log_attention_maps(step=epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _validate_colormap(colormap):
    if not isinstance(colormap, str):
        raise TypeError(
            f"`colormap` must be a str. Received: colormap={colormap!r} of type "
            f"{type(colormap).__name__}"
        )
    import matplotlib

    if colormap not in matplotlib.colormaps:
        raise ValueError(
            "`colormap` must be the name of a matplotlib colormap (e.g. 'gray', 'viridis', "
            f"'magma'). Received: colormap={colormap!r}"
        )
