"""The base of the image captioners: a caption decoder (the head) on an image backbone.

Letter legend for shape comments: B batch, H x W feature grid, R regions (H * W for a feature
map), C backbone channels, D `hidden_dim`, T caption length, V vocabulary size.
"""

import keras
from keras import ops

from keras_seq.models.captioning.captioning_cnn_backbone import CaptioningCNNBackbone
from keras_seq.models.generative_model import GenerativeTask
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate

BACKBONE_INTERFACE = (
    "a keras.Model with one image input (batch_size, height, width, channels) of known size"
)


def _is_image_backbone(model):
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return False
    return isinstance(inputs, (list, tuple)) and len(inputs) == 1 and len(inputs[0].shape) == 4


def _region_layout(features):
    """`(grid_shape, num_regions)` of the backbone's symbolic output: the grid `(H, W)` of a
    feature map `(B, H, W, C)`, or `None` for region tokens `(B, R, C)`."""
    if (
        not isinstance(features, keras.KerasTensor)
        or len(features.shape) not in (3, 4)
        or None in features.shape[1:]
    ):
        shape = tuple(features.shape) if isinstance(features, keras.KerasTensor) else features
        raise ValueError(
            "`backbone` must map images to a feature map (batch_size, height, width, channels) "
            "or region tokens (batch_size, regions, channels), of known size. Received: a "
            f"backbone whose output is {shape!r}"
        )
    if len(features.shape) == 4:
        return tuple(features.shape[1:3]), features.shape[1] * features.shape[2]
    return None, features.shape[1]


def validate_start_token_id(start_token_id, vocabulary_size):
    if (
        isinstance(start_token_id, bool)
        or not isinstance(start_token_id, int)
        or not 0 < start_token_id < vocabulary_size
    ):
        raise ValueError(
            "`start_token_id` must be a token id other than the padding id 0, in "
            f"[1, {vocabulary_size}). Received: start_token_id={start_token_id!r}"
        )


