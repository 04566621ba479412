"""BERTTextClassifier: a classification head (dropout, `Dense`) on a `BERTBackbone`'s pooled
output, the model of BERT's fine-tuning on sentence and sentence-pair tasks.

Letter legend for shape comments: B batch, H `hidden_dim`, C `num_classes`.
"""

import keras

from keras_seq.api import keras_seq_export
from keras_seq.models.bert.bert_backbone import BERTBackbone
from keras_seq.models.bert.bert_backbone import bert_kernel_initializer
from keras_seq.models.bert.bert_backbone import has_bert_interface
from keras_seq.models.bert.bert_text_task import BERTTextTask
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


@keras_seq_export
class BERTTextClassifier(BERTTextTask):
    """Text classifier: dropout and a `Dense` layer on the backbone's pooled `[CLS]` output.

    The fine-tuning model of Devlin et al. (2019, section 4.1), for single sentences and
    sentence pairs (the second sentence gets segment id 1): the backbone's `pooled_output`
    (the tanh pooler on the first token) goes through dropout and a `Dense(num_classes)`
    initialized with `TruncatedNormal(0.02)`, which returns logits. This is the head of
    Hugging Face's `BertForSequenceClassification` and keras_hub's `BertTextClassifier`
    (given the same weights, the logits are the same). Train it with
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)` on integer labels.

    Args:
        backbone: a `BERTBackbone` (or the deprecated `BERT`), or its config from
            `keras.saving.serialize_keras_object`. Any functional model with the same
            interface plugs in: a dict of inputs, a dict of outputs with `"pooled_output"`
            `(batch_size, hidden_dim)`, a `token_embedding` and a `layer_norm_epsilon`.
            Its weights are shared, not copied.
        num_classes: int. Number of classes, the width of the logits.
        dropout: float in [0, 1). Dropout on the pooled output, before the `Dense` layer.
            Defaults to `0.1` (BERT's fine-tuning rate).
        tokenizer: a `BERTTokenizer` (or its config), or `None`; set by `from_preset` from
            a checkpoint's `vocab.txt`. `preprocess` packs texts into the model's inputs with
            it. Defaults to `None`.
        **kwargs: base model arguments (`name`, `dtype`); `dtype` defaults to the
            backbone's dtype policy.

    Call arguments:
        inputs: dict with the backbone's inputs; for `BERTBackbone`: `"token_ids"`, int
            `(batch_size, sequence_length)` starting with the `[CLS]` id; `"segment_ids"`,
            int `(batch_size, sequence_length)`, `0` for the first sentence and `1` for the
            second; `"padding_mask"`, int or bool `(batch_size, sequence_length)`, `1` /
            `True` for real tokens.
        training: bool or `None`; enables dropout.

    Returns:
        Logits `(batch_size, num_classes)`.

    Example:
    ```python
    model = keras_seq.models.BERTTextClassifier.from_preset(
        "bert_tiny", vocabulary_size=100, num_classes=3
    )
    inputs = {
        "token_ids": np.random.randint(1, 100, size=(4, 8)),
        "segment_ids": np.zeros((4, 8), "int32"),
        "padding_mask": np.ones((4, 8), "int32"),
    }
    logits = model(inputs)
    assert logits.shape == (4, 3)
    model.compile(
        optimizer=keras.optimizers.Adam(5e-5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(inputs, np.array([0, 1, 2, 1]), epochs=1, verbose=0)
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """

    backbone_cls = BERTBackbone

    def __init__(self, backbone, num_classes, dropout=0.1, tokenizer=None, **kwargs):
        backbone = self.resolve_backbone(
            backbone,
            lambda model: has_bert_interface(model, "pooled_output"),
            "a BERTBackbone (or a backbone with its interface)",
        )
        validate_positive_int("num_classes", num_classes)
        # The head has (at least) one weight per class.
        check_model_size(type(self).__name__, {"num_classes": num_classes}, [(1, "num_classes")])
        validate_rate("dropout", dropout)
        kwargs.setdefault("dtype", backbone.dtype_policy)
        dtype = kwargs["dtype"]

        # === Layers ===
        output_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="output_dropout")
        output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=bert_kernel_initializer(),
            dtype=dtype,
            name="output_dense",
        )

        # === Functional model ===
        inputs = backbone.input
        pooled_output = backbone(inputs)["pooled_output"]  # (B, H)
        logits = output_dense(output_dropout(pooled_output))  # (B, C)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.backbone = backbone
        self._set_tokenizer(tokenizer)
        self.num_classes = num_classes
        self.dropout = dropout
        self.output_dropout = output_dropout
        self.output_dense = output_dense

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
        }
