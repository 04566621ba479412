"""Hugging Face transformers GPT-2 checkpoints (`model_type` "gpt2") -> `GPTBackbone` /
`GPTCausalLM`.

Reads `GPT2LMHeadModel` (tensors under `transformer.`; its `lm_head` is the tied token
embedding, stored once or not at all) and `GPT2Model` (top-level names, as the original
gpt2 / gpt2-medium / -large / -xl and distilgpt2 checkpoints on the Hub have). GPT-2's
`Conv1D` layers store their kernels `(in, out)`, Keras' layout, so nothing is transposed;
the fused `c_attn` is split into query, key and value. The causal-mask buffers of old
checkpoints (`attn.bias`, `attn.masked_bias`) are constants, skipped. Checkpoint names
appear only in this module.
"""

import json
import os

import numpy as np

from keras_seq.models.checkpoints.converter import Converter
from keras_seq.models.checkpoints.converter import transformers_generation_defaults
from keras_seq.models.gpt.gpt2_tokenizer import GPT2Tokenizer


class GPTTransformersConverter(Converter):
    """`GPT2LMHeadModel` / `GPT2Model` -> keras_seq's GPT family."""

    source = "transformers"
    model_types = ("gpt2",)
    free_arguments = Converter.free_arguments

    def __init__(self, directory, config, tensors):
        super().__init__(directory, config, tensors)
        self.prefix = "transformer." if "transformer.wte.weight" in tensors else ""

    def backbone_config(self):
        config = self.config
        for field, value, meaning in (
            ("activation_function", "gelu_new", "GELU with the tanh approximation"),
            ("scale_attn_weights", True, "attention scaled by 1 / sqrt(head size)"),
            ("scale_attn_by_inverse_layer_idx", False, "no per-layer attention scaling"),
            ("reorder_and_upcast_attn", False, "the standard attention computation"),
            ("add_cross_attention", False, "a decoder-only model"),
        ):
            self.require(field, value, meaning)
        hidden_dim = config["n_embd"]
        return {
            "vocabulary_size": config["vocab_size"],
            "num_layers": config["n_layer"],
            "hidden_dim": hidden_dim,
            "num_heads": config["n_head"],
            "intermediate_dim": config.get("n_inner") or 4 * hidden_dim,
            "sequence_length": config["n_positions"],
            "dropout": config.get("resid_pdrop", 0.1),
            "layer_norm_epsilon": config.get("layer_norm_epsilon", 1e-5),
        }

    def _fused_attention(self, assignment, source, target, num_heads):
        kernel = self.tensors.take(f"{source}.c_attn.weight")  # (C, 3C), Conv1D (in, out)
        bias = self.tensors.take(f"{source}.c_attn.bias")
        channels = kernel.shape[0]
        for name, kernel_part, bias_part in zip(
            ("query", "key", "value"), np.split(kernel, 3, axis=1), np.split(bias, 3)
        ):
            assignment.set(
                f"{target}/{name}_dense/kernel",
                kernel_part.reshape(channels, num_heads, -1),
                f"{source}.c_attn",
            )
            assignment.set(
                f"{target}/{name}_dense/bias", bias_part.reshape(num_heads, -1), f"{source}.c_attn"
            )
        kernel = self.tensors.take(f"{source}.c_proj.weight")  # (C, C)
        assignment.set(
            f"{target}/output_dense/kernel",
            kernel.reshape(num_heads, -1, channels),
            f"{source}.c_proj",
        )
        assignment.set(
            f"{target}/output_dense/bias", self.tensors.take(f"{source}.c_proj.bias"), source
        )

    def _conv1d(self, assignment, source, target):
        """GPT-2's `Conv1D` `(in, out)`: already a Keras `Dense` kernel."""
        assignment.set(f"{target}/kernel", self.tensors.take(f"{source}.weight"), source)
        assignment.set(f"{target}/bias", self.tensors.take(f"{source}.bias"), source)

    def load_backbone(self, assignment):
        prefix, num_heads = self.prefix, self.config["n_head"]
        for ours, theirs in (("token_embedding", "wte"), ("position_embedding", "wpe")):
            name = f"{prefix}{theirs}.weight"
            assignment.set(f"embedding/{ours}/embeddings", self.tensors.take(name), name)
        for index in range(self.config["n_layer"]):
            source, target = f"{prefix}h.{index}", f"decoder_layer_{index}"
            self.layer_norm(assignment, f"{source}.ln_1", f"{target}/self_attention_layer_norm")
            self._fused_attention(
                assignment, f"{source}.attn", f"{target}/self_attention", num_heads
            )
            self.layer_norm(assignment, f"{source}.ln_2", f"{target}/feedforward_layer_norm")
            self._conv1d(
                assignment, f"{source}.mlp.c_fc", f"{target}/feedforward/intermediate_dense"
            )
            self._conv1d(assignment, f"{source}.mlp.c_proj", f"{target}/feedforward/output_dense")
            for buffer in ("attn.bias", "attn.masked_bias"):
                if f"{source}.{buffer}" in self.tensors:
                    self.tensors.skip(
                        [f"{source}.{buffer}"], "a causal-mask constant that keras_seq computes"
                    )
        self.layer_norm(assignment, f"{prefix}ln_f", "layer_norm")

    def task_tensors(self):
        return ["lm_head.weight"] if "lm_head.weight" in self.tensors else []

    def task_config(self):
        return {
            "generation_defaults": transformers_generation_defaults(
                self.transformers_generation_config(), self.directory, encoder_decoder=False
            )
        }

    def has_head(self, task_cls=None):
        return True  # The language-model head is the (tied) token embedding.

    def tokenizer(self):
        return gpt2_tokenizer(self.directory)

    def load_task(self, assignment, new_head):
        if "lm_head.weight" in self.tensors:
            # Stored although tied: it must be the token embedding itself.
            head = self.tensors.take("lm_head.weight")
            embedding = np.asarray(assignment.model.backbone.token_embedding.embeddings)
            if head.shape != embedding.shape or not np.array_equal(head, embedding):
                raise ValueError(
                    f"The checkpoint in {self.directory} has an `lm_head.weight` that differs "
                    "from its token embedding; keras_seq's GPTCausalLM ties them, as GPT-2 does."
                )


def gpt2_tokenizer(directory):
    """keras-hub's `GPT2Tokenizer` (byte-level BPE; it gives Hugging Face's ids, checked on
    the fixtures' strings) from `vocab.json` and `merges.txt`, or from the vocabulary and
    merges inside a fast tokenizer's `tokenizer.json` (all transformers 5 writes); `None`
    when the directory has neither."""
    vocabulary_path = os.path.join(directory, "vocab.json")
    merges_path = os.path.join(directory, "merges.txt")
    if os.path.exists(vocabulary_path) and os.path.exists(merges_path):
        return GPT2Tokenizer(
            vocabulary=vocabulary_path, merges=merges_path, name="tokenizer"
        )
    fast_path = os.path.join(directory, "tokenizer.json")
    if not os.path.exists(fast_path):
        return None
    with open(fast_path, encoding="utf-8") as file:
        model = json.load(file).get("model", {})
    if model.get("type") != "BPE" or "vocab" not in model or "merges" not in model:
        raise ValueError(
            f"{fast_path} is not a byte-level BPE tokenizer (model type "
            f"{model.get('type')!r}); GPT-2 checkpoints use one."
        )
    merges = [" ".join(merge) if isinstance(merge, list) else merge for merge in model["merges"]]
    return GPT2Tokenizer(
        vocabulary=model["vocab"], merges=merges, name="tokenizer"
    )
