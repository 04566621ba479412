"""BERTBackbone: a bidirectional transformer encoder with token, position and segment embeddings.

Letter legend for shape comments: B batch, T sequence length, H `hidden_dim`.
"""

import keras

from keras_seq.api import keras_seq_export
from keras_seq.layers.attention.multi_head_attention import MultiHeadAttention
from keras_seq.layers.blocks.transformer_encoder import TransformerEncoder
from keras_seq.layers.embeddings.token_and_position_embedding import TokenAndPositionEmbedding
from keras_seq.models.backbone import Backbone
from keras_seq.models.bert.bert_converter_keras_hub import BERTKerasHubConverter
from keras_seq.models.bert.bert_converter_transformers import BERTTransformersConverter
from keras_seq.models.bert.bert_presets import BERT_PRESETS
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_divisible
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


def bert_kernel_initializer():
    """A `TruncatedNormal(stddev=0.02)` config, BERT's initialization of every weight matrix.

    A config, not an instance: each layer resolving it makes its own unseeded instance, so no
    two weights share random values (a Keras initializer instance draws its seed once and
    gives identical values on every call).
    """
    return {"class_name": "TruncatedNormal", "config": {"mean": 0.0, "stddev": 0.02, "seed": None}}


def _validate_activation(activation):
    if not isinstance(activation, (str, dict)):
        raise TypeError(
            "`activation` must be an activation name or a config dict from "
            "keras.saving.serialize_keras_object (a callable would not be JSON in the config). "
            f"Received: activation={activation!r}"
        )
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Unknown `activation`. Received: activation={activation!r} ({error})"
        ) from None


def has_bert_interface(model, output):
    """Whether `model` plugs into a BERT task as a backbone: dict inputs, dict outputs with the
    key `output`, a `token_embedding` and a `layer_norm_epsilon` (what `BERTBackbone` has)."""
    try:
        inputs, outputs = model.input, model.output
    except (AttributeError, ValueError):  # A model without a functional graph.
        return False
    return (
        isinstance(inputs, dict)
        and isinstance(outputs, dict)
        and output in outputs
        and getattr(model, "token_embedding", None) is not None
        and hasattr(model, "layer_norm_epsilon")
    )


