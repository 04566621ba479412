"""Gradient norms per layer and per time step of a recurrent hidden state, for TensorBoard.

Letter legend for shape comments: B batch, T time steps, O cell output size.

Writes with `tf.summary`: this is one of the few modules whose job is TensorBoard logging.
The gradients are taken on any backend (`hidden_state_gradients._loss_gradients`);
TensorFlow is imported where the logs are written, not with the module, so that
`import keras_seq` works without it.
"""

import os

import keras
import numpy as np

from keras_seq.api import keras_seq_export
from keras_seq.callbacks.figure_image import axes_at
from keras_seq.callbacks.figure_image import figure_to_image
from keras_seq.callbacks.figure_image import new_figure
from keras_seq.callbacks.hidden_state_gradients import _check_names
from keras_seq.callbacks.hidden_state_gradients import _check_probe_batch
from keras_seq.callbacks.hidden_state_gradients import _hidden_state_gradients
from keras_seq.callbacks.hidden_state_gradients import _loss_gradients
from keras_seq.callbacks.hidden_state_gradients import _preserved_rnn_states
from keras_seq.callbacks.hidden_state_gradients import _resolve_layers
from keras_seq.callbacks.hidden_state_gradients import _rnn_layers
from keras_seq.utils.layer_walk import iter_layers
from keras_seq.utils.validation import validate_positive_int

# Size of the per-time-step line chart written as an image summary.
IMAGE_HEIGHT = 240
IMAGE_WIDTH = 320
# Subdirectory of `log_dir` that receives the summaries, beside Keras' "train" / "validation".
SUMMARY_SUBDIR = "gradients"

# The chart's plot area: margins in pixels (left, top, right, bottom) around it.
_PLOT_MARGINS = (56, 10, 12, 38)
_LINE_COLOR = "tab:blue"
_ZERO_COLOR = "tab:red"
_GRID_COLOR = "0.88"
_FONT_SIZE = 8  # points
_MAX_MARKERS = 64


