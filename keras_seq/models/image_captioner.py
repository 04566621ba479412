"""ImageCaptioner: the 0.1 image captioner, now `RNNImageCaptioner` or `TransformerImageCaptioner`.

One deprecated class stands for both tasks (its `decoder` argument picks one), so it cannot be
a subclass of either: it subclasses their common base, `ImageCaptioningTask`, and delegates
the decoder's methods to the task that `decoder` names, which run on this model (it holds the
same layers, made by the same methods).
"""

import keras

from keras_seq.api import keras_seq_export
from keras_seq.models.backbone import Backbone
from keras_seq.models.captioning.captioning_cnn_backbone import DEFAULT_NUM_FILTERS
from keras_seq.models.captioning.captioning_cnn_backbone import convolution_layers
from keras_seq.models.captioning.image_captioning_task import ImageCaptioningTask
from keras_seq.models.captioning.image_captioning_task import validate_start_token_id
from keras_seq.models.captioning.rnn_image_captioner import RNNImageCaptioner
from keras_seq.models.captioning.rnn_image_captioner import validate_cell
from keras_seq.models.captioning.transformer_image_captioner import TransformerImageCaptioner
from keras_seq.models.deprecation import LegacyWeightLayout
from keras_seq.models.deprecation import warn_deprecated
from keras_seq.models.functional_model import FunctionalModel
from keras_seq.models.image_captioner_presets import IMAGE_CAPTIONER_PRESETS
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_image_shape
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate

# `decoder` -> the task whose decoder the model is.
DECODERS = {"rnn": RNNImageCaptioner, "transformer": TransformerImageCaptioner}


def _default_backbone(image_shape, dtype):
    """`CaptioningCNNBackbone`'s convolutions in the 0.1 container, a `keras.Sequential` named
    `image_encoder`, whose weights 0.1 files hold at `layers/sequential/...`."""
    layers = [keras.Input(shape=tuple(image_shape), name="images")]
    layers += convolution_layers(DEFAULT_NUM_FILTERS, dtype=dtype)
    return keras.Sequential(layers, name="image_encoder")


def _make_backbone(backbone, backbone_kwargs, image_shape, dtype):
    """Resolve `backbone` (None, a keras.applications name, a config or a model)."""
    if backbone_kwargs is not None:
        if not isinstance(backbone, str):
            raise ValueError(
                "`backbone_kwargs` only applies when `backbone` is the name of a "
                f"keras.applications model. Received: backbone_kwargs={backbone_kwargs!r}, "
                f"backbone={backbone!r}"
            )
        if not isinstance(backbone_kwargs, dict):
            raise TypeError(
                "`backbone_kwargs` must be a dict of keyword arguments or None. Received: "
                f"backbone_kwargs={backbone_kwargs!r}"
            )
    if backbone is None:
        return _default_backbone(image_shape, dtype)
    if isinstance(backbone, str):
        constructor = getattr(keras.applications, backbone, None)
        if not callable(constructor) or not backbone[:1].isupper():
            raise ValueError(
                "`backbone` must be None, the name of a keras.applications model (e.g. "
                "'MobileNetV2', 'ResNet50'), a Keras model or its config. Received: "
                f"backbone={backbone!r}"
            )
        try:
            return constructor(
                include_top=False,
                weights=None,
                input_shape=tuple(image_shape),
                **(backbone_kwargs or {}),
            )
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"Could not build keras.applications.{backbone} (include_top=False, "
                f"weights=None) for image_shape={tuple(image_shape)} with backbone_kwargs="
                f"{backbone_kwargs!r}: {error}"
            ) from None
    if isinstance(backbone, dict):
        backbone = keras.saving.deserialize_keras_object(backbone)
    if not isinstance(backbone, keras.layers.Layer):
        raise TypeError(
            "`backbone` must be None, the name of a keras.applications model, a Keras model "
            f"or its config. Received: backbone={backbone!r}"
        )
    return backbone