@keras_seq_export
class BERTBackbone(Backbone):
    """BERT encoder: token + position + segment embeddings, post-norm transformer, pooler.

    The bidirectional encoder of Devlin et al. (2019); it returns features, and task models
    put a head on it: `BERTMaskedLM` (masked-LM pretraining) and `BERTTextClassifier`
    (fine-tuning for classification). The three embeddings are summed, layer-normalized
    (epsilon `layer_norm_epsilon`) and dropped out, then run through `num_layers` post-norm
    `keras_seq.layers.TransformerEncoder` blocks; the pooler is a tanh `Dense` on the first
    (`[CLS]`) token. Every weight matrix starts from `TruncatedNormal(stddev=0.02)`.
    `BERTBackbone.from_preset("bert_base")` is BERT-base exactly (109,482,240 parameters, the
    weight shapes of `keras_hub.models.BertBackbone`'s); see `BERTBackbone.presets` for the
    others (`bert_tiny`, `bert_mini`, `bert_small`, `bert_medium`, `bert_large`; random
    weights, nothing is downloaded).

    Given keras_hub's weights, the outputs equal `keras_hub.models.BertBackbone`'s at real
    positions when `activation` is keras_hub's tanh-approximate GELU: keras_hub (like Google's
    original TensorFlow code) uses the approximation, while ours defaults to the exact (erf)
    GELU of the paper and of Hugging Face's checkpoints. Padded positions of
    `sequence_output` differ on purpose (they attend to nothing here, see
    `TransformerEncoder`).

    The token table, `token_embedding`, is a `keras.layers.ReversibleEmbedding`:
    `token_embedding(hidden, reverse=True)` projects onto the vocabulary with the tied
    table, which is how `keras_seq.layers.MaskedLMHead` uses it.

    Args:
        vocabulary_size: int. Number of token ids.
        num_layers: int. Number of transformer blocks.
        num_heads: int. Attention heads per block; must divide `hidden_dim`.
        hidden_dim: int. Width of the embeddings, the blocks and the pooler.
        intermediate_dim: int. Width of the feed-forward hidden layer of each block.
        dropout: float in [0, 1). Dropout on the embeddings, the attention probabilities
            and each residual branch. Defaults to `0.1`.
        max_sequence_length: int. Rows of the learned position table: the longest input.
            Defaults to `512`.
        num_segments: int. Number of segment (token type) ids. Defaults to `2`.
        activation: str or config dict. Activation of the feed-forward hidden layers.
            Defaults to `"gelu"` (exact, erf-based).
        layer_norm_epsilon: float. Epsilon of every layer norm. Defaults to `1e-12`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: dict with `"token_ids"`, int `(batch_size, sequence_length)`;
            `"segment_ids"`, int `(batch_size, sequence_length)` in `[0, num_segments)`;
            `"padding_mask"`, int or bool `(batch_size, sequence_length)`, `1` / `True`
            for real tokens.
        training: bool or `None`.

    Returns:
        Dict with `"sequence_output"`, float `(batch_size, sequence_length, hidden_dim)`,
        and `"pooled_output"`, float `(batch_size, hidden_dim)`.

    Example:
    ```python
    backbone = keras_seq.models.BERTBackbone.from_preset("bert_tiny", vocabulary_size=100)
    outputs = backbone(
        {
            "token_ids": np.array([[2, 7, 9, 3, 0, 0]]),
            "segment_ids": np.array([[0, 0, 0, 0, 0, 0]]),
            "padding_mask": np.array([[1, 1, 1, 1, 0, 0]]),
        }
    )
    assert outputs["sequence_output"].shape == (1, 6, 128)
    assert outputs["pooled_output"].shape == (1, 128)
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
        - [Turc et al., 2019](https://arxiv.org/abs/1908.08962) (compact BERTs)
    """

    presets = BERT_PRESETS
    checkpoint_converters = (BERTTransformersConverter, BERTKerasHubConverter)

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        **kwargs,
    ):
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("hidden_dim", hidden_dim),
            ("intermediate_dim", intermediate_dim),
            ("max_sequence_length", max_sequence_length),
            ("num_segments", num_segments),
        ):
            validate_positive_int(name, value)
        validate_divisible("hidden_dim", hidden_dim, "num_heads", num_heads)
        validate_rate("dropout", dropout)
        _validate_activation(activation)
        validate_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        dtype = kwargs.get("dtype")
        check_model_size(
            "BERTBackbone",
            {
                "vocabulary_size": vocabulary_size,
                "max_sequence_length": max_sequence_length,
                "num_segments": num_segments,
                "num_layers": num_layers,
                "hidden_dim": hidden_dim,
                "intermediate_dim": intermediate_dim,
            },
            [
                (1, "vocabulary_size", "hidden_dim"),
                (1, "max_sequence_length", "hidden_dim"),
                (1, "num_segments", "hidden_dim"),
                (4, "num_layers", "hidden_dim", "hidden_dim"),
                (2, "num_layers", "hidden_dim", "intermediate_dim"),
            ],
            num_blocks=num_layers,
            dtype=dtype,
        )

        # === Layers ===
        token_and_position_embedding = TokenAndPositionEmbedding(
            vocabulary_size,
            max_sequence_length,
            hidden_dim,
            embeddings_initializer=bert_kernel_initializer(),
            dtype=dtype,
            name="token_and_position_embedding",
        )
        segment_embedding = keras.layers.Embedding(
            num_segments,
            hidden_dim,
            embeddings_initializer=bert_kernel_initializer(),
            dtype=dtype,
            name="segment_embedding",
        )
        embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm"
        )
        embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        # The attention is passed as a config so that each block, and each of its four
        # projections, resolves its own initializer instance (see bert_kernel_initializer).
        attention = keras.saving.serialize_keras_object(
            MultiHeadAttention(
                num_heads,
                hidden_dim // num_heads,
                dropout=dropout,
                kernel_initializer=bert_kernel_initializer(),
                dtype=dtype,
            )
        )
        transformer_layers = [
            TransformerEncoder(
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=bert_kernel_initializer(),
                attention=attention,
                dtype=dtype,
                name=f"transformer_layer_{index}",
            )
            for index in range(num_layers)
        ]
        pooled_dense = keras.layers.Dense(
            hidden_dim,
            activation="tanh",
            kernel_initializer=bert_kernel_initializer(),
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = embeddings_add(
            [token_and_position_embedding(token_ids), segment_embedding(segment_ids)]
        )  # (B, T, H)
        x = embeddings_dropout(embeddings_layer_norm(x))
        for block in transformer_layers:
            x = block(x, padding_mask=padding_mask)  # (B, T, H)
        pooled_output = pooled_dense(x[:, 0, :])  # (B, H), the first ([CLS]) token
        super().__init__(
            inputs={
                "token_ids": token_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            },
            outputs={"sequence_output": x, "pooled_output": pooled_output},
            **kwargs,
        )

        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.token_and_position_embedding = token_and_position_embedding
        self.segment_embedding = segment_embedding
        self.embeddings_layer_norm = embeddings_layer_norm
        self.transformer_layers = transformer_layers
        self.pooled_dense = pooled_dense

    @property
    def token_embedding(self):
        """The token embedding, a keras_hub `ReversibleEmbedding` (tied output layers read it)."""
        return self.token_and_position_embedding.token_embedding

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
