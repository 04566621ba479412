"""A recurrent encoder-decoder, with or without attention over the encoder outputs.

Letter legend for shape comments: B batch, S source length, T target length, E
`embedding_dim`, H `hidden_dim`, M encoder output size (H, or 2 H bidirectional), O output
size of the attention decoder layer (H + M, or `attention_dim`), V target vocabulary size.
"""

import copy
import numbers
import types

import keras
from keras import ops
from keras.src.utils.naming import auto_name  # Unique default names, as Keras gives layers.

from keras_seq.api import keras_seq_export
from keras_seq.layers.recurrent.attention_cell import AttentionCell
from keras_seq.layers.recurrent.attention_rnn import AttentionRNN
from keras_seq.models.legacy_generative_model import GenerativeModel
from keras_seq.models.recurrent_stack import as_state_list
from keras_seq.models.recurrent_stack import cell_argument
from keras_seq.models.recurrent_stack import make_cell
from keras_seq.models.seq2seq_presets import SEQ2SEQ_PRESETS
from keras_seq.utils.masks import strip_keras_mask
from keras_seq.utils.validation import validate_bool
from keras_seq.utils.validation import validate_positive_int
from keras_seq.utils.validation import validate_rate


def _attention_argument(attention):
    """The JSON value stored for `attention`: `None`, a name or a config dict."""
    if attention is None or isinstance(attention, str):
        return attention
    if isinstance(attention, dict):
        return copy.deepcopy(attention)
    if isinstance(attention, keras.layers.Layer):
        return keras.saving.serialize_keras_object(attention)
    raise TypeError(
        "`attention` must be `None`, a name ('bahdanau', 'luong' or a registered name), a "
        "config dict or an attention layer instance. "
        f"Received: attention={attention!r} of type {type(attention).__name__}"
    )


def _encode(layers, source, training=None):
    """Source ids `(B, S)` -> encoder outputs `(B, S, M)`, source mask `(B, S)` and, per
    layer, the decoder's initial states (the encoder's final states, bridged if
    bidirectional). `layers` is the model or, while it is built, a namespace of its layers."""
    source_mask = ops.not_equal(source, 0)  # (B, S), True at real tokens
    x = layers.source_embedding(source)  # (B, S, E)
    initial_states = []
    for index, (encoder_layer, dropout_layer) in enumerate(
        zip(layers.encoder_layers, layers.encoder_dropout_layers)
    ):
        x, *states = encoder_layer(
            dropout_layer(x, training=training), mask=source_mask, training=training
        )  # (B, S, M)
        if layers.bridge_layers:
            # Bidirectional: [forward states, backward states] -> tanh(W [fwd; bwd]) each.
            num_states = len(states) // 2
            bridges = layers.bridge_layers[index * num_states : (index + 1) * num_states]
            states = [
                bridge(ops.concatenate([forward, backward], axis=-1))  # (B, H)
                for bridge, forward, backward in zip(
                    bridges, states[:num_states], states[num_states:]
                )
            ]
        initial_states.append(list(states))
    return x, source_mask, initial_states


def _decode(
    layers,
    target_in,
    initial_states,
    memory,
    memory_mask,
    training=None,
    return_attention_scores=False,
):
    """Teacher-forced decoder: `target_in` `(B, T)` -> logits `(B, T, V)` (and alignments)."""
    x = layers.target_embedding(target_in)  # (B, T, E)
    alignments = None
    for decoder_layer, dropout_layer, states in zip(
        layers.decoder_layers, layers.decoder_dropout_layers, initial_states
    ):
        x = dropout_layer(x, training=training)
        if isinstance(decoder_layer, AttentionRNN):
            x = decoder_layer(
                x,
                memory,
                memory_mask=memory_mask,
                initial_state=states,
                return_attention_scores=return_attention_scores,
                training=training,
            )  # (B, T, O)
            if return_attention_scores:
                x, alignments = x  # (B, T, O), (B, T, S)
        else:
            x = decoder_layer(x, initial_state=states, training=training)  # (B, T, H)
    logits = layers.output_dense(layers.output_dropout(x, training=training))  # (B, T, V)
    return (logits, alignments) if return_attention_scores else logits


