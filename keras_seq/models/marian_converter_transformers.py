"""Hugging Face transformers Marian checkpoints (`model_type` "marian", the opus-mt models)
-> `TransformerSeq2SeqBackbone` / `TransformerSeq2SeqLM`.

Reads `MarianMTModel` (tensors under `model.`, plus `final_logits_bias`) and `MarianModel`
(top-level names). Marian is the paper's post-norm Transformer with: token embeddings
scaled by `sqrt(d_model)` (as keras_seq's), sinusoidal positions from 0 with the sines in
the first half of the channels (`position="sine_halves"`; the tables are not stored), a SiLU
feed-forward activation, one matrix shared by source and target embeddings and the output
projection, `final_logits_bias` added to the logits, and padding with the last id
(`pad_token_id`) while id 0 is `</s>`. The generation settings (`decoder_start_token_id`,
`forced_eos_token_id`, `bad_words_ids`) become the task's `start_token_id`,
`forced_end_token_id` and `suppressed_token_ids`. Checkpoint names appear only in this
module.
"""

import json
import os

import numpy as np

from keras_seq.models.checkpoints.converter import Converter
from keras_seq.models.checkpoints.converter import transformers_generation_defaults
from keras_seq.models.marian_tokenizer import MarianTokenizer

ACTIVATIONS = {"swish": "silu", "silu": "silu", "relu": "relu", "gelu": "gelu"}