@keras_seq_export
class ImageCaptioner(LegacyWeightLayout, ImageCaptioningTask):
    """Deprecated: use `RNNImageCaptioner` or `TransformerImageCaptioner` on an image backbone.

    The 0.1 image captioner, kept so that code and `.keras` files written for keras_seq 0.1
    keep working: it takes the 0.1 arguments, builds the image backbone itself, and computes
    what `RNNImageCaptioner` (`decoder="rnn"`) or `TransformerImageCaptioner`
    (`decoder="transformer"`) computes on that backbone (same outputs, `generate()`,
    `attention_maps()`, `generate_with_attention()`), saving its weights at their 0.1 paths.
    Being one class for both, it is an instance of their common base, not of either; the
    default backbone is `CaptioningCNNBackbone`'s convolutions in a `keras.Sequential` (the
    0.1 container; `backbone.get_weights()` fits a `CaptioningCNNBackbone` of the same image
    shape). Constructing one emits a `DeprecationWarning`.

    Args:
        vocabulary_size: int. Number of token ids, padding id 0 included.
        image_shape: tuple of three ints `(height, width, channels)`.
        backbone: `None` for the default CNN (`CaptioningCNNBackbone`'s three convolutions);
            the name of a `keras.applications` model (e.g. `"MobileNetV2"`), built with
            `include_top=False` and `weights=None` (it follows the global dtype policy,
            not `dtype`); or a Keras model (or its config) mapping images to a feature map.
            Defaults to `None`.
        backbone_kwargs: dict or `None`. Extra keyword arguments of a named
            `keras.applications` model, e.g. `{"alpha": 0.35}`. Defaults to `None`.
        decoder: `"rnn"` or `"transformer"`. Defaults to `"rnn"`.
        hidden_dim, cell, dropout, start_token_id: as `RNNImageCaptioner` (`cell` for
            `"rnn"` only).
        num_layers, num_heads, intermediate_dim: as `TransformerImageCaptioner`
            (`"transformer"` only).
        **kwargs: base model arguments (`name`, `dtype`).
    """

    presets = IMAGE_CAPTIONER_PRESETS

    def __init__(
        self,
        vocabulary_size,
        image_shape,
        backbone=None,
        backbone_kwargs=None,
        decoder="rnn",
        hidden_dim=256,
        num_layers=2,
        num_heads=4,
        intermediate_dim=512,
        cell="lstm",
        dropout=0.1,
        start_token_id=1,
        **kwargs,
    ):
        warn_deprecated(
            "ImageCaptioner",
            "keras_seq.models.RNNImageCaptioner (decoder='rnn') or "
            "keras_seq.models.TransformerImageCaptioner (decoder='transformer') on an image "
            "backbone such as keras_seq.models.CaptioningCNNBackbone",
        )
        validate_positive_int("vocabulary_size", vocabulary_size)
        validate_image_shape(image_shape, allow_dynamic=False)
        validate_choice("decoder", decoder, sorted(DECODERS))
        for name, value in (
            ("hidden_dim", hidden_dim),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
        ):
            validate_positive_int(name, value)
        if decoder == "transformer":
            validate_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
        validate_cell(cell)
        validate_rate("dropout", dropout)
        validate_start_token_id(start_token_id, vocabulary_size)
        image_encoder = _make_backbone(backbone, backbone_kwargs, image_shape, kwargs.get("dtype"))
        # The 0.1 config holds the `backbone` argument (None or a name), or the model's config.
        self._backbone_is_model = isinstance(backbone, (dict, keras.layers.Layer))
        self._backbone_name = None if self._backbone_is_model else backbone

        # Read by the decoder's `_build_decoder` (the 0.1 arguments, stored as 0.1 did).
        self.image_shape = image_shape
        self.backbone_kwargs = backbone_kwargs
        self.decoder = decoder
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.cell = cell
        super().__init__(
            image_encoder, vocabulary_size, hidden_dim, dropout, start_token_id, **kwargs
        )
        self.use_legacy_layout()

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Build the 0.1 preset `preset` (`captioner_tiny`, `show_attend_tell`) with
        constructor `overrides` (random weights)."""
        return Backbone.from_preset.__func__(cls, preset, **overrides)

    @property
    def image_encoder(self):
        """The 0.1 name of `backbone`."""
        return self.backbone

    # === The decoder of `DECODERS[self.decoder]`, run on this model: the methods that
    # `ImageCaptioningTask` leaves to its subclasses, and the helpers they call ===

    def _build_decoder(self, num_regions, dtype):
        DECODERS[self.decoder]._build_decoder(self, num_regions, dtype)

    def _regions(self, features):
        return DECODERS[self.decoder]._regions(self, features)

    def _decode(self, memory, target_in, return_attention=False, training=None):
        return DECODERS[self.decoder]._decode(self, memory, target_in, return_attention, training)

    def _prefill_decoder(self, memory, max_new_tokens):
        return DECODERS[self.decoder]._prefill_decoder(self, memory, max_new_tokens)

    def call_with_cache(self, token_ids, cache, index):
        return DECODERS[self.decoder].call_with_cache(self, token_ids, cache, index)

    def _initial_states(self, memory):
        return RNNImageCaptioner._initial_states(self, memory)

    def _step(self, token_ids, cache):
        return RNNImageCaptioner._step(self, token_ids, cache)

    # === The 0.1 layout ===

    def legacy_layers(self):
        # The 0.1 model's `layers`: its functional order (the weights' paths follow the order
        # of the layers of each class).
        inputs = [self.input[name]._keras_history.operation for name in ("images", "target_in")]
        if self.decoder == "rnn":
            head = [
                self.region_projection,
                self.token_embedding,
                self.embedding_dropout,
                *self.initial_state_layers,
                self.attention_rnn,
                self.output_dropout,
            ]
        else:
            head = [
                self.token_and_position_embedding,
                self.region_projection,
                self.embedding_dropout,
                self.region_position_embedding,
                *self.decoder_layers,
                self.token_embedding,
            ]
        return [inputs[0], self.backbone, inputs[1], *head]

    def get_config(self):
        if self._backbone_is_model:
            backbone = keras.saving.serialize_keras_object(self.backbone)
        else:
            backbone = self._backbone_name
        return {
            **FunctionalModel.get_config(self),  # the base model arguments, no "backbone"
            "vocabulary_size": self.vocabulary_size,
            "image_shape": self.image_shape,
            "backbone": backbone,
            "backbone_kwargs": self.backbone_kwargs,
            "decoder": self.decoder,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "cell": self.cell,
            "dropout": self.dropout,
            "start_token_id": self.start_token_id,
        }