@keras_seq_export
class GradientNormLogger(keras.callbacks.Callback):
    """Logs gradient norms per layer and dL/dh_t per time step of RNNs to TensorBoard.

    `keras.callbacks.TensorBoard` logs histograms of the weights, not gradients; this
    callback shows where gradients vanish or explode. After every `every_n_epochs`-th epoch
    it differentiates, eagerly on the fixed probe batch, the loss that training minimises
    (`model.compute_loss(..., training=False)`: compiled loss plus regularization,
    unscaled) with the model in inference mode (`training=False`, so that the curves change
    between epochs only because the weights do), and writes, with the epoch as step:

    - scalar `gradient_norm/<layer path>`: the L2 norm of the gradients of the layer's
      trainable weights; by default one per layer that holds weights itself (the
      innermost layer holding each weight, e.g. `rnn/elman_cell` for an `RNN`'s cell; a
      model's own weights under its class name), with `layer_names` one per named layer,
      sublayers included; and `gradient_norm/global` over all weights.
    - per chosen `keras.layers.RNN`, image `hidden_state_gradient/<layer path>`: a 240 x 320
      (`IMAGE_HEIGHT` x `IMAGE_WIDTH`) RGB line chart drawn with matplotlib (its own Agg
      canvas, no pyplot state) of the batch mean of ||dL/dh_t||_2 against t, log-scale y
      axis over whole powers of ten, axis labels and a grid (zeros and non-finite values as
      triangles on the bottom edge); and tensor `hidden_state_gradient_values/<layer
      path>`, the same values as a float32 vector `(sequence_length,)` (`tf.summary.write`)
      to read back exactly.

    A layer path is the layer's place in the model as `keras_seq.utils.iter_layers` spells
    it: names joined by "/" from the model down, the model's own name left out, and Keras'
    automatic names (`elman_cell_3`) numbered among their siblings instead (`elman_cell`),
    so the tags are the same in every run and however many models the process built.

    dL/dh_t is the total derivative, as defined in `hidden_state_gradient_norms` (same
    module), which computes one curve without TensorBoard. Summaries go to
    `os.path.join(log_dir, "gradients")`, beside `keras.callbacks.TensorBoard`'s runs; read
    back with TensorBoard's `EventAccumulator`, scalars and images are under `tensors`.
    Cost per logged epoch: two eager forward and backward passes on the probe batch.

    Args:
        log_dir: str or path. Directory of the TensorBoard logs.
        x: the model's inputs for the probe batch, as for `model.fit`. Keep it small: it
            runs eagerly.
        y: the probe batch's targets; `None` only for a loss that needs none.
        sample_weight: optional sample weights of the probe batch. Defaults to `None`.
        every_n_epochs: int. Log after epochs `every_n_epochs - 1, 2 * every_n_epochs - 1,
            ...` (0-based), so `epochs // every_n_epochs` times per `fit`. Defaults to `1`.
        layer_names: list of str or `None`. Layers (layer path as above, or Keras `name`
            or `path`, found recursively) whose gradient norms to log; `None` (the
            default) logs every weight-owning layer. An empty list logs the global norm
            only.
        recurrent_layer_names: list of str or `None`. `keras.layers.RNN` layers (layer
            path, or Keras `name` or `path`, found recursively: in `Bidirectional`,
            keras_seq wrappers, sub-models) whose dL/dh_t to log, each run once by the
            forward pass; `None` (the default) logs every RNN that the forward pass runs.
            An empty list logs none.

    Raises:
        ValueError: when training starts, for a name that matches no suitable layer (the
            message lists them) or several.

    Example:
    ```python
    import tempfile

    model = keras.Sequential(
        [
            keras.Input((10, 3)),
            keras.layers.RNN(keras_seq.layers.ElmanCell(8), name="rnn"),
            keras.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    x, y = np.random.randn(16, 10, 3), np.random.randn(16, 1)
    logger = keras_seq.callbacks.GradientNormLogger(tempfile.mkdtemp(), x[:4], y[:4])
    model.fit(x, y, epochs=2, callbacks=[logger], verbose=0)
    # Tags: gradient_norm/{global, rnn/elman_cell, dense}, hidden_state_gradient/rnn
    # (image), hidden_state_gradient_values/rnn (10,)
    ```
    """

    def __init__(
        self,
        log_dir,
        x,
        y,
        sample_weight=None,
        every_n_epochs=1,
        layer_names=None,
        recurrent_layer_names=None,
    ):
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(
                "`log_dir` must be a str or path. "
                f"Received: log_dir={log_dir!r} of type {type(log_dir).__name__}"
            )
        if not os.fspath(log_dir):
            raise ValueError(f"`log_dir` must not be empty. Received: log_dir={log_dir!r}")
        _check_probe_batch(x, y, sample_weight)
        validate_positive_int("every_n_epochs", every_n_epochs)
        _check_names("layer_names", layer_names)
        _check_names("recurrent_layer_names", recurrent_layer_names)
        super().__init__()
        self.log_dir = log_dir
        self.x = x
        self.y = y
        self.sample_weight = sample_weight
        self.every_n_epochs = every_n_epochs
        self.layer_names = layer_names
        self.recurrent_layer_names = recurrent_layer_names
        self._writer = None

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        model = self.model
        if not model.built:
            with _preserved_rnn_states(model):
                model(self.x, training=False)
        self._weight_groups = self._resolve_weight_groups()
        self._recurrent_layers = self._resolve_recurrent_layers()
        self._writer = tf.summary.create_file_writer(
            os.path.join(os.fspath(self.log_dir), SUMMARY_SUBDIR)
        )

    def _resolve_weight_groups(self):
        """`{tag suffix: [variables]}` in model order."""
        model = self.model
        if self.layer_names is None:
            return _weight_groups_by_owner(model)
        entries = _resolve_layers(model, self.layer_names, "layer_names", recurrent=False)
        return {path: list(layer.trainable_weights) for path, layer in entries}

    def _resolve_recurrent_layers(self):
        """`(path, layer)` of the RNNs to log."""
        model = self.model
        if self.recurrent_layer_names is None:
            candidates = _rnn_layers(model)
        else:
            candidates = _resolve_layers(
                model, self.recurrent_layer_names, "recurrent_layer_names", recurrent=True
            )
        if not candidates:
            return []
        # One probe pass finds the layers whose loops the forward pass runs (a
        # `TruncatedBPTT` holds a wrapped RNN whose loop never runs) and checks they run once.
        requested = None
        if self.recurrent_layer_names is not None:
            requested = ("recurrent_layer_names", self.recurrent_layer_names)
        x, y, sample_weight = self.x, self.y, self.sample_weight
        ran = _hidden_state_gradients(model, x, y, sample_weight, candidates, requested)
        return [(path, layer) for path, layer in candidates if id(layer) in ran]

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if (epoch + 1) % self.every_n_epochs:
            return
        model, x, y, sample_weight = self.model, self.x, self.y, self.sample_weight
        layer_norms = _weight_gradient_norms(model, x, y, sample_weight, self._weight_groups)
        hidden_norms = {}
        if self._recurrent_layers:
            hidden_norms = _hidden_state_gradients(
                model, x, y, sample_weight, self._recurrent_layers
            )
        with self._writer.as_default():
            for name, value in layer_norms.items():
                tf.summary.scalar(f"gradient_norm/{name}", value, step=epoch)
            for path, layer in self._recurrent_layers:
                curve = hidden_norms[id(layer)].mean(axis=0)  # (T,)
                tf.summary.image(
                    f"hidden_state_gradient/{path}",
                    _render_curve(curve)[None],
                    step=epoch,
                    description="Batch mean of ||dL/dh_t|| (log scale) against step t.",
                )
                tf.summary.write(
                    f"hidden_state_gradient_values/{path}",
                    tf.constant(curve, "float32"),
                    step=epoch,
                )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self):
        # Arrays in Keras' JSON form ({"class_name": "__numpy__", ...}): dtype kept.
        serialize = keras.saving.serialize_keras_object
        return {
            "log_dir": os.fspath(self.log_dir),
            "x": serialize(self.x),
            "y": serialize(self.y),
            "sample_weight": serialize(self.sample_weight),
            "every_n_epochs": self.every_n_epochs,
            "layer_names": self.layer_names,
            "recurrent_layer_names": self.recurrent_layer_names,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("x", "y", "sample_weight"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _render_curve(values, height=IMAGE_HEIGHT, width=IMAGE_WIDTH):
    """`(T,)` -> uint8 RGB `(height, width, 3)`: a matplotlib line chart of the values
    against t, log-scale y axis with labels and a grid; zeros and non-finite values (which
    a log scale cannot show) as triangles on the bottom edge."""
    from matplotlib.ticker import MaxNLocator

    values = np.asarray(values, np.float64).reshape(-1)  # (T,)
    steps = np.arange(len(values))
    positive = np.isfinite(values) & (values > 0)
    figure = new_figure(width, height)
    left, top, right, bottom = _PLOT_MARGINS
    axes = axes_at(figure, left, top, width - left - right, height - top - bottom)
    axes.set_yscale("log")
    marker = "o" if len(values) <= _MAX_MARKERS else None  # dots while they stay apart
    axes.plot(
        steps, np.where(positive, values, np.nan), color=_LINE_COLOR, marker=marker, markersize=3
    )
    if not positive.all():
        axes.plot(
            steps[~positive],
            np.zeros(np.sum(~positive)),
            transform=axes.get_xaxis_transform(),  # x in steps, y in axes fractions
            color=_ZERO_COLOR,
            marker="v",
            linestyle="none",
            clip_on=False,
        )
    # Whole decades, at least one: a grid line at each power of ten, no minor tick labels.
    if positive.any():
        low = np.floor(np.log10(values[positive].min()))
        high = max(np.ceil(np.log10(values[positive].max())), low + 1)
    else:
        low, high = -1.0, 1.0
    axes.set_ylim(10.0**low, 10.0**high)
    axes.set_xlim(-0.5, max(len(values), 1) - 0.5)
    axes.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, min_n_ticks=1))
    axes.grid(True, which="major", color=_GRID_COLOR, linewidth=0.8)
    axes.tick_params(which="both", labelsize=_FONT_SIZE)
    axes.set_xlabel("time step t", fontsize=_FONT_SIZE)
    axes.set_ylabel(r"$\|\partial L / \partial h_t\|$, batch mean", fontsize=_FONT_SIZE)
    return figure_to_image(figure)


def _weight_groups_by_owner(model):
    """`{path: [variables]}`: each trainable variable of `model` under the path of the
    innermost layer holding it (the model's own under its class name), in model order."""
    owners = {}
    for path, layer in reversed(list(iter_layers(model))):  # sublayers before their owners
        for variable in layer.trainable_weights:
            owners.setdefault(id(variable), path)
    groups = {}
    for variable in model.trainable_variables:
        owner = owners.get(id(variable), type(model).__name__)
        groups.setdefault(owner, []).append(variable)
    return groups


def _weight_gradient_norms(model, x, y, sample_weight, groups):
    """`{"global": norm, **{tag: norm}}`: L2 norms of the gradients of weight groups."""
    variables = model.trainable_variables
    _, gradients = _loss_gradients(model, x, y, sample_weight, variables=variables)
    squares = {
        id(variable): float(np.sum(np.square(gradient)))
        for variable, gradient in zip(variables, gradients)
    }
    norms = {"global": float(np.sqrt(sum(squares.values())))}
    for name, group in groups.items():
        norms[name] = float(np.sqrt(sum(squares.get(id(v), 0.0) for v in group)))
    return norms