class MarianTransformersConverter(Converter):
    """`MarianMTModel` / `MarianModel` -> keras_seq's `TransformerSeq2Seq` family."""

    source = "transformers"
    model_types = ("marian",)
    free_arguments = Converter.free_arguments

    def __init__(self, directory, config, tensors):
        super().__init__(directory, config, tensors)
        self.prefix = "model." if "model.shared.weight" in tensors else ""

    def _refuse(self, field, value, description):
        raise ValueError(
            f"The checkpoint in {self.directory} sets `{field}`={value!r} in its config, "
            f"which keras_seq's TransformerSeq2SeqBackbone cannot represent ({description})."
        )

    def backbone_config(self):
        config = self.config
        for field, value, meaning in (
            ("normalize_before", False, "post-norm blocks"),
            ("normalize_embedding", False, "no layer norm on the embeddings"),
            ("add_final_layer_norm", False, "no final layer norm"),
            ("scale_embedding", True, "embeddings scaled by sqrt(d_model)"),
            ("static_position_embeddings", True, "fixed sinusoidal positions"),
            ("share_encoder_decoder_embeddings", True, "one shared embedding matrix"),
            ("tie_word_embeddings", True, "the output projection tied to the embeddings"),
            ("add_bias_logits", False, "no extra logits bias layer"),
            ("activation_dropout", 0.0, "no dropout inside the feed-forward layer"),
        ):
            self.require(field, value, meaning)
        activation = config.get("activation_function", "swish")
        if activation not in ACTIVATIONS:
            self._refuse("activation_function", activation, f"it supports {sorted(ACTIVATIONS)}")
        for encoder_field, decoder_field in (
            ("encoder_attention_heads", "decoder_attention_heads"),
            ("encoder_ffn_dim", "decoder_ffn_dim"),
        ):
            if config[encoder_field] != config[decoder_field]:
                self._refuse(
                    decoder_field,
                    config[decoder_field],
                    f"encoder and decoder blocks share one setting; `{encoder_field}` is "
                    f"{config[encoder_field]!r}",
                )
        vocabulary_size = config["vocab_size"]
        decoder_vocabulary_size = config.get("decoder_vocab_size") or vocabulary_size
        if decoder_vocabulary_size != vocabulary_size:
            self._refuse(
                "decoder_vocab_size",
                decoder_vocabulary_size,
                f"one vocabulary for source and target; `vocab_size` is {vocabulary_size}",
            )
        return {
            "vocabulary_size": vocabulary_size,
            "num_encoder_layers": config["encoder_layers"],
            "num_decoder_layers": config["decoder_layers"],
            "hidden_dim": config["d_model"],
            "num_heads": config["encoder_attention_heads"],
            "intermediate_dim": config["encoder_ffn_dim"],
            "dropout": config.get("dropout", 0.1),
            "attention_dropout": config.get("attention_dropout", 0.0),
            "position": "sine_halves",
            "share_embeddings": True,
            "normalize_first": False,
            "activation": ACTIVATIONS[activation],
            "padding_token_id": config["pad_token_id"],
            "mask_target_padding": False,
        }

    def _check_tied(self, name, shared, what):
        if name in self.tensors:
            value = self.tensors.take(name)
            if value.shape != shared.shape or not np.array_equal(value, shared):
                raise ValueError(
                    f"The checkpoint in {self.directory} has a `{name}` that differs from "
                    f"`{self.prefix}shared.weight`; keras_seq ties {what} to it, as Marian "
                    "does."
                )

    def load_backbone(self, assignment):
        prefix = self.prefix
        shared_name = f"{prefix}shared.weight"
        shared = self.tensors.take(shared_name)
        assignment.set("token_embedding/embeddings", shared, shared_name)
        for side in ("encoder", "decoder"):
            self._check_tied(f"{prefix}{side}.embed_tokens.weight", shared, f"the {side} embedding")
            positions = f"{prefix}{side}.embed_positions.weight"
            if positions in self.tensors:
                self.tensors.skip(
                    [positions], "the fixed sinusoidal table, which keras_seq computes"
                )
        for index in range(self.config["encoder_layers"]):
            source, target = f"{prefix}encoder.layers.{index}", f"encoder_layer_{index}"
            self._attention(assignment, f"{source}.self_attn", f"{target}/self_attention")
            self.layer_norm(
                assignment, f"{source}.self_attn_layer_norm", f"{target}/self_attention_layer_norm"
            )
            self._feedforward(assignment, source, target)
        for index in range(self.config["decoder_layers"]):
            source, target = f"{prefix}decoder.layers.{index}", f"decoder_layer_{index}"
            self._attention(assignment, f"{source}.self_attn", f"{target}/self_attention")
            self.layer_norm(
                assignment, f"{source}.self_attn_layer_norm", f"{target}/self_attention_layer_norm"
            )
            self._attention(assignment, f"{source}.encoder_attn", f"{target}/cross_attention")
            self.layer_norm(
                assignment,
                f"{source}.encoder_attn_layer_norm",
                f"{target}/cross_attention_layer_norm",
            )
            self._feedforward(assignment, source, target)

    def _attention(self, assignment, source, target):
        self.attention_projections(
            assignment,
            [f"{source}.{name}_proj" for name in ("q", "k", "v", "out")],
            target,
            self.config["encoder_attention_heads"],
        )

    def _feedforward(self, assignment, source, target):
        self.dense(assignment, f"{source}.fc1", f"{target}/feedforward/intermediate_dense")
        self.dense(assignment, f"{source}.fc2", f"{target}/feedforward/output_dense")
        self.layer_norm(
            assignment, f"{source}.final_layer_norm", f"{target}/feedforward_layer_norm"
        )

    def task_tensors(self):
        return [name for name in ("final_logits_bias", "lm_head.weight") if name in self.tensors]

    def task_config(self):
        generation = {**self.config, **self.transformers_generation_config()}
        suppressed = []
        for words in generation.get("bad_words_ids") or []:
            if len(words) != 1:
                self._refuse(
                    "bad_words_ids",
                    generation["bad_words_ids"],
                    "only single banned tokens are supported",
                )
            suppressed.append(int(words[0]))
        return {
            "start_token_id": generation["decoder_start_token_id"],
            "use_logits_bias": "final_logits_bias" in self.tensors,
            "suppressed_token_ids": suppressed,
            "forced_end_token_id": generation.get("forced_eos_token_id"),
            "generation_defaults": transformers_generation_defaults(
                generation, self.directory, encoder_decoder=True
            ),
        }

    def has_head(self, task_cls=None):
        return True  # The language-model head is the tied embedding (and the logits bias).

    def load_task(self, assignment, new_head):
        if "final_logits_bias" in self.tensors:
            bias = self.tensors.take("final_logits_bias")  # (1, V)
            assignment.set("logits_bias/bias", bias.reshape(-1), "final_logits_bias")
        if "lm_head.weight" in self.tensors:
            embedding = np.asarray(assignment.model.backbone.token_embedding.embeddings)
            self._check_tied("lm_head.weight", embedding, "the output projection")

    def tokenizer(self):
        return marian_tokenizer(self.directory)


def marian_tokenizer(directory):
    """`MarianTokenizer` from `vocab.json`, `source.spm` and `target.spm`, or `None` when
    the directory lacks them."""
    paths = [os.path.join(directory, name) for name in ("vocab.json", "source.spm", "target.spm")]
    if not all(os.path.exists(path) for path in paths):
        return None
    config_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as file:
            config = json.load(file)
        if config.get("separate_vocabs"):
            raise ValueError(
                f"The tokenizer in {directory} sets `separate_vocabs`=True in "
                "tokenizer_config.json, which keras_seq's MarianTokenizer cannot represent "
                "(one vocab.json for source and target)."
            )
        special = {
            "end_token": config.get("eos_token", "</s>"),
            "unknown_token": config.get("unk_token", "<unk>"),
            "pad_token": config.get("pad_token", "<pad>"),
        }
    else:
        special = {}
    return MarianTokenizer(*paths, name="tokenizer", **special)
