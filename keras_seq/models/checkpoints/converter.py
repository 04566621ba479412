"""Converter: the base of the per-family, per-format checkpoint converters."""

import json
import os
import warnings

import numpy as np


class Converter:
    """Reads one foreign checkpoint format into one keras_seq family (not exported).

    A subclass per family and format (`ViTTransformersConverter`, ...) sets `source`
    (`"transformers"`, `"timm"` or `"keras_hub"`), `model_types` (the transformers
    `model_type`s, the timm architecture prefixes, or the keras-hub `registered_name`s such
    as `"keras_hub>ViTBackbone"` it reads) and implements:

    - `backbone_config()`: the backbone's constructor arguments from the checkpoint's config
      (and tensor shapes); a config field the model cannot represent is a `ValueError`
      naming it.
    - `load_backbone(assignment)`: take every backbone tensor from `self.tensors` and set
      it through `assignment` (a `WeightAssignment` of the backbone).
    - `task_tensors()`: the names of the tensors outside the backbone (empty when the
      checkpoint has no task head), `task_config()` (the task's arguments, e.g.
      `num_classes`) and `load_task(assignment, new_head)`: set the task's own variables;
      with `new_head` (the user passed `num_classes`), skip the class head's tensors and
      `assignment.leave` its variables (they keep their fresh initialization).
    - `skipped_tensors()`: `{name: reason}` of tensors that belong to no keras_seq model (a
      pooler no task uses); each is logged when skipped.
    - `label_names()`, `preprocessor()` and `tokenizer()`: the checkpoint's class names, its
      `ImagePreprocessor` and its tokenizer, or `None`; `has_head()` whether it holds the
      task's head.

    `free_arguments` lists the backbone arguments an override may change without
    contradicting the checkpoint (dropout rates, the image size); any other override that
    differs from the checkpoint's value is a `ValueError`.
    """

    source = None
    model_types = ()
    free_arguments = ("dropout", "attention_dropout", "drop_path_rate", "name", "dtype")

    def __init__(self, directory, config, tensors):
        self.directory = directory
        self.config = config
        self.tensors = tensors

    @classmethod
    def matches(cls, source, config):
        if cls.source == "keras_hub":
            return source == "keras" and config.get("registered_name") in cls.model_types
        if source != cls.source:
            return False
        if source == "transformers":
            return config.get("model_type") in cls.model_types
        return any(str(config.get("architecture")).startswith(p) for p in cls.model_types)

    def backbone_config(self):
        raise NotImplementedError

    def load_backbone(self, assignment):
        raise NotImplementedError

    def task_tensors(self):
        return []

    def task_config(self):
        return {}

    def has_head(self, task_cls=None):
        """Whether the checkpoint holds the head of `task_cls` (default: a classifier's,
        i.e. `task_config()` knows `num_classes`)."""
        return "num_classes" in self.task_config()

    def load_task(self, assignment, new_head):
        raise NotImplementedError

    def replace_head(self, assignment, tensor_names, variable_prefix):
        """The new-head path: skip the checkpoint's head tensors, leave our head's variables."""
        self.tensors.skip(tensor_names, "the class head, replaced by a new one (num_classes)")
        assignment.leave(variable_prefix, "a new head")

    def skipped_tensors(self):
        return {}

    def label_names(self):
        return None

    def preprocessor(self):
        return None

    def tokenizer(self):
        return None

    # === Helpers shared by converters (PyTorch layouts -> Keras layouts) ===

    def dense(self, assignment, source, target, use_bias=True):
        """A torch `Linear` `(out, in)` -> a Keras `Dense` kernel `(in, out)` and bias."""
        assignment.set(f"{target}/kernel", self.tensors.take(f"{source}.weight").T, source)
        if use_bias:
            assignment.set(f"{target}/bias", self.tensors.take(f"{source}.bias"), source)

    def layer_norm(self, assignment, source, target):
        assignment.set(f"{target}/gamma", self.tensors.take(f"{source}.weight"), source)
        assignment.set(f"{target}/beta", self.tensors.take(f"{source}.bias"), source)

    def conv(self, assignment, source, target, use_bias=True):
        """A torch `Conv2d` `(out, in, kh, kw)` -> a Keras `Conv2D` kernel `(kh, kw, in, out)`."""
        kernel = self.tensors.take(f"{source}.weight").transpose(2, 3, 1, 0)
        assignment.set(f"{target}/kernel", kernel, source)
        if use_bias:
            assignment.set(f"{target}/bias", self.tensors.take(f"{source}.bias"), source)

    def batch_norm(self, assignment, source, target):
        """A torch `BatchNorm2d` (weight, bias, running mean and variance) -> Keras'."""
        for ours, theirs in (
            ("gamma", "weight"),
            ("beta", "bias"),
            ("moving_mean", "running_mean"),
            ("moving_variance", "running_var"),
        ):
            assignment.set(f"{target}/{ours}", self.tensors.take(f"{source}.{theirs}"), source)
        if f"{source}.num_batches_tracked" in self.tensors:
            self.tensors.skip(
                [f"{source}.num_batches_tracked"], "a training counter with no effect on outputs"
            )

    def attention_projections(self, assignment, sources, target, num_heads):
        """Separate torch query / key / value / output `Linear`s -> our attention's
        `EinsumDense` kernels (`sources`: four names, output last)."""
        query, key, value, output = sources
        for name, source in (("query", query), ("key", key), ("value", value)):
            kernel = self.tensors.take(f"{source}.weight").T  # (C, N * H)
            channels = kernel.shape[0]
            assignment.set(
                f"{target}/{name}_dense/kernel",
                kernel.reshape(channels, num_heads, -1),
                source,
            )
            bias = self.tensors.take(f"{source}.bias")
            assignment.set(f"{target}/{name}_dense/bias", bias.reshape(num_heads, -1), source)
        kernel = self.tensors.take(f"{output}.weight").T  # (N * H, C)
        assignment.set(
            f"{target}/output_dense/kernel", kernel.reshape(num_heads, -1, kernel.shape[1]), output
        )
        assignment.set(f"{target}/output_dense/bias", self.tensors.take(f"{output}.bias"), output)

    def fused_attention_projections(self, assignment, source, target, num_heads):
        """timm's fused `qkv` `(3 * C, C)` and `proj` -> our attention's `EinsumDense`s."""
        kernel = self.tensors.take(f"{source}.qkv.weight")
        bias = self.tensors.take(f"{source}.qkv.bias")
        channels = kernel.shape[1]
        for name, kernel_part, bias_part in zip(
            ("query", "key", "value"), np.split(kernel, 3), np.split(bias, 3)
        ):
            assignment.set(
                f"{target}/{name}_dense/kernel",
                kernel_part.T.reshape(channels, num_heads, -1),
                f"{source}.qkv",
            )
            assignment.set(
                f"{target}/{name}_dense/bias", bias_part.reshape(num_heads, -1), f"{source}.qkv"
            )
        kernel = self.tensors.take(f"{source}.proj.weight").T
        assignment.set(
            f"{target}/output_dense/kernel",
            kernel.reshape(num_heads, -1, kernel.shape[1]),
            f"{source}.proj",
        )
        assignment.set(
            f"{target}/output_dense/bias", self.tensors.take(f"{source}.proj.bias"), source
        )

    def transformers_image_shape(self):
        """`(height, width, 3)` from a transformers vision config's `image_size` (an int or a
        pair); `ValueError` unless `num_channels` is 3."""
        self.require("num_channels", 3, "RGB images")
        size = self.config.get("image_size", 224)
        height, width = size if isinstance(size, (list, tuple)) else (size, size)
        return (height, width, 3)

    def transformers_generation_config(self):
        """The checkpoint's `generation_config.json` as a dict; without the file, the
        generation fields of `config.json` (what transformers falls back to)."""
        path = os.path.join(self.directory, "generation_config.json")
        if not os.path.exists(path):
            return dict(self.config)
        with open(path, encoding="utf-8") as file:
            return json.load(file)

    def require(self, field, expected, description):
        """`ValueError` if config `field` is present and differs from `expected` (a
        setting the family cannot represent)."""
        value = self.config.get(field, expected)
        if value != expected:
            raise ValueError(
                f"The checkpoint in {self.directory} sets `{field}`={value!r} in its config, "
                f"which keras_seq's model cannot represent ({description}; it supports "
                f"{expected!r})."
            )


