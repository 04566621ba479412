"""RNNCausalLM: a next-token readout (tied embedding or `Dense`) on an `RNNBackbone`.

Letter legend for shape comments: B batch, T time steps, H `hidden_dim`, V vocabulary.
"""

import inspect

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.generative_model import GenerativeTask
from keras_seq.models.generative_model import split_prompt_inputs
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.utils.validation import validate_bool


def _is_rnn_backbone(model):
    try:
        inputs = model.input
    except (AttributeError, ValueError):  # A model without a functional graph.
        return False
    return not isinstance(inputs, (dict, list, tuple)) and all(
        hasattr(model, name)
        for name in ("vocabulary_size", "hidden_dim", "prefill", "call_with_cache")
    )


def _projects_in_reverse(layer):
    return layer is not None and "reverse" in inspect.signature(layer.call).parameters


@keras_seq_export
class RNNCausalLM(GenerativeTask):
    """Recurrent language model: predicts the next token at every step (many-to-many).

    The backbone's outputs at every step are projected onto the vocabulary: by a `Dense`
    layer with a bias (the default), or with `tie_weights=True` by the transposed token
    embedding (Press & Wolf, 2017). Train it with `fit` on `(token_ids[:, :-1],
    token_ids[:, 1:])` and `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`, a
    loss at every step; generate with `generate()` (greedy, beam, sampling), which steps
    every layer's cell once per new token from the states left by the prompt.

    Padding (backbone with `mask_zero=True`): id 0 is padding, skipped by every recurrent
    layer, so prompts may be left-padded with 0 to share a length. With `tie_weights=False`
    the Keras mask of the inputs reaches the logits, where `fit` leaves padded steps out of
    the loss (the tied readout, a `ReversibleEmbedding` in reverse, drops it). Pass
    `ignore_class=0` to the loss to leave out padding targets in either case.

    Args:
        backbone: an `RNNBackbone`, or its config from `keras.saving.serialize_keras_object`.
            Any backbone with the same interface plugs in: a single int input `(batch_size,
            sequence_length)`, outputs `(batch_size, sequence_length, hidden_dim)`, the
            attributes `vocabulary_size` and `hidden_dim`, and the `prefill` /
            `call_with_cache` methods of `RNNBackbone`; with `tie_weights=True`, also an
            `embedding_dim` equal to `hidden_dim` and a `token_embedding` that projects onto
            the vocabulary with `reverse=True`. Its weights are shared, not copied.
        tie_weights: bool. Read out with the transposed embedding matrix, without a bias;
            needs `embedding_dim == hidden_dim`. Defaults to `False` (a `Dense` readout with
            a bias).
        **kwargs: `generation_defaults` (a dict of `generate()` arguments used when a call
            leaves them out, saved with the model; `from_preset` sets it from a
            checkpoint's generation config) and base model arguments (`name`, `dtype`);
            `dtype` defaults to the backbone's dtype policy.

    Call arguments:
        inputs: int `(batch_size, sequence_length)` token ids.
        training: bool or `None`; enables the backbone's dropout.

    Returns:
        Logits `(batch_size, sequence_length, vocabulary_size)`, unnormalised scores of the
        token that follows each position (use `from_logits=True` in losses and metrics).

    Generation:
        `prefill(token_ids, max_new_tokens)` runs the prompt `(batch_size, prompt_length)`
        (`prompt_length >= 1`) through the backbone (`RNNBackbone.prefill`), whose cache
        holds every layer's cell states; `call_with_cache` steps every cell once
        (`RNNBackbone.call_with_cache`), so cached decoding equals running the model on the
        growing sequence, 0 tokens included.

    Example:
    ```python
    model = keras_seq.models.RNNCausalLM(
        keras_seq.models.RNNBackbone(
            vocabulary_size=30, embedding_dim=16, hidden_dim=32, num_layers=2
        )
    )
    token_ids = np.random.randint(1, 30, size=(4, 12))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(token_ids[:, :-1], token_ids[:, 1:], epochs=1, verbose=0)
    logits = model(token_ids)  # (4, 12, 30)
    generated = model.generate(token_ids[:, :3], max_new_tokens=5)  # (4, 8)
    assert generated.shape == (4, 8)
    ```

    References:
        - [Mikolov et al., 2010](https://www.isca-archive.org/interspeech_2010/mikolov10_interspeech.html)
        - [Zaremba et al., 2014](https://arxiv.org/abs/1409.2329)
        - [Press & Wolf, 2017](https://arxiv.org/abs/1608.05859)
    """

    # `GenerativeTask`'s argument, taken through `**kwargs` (see `constructor_arguments`).
    forwarded_arguments = ("generation_defaults",)
    pads_prompts_left = True

    backbone_cls = RNNBackbone

    def __init__(self, backbone, tie_weights=False, **kwargs):
        backbone = self.resolve_backbone(
            backbone, _is_rnn_backbone, "an RNNBackbone (or a backbone with its interface)"
        )
        validate_bool("tie_weights", tie_weights)
        if tie_weights:
            embedding_dim = getattr(backbone, "embedding_dim", None)
            if embedding_dim != backbone.hidden_dim:
                raise ValueError(
                    "`tie_weights=True` reads out with the transposed embedding matrix, so "
                    "the backbone's `embedding_dim` must equal `hidden_dim`. Received: "
                    f"embedding_dim={embedding_dim}, hidden_dim={backbone.hidden_dim}"
                )
            if not _projects_in_reverse(getattr(backbone, "token_embedding", None)):
                raise TypeError(
                    "`tie_weights=True` needs a `backbone` whose `token_embedding` projects "
                    "onto the vocabulary with `reverse=True` (a keras.layers."
                    "ReversibleEmbedding, as RNNBackbone's). Received: token_embedding="
                    f"{getattr(backbone, 'token_embedding', None)!r}"
                )
        kwargs.setdefault("dtype", backbone.dtype_policy)

        # === Layers ===
        output_dense = None
        if not tie_weights:
            output_dense = keras.layers.Dense(
                backbone.vocabulary_size, dtype=kwargs["dtype"], name="output_dense"
            )

        # === Functional model ===
        inputs = backbone.input
        outputs = backbone(inputs)  # (B, T, H)
        if tie_weights:
            # In the compute dtype of this model, whatever the backbone's policy.
            logits = ops.cast(
                backbone.token_embedding(outputs, reverse=True),
                keras.dtype_policies.get(kwargs["dtype"]).compute_dtype,
            )  # (B, T, V)
        else:
            logits = output_dense(outputs)  # (B, T, V), masked where the id is 0
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.tie_weights = tie_weights
        self.output_dense = output_dense

    def _readout(self, outputs):
        if self.tie_weights:
            return self.backbone.token_embedding(outputs, reverse=True)
        return self.output_dense(outputs)

    # === Generation protocol (keras_seq.generation.protocol) ===

    def prefill(self, inputs, max_new_tokens):
        # A dict holds prompts padded on the left (`generate` pads lists of prompts).
        inputs, padding_mask = split_prompt_inputs(inputs, type(self).__name__)
        token_ids = ops.cast(inputs, "int32")  # (B, T)
        if len(token_ids.shape) != 2 or token_ids.shape[1] == 0:
            raise ValueError(
                "`inputs` must be prompt token ids `(batch_size, prompt_length)` with "
                f"prompt_length >= 1. Received: inputs.shape={tuple(token_ids.shape)}"
            )
        _, cache = self.backbone.prefill(token_ids, padding_mask=padding_mask)
        return token_ids, self._readout(cache["output"]), cache

    def call_with_cache(self, token_ids, cache, index):
        output, cache = self.backbone.call_with_cache(token_ids, cache)  # (B, H)
        return self._readout(output), cache

    def get_config(self):
        return {**super().get_config(), "tie_weights": self.tie_weights}