@keras_seq_export
class Seq2Seq(GenerativeModel):
    """Recurrent encoder-decoder (Sutskever et al., 2014), optionally with attention.

    The encoder embeds the source and runs `num_layers` stacked recurrent layers over it
    (each bidirectional with `bidirectional_encoder=True`); decoder layer `i` starts from
    the final states of encoder layer `i` (bidirectional: `tanh(W [forward; backward])` per
    state, the initialisation of Bahdanau et al.). The decoder embeds the target, runs
    `num_layers` recurrent layers and reads out logits over the target vocabulary at every
    step.

    - `attention=None`: the decoder sees the source only through those initial states, the
      fixed-size bottleneck that fails on long inputs.
    - with attention, the top decoder layer is an `AttentionRNN` over an `AttentionCell`
      that attends from its state to the encoder outputs at every step (padded source
      positions get zero weight) and feeds the attention vector back as input (Luong et
      al., 2015: attention on the top layer, input feeding); the readout sees `[h_t; c_t]`,
      or Luong's attentional state `tanh(W_c [c_t; h_t])` with `attention_dim`.

    Data layout (teacher forcing): id 0 is padding in both vocabularies, sequences are
    right-padded. With a target `y` `(batch_size, target_length)` that ends with an end
    token, the inputs are `{"source": x, "target_in": y_in}` where `y_in` is the target
    shifted right by one, starting with `start_token_id`: `y_in[:, 0] = start_token_id`,
    `y_in[:, 1:] = y[:, :-1]` (`keras_seq.data.teacher_forcing_inputs` builds it), and the
    training targets are `y`. Train with `fit(inputs, y)` and
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)`, which
    leaves the padding of `y` out of the loss; the decoder itself is causal and not
    masked, so padding at the end of `y_in` never changes the logits of earlier steps.

    Args:
        source_vocabulary_size: int. Number of source token ids (0 is padding).
        target_vocabulary_size: int. Number of target token ids, the logits' last axis.
        embedding_dim: int. Width E of the source and target embeddings.
        hidden_dim: int. Units H of every recurrent layer (per direction in the encoder).
        num_layers: int. Number of recurrent layers of the encoder and of the decoder.
            Defaults to `1`.
        cell: the recurrent cell of every layer: a name (`"lstm"`, `"gru"`, `"elman"`, or a
            registered `"package>ClassName"`) built with `hidden_dim` units and the model's
            dtype, or a config dict or an instance of a cell with `hidden_dim` outputs (see
            `keras_seq.layers.get_cell`). Each layer gets its own cell made from the config;
            an instance is stored as its config. Defaults to `"lstm"`.
        attention: `None` (no attention), `"bahdanau"`, `"luong"` (Luong's `"general"`
            score), or a registered name, config dict or instance of an attention layer
            accepted by `keras_seq.layers.AttentionCell`; an instance is stored as its
            config. Defaults to `None`.
        attention_dim: int or `None`. Size of Luong's attentional hidden state (see
            `AttentionCell`); only with an `attention`. Defaults to `None`.
        bidirectional_encoder: bool. Make every encoder layer bidirectional; the encoder
            outputs are then `2 * hidden_dim` wide. Defaults to `False`.
        dropout: float in [0, 1). Dropout rate of the embeddings, between recurrent layers
            and before the readout. Defaults to `0.0`.
        start_token_id: int in `[1, target_vocabulary_size)`. The first decoder input, in
            `target_in` and in generation; not the padding id 0. Defaults to `1`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: dict with `"source"`, int `(batch_size, source_length)`, and `"target_in"`,
            int `(batch_size, target_length)` (see the data layout above).
        training: bool or `None`; enables dropout.

    Returns:
        Logits `(batch_size, target_length, target_vocabulary_size)`, unnormalised scores of
        `y` at every step (use `from_logits=True`).

    Generation:
        `generate(source, max_new_tokens, stop_token_id=...)` takes the source ids
        `(batch_size, source_length)` (or a dict with `"source"`) and returns the new tokens
        only (the prefix is empty): `prefill` encodes the source and feeds the start token;
        its cache is `{"states": [...]}` (per decoder layer, the list of its cell's states,
        each `(batch_size, size)`) plus, with attention, `"memory"` `(batch_size,
        source_length, M)` and `"memory_mask"` `(batch_size, source_length)`, all batch
        first, so beam search tiles the encoder outputs across the beams. Cached decoding
        equals the teacher-forced model on the generated prefix.

    Alignments:
        `attention_weights(source, target_in)` returns the attention weights `(batch_size,
        target_length, source_length)` of the teacher-forced pass (zero at padded source
        positions), e.g. for plots; for a generated output `y`, pass `target_in =
        [start_token_id] + y[:, :-1]` (the cached decoding equals that pass).

    Example:
    ```python
    model = keras_seq.models.Seq2Seq(
        source_vocabulary_size=20,
        target_vocabulary_size=15,
        embedding_dim=8,
        hidden_dim=16,
        attention="bahdanau",
        bidirectional_encoder=True,
    )
    source = np.array([[5, 6, 7, 0], [8, 9, 0, 0]])  # 0 is padding
    target = np.array([[4, 5, 2], [6, 2, 0]])  # ends with the end token 2
    inputs = keras_seq.data.teacher_forcing_inputs(source, target, start_token_id=1)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    model.fit(inputs, target, epochs=1, verbose=0)
    logits = model(inputs)  # (2, 3, 15)
    alignments = model.attention_weights(source, inputs["target_in"])  # (2, 3, 4)
    translations = model.generate(source, max_new_tokens=5, stop_token_id=2)  # (2, 5)
    ```

    References:
        - [Sutskever et al., 2014](https://arxiv.org/abs/1409.3215)
        - [Cho et al., 2014](https://arxiv.org/abs/1406.1078)
        - [Bahdanau et al., 2015](https://arxiv.org/abs/1409.0473)
        - [Luong et al., 2015](https://arxiv.org/abs/1508.04025)
    """

    presets = SEQ2SEQ_PRESETS

    def __init__(
        self,
        source_vocabulary_size,
        target_vocabulary_size,
        embedding_dim,
        hidden_dim,
        num_layers=1,
        cell="lstm",
        attention=None,
        attention_dim=None,
        bidirectional_encoder=False,
        dropout=0.0,
        start_token_id=1,
        **kwargs,
    ):
        for name, value in (
            ("source_vocabulary_size", source_vocabulary_size),
            ("target_vocabulary_size", target_vocabulary_size),
            ("embedding_dim", embedding_dim),
            ("hidden_dim", hidden_dim),
            ("num_layers", num_layers),
        ):
            validate_positive_int(name, value)
        if attention_dim is not None:
            validate_positive_int("attention_dim", attention_dim)
            if attention is None:
                raise ValueError(
                    "`attention_dim` only applies with an `attention`. Received: "
                    f"attention=None, attention_dim={attention_dim}"
                )
        validate_bool("bidirectional_encoder", bidirectional_encoder)
        validate_rate("dropout", dropout)
        if (
            isinstance(start_token_id, bool)
            or not isinstance(start_token_id, numbers.Integral)
            or not 1 <= start_token_id < target_vocabulary_size
        ):
            raise ValueError(
                "`start_token_id` must be an int in [1, target_vocabulary_size) (0 is "
                "padding). Received: "
                f"start_token_id={start_token_id!r}, "
                f"target_vocabulary_size={target_vocabulary_size}"
            )
        cell = cell_argument(cell)
        attention = _attention_argument(attention)
        kwargs.setdefault("name", auto_name("seq2seq"))  # Keras would make it "seq2_seq".
        dtype = kwargs.get("dtype")

        # === Layers ===
        layers = types.SimpleNamespace()
        layers.source_embedding = keras.layers.Embedding(
            source_vocabulary_size,
            embedding_dim,
            mask_zero=True,
            dtype=dtype,
            name="source_embedding",
        )
        layers.target_embedding = keras.layers.Embedding(
            target_vocabulary_size, embedding_dim, dtype=dtype, name="target_embedding"
        )
        layers.encoder_layers = []
        num_states = None
        for index in range(num_layers):
            encoder_cell = make_cell(cell, hidden_dim, dtype, name=f"encoder_layer_{index}_cell")
            num_states = len(keras.tree.flatten(encoder_cell.state_size))
            name = f"encoder_layer_{index}"
            encoder_layer = keras.layers.RNN(
                encoder_cell,
                return_sequences=True,
                return_state=True,
                dtype=dtype,
                name=f"{name}_forward" if bidirectional_encoder else name,
            )
            if bidirectional_encoder:
                encoder_layer = keras.layers.Bidirectional(encoder_layer, dtype=dtype, name=name)
            layers.encoder_layers.append(encoder_layer)
        layers.bridge_layers = []
        if bidirectional_encoder:
            layers.bridge_layers = [
                keras.layers.Dense(
                    hidden_dim, activation="tanh", dtype=dtype, name=f"bridge_{index}_{state}"
                )
                for index in range(num_layers)
                for state in range(num_states)
            ]
        layers.decoder_layers = []
        for index in range(num_layers):
            name = f"decoder_layer_{index}"
            decoder_cell = make_cell(cell, hidden_dim, dtype, name=f"{name}_cell")
            if attention is not None and index == num_layers - 1:
                attention_cell = AttentionCell(
                    decoder_cell,
                    attention=copy.deepcopy(attention),
                    attention_dim=attention_dim,
                    dtype=dtype,
                    name=f"{name}_attention_cell",
                )
                decoder_layer = AttentionRNN(
                    attention_cell, return_sequences=True, dtype=dtype, name=name
                )
            else:
                decoder_layer = keras.layers.RNN(
                    decoder_cell, return_sequences=True, dtype=dtype, name=name
                )
            layers.decoder_layers.append(decoder_layer)
        # Dropout before every recurrent layer and before the readout.
        layers.encoder_dropout_layers = [
            keras.layers.Dropout(dropout, dtype=dtype, name=f"encoder_dropout_{index}")
            for index in range(num_layers)
        ]
        layers.decoder_dropout_layers = [
            keras.layers.Dropout(dropout, dtype=dtype, name=f"decoder_dropout_{index}")
            for index in range(num_layers)
        ]
        layers.output_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="output_dropout")
        layers.output_dense = keras.layers.Dense(
            target_vocabulary_size, dtype=dtype, name="output_dense"
        )

        # === Functional graph ===
        source = keras.Input(shape=(None,), dtype="int32", name="source")
        target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
        memory, source_mask, initial_states = _encode(layers, source)
        logits = _decode(layers, target_in, initial_states, memory, source_mask)
        super().__init__(
            inputs={"source": source, "target_in": target_in}, outputs=logits, **kwargs
        )

        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        # Past Keras' attribute tracking, which would wrap config dicts in TrackedDicts: the
        # arguments stay the plain JSON values that get_config() returns.
        object.__setattr__(self, "cell", cell)
        object.__setattr__(self, "attention", attention)
        self.attention_dim = attention_dim
        self.bidirectional_encoder = bidirectional_encoder
        self.dropout = dropout
        self.start_token_id = start_token_id
        for name, value in vars(layers).items():
            setattr(self, name, value)

    def attention_weights(self, source, target_in):
        """Attention weights `(batch_size, target_length, source_length)` of the
        teacher-forced pass on `source` and `target_in` (int arrays, the data layout of the
        class docstring). Raises `ValueError` for a model without attention."""
        if self.attention is None:
            raise ValueError(
                "`attention_weights` needs a model with attention. Received a Seq2Seq with "
                "attention=None"
            )
        source = ops.convert_to_tensor(source, "int32")
        target_in = ops.convert_to_tensor(target_in, "int32")
        memory, source_mask, initial_states = _encode(self, source, training=False)
        _, alignments = _decode(
            self,
            target_in,
            initial_states,
            memory,
            source_mask,
            training=False,
            return_attention_scores=True,
        )
        return alignments

    # === Generation protocol (keras_seq.generation.protocol) ===

    def prefill(self, inputs, max_new_tokens):
        source = inputs["source"] if isinstance(inputs, dict) else inputs
        source = ops.cast(source, "int32")  # (B, S)
        if len(source.shape) != 2:
            raise ValueError(
                "`inputs` must be source token ids `(batch_size, source_length)` or a dict "
                f'with "source". Received: shape {tuple(source.shape)}'
            )
        memory, source_mask, states = _encode(self, source, training=False)
        batch_size = ops.shape(source)[0]
        cache = {"states": [list(layer_states) for layer_states in states]}
        top_layer = self.decoder_layers[-1]
        if isinstance(top_layer, AttentionRNN):
            # The attention cell's states: the wrapped cell's, then a_0 = 0.
            fed = top_layer.cell.get_initial_state(batch_size=batch_size)[-1]
            cache["states"][-1].append(fed)
            strip_keras_mask(memory)
            cache["memory"] = memory  # (B, S, M)
            cache["memory_mask"] = source_mask  # (B, S)
        start = ops.full((batch_size,), self.start_token_id, dtype="int32")  # (B,)
        logits, cache = self.call_with_cache(start, cache, 0)
        prefix = ops.zeros((batch_size, 0), dtype="int32")  # (B, 0): no prompt in the output
        return prefix, logits, cache

    def call_with_cache(self, token_ids, cache, index):
        x = self.target_embedding(ops.cast(token_ids, "int32"))  # (B, E)
        new_states = []
        for decoder_layer, states in zip(self.decoder_layers, cache["states"]):
            if isinstance(decoder_layer, AttentionRNN):
                x, states = decoder_layer.cell(
                    x,
                    list(states),
                    memory=cache["memory"],
                    memory_mask=cache["memory_mask"],
                    training=False,
                )  # (B, O)
            else:
                x, states = decoder_layer.cell(x, list(states), training=False)  # (B, H)
            new_states.append(as_state_list(states))
        logits = self.output_dense(x)  # (B, V)
        return logits, {**cache, "states": new_states}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "source_vocabulary_size": self.source_vocabulary_size,
                "target_vocabulary_size": self.target_vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "cell": self.cell,
                "attention": self.attention,
                "attention_dim": self.attention_dim,
                "bidirectional_encoder": self.bidirectional_encoder,
                "dropout": self.dropout,
                "start_token_id": self.start_token_id,
            }
        )
        return config
