"""Hugging Face transformers BERT checkpoints (`model_type` "bert") -> `BERTBackbone`,
`BERTMaskedLM` and `BERTTextClassifier`, with their WordPiece tokenizer.

Reads `BertModel` (top-level names), `BertForMaskedLM`, `BertForPreTraining` and
`BertForSequenceClassification` (under `bert.`). The masked-LM decoder is tied to the word
embeddings (stored once, or stored equal); the next-sentence head of `BertForPreTraining`
belongs to no keras_seq task and is skipped with a log line, as transformers does when it
loads such a checkpoint into a masked LM. A checkpoint without the pooler (`BertForMaskedLM`)
leaves the backbone's pooler at its initialization, with a warning naming it (transformers
does the same); the masked LM does not use it. Checkpoint names appear only in this module.
"""

import logging
import os

import numpy as np

from keras_seq.models.bert.bert_tokenizer import BERTTokenizer
from keras_seq.models.checkpoints import handles
from keras_seq.models.checkpoints.converter import Converter

logger = logging.getLogger(__name__)

_MASKED_LM = "cls.predictions."
_NEXT_SENTENCE = "cls.seq_relationship."
_CLASSIFIER = "classifier."


class BERTTransformersConverter(Converter):
    """`BertModel` / `BertForMaskedLM` / `BertForPreTraining` /
    `BertForSequenceClassification` -> keras_seq's BERT family."""

    source = "transformers"
    model_types = ("bert",)

    def __init__(self, directory, config, tensors):
        super().__init__(directory, config, tensors)
        self.prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""

    def _names(self, start):
        return [name for name in self.tensors.keys() if name.startswith(start)]

    def backbone_config(self):
        config = self.config
        for field, value, meaning in (
            ("hidden_act", "gelu", "exact (erf) GELU"),
            ("position_embedding_type", "absolute", "learned absolute positions"),
            ("is_decoder", False, "an encoder"),
            ("add_cross_attention", False, "no cross-attention"),
        ):
            self.require(field, value, meaning)
        return {
            "vocabulary_size": config["vocab_size"],
            "num_layers": config["num_hidden_layers"],
            "num_heads": config["num_attention_heads"],
            "hidden_dim": config["hidden_size"],
            "intermediate_dim": config["intermediate_size"],
            "dropout": config.get("hidden_dropout_prob", 0.1),
            "max_sequence_length": config["max_position_embeddings"],
            "num_segments": config.get("type_vocab_size", 2),
            "activation": "gelu",
            "layer_norm_epsilon": config.get("layer_norm_eps", 1e-12),
        }

    def load_backbone(self, assignment):
        prefix, num_heads = self.prefix, self.config["num_attention_heads"]
        embeddings = f"{prefix}embeddings"
        for target, source in (
            ("token_and_position_embedding/token_embedding", "word_embeddings"),
            ("token_and_position_embedding/position_embedding", "position_embeddings"),
            ("segment_embedding", "token_type_embeddings"),
        ):
            name = f"{embeddings}.{source}.weight"
            assignment.set(f"{target}/embeddings", self.tensors.take(name), name)
        self.layer_norm(assignment, f"{embeddings}.LayerNorm", "embeddings_layer_norm")
        if f"{embeddings}.position_ids" in self.tensors:
            self.tensors.skip([f"{embeddings}.position_ids"], "a constant 0..N-1 index table")
        for index in range(self.config["num_hidden_layers"]):
            source, target = f"{prefix}encoder.layer.{index}", f"transformer_layer_{index}"
            self.attention_projections(
                assignment,
                [f"{source}.attention.self.{name}" for name in ("query", "key", "value")]
                + [f"{source}.attention.output.dense"],
                f"{target}/self_attention",
                num_heads,
            )
            self.layer_norm(
                assignment,
                f"{source}.attention.output.LayerNorm",
                f"{target}/self_attention_layer_norm",
            )
            self.dense(
                assignment,
                f"{source}.intermediate.dense",
                f"{target}/feedforward/intermediate_dense",
            )
            self.dense(assignment, f"{source}.output.dense", f"{target}/feedforward/output_dense")
            self.layer_norm(
                assignment, f"{source}.output.LayerNorm", f"{target}/feedforward_layer_norm"
            )
        if f"{prefix}pooler.dense.weight" in self.tensors:
            self.dense(assignment, f"{prefix}pooler.dense", "pooled_dense")
        else:
            logger.warning(
                "The checkpoint in %s has no pooler (BertForMaskedLM does not keep one): the "
                "backbone's `pooled_dense` keeps its random initialization, as transformers "
                "does. The masked LM does not use it; a text classifier trains it.",
                self.directory,
            )
            assignment.leave("pooled_dense/", "not in the checkpoint")

    # === Tasks ===

    def task_tensors(self):
        return self._names("cls.") + self._names(_CLASSIFIER)

    def skipped_tensors(self):
        reason = "the next-sentence-prediction head, which no keras_seq task has"
        return {name: reason for name in self._names(_NEXT_SENTENCE)}

    def has_head(self, task_cls=None):
        if task_cls is not None and task_cls.__name__ == "BERTMaskedLM":
            return bool(self._names(_MASKED_LM))
        return "num_classes" in self.task_config()

    def task_config(self):
        if f"{_CLASSIFIER}weight" not in self.tensors:
            return {}
        return {"num_classes": self.tensors.shape(f"{_CLASSIFIER}weight")[0]}

    def load_task(self, assignment, new_head):
        if "masked_lm_head/output_bias" in assignment:
            self._load_masked_lm(assignment)
            self.tensors.skip(self._names(_CLASSIFIER), "a classifier, not part of a masked LM")
            return
        self.tensors.skip(self._names(_MASKED_LM), "the masked-LM head, not a classifier's")
        if new_head:
            self.replace_head(assignment, self._names(_CLASSIFIER), "output_dense/")
        else:
            self.dense(assignment, "classifier", "output_dense")

    def _load_masked_lm(self, assignment):
        transform = f"{_MASKED_LM}transform"
        self.dense(assignment, f"{transform}.dense", "masked_lm_head/intermediate_dense")
        self.layer_norm(
            assignment, f"{transform}.LayerNorm", "masked_lm_head/intermediate_layer_norm"
        )
        bias = self.tensors.take(f"{_MASKED_LM}bias")
        assignment.set("masked_lm_head/output_bias", bias, f"{_MASKED_LM}bias")
        embeddings = np.asarray(assignment.model.backbone.token_embedding.embeddings)
        for name, expected in (
            (f"{_MASKED_LM}decoder.weight", embeddings),
            (f"{_MASKED_LM}decoder.bias", bias),
        ):
            if name in self.tensors:  # Tied: stored equal, or not at all.
                value = self.tensors.take(name)
                if value.shape != expected.shape or not np.array_equal(value, expected):
                    raise ValueError(
                        f"The checkpoint in {self.directory} has a {name!r} that differs from "
                        "the tensor it is tied to; keras_seq's BERTMaskedLM ties them, as BERT "
                        "does."
                    )

    def tokenizer(self):
        return bert_tokenizer(self.directory)


def bert_tokenizer(directory):
    """`BERTTokenizer` from `vocab.txt` and the casing of `tokenizer_config.json`
    (`do_lower_case`, `strip_accents`), or `None` without a vocabulary."""
    vocabulary = os.path.join(directory, "vocab.txt")
    if not os.path.exists(vocabulary):
        return None
    config = handles.read_json(directory, "tokenizer_config.json") or {}
    lowercase = bool(config.get("do_lower_case", True))
    strip_accents = config.get("strip_accents")
    if not config.get("tokenize_chinese_chars", True):
        raise ValueError(
            f"{directory}/tokenizer_config.json sets tokenize_chinese_chars=false, which "
            "keras-hub's WordPiece tokenizer cannot reproduce."
        )
    return BERTTokenizer(
        vocabulary=vocabulary,
        lowercase=lowercase,
        strip_accents=lowercase if strip_accents is None else bool(strip_accents),
        name="tokenizer",
    )
