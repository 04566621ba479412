"""GPT: a decoder-only causal transformer language model.

Letter legend for shape comments: B batch, T tokens, P prompt length, N new tokens, V
vocabulary, D hidden width, L layers.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.embeddings.token_and_position_embedding import TokenAndPositionEmbedding
from keras_seq.models.generative_model import GenerativeModel
from keras_seq.models.gpt.gpt_presets import GPT_PRESETS
from keras_seq.ops.activations import gelu_approximate
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


@keras_seq_export
class GPT(GenerativeModel):
    """GPT-2-style language model: learned positions, pre-norm decoder blocks, tied output.

    Token and learned position embeddings, dropout, `num_layers` pre-norm
    `TransformerDecoder` blocks (causal self-attention, tanh-approximated GELU), a final layer
    norm, and logits through the transposed token embedding (input and output embeddings are
    one matrix). The `gpt2_small` preset is GPT-2 small layer for layer (124,439,808
    parameters, the same as keras_hub's `GPT2Backbone`, whose weights it reproduces exactly
    when copied in). What it adds over keras_hub's `GPT2CausalLM`: `generate()` with beam
    search and scores (keras_seq.generation), prefill over the prompt only (keras_hub runs
    the whole padded length), and one compiled decoding function per shape.

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
        Logits `(batch_size, length, vocabulary_size)` of the next token at every position.

    Example:
    ```python
    model = keras_seq.models.GPT.from_preset("gpt_tiny", vocabulary_size=100)
    tokens = np.random.randint(1, 100, size=(2, 8))
    logits = model({"token_ids": tokens, "padding_mask": np.ones_like(tokens)})
    assert logits.shape == (2, 8, 100)
    completion = model.generate(tokens, max_new_tokens=4, strategy="beam", num_beams=3)
    assert completion.shape == (2, 12)
    ```

    References:
        - [Radford et al., 2019](https://openai.com/research/better-language-models)
    """

    presets = GPT_PRESETS

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
        # Inside the model's autocast scope, the tied float32 table would promote the logits
        # to float32; they stay in the compute dtype, as every other output.
        logits = ops.cast(
            self.embedding.token_embedding(self.layer_norm(x), reverse=True),
            keras.dtype_policies.get(dtype).compute_dtype,
        )  # (B, T, V)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=logits,
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
        """The (tied) token embedding, a keras_hub `ReversibleEmbedding`."""
        return self.embedding.token_embedding

    def _logits(self, x):
        return self.embedding.token_embedding(self.layer_norm(x), reverse=True)

    def prefill(self, inputs, max_new_tokens):
        if isinstance(inputs, dict):
            unknown = set(inputs) - {"token_ids"}
            if unknown:
                raise ValueError(
                    "GPT.generate() takes the prompt token ids (or a dict with only "
                    "'token_ids'): prompts of one call share their length, so there is no "
                    f"padding mask. Received keys: {sorted(inputs)}"
                )
            inputs = inputs["token_ids"]
        token_ids = ops.cast(inputs, "int32")  # (B, P)
        if len(token_ids.shape) != 2 or token_ids.shape[1] == 0:
            raise ValueError(
                "The prompt must be int token ids of shape (batch_size, prompt_length) with "
                f"prompt_length >= 1. Received: shape={tuple(token_ids.shape)}"
            )
        prompt_length = token_ids.shape[1]
        if prompt_length + max_new_tokens > self.sequence_length:
            raise ValueError(
                "The prompt length plus `max_new_tokens` exceeds the model's "
                f"`sequence_length` ({self.sequence_length}) learned positions. Received: "
                f"prompt_length={prompt_length}, max_new_tokens={max_new_tokens}"
            )
        batch_size = ops.shape(token_ids)[0]
        head_dim = self.hidden_dim // self.num_heads
        x = self.embedding(token_ids)  # (B, P, D)
        caches = []
        for layer in self.decoder_layers:
            # (B, 2, P + N, heads, head_dim): keys and values of every position.
            cache = ops.zeros(
                (batch_size, 2, prompt_length + max_new_tokens, self.num_heads, head_dim),
                dtype=self.compute_dtype,
            )
            x, cache = layer(x, self_attention_cache=cache, self_attention_cache_update_index=0)
            caches.append(cache)
        logits = self._logits(x[:, -1:, :])[:, 0, :]  # (B, V)
        return token_ids, logits, caches

    def call_with_cache(self, token_ids, cache, index):
        x = self.embedding(token_ids[:, None], start_index=index)  # (B, 1, D)
        updated = []
        for layer, layer_cache in zip(self.decoder_layers, cache):
            x, layer_cache = layer(
                x, self_attention_cache=layer_cache, self_attention_cache_update_index=index
            )
            updated.append(layer_cache)
        return self._logits(x)[:, 0, :], updated

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
