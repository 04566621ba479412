"""RNNBackbone: token embedding and stacked recurrent layers, the body of a recurrent LM.

Letter legend for shape comments: B batch, T time steps, E `embedding_dim`, H `hidden_dim`.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.backbone import Backbone
from keras_seq.models.recurrent_stack import as_state_list
from keras_seq.models.recurrent_stack import cell_argument
from keras_seq.models.recurrent_stack import make_cell
from keras_seq.models.rnn.rnn_presets import RNN_PRESETS
from keras_seq.utils.masks import strip_keras_mask
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


@keras_seq_export
class RNNBackbone(Backbone):
    """Recurrent backbone: token embedding, then `num_layers` stacked recurrent layers.

    Token ids are embedded and run through `num_layers` stacked recurrent layers
    (`keras.layers.RNN` over one cell per layer, `return_sequences=True`), as in the char-RNN
    and the word-level models of Zaremba et al. (2014); it returns the top layer's output at
    every step. `dropout` applies to the embeddings and to the output of every recurrent
    layer, the returned one included (the input of a readout, as in Zaremba et al.), never
    on the recurrent connections (give the cell a `recurrent_dropout` for that).
    `RNNCausalLM` puts the next-token readout on it.

    Padding: with `mask_zero=True` (the default), id 0 is padding. Padded steps are skipped
    by every recurrent layer (they keep their states and repeat their last output), so
    inputs may be left-padded with 0 to share a length, and the outputs carry the Keras
    mask of the inputs. With `mask_zero=False`, 0 is an ordinary token.

    The token table, `token_embedding`, is a `keras.layers.ReversibleEmbedding`:
    `token_embedding(outputs, reverse=True)` projects onto the vocabulary with the tied
    table (`RNNCausalLM(backbone, tie_weights=True)`). For cached decoding it also offers
    `prefill(token_ids)` and `call_with_cache(token_ids, cache)`, which step the same
    layers' cells over their states.

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
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: int `(batch_size, sequence_length)` token ids.
        training: bool or `None`; enables dropout.

    Returns:
        The top layer's outputs `(batch_size, sequence_length, hidden_dim)`; with
        `mask_zero=True` they carry the Keras mask `token_ids != 0`.

    Cached decoding:
        `prefill(token_ids)` runs int `(batch_size, prompt_length)` through the stack
        (without dropout) and returns `(outputs, cache)`: outputs `(batch_size,
        prompt_length, hidden_dim)` and the cache `{"states": [...], "output": ...}`, for
        each layer the list of its cell's states, each `(batch_size, state_size)`, and the
        top layer's last output `(batch_size, hidden_dim)`. `call_with_cache(token_ids,
        cache)` steps every layer's cell once on int `(batch_size,)` and returns `(output,
        cache)`, output `(batch_size, hidden_dim)`; with `mask_zero=True` a 0 token keeps
        the cache unchanged, exactly as the full pass skips it.

    Example:
    ```python
    backbone = keras_seq.models.RNNBackbone(
        vocabulary_size=30, embedding_dim=16, hidden_dim=32, num_layers=2
    )
    token_ids = np.random.randint(1, 30, size=(4, 12))
    outputs = backbone(token_ids)
    assert outputs.shape == (4, 12, 32)
    ```

    References:
        - [Mikolov et al., 2010](https://www.isca-archive.org/interspeech_2010/mikolov10_interspeech.html)
        - [Zaremba et al., 2014](https://arxiv.org/abs/1409.2329)
    """

    presets = RNN_PRESETS

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        hidden_dim,
        num_layers=1,
        cell="lstm",
        dropout=0.0,
        mask_zero=True,
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
        cell = cell_argument(cell)
        dtype = kwargs.get("dtype")
        check_model_size(
            "RNNBackbone",
            {
                "vocabulary_size": vocabulary_size,
                "embedding_dim": embedding_dim,
                "num_layers": num_layers,
                "hidden_dim": hidden_dim,
            },
            [
                (1, "vocabulary_size", "embedding_dim"),
                (1, "num_layers", "hidden_dim", "hidden_dim"),
            ],
            num_blocks=num_layers,
            dtype=dtype,
        )

        # === Layers ===
        token_embedding = self._make_token_embedding(
            vocabulary_size, embedding_dim, mask_zero, dtype
        )
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
        # Dropout before every recurrent layer and on the top layer's outputs (Zaremba et al.).
        dropout_layers = [
            keras.layers.Dropout(dropout, dtype=dtype, name=f"dropout_{index}")
            for index in range(num_layers + 1)
        ]

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        x = token_embedding(token_ids)  # (B, T, E), masked where the id is 0
        # The mask also goes to the recurrent layers explicitly: the int8 path of Keras'
        # ReversibleEmbedding (3.15) drops the Keras mask after `model.quantize("int8")`.
        mask = ops.not_equal(token_ids, 0) if mask_zero else None  # (B, T)
        for recurrent_layer, dropout_layer in zip(recurrent_layers, dropout_layers):
            x = recurrent_layer(dropout_layer(x), mask=mask)[0]  # (B, T, H)
        outputs = dropout_layers[-1](x)  # (B, T, H)
        super().__init__(inputs=token_ids, outputs=outputs, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        # Past Keras' attribute tracking, which would wrap a config dict in a TrackedDict:
        # the argument stays the plain JSON value that get_config() returns.
        object.__setattr__(self, "cell", cell)
        self.dropout = dropout
        self.mask_zero = mask_zero
        self._token_embedding = token_embedding
        self.recurrent_layers = recurrent_layers
        self.dropout_layers = dropout_layers

    def _make_token_embedding(self, vocabulary_size, embedding_dim, mask_zero, dtype):
        """The token embedding layer: a tied `ReversibleEmbedding` named `"token_embedding"`."""
        policy = keras.config.dtype_policy() if dtype is None else keras.dtype_policies.get(dtype)
        return keras.layers.ReversibleEmbedding(
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

    @property
    def token_embedding(self):
        """The token embedding (a `keras.layers.ReversibleEmbedding`: tied readouts read it)."""
        return self._token_embedding

    # === Cached decoding (the step computation of RNNCausalLM.generate) ===

    def prefill(self, token_ids, padding_mask=None):
        """Run the prompt int `(batch_size, prompt_length)`; returns `(outputs, cache)` (see
        the class docstring). `padding_mask` (bool, same shape) marks the real tokens of
        prompts padded on the left: the recurrent layers carry their initial state over the
        padding, so each row's state equals its prompt alone."""
        token_ids = ops.cast(token_ids, "int32")  # (B, T)
        mask = ops.not_equal(token_ids, 0) if self.mask_zero else None  # (B, T)
        if padding_mask is not None:
            real = ops.cast(padding_mask, "bool")
            mask = real if mask is None else ops.logical_and(mask, real)
        x = self.token_embedding(token_ids)  # (B, T, E)
        states = []
        for recurrent_layer in self.recurrent_layers:
            x, *layer_states = recurrent_layer(x, mask=mask, training=False)  # (B, T, H)
            states.append(list(layer_states))
        # x[:, -1] is the last real step's output (padded steps repeat it).
        return x, {"states": states, "output": x[:, -1]}

    def call_with_cache(self, token_ids, cache):
        """Step every layer's cell once on int `(batch_size,)`; returns `(output, cache)`,
        output `(batch_size, hidden_dim)`."""
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
        return output, {"states": new_states, "output": output}

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "dropout": self.dropout,
            "mask_zero": self.mask_zero,
        }
