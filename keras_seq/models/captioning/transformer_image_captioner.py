"""TransformerImageCaptioner: a transformer decoder cross-attending to image regions.

Letter legend for shape comments: B batch, R regions, D `hidden_dim`, T caption length, N
heads, V vocabulary size.
"""

from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.embeddings.position_embedding import PositionEmbedding
from keras_seq.layers.embeddings.token_and_position_embedding import TokenAndPositionEmbedding
from keras_seq.models.cached_decoder import decoder_stack_step
from keras_seq.models.cached_decoder import prefill_decoder_stack
from keras_seq.models.captioning.image_captioning_task import ImageCaptioningTask
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class TransformerImageCaptioner(ImageCaptioningTask):
    """Image captioning with a transformer decoder that cross-attends to image regions.

    The `backbone` turns an image into region features, projected to `hidden_dim` by
    `region_projection` and given a learned position embedding (`region_position_embedding`)
    so that attention knows where each region lies. The head that this task puts on the
    backbone is the decoder, as in keras_hub's captioning and vision-language tasks:
    `num_layers` post-norm `TransformerDecoder` blocks with causal self-attention over the
    caption (sinusoidal positions) and cross-attention over the regions, then the transposed
    token embedding (tied weights) onto the vocabulary.

    Generation (`generate()`) runs the backbone once and caches each block's cross-attention
    keys and values over the regions. `generate_with_attention()` also returns where the
    model looked for each generated word: the last block's cross-attention averaged over
    heads, from one teacher-forced pass over the generated tokens; `attention_maps()` gives
    the maps of a given caption.

    Args:
        backbone: the image encoder: a `keras.Model` (or its config from
            `keras.saving.serialize_keras_object`) with one input, images `(batch_size,
            height, width, channels)` of known size, and one output, either a feature map
            `(batch_size, grid_height, grid_width, channels)` (a CNN:
            `CaptioningCNNBackbone`, a `keras.applications` model with `include_top=False`)
            or region tokens `(batch_size, regions, channels)` (a vision transformer's
            sequence output), of known size. Its weights are shared, not copied; images go
            in as they are.
        vocabulary_size: int. Number of token ids, padding id 0 included.
        hidden_dim: int. Width of the projected regions, the token embedding and the
            decoder; divisible by `num_heads`. Defaults to `256`.
        num_layers: int. Number of decoder blocks. Defaults to `2`.
        num_heads: int. Attention heads per block. Defaults to `4`.
        intermediate_dim: int. Feed-forward width of each block. Defaults to `512`.
        dropout: float in [0, 1). Dropout on the word embeddings and on each block's
            residual branches. Defaults to `0.1`.
        start_token_id: int. The token that starts every caption; must not be 0.
            Defaults to `1`.
        **kwargs: `generation_defaults` (a dict of `generate()` arguments used when a call
            leaves them out, saved with the model; `from_preset` sets it from a
            checkpoint's generation config) and base model arguments (`name`, `dtype`);
            `dtype` defaults to the backbone's dtype policy.

    Call arguments:
        inputs: dict with `"images"`, float `(batch_size, height, width, channels)`, and
            `"target_in"`, int `(batch_size, caption_length)`: the caption shifted right
            (`start_token_id` first). 0 is padding.
        training: bool or `None`.

    Returns:
        Float logits `(batch_size, caption_length, vocabulary_size)`.

    Example:
    ```python
    # A backbone returning region tokens: 8x8 patches of a 32x32 image, 16 tokens.
    images = keras.Input((32, 32, 3))
    patches = keras.layers.Conv2D(32, 8, strides=8)(images)  # (batch, 4, 4, 32)
    backbone = keras.Model(images, keras.layers.Reshape((16, 32))(patches))
    model = keras_seq.models.TransformerImageCaptioner(
        backbone, vocabulary_size=30, hidden_dim=32, num_heads=2, intermediate_dim=64
    )
    images = np.random.rand(2, 32, 32, 3).astype("float32")
    logits = model({"images": images, "target_in": np.array([[1, 5, 7], [1, 4, 0]])})
    assert logits.shape == (2, 3, 30)
    token_ids, attention = model.generate_with_attention(images, 5, stop_token_id=2)
    assert token_ids.shape == (2, 5) and attention.shape == (2, 5, 16)  # 16 regions
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Xu et al., 2015](https://arxiv.org/abs/1502.03044) (Show, Attend and Tell)
    """

    # `GenerativeTask`'s argument, taken through `**kwargs` (see `constructor_arguments`).
    forwarded_arguments = ("generation_defaults",)

    def __init__(
        self,
        backbone,
        vocabulary_size,
        hidden_dim=256,
        num_layers=2,
        num_heads=4,
        intermediate_dim=512,
        dropout=0.1,
        start_token_id=1,
        **kwargs,
    ):
        for name, value in (
            ("hidden_dim", hidden_dim),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
        ):
            validate_positive_int(name, value)
        validate_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
        check_model_size(
            "TransformerImageCaptioner",
            {
                "num_layers": num_layers,
                "hidden_dim": hidden_dim,
                "intermediate_dim": intermediate_dim,
            },
            [
                (8, "num_layers", "hidden_dim", "hidden_dim"),
                (2, "num_layers", "hidden_dim", "intermediate_dim"),
            ],
            num_blocks=num_layers,
            dtype=kwargs.get("dtype"),
        )
        # Read by `_build_decoder`.
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        super().__init__(backbone, vocabulary_size, hidden_dim, dropout, start_token_id, **kwargs)

    def _build_decoder(self, num_regions, dtype):
        self.token_and_position_embedding = TokenAndPositionEmbedding(
            self.vocabulary_size,
            None,
            self.hidden_dim,
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
                num_heads=self.num_heads,
                intermediate_dim=self.intermediate_dim,
                dropout=self.dropout,
                dtype=dtype,
                name=f"decoder_layer_{index}",
            )
            for index in range(self.num_layers)
        ]

    def _regions(self, features):
        """Backbone features -> projected regions with their positions `(B, R, D)`."""
        # The base class named explicitly: the deprecated `ImageCaptioner` runs this method.
        return self.region_position_embedding(ImageCaptioningTask._regions(self, features))

    def _decode(self, memory, target_in, return_attention=False, training=None):
        """Teacher-forced decoding: logits `(B, T, V)` and, if asked, the last block's
        cross-attention averaged over heads `(B, T, R)`."""
        target_mask = ops.not_equal(target_in, 0)  # (B, T)
        x = self.embedding_dropout(self.token_and_position_embedding(target_in), training=training)
        for block in self.decoder_layers:
            outputs = block(
                x,
                memory,
                decoder_padding_mask=target_mask,
                return_attention_scores=return_attention,
                training=training,
            )
            x, scores = outputs if return_attention else (outputs, None)
        attention = None
        if return_attention:
            attention = ops.mean(scores["cross_attention"], axis=1)  # (B, N, T, R) -> (B, T, R)
        return self._logits(x), attention

    def _prefill_decoder(self, memory, max_new_tokens):
        batch_size = ops.shape(memory)[0]
        start = ops.full((batch_size, 1), self.start_token_id, dtype="int32")
        x = self.token_and_position_embedding(start)  # (B, 1, D)
        x, cache = prefill_decoder_stack(
            self.decoder_layers, x, memory, cache_length=max_new_tokens + 1
        )
        return self._logits(x)[:, 0], cache  # (B, V)

    def call_with_cache(self, token_ids, cache, index):
        token_ids = ops.cast(token_ids, "int32")
        # Output position `index` is decoder position `index + 1`: the start token is at 0.
        position = ops.cast(index, "int32") + 1
        x = self.token_and_position_embedding(token_ids[:, None], start_index=position)
        x, cache = decoder_stack_step(self.decoder_layers, x, cache, position)
        return self._logits(x)[:, 0], cache

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
        }
