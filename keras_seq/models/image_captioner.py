"""An image captioner: a CNN's grid of region features, attended by an RNN or transformer decoder.

Letter legend for shape comments: B batch, H x W feature grid, R = H * W regions, C backbone
channels, D `hidden_dim`, T caption length, N heads, V vocabulary size.
"""

import keras
import keras_hub
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.embeddings.position_embedding import PositionEmbedding
from keras_seq.layers.embeddings.token_and_position_embedding import TokenAndPositionEmbedding
from keras_seq.layers.recurrent.attention_cell import AttentionCell
from keras_seq.layers.recurrent.attention_rnn import AttentionRNN
from keras_seq.models.cached_decoder import decoder_stack_step
from keras_seq.models.cached_decoder import prefill_decoder_stack
from keras_seq.models.image_captioner_presets import IMAGE_CAPTIONER_PRESETS
from keras_seq.models.legacy_generative_model import GenerativeModel
from keras_seq.utils.validation import validate_choice
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate

DECODERS = ("rnn", "transformer")
# Channels of the default backbone's three stride-2 convolutions.
DEFAULT_BACKBONE_FILTERS = (32, 64, 128)


def _validate_image_shape(image_shape):
    if (
        not isinstance(image_shape, (tuple, list))
        or len(image_shape) != 3
        or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in image_shape)
    ):
        raise ValueError(
            "`image_shape` must be a tuple of three positive ints (height, width, channels). "
            f"Received: image_shape={image_shape!r}"
        )


