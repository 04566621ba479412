"""BERT: the 0.1 name of the BERT encoder, now `BERTBackbone`."""

from keras_seq.api import keras_seq_export
from keras_seq.models.bert.bert_backbone import BERTBackbone
from keras_seq.models.deprecation import warn_deprecated


@keras_seq_export
class BERT(BERTBackbone):
    """Deprecated: use `BERTBackbone` (same arguments, outputs and weights).

    The 0.1 BERT encoder, kept so that code and `.keras` files written for keras_seq 0.1 keep
    working: it was already a backbone (features, no head), so it is `BERTBackbone` under its
    old name, with the same constructor arguments, config, outputs and weight layout; task
    models (`BERTMaskedLM`, `BERTTextClassifier`) take it as their backbone. Constructing one
    emits a `DeprecationWarning`.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, dropout,
            max_sequence_length, num_segments, activation, layer_norm_epsilon: as
            `BERTBackbone`.
        **kwargs: base model arguments (`name`, `dtype`).
    """

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
        warn_deprecated("BERT", "keras_seq.models.BERTBackbone")
        super().__init__(
            vocabulary_size,
            num_layers,
            num_heads,
            hidden_dim,
            intermediate_dim,
            dropout=dropout,
            max_sequence_length=max_sequence_length,
            num_segments=num_segments,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            **kwargs,
        )
