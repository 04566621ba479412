"""GPT2Tokenizer: keras-hub's byte-level BPE `GPT2Tokenizer`, with Python strings tokenized
by Hugging Face's Rust BPE."""

import keras_hub

from keras_seq.api import keras_seq_export
from keras_seq.models.fast_tokenization import FastPythonStrings


@keras_seq_export
class GPT2Tokenizer(FastPythonStrings, keras_hub.models.GPT2Tokenizer):
    """GPT-2's byte-level BPE tokenizer (keras-hub's `GPT2Tokenizer`, same arguments).

    What this adds: Python strings outside a graph (`tokenizer("text")`, `tokenize([...])`)
    go through Hugging Face's Rust `tokenizers` BPE built on the same vocabulary and merges
    (byte-level pre-tokenizer, `<|endoftext|>` kept whole as keras-hub keeps its unsplittable
    tokens), which gives the same ids as keras-hub's and Hugging Face's GPT-2 tokenizers
    (checked against the test fixture's `tokenizer.json` and on the benchmark corpus) at
    the speed of Hugging Face's fast tokenizer. Tensors and `tf.data` pipelines use
    keras-hub's TensorFlow ops; `detokenize` is keras-hub's.

    Example:
    ```python
    vocabulary = {"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3, "Ġ": 4, "Ġab": 5}
    tokenizer = keras_seq.models.GPT2Tokenizer(vocabulary, ["a b", "Ġ ab"])
    assert tokenizer.tokenize(["ab ab"]) == [[3, 5]]
    ```
    """

    def build_fast_tokenizer(self):
        """Hugging Face's byte-level BPE on this vocabulary and these merges."""
        from tokenizers import Tokenizer
        from tokenizers import models
        from tokenizers import pre_tokenizers

        merges = [
            tuple(merge.split(" "))
            for merge in self.merges
            if merge and not merge.startswith("#version")
        ]
        fast = Tokenizer(models.BPE(dict(self.vocabulary), merges))
        fast.pre_tokenizer = pre_tokenizers.ByteLevel(
            add_prefix_space=bool(self.add_prefix_space), use_regex=True
        )
        fast.add_special_tokens(
            [token for token in self.unsplittable_tokens if token in self.vocabulary]
        )
        return fast

    def tokenize(self, inputs):
        fast = self.tokenize_python_strings(inputs)
        return super().tokenize(inputs) if fast is None else fast
