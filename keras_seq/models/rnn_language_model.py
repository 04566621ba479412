"""A recurrent language model: token embedding, stacked recurrent layers, per-step readout.

Letter legend for shape comments: B batch, T time steps, E `embedding_dim`, H `hidden_dim`,
V `vocabulary_size`.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.legacy_generative_model import GenerativeModel
from keras_seq.models.recurrent_stack import as_state_list
from keras_seq.models.recurrent_stack import cell_argument
from keras_seq.models.recurrent_stack import make_cell
from keras_seq.models.rnn_language_model_presets import RNN_LANGUAGE_MODEL_PRESETS
from keras_seq.utils.masks import strip_keras_mask
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


@keras_seq_export
class RNNLanguageModel(GenerativeModel):
    """Recurrent language model: predicts the next token at every step (many-to-many).

    Token ids are embedded, run through `num_layers` stacked recurrent layers
    (`keras.layers.RNN` over one cell per layer, `return_sequences=True`) and projected onto
    the vocabulary at every step, as in the char-RNN and the word-level models of Zaremba et
    al. (2014): `dropout` applies to the embeddings, between layers and before the readout,
    never on the recurrent connections (give the cell a `recurrent_dropout` for that).
    Train it with `fit` on `(token_ids[:, :-1], token_ids[:, 1:])` and
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`, a loss at every step;
    generate with `generate()` (greedy, beam, sampling), which steps every layer's cell once
    per new token from the states left by the prompt.

    Padding: with `mask_zero=True` (the default), id 0 is padding. Padded steps are skipped
    by every recurrent layer (they keep their states and repeat their last output), so
    prompts may be left-padded with 0 to share a length. With `tie_weights=False` the
    Keras mask of the inputs reaches the logits, where `fit` leaves padded steps out of the
    loss (Keras' `ReversibleEmbedding`, the tied readout, drops it). Pass `ignore_class=0`
    to the loss to leave out padding targets in either case. With `mask_zero=False`, 0 is
    an ordinary token.

    Args:
        vocabulary_size: int. Number of token ids.
        embedding_dim: int. Width of the token embeddings E.
        hidden_dim: int. Units of every recurrent layer H.
        num_layers: int. Number of stacked recurrent layers. Defaults to `1`.
        cell: the recurrent cell of every layer: a name (`"lstm"`, `"gru"`, `"elman"`, or a
            registered `"package>ClassName"`) built with `hidden_dim` units and the model's
            dtype, or a config dict or an instance of a cell with `hidden_dim` outputs that
            follows the Keras cell protocol (see `keras_seq.layers.get_cell`). Each layer
            gets its own cell made from the config; an instance is stored as its config.
            Defaults to `"lstm"`.
        dropout: float in [0, 1). Dropout rate of the embeddings and of the outputs of
            every recurrent layer. Defaults to `0.0`.
        mask_zero: bool. Treat id 0 as padding (see above). Defaults to `True`.
        tie_weights: bool. Use the transposed embedding matrix as the readout (Press & Wolf,
            2017), without a bias; needs `embedding_dim == hidden_dim`. Defaults to `False`
            (a `Dense` readout with a bias).
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: int `(batch_size, sequence_length)` token ids.
        training: bool or `None`; enables dropout.

    Returns:
        Logits `(batch_size, sequence_length, vocabulary_size)`, unnormalised scores of the
        token that follows each position (use `from_logits=True` in losses and metrics).

    Generation:
        `prefill(token_ids, max_new_tokens)` runs the prompt `(batch_size, prompt_length)`
        (`prompt_length >= 1`) through the stack; its cache is `{"states": [...],
        "output": ...}`: for each layer the list of its cell's states, each `(batch_size,
        state_size)`, and the last output of the top layer `(batch_size, hidden_dim)`.
        `call_with_cache` steps every layer's cell once; with `mask_zero=True` a 0 token
        keeps the cache unchanged, exactly as the full model skips it, so cached decoding
        equals running the model on the growing sequence.

    Example:
    ```python
    model = keras_seq.models.RNNLanguageModel(
        vocabulary_size=30, embedding_dim=16, hidden_dim=32, num_layers=2
    )
    token_ids = np.random.randint(1, 30, size=(4, 12))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(token_ids[:, :-1], token_ids[:, 1:], epochs=1, verbose=0)
    logits = model(token_ids)  # (4, 12, 30)
    generated = model.generate(token_ids[:, :3], max_new_tokens=5)  # (4, 8)
    ```

    References:
        - [Mikolov et al., 2010](https://www.isca-archive.org/interspeech_2010/mikolov10_interspeech.html)
        - [Zaremba et al., 2014](https://arxiv.org/abs/1409.2329)
        - [Press & Wolf, 2017](https://arxiv.org/abs/1608.05859)
    """

    presets = RNN_LANGUAGE_MODEL_PRESETS

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        hidden_dim,
        num_layers=1,
        cell="lstm",
        dropout=0.0,
        mask_zero=True,
        tie_weights=False,
        **kwargs,
    ):
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("embedding_dim", embedding_dim),
            ("hidden_dim", hidden_dim),
            ("num_layers", num_layers),
        ):
            validate_positive_int(name, value)
        validate_rate("dropout", dropout)
        validate_bool("mask_zero", mask_zero)
        validate_bool("tie_weights", tie_weights)
        if tie_weights and embedding_dim != hidden_dim:
            raise ValueError(
                "`tie_weights=True` reads out with the transposed embedding matrix, so "
                "`embedding_dim` must equal `hidden_dim`. Received: "
                f"embedding_dim={embedding_dim}, hidden_dim={hidden_dim}"
            )
        cell = cell_argument(cell)
        dtype = kwargs.get("dtype")

        # === Layers ===
        if tie_weights:
            policy = (
                keras.config.dtype_policy() if dtype is None else keras.dtype_policies.get(dtype)
            )
            token_embedding = keras.layers.ReversibleEmbedding(
                vocabulary_size,
                embedding_dim,
                tie_weights=True,
                mask_zero=mask_zero,
                # Embedding sets autocast=False: inside a model whose own policy is mixed, its
                # table stays float32 and the reverse projection would return float32 logits
                # (called alone it is autocast, float16): cast both sides explicitly.
                reverse_dtype=policy.compute_dtype,
                dtype=dtype,
                name="token_embedding",
            )
            output_dense = None
        else:
            token_embedding = keras.layers.Embedding(
                vocabulary_size,
                embedding_dim,
                mask_zero=mask_zero,
                dtype=dtype,
                name="token_embedding",
            )
            output_dense = keras.layers.Dense(vocabulary_size, dtype=dtype, name="output_dense")
        recurrent_layers = [
            keras.layers.RNN(
                make_cell(cell, hidden_dim, dtype, name=f"recurrent_layer_{index}_cell"),
                return_sequences=True,
                return_state=True,
                dtype=dtype,
                name=f"recurrent_layer_{index}",
            )
            for index in range(num_layers)
        ]
        # Dropout before every recurrent layer and before the readout (Zaremba et al.).
        dropout_layers = [
            keras.layers.Dropout(dropout, dtype=dtype, name=f"dropout_{index}")
            for index in range(num_layers + 1)
        ]

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        x = token_embedding(token_ids)  # (B, T, E), masked where the id is 0
        for recurrent_layer, dropout_layer in zip(recurrent_layers, dropout_layers):
            x = recurrent_layer(dropout_layer(x))[0]  # (B, T, H)
        x = dropout_layers[-1](x)
        if tie_weights:
            logits = token_embedding(x, reverse=True)  # (B, T, V)
        else:
            logits = output_dense(x)  # (B, T, V)
        super().__init__(inputs=token_ids, outputs=logits, **kwargs)

        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        # Past Keras' attribute tracking, which would wrap a config dict in a TrackedDict:
        # the argument stays the plain JSON value that get_config() returns.
        object.__setattr__(self, "cell", cell)
        self.dropout = dropout
        self.mask_zero = mask_zero
        self.tie_weights = tie_weights
        self.token_embedding = token_embedding
        self.recurrent_layers = recurrent_layers
        self.dropout_layers = dropout_layers
        self.output_dense = output_dense

    def _readout(self, outputs):
        if self.tie_weights:
            return self.token_embedding(outputs, reverse=True)
        return self.output_dense(outputs)

    # === Generation protocol (keras_seq.generation.protocol) ===

    def prefill(self, inputs, max_new_tokens):
        token_ids = ops.cast(inputs, "int32")  # (B, T)
        if len(token_ids.shape) != 2 or token_ids.shape[1] == 0:
            raise ValueError(
                "`inputs` must be prompt token ids `(batch_size, prompt_length)` with "
                f"prompt_length >= 1. Received: inputs.shape={tuple(token_ids.shape)}"
            )
        mask = ops.not_equal(token_ids, 0) if self.mask_zero else None  # (B, T)
        x = self.token_embedding(token_ids)  # (B, T, E)
        states = []
        for recurrent_layer in self.recurrent_layers:
            x, *layer_states = recurrent_layer(x, mask=mask, training=False)  # (B, T, H)
            states.append(list(layer_states))
        output = x[:, -1]  # (B, H): the last real step's output (padded steps repeat it)
        cache = {"states": states, "output": output}
        return token_ids, self._readout(output), cache

    def call_with_cache(self, token_ids, cache, index):
        token_ids = ops.cast(token_ids, "int32")  # (B,)
        x = self.token_embedding(token_ids)  # (B, E)
        strip_keras_mask(x)  # A cell steps every token; padding is handled below.
        new_states = []
        for recurrent_layer, states in zip(self.recurrent_layers, cache["states"]):
            x, states = recurrent_layer.cell(x, list(states), training=False)  # (B, H)
            new_states.append(as_state_list(states))
        output = x
        if self.mask_zero:
            # A padding token is skipped: every state and the last output stay as they were.
            keep = ops.not_equal(token_ids, 0)[:, None]  # (B, 1)
            new_states = [
                [
                    ops.where(keep, ops.cast(new, old.dtype), old)
                    for new, old in zip(layer, old_layer)
                ]
                for layer, old_layer in zip(new_states, cache["states"])
            ]
            output = ops.where(keep, ops.cast(output, cache["output"].dtype), cache["output"])
        return self._readout(output), {"states": new_states, "output": output}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "cell": self.cell,
                "dropout": self.dropout,
                "mask_zero": self.mask_zero,
                "tie_weights": self.tie_weights,
            }
        )
        return config
