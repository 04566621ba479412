"""The eager fast path of keras_seq's tokenizers: Python strings through Hugging Face's Rust
`tokenizers` library, tensors and `tf.data` through keras-hub's TensorFlow ops.

keras-hub's tokenizers run TensorFlow ops (or, for Python strings, pure Python) and pay a
Keras layer call per use, which makes them several times slower than Hugging Face's fast
tokenizers on Python strings (benchmarks/bench_text.py). A tokenizer using this mixin builds,
once, the `tokenizers.Tokenizer` that computes the same ids from the same vocabulary, and
sends Python strings outside a graph to it, returning keras-hub's eager output types (a
NumPy vector for one string, lists of ints for a list). TensorFlow is imported on first use,
so that `import keras_seq` works without it.
"""

import numpy as np

_FAST_ATTRIBUTE = "_keras_seq_fast_tokenizer"


class FastPythonStrings:
    """Mixin for a keras-hub tokenizer: `build_fast_tokenizer()` returns the equivalent
    `tokenizers.Tokenizer` (or `None` where there is none), `special_ids(add)` the ids put
    before and after each text."""

    def build_fast_tokenizer(self):
        raise NotImplementedError

    def special_ids(self, add_special_tokens):
        return [], []

    def fast_tokenizer(self):
        """The fast tokenizer (built on first use; `None` with a fixed `sequence_length`,
        which pads and truncates as keras-hub does)."""
        if getattr(self, "sequence_length", None) is not None:
            return None
        fast = self.__dict__.get(_FAST_ATTRIBUTE)
        if fast is None:
            fast = self.build_fast_tokenizer()
            # Set past Keras' attribute tracking: a cache, not a layer or a config value.
            object.__setattr__(self, _FAST_ATTRIBUTE, fast)
        return fast

    def tokenize_python_strings(self, inputs, add_special_tokens=None):
        """The ids of a Python string or list of strings outside a graph through the fast
        tokenizer, in keras-hub's eager output types; `None` for any other input (the caller
        then runs keras-hub's path)."""
        import tensorflow as tf

        if not tf.executing_eagerly():
            return None
        single = isinstance(inputs, str)
        if not single and not (
            isinstance(inputs, (list, tuple)) and all(isinstance(t, str) for t in inputs)
        ):
            return None
        fast = self.fast_tokenizer()
        if fast is None:
            return None
        prefix, suffix = self.special_ids(add_special_tokens)
        texts = [inputs] if single else list(inputs)
        rows = [
            prefix + encoding.ids + suffix
            for encoding in fast.encode_batch(texts, add_special_tokens=False)
        ]
        if single:
            return np.asarray(rows[0], dtype=self.compute_dtype)
        return rows

    def __call__(self, *args, **kwargs):
        # Python strings outside a graph: straight to the fast tokenizer, without Keras'
        # layer-call machinery (a tokenizer has no weights to build, cast or track).
        if len(args) == 1 and not kwargs:
            fast = self.tokenize_python_strings(args[0])
            if fast is not None:
                return fast
        return super().__call__(*args, **kwargs)