def _default_backbone(image_shape, dtype):
    """Three 3x3 stride-2 convolutions with ReLU: a feature grid 1/8 of the image's size."""
    layers = [keras.Input(shape=tuple(image_shape), name="images")]
    for index, filters in enumerate(DEFAULT_BACKBONE_FILTERS):
        layers.append(
            keras.layers.Conv2D(
                filters,
                3,
                strides=2,
                padding="same",
                activation="relu",
                dtype=dtype,
                name=f"conv_{index}",
            )
        )
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
class ImageCaptioner(GenerativeModel):
    """Image captioning with visual attention: a CNN's regions, attended by a decoder.

    A convolutional `backbone` turns an image into a grid of feature vectors, one per
    region (the annotation vectors of Show, Attend and Tell); they are flattened to
    `(batch_size, regions, channels)` and projected to `hidden_dim` by `region_projection`.
    The decoder then writes the caption word by word, attending over the regions:

    - `decoder="rnn"` (Xu et al., 2015): an `AttentionRNN` of an `AttentionCell` wrapping
      `cell` with additive (Bahdanau) attention and input feeding; the cell's initial
      states are `tanh` dense layers of the mean region vector, as in the paper.
    - `decoder="transformer"`: `num_layers` post-norm `TransformerDecoder` blocks with
      causal self-attention and cross-attention over the regions, which get a learned
      position embedding (`region_position_embedding`) so that attention knows where each
      region lies; target tokens get sinusoidal positions.

    Both decoders project onto the vocabulary with the transposed token embedding (tied
    weights). Token id 0 is padding; `target_in` starts with `start_token_id`. Images are
    passed to the backbone as they are: apply a `keras.applications` model's
    `preprocess_input` yourself.

    Generation (`generate()`) runs the backbone once and caches the regions (and, for the
    transformer, each block's cross-attention keys and values). `generate_with_attention()`
    also returns where the model looked for each generated word: after decoding, one
    teacher-forced pass over the generated tokens gives the decoder's attention over the
    regions at each step: the RNN's alignment, or the transformer's last block's
    cross-attention averaged over heads. Each row sums to one over the regions for the
    generated tokens up to and including the stop token; later (padding) steps are zero.

    Args:
        vocabulary_size: int. Number of token ids, padding id 0 included.
        image_shape: tuple of three ints `(height, width, channels)`. The input image size,
            which fixes the region grid.
        backbone: the image encoder: `None` for a small default CNN (three 3x3 stride-2
            convolutions with 32, 64 and 128 filters and ReLU: regions of 8x8 pixels); the
            name of a `keras.applications` model (e.g. `"MobileNetV2"`), built with
            `include_top=False` and `weights=None` (no download; it follows the global
            dtype policy, not `dtype`); or a Keras model (or its config from
            `keras.saving.serialize_keras_object`) mapping `(batch_size, *image_shape)`
            images to a `(batch_size, height, width, channels)` feature map, saved with the
            captioner. Defaults to `None`.
        backbone_kwargs: dict or `None`. Extra keyword arguments of a named
            `keras.applications` model, e.g. `{"alpha": 0.35}` for MobileNetV2.
            Defaults to `None`.
        decoder: `"rnn"` or `"transformer"`. Defaults to `"rnn"`.
        hidden_dim: int. Width of the projected regions, the token embedding and the
            decoder (the RNN cell's units). Defaults to `256`.
        num_layers: int. Number of transformer decoder blocks (`"transformer"` only).
            Defaults to `2`.
        num_heads: int. Attention heads per block (`"transformer"` only); must divide
            `hidden_dim`. Defaults to `4`.
        intermediate_dim: int. Feed-forward width of each block (`"transformer"` only).
            Defaults to `512`.
        cell: str. The RNN decoder's recurrent cell (`"rnn"` only): `"lstm"`, `"gru"`,
            `"elman"` or a registered `"package>ClassName"` taking `units`.
            Defaults to `"lstm"`.
        dropout: float in [0, 1). Dropout on the word embeddings, and on the RNN outputs or
            each transformer block's residual branches. Defaults to `0.1`.
        start_token_id: int. The token that starts every caption; must not be 0.
            Defaults to `1`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: dict with `"images"`, float `(batch_size, height, width, channels)`, and
            `"target_in"`, int `(batch_size, caption_length)`: the caption shifted right
            (`start_token_id` first). 0 is padding.
        training: bool or `None`.

    Returns:
        Float logits `(batch_size, caption_length, vocabulary_size)`.

    Example:
    ```python
    model = keras_seq.models.ImageCaptioner(
        vocabulary_size=30, image_shape=(32, 32, 3), hidden_dim=32
    )
    images = np.random.rand(2, 32, 32, 3).astype("float32")
    logits = model({"images": images, "target_in": np.array([[1, 5, 7], [1, 4, 0]])})
    token_ids, attention = model.generate_with_attention(images, 5, stop_token_id=2)
    assert token_ids.shape == (2, 5) and attention.shape == (2, 5, 4, 4)
    ```

    References:
        - [Xu et al., 2015](https://arxiv.org/abs/1502.03044) (Show, Attend and Tell)
        - [Bahdanau et al., 2015](https://arxiv.org/abs/1409.0473)
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
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
        validate_positive_int("vocabulary_size", vocabulary_size)
        _validate_image_shape(image_shape)
        validate_choice("decoder", decoder, DECODERS)
        for name, value in (
            ("hidden_dim", hidden_dim),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
        ):
            validate_positive_int(name, value)
        if decoder == "transformer":
            validate_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
        if not isinstance(cell, str):
            raise TypeError(
                "`cell` must be the name of a recurrent cell (built with `units=hidden_dim`). "
                f"Received: cell={cell!r}"
            )
        validate_rate("dropout", dropout)
        if (
            isinstance(start_token_id, bool)
            or not isinstance(start_token_id, int)
            or not 0 < start_token_id < vocabulary_size
        ):
            raise ValueError(
                "`start_token_id` must be a token id other than the padding id 0, in "
                f"[1, {vocabulary_size}). Received: start_token_id={start_token_id!r}"
            )
        dtype = kwargs.get("dtype")

        # === Layers ===
        self.image_encoder = _make_backbone(backbone, backbone_kwargs, image_shape, dtype)
        if isinstance(backbone, (dict, keras.layers.Layer)):
            backbone = self.image_encoder  # stored as the instance; saved with its config
        images = keras.Input(shape=tuple(image_shape), name="images")
        features = self.image_encoder(images)  # (B, H, W, C)
        if len(features.shape) != 4 or None in features.shape[1:]:
            raise ValueError(
                "`backbone` must map images to a feature map (batch_size, height, width, "
                f"channels) of known size. Received: a backbone whose output for image_shape="
                f"{tuple(image_shape)} has shape {tuple(features.shape)}"
            )
        self._grid_shape = tuple(features.shape[1:3])  # (H, W)
        num_regions = self._grid_shape[0] * self._grid_shape[1]
        self.region_projection = keras.layers.Dense(
            hidden_dim, dtype=dtype, name="region_projection"
        )
        self.embedding_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embedding_dropout"
        )
        if decoder == "rnn":
            self.token_embedding = keras_hub.layers.ReversibleEmbedding(
                vocabulary_size, hidden_dim, dtype=dtype, name="token_embedding"
            )
            # The reverse projection takes the RNN's masked outputs; it returns no mask.
            self.token_embedding.supports_masking = True
            attention_cell = AttentionCell(
                cell,
                units=hidden_dim,
                attention="bahdanau",
                attention_dim=hidden_dim,
                dtype=dtype,
                name="attention_cell",
            )
            self.attention_rnn = AttentionRNN(
                attention_cell, return_sequences=True, dtype=dtype, name="attention_rnn"
            )
            state_size = attention_cell.recurrent_cell.state_size
            state_sizes = (
                list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]
            )
            self.initial_state_layers = [
                keras.layers.Dense(size, activation="tanh", dtype=dtype, name=f"initial_state_{i}")
                for i, size in enumerate(state_sizes)
            ]
            self.output_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="output_dropout")
        else:
            self.token_and_position_embedding = TokenAndPositionEmbedding(
                vocabulary_size,
                None,
                hidden_dim,
                position="sine",
                dtype=dtype,
                name="token_and_position_embedding",
            )
            self.token_embedding = self.token_and_position_embedding.token_embedding
            self.region_position_embedding = PositionEmbedding(
                num_regions, dtype=dtype, name="region_position_embedding"
            )
            self.decoder_layers = [
                TransformerDecoder(
                    num_heads=num_heads,
                    intermediate_dim=intermediate_dim,
                    dropout=dropout,
                    dtype=dtype,
                    name=f"decoder_layer_{index}",
                )
                for index in range(num_layers)
            ]
        self._decoder = decoder

        # === Functional graph ===
        target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
        memory = self._regions(features)  # (B, R, D)
        logits, _ = self._decode(memory, target_in)  # (B, T, V)
        super().__init__(
            inputs={"images": images, "target_in": target_in}, outputs=logits, **kwargs
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.image_shape = image_shape
        self.backbone = backbone
        self.backbone_kwargs = backbone_kwargs
        self.decoder = decoder
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.cell = cell
        self.dropout = dropout
        self.start_token_id = start_token_id

    # === The computation, shared by the functional graph and the generation protocol ===

    def _regions(self, features):
        """Backbone features `(B, H, W, C)` -> projected regions `(B, R, D)`."""
        height, width = self._grid_shape
        regions = ops.reshape(features, (-1, height * width, features.shape[-1]))  # (B, R, C)
        regions = self.region_projection(regions)  # (B, R, D)
        if self._decoder == "transformer":
            regions = self.region_position_embedding(regions)
        return regions

    def _initial_states(self, memory):
        """The wrapped cell's initial states, from the mean region vector (Xu et al.)."""
        mean = ops.mean(memory, axis=1)  # (B, D)
        return [layer(mean) for layer in self.initial_state_layers]

    def _decode(self, memory, target_in, return_attention=False, training=None):
        """Teacher-forced decoding: logits `(B, T, V)` and, if asked, attention `(B, T, R)`."""
        target_mask = ops.not_equal(target_in, 0)  # (B, T)
        attention = None
        if self._decoder == "rnn":
            states = self._initial_states(memory)
            x = self.embedding_dropout(self.token_embedding(target_in), training=training)
            outputs = self.attention_rnn(
                x,
                memory,
                initial_state=states,
                mask=target_mask,
                return_attention_scores=return_attention,
                training=training,
            )
            if return_attention:
                outputs, attention = outputs  # attention (B, T, R)
            x = self.output_dropout(outputs, training=training)
        else:
            x = self.embedding_dropout(
                self.token_and_position_embedding(target_in), training=training
            )
            for block in self.decoder_layers:
                outputs = block(
                    x,
                    memory,
                    decoder_padding_mask=target_mask,
                    return_attention_scores=return_attention,
                    training=training,
                )
                x, scores = outputs if return_attention else (outputs, None)
            if return_attention:
                attention = ops.mean(scores["cross_attention"], axis=1)  # (B, N, T, R) -> (B, T, R)
        return self._logits(x), attention

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
                    "`inputs` of ImageCaptioner.generate must be the images or a dict with an "
                    f"'images' entry. Received keys: {sorted(inputs)}"
                )
            inputs = inputs["images"]
        return ops.cast(inputs, "float32")  # (B, H_image, W_image, channels)

    def prefill(self, inputs, max_new_tokens):
        memory = self._regions(self.image_encoder(self._images_of(inputs), training=False))
        batch_size = ops.shape(memory)[0]
        start = ops.full((batch_size,), self.start_token_id, dtype="int32")
        if self._decoder == "rnn":
            cell = self.attention_rnn.cell
            fed = ops.zeros((batch_size, cell.state_size[-1]), dtype=cell.compute_dtype)
            states = self._initial_states(memory) + [fed]  # a_0 = 0
            logits, cache = self._rnn_step(start, {"memory": memory, "states": states})
        else:
            x = self.token_and_position_embedding(start[:, None])  # (B, 1, D)
            x, cache = prefill_decoder_stack(
                self.decoder_layers, x, memory, cache_length=max_new_tokens + 1
            )
            logits = self._logits(x)[:, 0]  # (B, V)
        return ops.zeros((batch_size, 0), dtype="int32"), logits, cache

    def _rnn_step(self, token_ids, cache):
        x = self.token_embedding(token_ids)  # (B, D)
        output, states = self.attention_rnn.cell(
            x, cache["states"], memory=cache["memory"], training=False
        )
        logits = self._logits(output)  # (B, V)
        return logits, {"memory": cache["memory"], "states": list(states)}

    def call_with_cache(self, token_ids, cache, index):
        token_ids = ops.cast(token_ids, "int32")
        if self._decoder == "rnn":
            return self._rnn_step(token_ids, cache)
        # Output position `index` is decoder position `index + 1`: the start token is at 0.
        position = ops.cast(index, "int32") + 1
        x = self.token_and_position_embedding(token_ids[:, None], start_index=position)
        x, cache = decoder_stack_step(self.decoder_layers, x, cache, position)
        return self._logits(x)[:, 0], cache

    # === Attention maps ===

    def attention_maps(self, inputs):
        """The decoder's attention over the regions at each step of a teacher-forced pass.

        `inputs` is the dict of a call (`"images"`, `"target_in"`). Returns float
        `(batch_size, caption_length, grid_height, grid_width)`: map `t` is where the decoder
        looked when predicting the token after `target_in[:, :t + 1]` (the RNN's alignment,
        or the last transformer block's cross-attention averaged over heads); zero where
        `target_in` is padding.
        """
        memory = self._regions(self.image_encoder(self._images_of(inputs), training=False))
        target_in = ops.cast(inputs["target_in"], "int32")
        _, attention = self._decode(memory, target_in, return_attention=True, training=False)
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
            attention `(batch_size, max_new_tokens, grid_height, grid_width)`, where
            `attention[:, t]` is the map used to predict `token_ids[:, t]`. Each map sums to
            one over the grid up to and including the stop token; the maps of the padding
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
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "image_shape": self.image_shape,
                "backbone": keras.saving.serialize_keras_object(self.backbone),
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
        )
        return config
