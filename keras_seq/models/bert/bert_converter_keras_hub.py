"""keras-hub BERT presets (`keras_hub>BertBackbone`, alone or under a
`keras_hub>BertTextClassifier`) -> `BERTBackbone` / `BERTTextClassifier`.

keras-hub loads the preset (a directory, a keras-hub preset name such as
`bert_base_en_uncased`, or a `kaggle://` handle); this module maps its config and its
variables, by path, to ours, and its WordPiece vocabulary and casing to our `BERTTokenizer`.
Checkpoint names appear only in this module.
"""

import keras

from keras_seq.models.bert.bert_presets import BERT_PRESETS
from keras_seq.models.bert.bert_tokenizer import BERTTokenizer
from keras_seq.models.checkpoints.keras_hub_converter import KerasHubConverter
from keras_seq.models.gpt.gpt_converter_keras_hub import keras_hub_tokenizer
from keras_seq.ops.activations import gelu_approximate


class BERTKerasHubConverter(KerasHubConverter):
    """keras-hub's `BertBackbone` / `BertTextClassifier` -> keras_seq's BERT family.

    keras-hub's BERT uses the tanh-approximate GELU (as Google's original code), so the
    backbone gets `activation=gelu_approximate`; layer norm epsilon 1e-12 as in keras-hub.
    The classifier's head (dropout, then the `logits` Dense layer; activation none or
    softmax) becomes `BERTTextClassifier`'s `output_dense` with the same dropout rate. The
    tokenizer is our `BERTTokenizer` (keras-hub's WordPiece plus the `[CLS]` / `[SEP]` Hugging
    Face adds) on the preset's vocabulary and casing. keras-hub's `BertMaskedLM` head is
    not read (its backbone is).
    """

    model_types = ("keras_hub>BertBackbone",)
    task_types = ("keras_hub>BertTextClassifier",)
    family = "BERTBackbone"
    builtin_presets = BERT_PRESETS
    head_layer = "logits"

    @classmethod
    def keras_hub_classes(cls):
        import keras_hub

        return keras_hub.models.BertBackbone, keras_hub.models.BertTextClassifier

    def backbone_config(self):
        config = self.config
        return {
            "vocabulary_size": config["vocabulary_size"],
            "num_layers": config["num_layers"],
            "num_heads": config["num_heads"],
            "hidden_dim": config["hidden_dim"],
            "intermediate_dim": config["intermediate_dim"],
            "dropout": config.get("dropout", 0.1),
            "max_sequence_length": config["max_sequence_length"],
            "num_segments": config["num_segments"],
            "activation": keras.saving.serialize_keras_object(gelu_approximate),
            "layer_norm_epsilon": 1e-12,  # Fixed in keras-hub's BertBackbone.
        }

    def load_backbone(self, assignment):
        for table in ("token_embedding", "position_embedding"):
            self.copy(
                assignment,
                f"{table}/embeddings",
                f"token_and_position_embedding/{table}/embeddings",
            )
        self.copy(assignment, "segment_embedding/embeddings", "segment_embedding/embeddings")
        self.copy_layer(
            assignment, "embeddings_layer_norm", "embeddings_layer_norm", ("gamma", "beta")
        )
        for index in range(self.config["num_layers"]):
            source = target = f"transformer_layer_{index}"
            self.copy_transformer_layer(assignment, source, target, "self_attention_layer")
        self.copy_layer(assignment, "pooled_dense", "pooled_dense", ("kernel", "bias"))

    def head_config(self, config):
        return {"dropout": float(config.get("dropout", 0.1))}

    def load_task(self, assignment, new_head):
        if new_head:
            self.replace_head(assignment, self.task_tensors(), "output_dense/")
            return
        config = self._task.get_config()
        activation = config.get("activation")
        activation = getattr(activation, "__name__", activation)
        if activation not in (None, "linear", "softmax"):
            raise ValueError(
                f"The keras-hub classifier in {self.directory} has activation={activation!r} "
                "on its head; keras_seq's head returns the logits, whose softmax is the "
                "only activation it represents (activation None or 'softmax')."
            )
        self.copy_layer(assignment, self.head_layer, "output_dense", ("kernel", "bias"))

    def preprocessor(self):
        return None

    def tokenizer(self):
        tokenizer = keras_hub_tokenizer(self.directory, "BertTokenizer")
        if tokenizer is None:
            return None
        return BERTTokenizer(
            vocabulary=tokenizer.get_vocabulary(),
            lowercase=tokenizer.lowercase,
            strip_accents=tokenizer.strip_accents,
            name="tokenizer",
        )
