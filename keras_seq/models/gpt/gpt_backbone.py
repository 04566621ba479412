"""GPTBackbone: token and position embeddings, pre-norm causal decoder blocks, a final norm.

Letter legend for shape comments: B batch, T tokens, P prompt length, N new tokens, D hidden
width.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.embeddings.token_and_position_embedding import TokenAndPositionEmbedding
from keras_seq.models.backbone import Backbone
from keras_seq.models.gpt.gpt_converter_keras_hub import GPTKerasHubConverter
from keras_seq.models.gpt.gpt_converter_transformers import GPTTransformersConverter
from keras_seq.models.gpt.gpt_presets import GPT_PRESETS
from keras_seq.ops.activations import gelu_approximate
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


@keras_seq_export
class GPTBackbone(Backbone):
    """GPT-2-style decoder stack: learned positions, pre-norm causal blocks, a final norm.

    Token and learned position embeddings, dropout, `num_layers` pre-norm `TransformerDecoder`
    blocks (causal self-attention, tanh-approximated GELU) and a final layer norm; it returns
    the hidden state of every position. `GPTCausalLM` puts the language-model head on it (the
    transposed token embedding). The `gpt2_small` preset is GPT-2 small layer for layer
    (124,439,808 parameters, the same as keras_hub's `GPT2Backbone`, whose weights it reproduces
    exactly when copied in).

    For cached decoding (`GPTCausalLM.generate`) it also offers `prefill(token_ids,
    cache_length)` and `call_with_cache(token_ids, caches, index)`, which run the same layers
    over a key/value cache.

    Args:
        vocabulary_size: int. Number of token ids.
        num_layers: int. Number of decoder blocks.
        hidden_dim: int. Width of the model; divisible by `num_heads`.
        num_heads: int. Attention heads per block.
        intermediate_dim: int. Width of the feed-forward hidden layer.
        sequence_length: int. Number of learned positions (the longest input, prompt plus
            generated tokens). Defaults to `1024`.
        dropout: float in [0, 1). Dropout on the embeddings, attention probabilities and
            sublayer outputs. Defaults to `0.1`.
        layer_norm_epsilon: float. Epsilon of the layer norms. Defaults to `1e-5`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: dict with `"token_ids"` int `(batch_size, length)` and `"padding_mask"`
            int or bool `(batch_size, length)`, nonzero / `True` for real tokens.

    Returns:
        Hidden states `(batch_size, length, hidden_dim)`.

    Example:
    ```python
    backbone = keras_seq.models.GPTBackbone.from_preset("gpt_tiny", vocabulary_size=100)
    tokens = np.random.randint(1, 100, size=(2, 8))
    features = backbone({"token_ids": tokens, "padding_mask": np.ones_like(tokens)})
    assert features.shape == (2, 8, backbone.hidden_dim)
    ```

    References:
        - [Radford et al., 2019](https://openai.com/research/better-language-models)
    """

    presets = GPT_PRESETS
    checkpoint_converters = (GPTTransformersConverter, GPTKerasHubConverter)

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        hidden_dim,
        num_heads,
        intermediate_dim,
        sequence_length=1024,
        dropout=0.1,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("num_layers", num_layers),
            ("hidden_dim", hidden_dim),
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
            ("sequence_length", sequence_length),
        ):
            validate_positive_int(name, value)
        validate_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
        validate_rate("dropout", dropout)
        validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        dtype = kwargs.get("dtype")
        check_model_size(
            "GPTBackbone",
            {
                "vocabulary_size": vocabulary_size,
                "sequence_length": sequence_length,
                "num_layers": num_layers,
                "hidden_dim": hidden_dim,
                "intermediate_dim": intermediate_dim,
            },
            [
                (1, "vocabulary_size", "hidden_dim"),
                (1, "sequence_length", "hidden_dim"),
                (4, "num_layers", "hidden_dim", "hidden_dim"),
                (2, "num_layers", "hidden_dim", "intermediate_dim"),
            ],
            num_blocks=num_layers,
            dtype=dtype,
        )

        # === Layers ===
        self.embedding = TokenAndPositionEmbedding(
            vocabulary_size,
            sequence_length,
            hidden_dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype=dtype,
            name="embedding",
        )
        self.embedding_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embedding_dropout"
        )
        self.decoder_layers = [
            TransformerDecoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                attention_dropout=dropout,
                activation=gelu_approximate,
                normalize_first=True,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
                dtype=dtype,
                name=f"decoder_layer_{index}",
            )
            for index in range(num_layers)
        ]
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="layer_norm"
        )

        # === Functional model ===
        token_ids = keras.Input((None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
        x = self.embedding_dropout(self.embedding(token_ids))  # (B, T, D)
        for layer in self.decoder_layers:
            x = layer(x, decoder_padding_mask=padding_mask)
        outputs = self.layer_norm(x)  # (B, T, D)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=outputs,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.sequence_length = sequence_length
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon

    @property
    def token_embedding(self):
        """The token embedding, a `keras.layers.ReversibleEmbedding` (tied heads read it)."""
        return self.embedding.token_embedding

    def _embed(self, token_ids, position_ids=None, start_index=0):
        """Token plus position embeddings; `position_ids` int `(batch_size, length)` gives
        each row its own positions (left-padded prompts), else positions start at
        `start_index`."""
        if position_ids is None:
            return self.embedding(token_ids, start_index=start_index)
        tokens = self.embedding.token_embedding(token_ids)  # (B, T, D)
        table = self.embedding.position_embedding.embeddings  # (L, D)
        positions = ops.take(table, ops.cast(position_ids, "int32"), axis=0)  # (B, T, D)
        return tokens + ops.cast(positions, tokens.dtype)

    def prefill(self, token_ids, cache_length, position_ids=None, attention_mask=None):
        """Run the prompt `token_ids` int `(batch_size, prompt_length)` and fill a key/value
        cache of `cache_length` positions per block; returns `(hidden, caches)`, hidden
        `(batch_size, prompt_length, hidden_dim)` and one cache per block.

        Prompts of different lengths come left-padded with `position_ids` (each row's own
        positions, from 0 at its first real token) and `attention_mask` bool
        `(batch_size, prompt_length, prompt_length)` (which keys each query may read)."""
        batch_size = ops.shape(token_ids)[0]
        head_dim = self.hidden_dim // self.num_heads
        x = self._embed(token_ids, position_ids)  # (B, P, D)
        extra = {} if attention_mask is None else {"decoder_attention_mask": attention_mask}
        caches = []
        for layer in self.decoder_layers:
            # (B, 2, P + N, heads, head_dim): keys and values of every position.
            cache = ops.zeros(
                (batch_size, 2, cache_length, self.num_heads, head_dim), dtype=self.compute_dtype
            )
            x, cache = layer(
                x, self_attention_cache=cache, self_attention_cache_update_index=0, **extra
            )
            caches.append(cache)
        return self.layer_norm(x), caches

    def call_with_cache(self, token_ids, caches, index, position_ids=None, attention_mask=None):
        """One decoding step: `token_ids` int `(batch_size, 1)` at cache position `index`;
        returns `(hidden, caches)`, hidden `(batch_size, 1, hidden_dim)`. `position_ids`
        `(batch_size, 1)` and `attention_mask` bool `(batch_size, 1, cache_length)` as in
        `prefill`, for left-padded prompts."""
        x = self._embed(token_ids, position_ids, start_index=index)  # (B, 1, D)
        extra = {} if attention_mask is None else {"decoder_attention_mask": attention_mask}
        updated = []
        for layer, layer_cache in zip(self.decoder_layers, caches):
            x, layer_cache = layer(
                x,
                self_attention_cache=layer_cache,
                self_attention_cache_update_index=index,
                **extra,
            )
            updated.append(layer_cache)
        return self.layer_norm(x), updated

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "sequence_length": self.sequence_length,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