def transformers_label_names(config, num_classes):
    """A transformers config's `id2label` as a list of `num_classes` names, or `None` when it
    has only the generic `LABEL_i` names."""
    id2label = config.get("id2label")
    if not id2label:
        return None
    names = [id2label.get(str(index), id2label.get(index)) for index in range(num_classes)]
    if any(name is None for name in names) or len(id2label) != num_classes:
        raise ValueError(
            f"The checkpoint's `id2label` does not name classes 0 to {num_classes - 1} (the "
            f"classifier has {num_classes} outputs). Received: {len(id2label)} entries"
        )
    if names == [f"LABEL_{index}" for index in range(num_classes)]:
        return None
    return [str(name) for name in names]


def timm_label_names(config):
    """timm's `label_names` (hub `config.json`), or `None`."""
    names = config.get("label_names")
    if names is None and isinstance(config.get("pretrained_cfg"), dict):
        names = config["pretrained_cfg"].get("label_names")
    return [str(name) for name in names] if names else None


# Hugging Face generation fields keras_seq's `generate()` has no equivalent of yet, with the
# value that means "off" (https://huggingface.co/docs/transformers/main_classes/text_generation).
_UNSUPPORTED_GENERATION_FIELDS = {
    "encoder_no_repeat_ngram_size": 0,
    "min_length": 0,
    "num_return_sequences": 1,
    "diversity_penalty": 0.0,
    "num_beam_groups": 1,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "begin_suppress_tokens": None,
    "suppress_tokens": None,
    "forced_bos_token_id": None,
}


