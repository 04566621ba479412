"""Text samples of a generative model during training, written to TensorBoard.

TensorFlow (`tf.summary`) is imported where the logs are written, not with the module, so
that `import keras_seq` works without TensorFlow on the JAX and PyTorch backends.
"""

import os

import keras
import numpy as np

from keras_seq.api import keras_seq_export
from keras_seq.utils.validation import validate_positive_int

# Arguments of `generate` that the callback sets itself or whose output it cannot log.
RESERVED_GENERATE_ARGUMENTS = ("inputs", "max_new_tokens", "return_scores")
TAG = "generation/samples"


def join_token_ids(token_ids):
    """The default `detokenize`: the ids written out, separated by spaces."""
    return " ".join(str(int(token)) for token in token_ids)


@keras_seq_export
class GenerationLogger(keras.callbacks.Callback):
    """Writes text generated from fixed prompts to TensorBoard every few epochs.

    Every `every_n_epochs` epochs the callback calls `model.generate(prompts,
    max_new_tokens, **generate_kwargs)`, passes each row of token ids through `detokenize`
    and writes the texts as one `tf.summary.text` (a list, shown as a table with one row
    per prompt) under the tag `generation/samples` in `log_dir/generation`, at step
    `epoch` (0-based, the step of Keras' `TensorBoard` epoch scalars). It works with every
    keras_seq generative model (`GPTCausalLM`, `RNNCausalLM`, `RNNSeq2SeqLM`,
    `TransformerSeq2SeqLM`, `RNNImageCaptioner`, `TransformerImageCaptioner`) and any model
    with a `generate(inputs, max_new_tokens, **options)` method returning int token ids
    `(batch_size, length)`; `keras_seq.generation.generate` lists the decoding options. A
    language model's output starts with its prompt. With sampling strategies pass a `seed`
    so that epochs compare on the same randomness.

    Generation runs outside the training step, through the model's compiled decoding
    function (compiled once per configuration, with XLA by default: the first log pays the
    compilation). TensorBoard renders the texts as Markdown.

    Args:
        log_dir: str or path. TensorBoard log directory (the one given to
            `keras.callbacks.TensorBoard`); the texts go to its `generation` subdirectory.
        prompts: what the model's `generate` takes as `inputs`: prompt token ids
            `(batch_size, prompt_length)` of a language model, the source ids of a seq2seq
            model, images of a captioner.
        max_new_tokens: int. Number of tokens to generate per prompt.
        detokenize: callable or `None`. Maps one row of token ids (a 1-D int32 NumPy array)
            to its text (`str`, or UTF-8 `bytes` / a string tensor such as a keras_hub
            tokenizer's `detokenize` returns). `None` writes the ids separated by spaces.
            Defaults to `None`.
        every_n_epochs: int. Write after every this many epochs. Defaults to `1`.
        generate_kwargs: dict or `None`. Further arguments of `generate`: `strategy`,
            `temperature`, `top_k`, `top_p`, `num_beams`, `length_penalty`,
            `stop_token_id`, `pad_token_id`, `seed`, `jit_compile`; not `inputs`,
            `max_new_tokens` or `return_scores`. Defaults to `None` (greedy decoding).

    Raises:
        TypeError: when training starts on a model without a `generate` method.

    Example:
    ```python
    import tempfile

    vocabulary = ["<pad>", "the", "cat", "sat", "on", "mat"]
    model = keras_seq.models.RNNCausalLM(
        keras_seq.models.RNNBackbone(
            vocabulary_size=len(vocabulary), embedding_dim=4, hidden_dim=8
        )
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tokens = np.array([[1, 2, 3, 4, 1, 5]] * 4)
    logger = keras_seq.callbacks.GenerationLogger(
        log_dir=tempfile.mkdtemp(),
        prompts=tokens[:2, :2],
        max_new_tokens=3,
        detokenize=lambda ids: " ".join(vocabulary[i] for i in ids),
    )
    model.fit(tokens[:, :-1], tokens[:, 1:], epochs=1, callbacks=[logger], verbose=0)
    texts = logger.samples()  # ["the cat ...", "the cat ..."]: the prompt, 3 new words
    ```
    """

    def __init__(
        self,
        log_dir,
        prompts,
        max_new_tokens,
        detokenize=None,
        every_n_epochs=1,
        generate_kwargs=None,
    ):
        if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
            raise TypeError(
                f"`log_dir` must be a non-empty str or path. Received: log_dir={log_dir!r}"
            )
        if prompts is None:
            raise ValueError(
                "`prompts` must be the inputs of the model's `generate` (e.g. prompt token "
                "ids `(batch_size, prompt_length)`). Received: prompts=None"
            )
        validate_positive_int("max_new_tokens", max_new_tokens)
        if detokenize is not None and not callable(detokenize):
            raise TypeError(
                "`detokenize` must be a callable mapping token ids to a str, or None. "
                f"Received: detokenize={detokenize!r} of type {type(detokenize).__name__}"
            )
        validate_positive_int("every_n_epochs", every_n_epochs)
        if generate_kwargs is not None:
            if not isinstance(generate_kwargs, dict) or not all(
                isinstance(key, str) for key in generate_kwargs
            ):
                raise TypeError(
                    "`generate_kwargs` must be a dict of `generate` arguments by name, or "
                    f"None. Received: generate_kwargs={generate_kwargs!r}"
                )
            reserved = sorted(set(generate_kwargs) & set(RESERVED_GENERATE_ARGUMENTS))
            if reserved:
                raise ValueError(
                    f"`generate_kwargs` must not set {reserved}: the callback passes "
                    "`prompts` and `max_new_tokens` itself and logs token ids only. "
                    f"Received: generate_kwargs={generate_kwargs!r}"
                )
        super().__init__()
        self.log_dir = log_dir
        self.prompts = prompts
        self.max_new_tokens = max_new_tokens
        self.detokenize = detokenize
        self.every_n_epochs = every_n_epochs
        self.generate_kwargs = generate_kwargs
        self._writer = None

    def _check_model(self):
        if not callable(getattr(self.model, "generate", None)):
            raise TypeError(
                "GenerationLogger needs a model with a `generate(inputs, max_new_tokens, "
                "**options)` method, as keras_seq's generative models have (GPTCausalLM, "
                "RNNCausalLM, RNNSeq2SeqLM, ...). Received: model "
                f"'{self.model.name}' of type {type(self.model).__name__}, which has none"
            )

    def _text(self, token_ids):
        if self.detokenize is None:
            return join_token_ids(token_ids)
        text = self.detokenize(token_ids)
        if not isinstance(text, (str, bytes)):
            value = np.asarray(text) if hasattr(text, "shape") else None
            if value is None or value.shape != () or value.dtype.kind not in "SUO":
                raise TypeError(
                    "`detokenize` must return a str (or UTF-8 bytes, or a scalar string "
                    f"tensor). Received: {text!r} of type {type(text).__name__} for token "
                    f"ids {token_ids.tolist()}"
                )
            text = value.item()
        return text.decode("utf-8") if isinstance(text, bytes) else text

    def samples(self):
        """Generate from `prompts` now; return the list of texts, one per prompt."""
        self._check_model()
        token_ids = self.model.generate(
            self.prompts, self.max_new_tokens, **(self.generate_kwargs or {})
        )
        token_ids = np.asarray(token_ids, dtype="int32")  # (B, length)
        return [self._text(row) for row in token_ids]

    def log_samples(self, step):
        """Generate from `prompts` and write the texts at `step`."""
        import tensorflow as tf

        texts = self.samples()
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(os.fspath(self.log_dir), "generation")
            )
        with self._writer.as_default():
            tf.summary.text(TAG, tf.constant(texts, dtype=tf.string), step=step)
        self._writer.flush()

    def get_config(self):
        # Registration needs a config; `prompts` (arrays) and `detokenize` (a callable) are
        # left out, so this describes the callback rather than rebuilding it, as callbacks
        # are never saved in models.
        return {
            "log_dir": os.fspath(self.log_dir),
            "max_new_tokens": self.max_new_tokens,
            "every_n_epochs": self.every_n_epochs,
            "generate_kwargs": self.generate_kwargs,
        }

    def on_train_begin(self, logs=None):
        self._check_model()  # Fails before the first epoch, not after it.

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self.log_samples(step=epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
