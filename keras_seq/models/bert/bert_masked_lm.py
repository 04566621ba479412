"""BERTMaskedLM: a masked-language-model head on a `BERTBackbone`, BERT's pretraining model.

Letter legend for shape comments: B batch, T sequence length, P masked positions,
V vocabulary size.
"""

import keras

from keras_seq.api import keras_seq_export
from keras_seq.layers.heads.masked_lm_head import MaskedLMHead
from keras_seq.models.bert.bert_backbone import BERTBackbone
from keras_seq.models.bert.bert_backbone import bert_kernel_initializer
from keras_seq.models.bert.bert_backbone import has_bert_interface
from keras_seq.models.bert.bert_text_task import BERTTextTask


@keras_seq_export
class BERTMaskedLM(BERTTextTask):
    """A `BERTBackbone` plus a `MaskedLMHead` tied to its token embedding.

    Predicts the original tokens at the masked positions chosen by
    `keras_seq.data.mask_tokens`: the inputs are the backbone's plus `"mask_positions"`,
    the output the vocabulary logits there. Train it with a sparse categorical
    cross-entropy `from_logits=True` on `mask_ids`, with `mask_weights` as sample weights
    (they zero the padding entries of `mask_positions`). The head's transform uses GELU,
    the backbone's layer-norm epsilon and `TruncatedNormal(0.02)`, as BERT's does. The
    backbone's pooler takes no part in this loss, so Keras warns during `fit` that
    `pooled_dense` gets no gradient (as with keras_hub's `BertMaskedLM`).

    Args:
        backbone: a `BERTBackbone` (or the deprecated `BERT`), or its config from
            `keras.saving.serialize_keras_object`. Any functional model with the same
            interface plugs in: a dict of inputs, a dict of outputs with
            `"sequence_output"` `(batch_size, sequence_length, hidden_dim)`, a
            `token_embedding` that projects onto the vocabulary with `reverse=True` (a
            `ReversibleEmbedding`) and a `layer_norm_epsilon`. Its weights are shared, not
            copied.
        tokenizer: a `BERTTokenizer` (or its config), or `None`; set by `from_preset` from
            a checkpoint's `vocab.txt`. `preprocess` packs texts into the model's inputs with
            it. Defaults to `None`.
        **kwargs: base model arguments (`name`, `dtype`); `dtype` defaults to the
            backbone's dtype policy.

    Call arguments:
        inputs: dict with the backbone's inputs (for `BERTBackbone`: `"token_ids"`,
            `"segment_ids"`, `"padding_mask"`, each `(batch_size, sequence_length)`) and
            `"mask_positions"`, int `(batch_size, num_predictions)`.
        training: bool or `None`.

    Returns:
        Float `(batch_size, num_predictions, vocabulary_size)` logits.

    Example:
    ```python
    model = keras_seq.models.BERTMaskedLM.from_preset("bert_tiny", vocabulary_size=100)
    batch = keras_seq.data.mask_tokens(
        np.random.randint(5, 100, size=(4, 16)),
        vocabulary_size=100, mask_token_id=4, max_predictions=3, seed=1,
    )
    batch = {key: np.asarray(value) for key, value in batch.items()}  # tf -> NumPy
    inputs = {
        "token_ids": batch["token_ids"],
        "segment_ids": np.zeros((4, 16), "int32"),
        "padding_mask": np.ones((4, 16), "int32"),
        "mask_positions": batch["mask_positions"],
    }
    logits = model(inputs)  # (4, 3, 100)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    value = loss(batch["mask_ids"], logits, sample_weight=batch["mask_weights"])
    # Training: model.compile(optimizer="adam", loss=loss, weighted_metrics=[]), then
    # model.fit(inputs, batch["mask_ids"], sample_weight=batch["mask_weights"]).
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """

    backbone_cls = BERTBackbone

    def __init__(self, backbone, tokenizer=None, **kwargs):
        backbone = self.resolve_backbone(
            backbone,
            lambda model: has_bert_interface(model, "sequence_output"),
            "a BERTBackbone (or a backbone with its interface)",
        )
        kwargs.setdefault("dtype", backbone.dtype_policy)
        masked_lm_head = MaskedLMHead(
            token_embedding=backbone.token_embedding,
            intermediate_activation="gelu",
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            kernel_initializer=bert_kernel_initializer(),
            dtype=kwargs.get("dtype"),
            name="masked_lm_head",
        )
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(shape=(None,), dtype="int32", name="mask_positions"),
        }
        sequence_output = backbone(backbone.input)["sequence_output"]  # (B, T, H)
        logits = masked_lm_head(sequence_output, inputs["mask_positions"])  # (B, P, V)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.backbone = backbone
        self._set_tokenizer(tokenizer)
        self.masked_lm_head = masked_lm_head