class ImageCaptioningTask(GenerativeTask):
    """Base of the image captioners (not exported): a caption decoder on an image backbone.

    As in keras_hub's captioning and vision-language tasks, the head that this task puts on
    the backbone is a whole decoder: the backbone computes image features once, and the task
    projects them to `hidden_dim` (`region_projection`) and decodes the caption word by word,
    attending over the regions. Generation (`generate()`, `generate_with_attention()`) runs
    the backbone once per batch and steps the decoder over its caches.

    A subclass stores its decoder arguments on `self` and calls this constructor, which
    validates the shared arguments, stores them, and builds the graph through four methods
    the subclass implements with its layers: `_build_decoder(num_regions, dtype)` (create
    the decoder's layers), `_decode(memory, target_in, return_attention, training)` (the
    teacher-forced pass: logits `(B, T, V)` and, if asked, the attention over the regions
    `(B, T, R)`), `_prefill_decoder(memory, max_new_tokens)` (the first decoding step:
    logits `(B, V)` of the first token and the cache) and `call_with_cache(token_ids, cache,
    index)`. `_regions(features)` may be extended (the transformer adds region positions).

    Inputs are `{"images", "target_in"}`: `target_in` is the caption shifted right behind
    `start_token_id`, with 0 for padding. Token id 0 is padding.
    """

    backbone_cls = CaptioningCNNBackbone

    def __init__(self, backbone, vocabulary_size, hidden_dim, dropout, start_token_id, **kwargs):
        backbone = self.resolve_backbone(backbone, _is_image_backbone, BACKBONE_INTERFACE)
        validate_positive_int("vocabulary_size", vocabulary_size)
        validate_positive_int("hidden_dim", hidden_dim)
        validate_rate("dropout", dropout)
        validate_start_token_id(start_token_id, vocabulary_size)
        kwargs.setdefault("dtype", backbone.dtype_policy)
        dtype = kwargs["dtype"]
        check_model_size(
            type(self).__name__,
            {"vocabulary_size": vocabulary_size, "hidden_dim": hidden_dim},
            [(2, "vocabulary_size", "hidden_dim"), (4, "hidden_dim", "hidden_dim")],
            dtype=dtype,
        )
        # Tracked first, so that its weights come first in `weights` (as in keras_seq 0.1).
        self.backbone = backbone
        # Read by `_build_decoder` (stored before the layers are made, with the subclass's).
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.start_token_id = start_token_id

        # === Layers ===
        image_input = backbone.inputs[0]
        images = keras.Input(
            shape=tuple(image_input.shape[1:]), dtype=image_input.dtype, name="images"
        )
        features = backbone(images)  # (B, H, W, C) or (B, R, C)
        self._grid_shape, num_regions = _region_layout(features)
        self.region_projection = keras.layers.Dense(
            hidden_dim, dtype=dtype, name="region_projection"
        )
        self.embedding_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embedding_dropout"
        )
        self._build_decoder(num_regions, dtype)

        # === Functional graph ===
        target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
        memory = self._regions(features)  # (B, R, D)
        logits, _ = self._decode(memory, target_in)  # (B, T, V)
        super().__init__(
            inputs={"images": images, "target_in": target_in}, outputs=logits, **kwargs
        )

    # === The computation, shared by the functional graph and the generation protocol ===

    def _build_decoder(self, num_regions, dtype):
        raise NotImplementedError(f"{type(self).__name__} does not implement `_build_decoder`.")

    def _decode(self, memory, target_in, return_attention=False, training=None):
        raise NotImplementedError(f"{type(self).__name__} does not implement `_decode`.")

    def _prefill_decoder(self, memory, max_new_tokens):
        raise NotImplementedError(f"{type(self).__name__} does not implement `_prefill_decoder`.")

    def _regions(self, features):
        """Backbone features `(B, H, W, C)` or `(B, R, C)` -> projected regions `(B, R, D)`."""
        if len(features.shape) == 4:
            height, width = self._grid_shape
            features = ops.reshape(features, (-1, height * width, features.shape[-1]))  # (B, R, C)
        return self.region_projection(features)  # (B, R, D)

    def _logits(self, x):
        # Keras' Embedding does not autocast: inside the autocast scope of a mixed-precision
        # model it reads its float32 table, so the reverse projection would return float32
        # there and the compute dtype elsewhere. Logits follow the hidden states' dtype.
        return ops.cast(self.token_embedding(x, reverse=True), x.dtype)  # (..., V)

    # === Generation protocol ===

    def _images_of(self, inputs):
        if isinstance(inputs, dict):
            if "images" not in inputs:
                raise ValueError(
                    f"`inputs` of {type(self).__name__}.generate must be the images or a dict "
                    f"with an 'images' entry. Received keys: {sorted(inputs)}"
                )
            inputs = inputs["images"]
        return ops.cast(inputs, "float32")  # (B, H_image, W_image, channels)

    def _memory_of(self, inputs):
        return self._regions(self.backbone(self._images_of(inputs), training=False))  # (B, R, D)

    def _input_vocabulary_size(self):
        return None  # `generate` takes images, not token ids

    def prefill(self, inputs, max_new_tokens):
        memory = self._memory_of(inputs)
        logits, cache = self._prefill_decoder(memory, max_new_tokens)
        return ops.zeros((ops.shape(memory)[0], 0), dtype="int32"), logits, cache

    # === Attention maps ===

    def attention_maps(self, inputs):
        """The decoder's attention over the regions at each step of a teacher-forced pass.

        `inputs` is the dict of a call (`"images"`, `"target_in"`). Returns float
        `(batch_size, caption_length, grid_height, grid_width)` for a backbone that returns a
        feature map, `(batch_size, caption_length, regions)` for one that returns region
        tokens: map `t` is where the decoder looked when predicting the token after
        `target_in[:, :t + 1]`; zero where `target_in` is padding.
        """
        memory = self._memory_of(inputs)
        target_in = ops.cast(inputs["target_in"], "int32")
        _, attention = self._decode(memory, target_in, return_attention=True, training=False)
        if self._grid_shape is None:
            return attention  # (B, T, R)
        batch_size, length = ops.shape(target_in)[0], ops.shape(target_in)[1]
        return ops.reshape(attention, (batch_size, length) + self._grid_shape)  # (B, T, H, W)

    def generate_with_attention(self, inputs, max_new_tokens, **kwargs):
        """`generate()`, then the attention map of every generated token.

        Args:
            inputs: the images `(batch_size, height, width, channels)` (or a dict with
                `"images"`).
            max_new_tokens: int. Number of tokens to generate.
            **kwargs: the other arguments of `generate()` (`strategy`, `num_beams`,
                `stop_token_id`, `return_scores`, ...).

        Returns:
            `(token_ids, attention)`, or `(token_ids, scores, attention)` with
            `return_scores=True`: int32 token ids `(batch_size, max_new_tokens)` and float
            attention `(batch_size, max_new_tokens, grid_height, grid_width)` (or
            `(batch_size, max_new_tokens, regions)` for a token backbone), where
            `attention[:, t]` is the map used to predict `token_ids[:, t]`. Each map sums to
            one over the regions up to and including the stop token; the maps of the padding
            after it are zero. Computed by one teacher-forced pass over the tokens, so it
            equals the attention of the decoding steps themselves, unless the model
            generated the padding id 0 before the stop token (a trained model does not: its
            targets are never 0): that step's input then counts as padding.
        """
        outputs = self.generate(inputs, max_new_tokens, **kwargs)
        tokens = outputs[0] if isinstance(outputs, tuple) else outputs
        batch_size = ops.shape(tokens)[0]
        start = ops.full((batch_size, 1), self.start_token_id, dtype="int32")
        target_in = ops.concatenate([start, tokens[:, :-1]], axis=1)  # (B, T)
        stop_token_id = kwargs.get("stop_token_id")
        if stop_token_id is not None:
            # Steps after the stop token produced padding: feed padding there, so that their
            # maps are zero.
            is_stop = ops.cast(ops.equal(tokens, stop_token_id), "int32")  # (B, T)
            stopped_before = (ops.cumsum(is_stop, axis=1) - is_stop) > 0
            target_in = ops.where(stopped_before, 0, target_in)
        if isinstance(inputs, dict):
            inputs = inputs["images"]
        attention = self.attention_maps({"images": inputs, "target_in": target_in})
        if isinstance(outputs, tuple):
            return outputs[0], outputs[1], attention
        return tokens, attention

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "hidden_dim": self.hidden_dim,
            "dropout": self.dropout,
            "start_token_id": self.start_token_id,
        }