def transformers_generation_defaults(generation, directory, encoder_decoder):
    """keras_seq `generation_defaults` from a Hugging Face generation config (a dict).

    Beam search (`num_beams > 1`, no sampling) keeps Hugging Face's `length_penalty`
    (default 1.0) and `early_stopping` (default False, its heuristic; "never" becomes our
    "exact" rule); sampling maps to "top_p", "top_k" or "sample" with Hugging Face's defaults
    (top_k 50, top_p 1.0, temperature 1.0). `max_new_tokens` comes from `max_new_tokens`,
    or for an encoder-decoder from `max_length - 1` (Hugging Face counts the decoder start
    token); a decoder-only `max_length` counts the prompt and has no equivalent, so it is
    left out. The end tokens stop generation, filled with the padding token (else the end
    token); `repetition_penalty`, `no_repeat_ngram_size` and `min_new_tokens` carry over. A
    field keras_seq cannot honour yet (beam sampling, `min_length`, ...) is a warning naming
    it: generation runs without it.
    """
    defaults = {}
    ignored = []
    num_beams = int(generation.get("num_beams") or 1)
    if generation.get("do_sample"):
        top_k = generation.get("top_k", 50)
        top_p = generation.get("top_p", 1.0)
        temperature = generation.get("temperature", 1.0)
        if num_beams > 1:
            ignored.append(f"num_beams={num_beams} with do_sample=True (beam sampling)")
        if top_p is not None and top_p < 1.0:
            defaults.update(strategy="top_p", top_p=float(top_p))
            if top_k:
                defaults["top_k"] = int(top_k)
        elif top_k:
            defaults.update(strategy="top_k", top_k=int(top_k))
        else:
            defaults["strategy"] = "sample"
        if temperature is not None:
            defaults["temperature"] = float(temperature)
    elif num_beams > 1:
        early_stopping = generation.get("early_stopping", False)
        defaults.update(
            strategy="beam",
            num_beams=num_beams,
            length_penalty=float(generation.get("length_penalty", 1.0)),
            early_stopping="exact" if early_stopping == "never" else bool(early_stopping),
        )
    else:
        defaults["strategy"] = "greedy"
    if generation.get("max_new_tokens") is not None:
        defaults["max_new_tokens"] = int(generation["max_new_tokens"])
    elif encoder_decoder and generation.get("max_length") is not None:
        defaults["max_new_tokens"] = int(generation["max_length"]) - 1
    end = generation.get("eos_token_id")
    if isinstance(end, (list, tuple)):
        if len(end) > 1:
            defaults["stop_token_ids"] = [int(token) for token in end[1:]]
        end = end[0] if end else None
    if end is not None:
        defaults["stop_token_id"] = int(end)
        pad = generation.get("pad_token_id")
        defaults["pad_token_id"] = int(end if pad is None else pad)
    if generation.get("repetition_penalty") not in (None, 1.0):
        defaults["repetition_penalty"] = float(generation["repetition_penalty"])
    if generation.get("no_repeat_ngram_size"):
        defaults["no_repeat_ngram_size"] = int(generation["no_repeat_ngram_size"])
    if generation.get("min_new_tokens"):
        defaults["min_new_tokens"] = int(generation["min_new_tokens"])
    for field, off in _UNSUPPORTED_GENERATION_FIELDS.items():
        value = generation.get(field)
        if value is not None and value != off and value != []:
            ignored.append(f"{field}={value!r}")
    if ignored:
        warnings.warn(
            f"The generation config in {directory} sets {', '.join(ignored)}, which keras_seq's "
            "generate() does not support yet: generate() runs without them.",
            stacklevel=3,
        )
    return defaults
