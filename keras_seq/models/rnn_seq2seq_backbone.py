"""RNNSeq2SeqBackbone: a recurrent encoder and a recurrent decoder, with or without attention.

Letter legend for shape comments: B batch, S source length, T target length, P decoder prefix
length, E `embedding_dim`, H `hidden_dim`, M encoder output size (H, or 2 H bidirectional), O
output size of the top decoder layer (H without attention; H + M, or `attention_dim`, with).
"""

import copy

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.recurrent.attention_cell import AttentionCell
from keras_seq.layers.recurrent.attention_rnn import AttentionRNN
from keras_seq.models.backbone import Backbone
from keras_seq.models.default_name import default_name
from keras_seq.models.recurrent_stack import as_state_list
from keras_seq.models.recurrent_stack import cell_argument
from keras_seq.models.recurrent_stack import make_cell
from keras_seq.models.seq2seq_presets import SEQ2SEQ_PRESETS
from keras_seq.utils.masks import strip_keras_mask
from keras_seq.utils.model_size import check_model_size
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


@keras_seq_export
class RNNSeq2SeqBackbone(Backbone):
    """Recurrent encoder-decoder (Sutskever et al., 2014), optionally with attention.

    The encoder embeds the source and runs `num_layers` stacked recurrent layers over it
    (each bidirectional with `bidirectional_encoder=True`); decoder layer `i` starts from the
    final states of encoder layer `i` (bidirectional: `tanh(W [forward; backward])` per state,
    the initialisation of Bahdanau et al.). The decoder embeds the target and runs `num_layers`
    recurrent layers; it returns the encoder outputs and the decoder's features at every step.
    `RNNSeq2SeqLM` puts the readout (logits over the target vocabulary) and `generate()` on it.

    - `attention=None`: the decoder sees the source only through those initial states, the
      fixed-size bottleneck that fails on long inputs.
    - with attention, the top decoder layer is an `AttentionRNN` over an `AttentionCell` that
      attends from its state to the encoder outputs at every step (padded source positions get
      zero weight) and feeds the attention vector back as input (Luong et al., 2015: attention
      on the top layer, input feeding); its features are `[h_t; c_t]`, or Luong's attentional
      state `tanh(W_c [c_t; h_t])` with `attention_dim`. `attention_weights(source, target_in)`
      returns the alignments of a teacher-forced pass.

    Data layout (teacher forcing): id 0 is padding in both vocabularies, sequences are
    right-padded, and `target_in` is the target shifted right by one behind a start token
    (`keras_seq.data.teacher_forcing_inputs` builds it). The decoder is causal and not masked,
    so padding at the end of `target_in` never changes the features of earlier steps.

    For cached decoding (`RNNSeq2SeqLM.generate`) it also offers `encode(source)`,
    `prefill(source, target_in)` and `call_with_cache(token_ids, cache, index)`, which run the
    same layers one decoder step at a time.

    Args:
        source_vocabulary_size: int. Number of source token ids (0 is padding).
        target_vocabulary_size: int. Number of target token ids (0 is padding).
        embedding_dim: int. Width E of the source and target embeddings.
        hidden_dim: int. Units H of every recurrent layer (per direction in the encoder).
        num_layers: int. Number of recurrent layers of the encoder and of the decoder.
            Defaults to `1`.
        cell: the recurrent cell of every layer: a name (`"lstm"`, `"gru"`, `"elman"`, or a
            registered `"package>ClassName"`) built with `hidden_dim` units and the model's
            dtype, or a config dict or an instance of a cell with `hidden_dim` outputs (see
            `keras_seq.layers.get_cell`). Each layer gets its own cell made from the config;
            an instance is stored as its config. Defaults to `"lstm"`.
        attention: `None` (no attention), `"bahdanau"`, `"luong"` (Luong's `"general"` score),
            or a registered name, config dict or instance of an attention layer accepted by
            `keras_seq.layers.AttentionCell`; an instance is stored as its config. Defaults to
            `None`.
        attention_dim: int or `None`. Size of Luong's attentional hidden state (see
            `AttentionCell`); only with an `attention`. Defaults to `None`.
        bidirectional_encoder: bool. Make every encoder layer bidirectional; the encoder
            outputs are then `2 * hidden_dim` wide. Defaults to `False`.
        dropout: float in [0, 1). Dropout rate of the embeddings, between recurrent layers and
            on the decoder features (the readout's input). Defaults to `0.0`.
        **kwargs: base model arguments (`name`, `dtype`).

    Call arguments:
        inputs: dict with `"source"`, int `(batch_size, source_length)`, and `"target_in"`,
            int `(batch_size, target_length)` (see the data layout above).
        training: bool or `None`; enables dropout.

    Returns:
        Dict with `"encoder_sequence_output"`, float `(batch_size, source_length, M)` (M is
        `hidden_dim`, or `2 * hidden_dim` bidirectional), and `"decoder_sequence_output"`,
        float `(batch_size, target_length, O)`: the top decoder layer's output at every step
        (O is `hidden_dim` without attention, `attention_dim` if set, else `hidden_dim + M`).

    Example:
    ```python
    backbone = keras_seq.models.RNNSeq2SeqBackbone(
        source_vocabulary_size=20,
        target_vocabulary_size=15,
        embedding_dim=8,
        hidden_dim=16,
        attention="bahdanau",
    )
    source = np.array([[5, 6, 7, 0], [8, 9, 0, 0]])  # 0 is padding
    target_in = np.array([[1, 4, 5], [1, 6, 2]])  # starts with the start token 1
    outputs = backbone({"source": source, "target_in": target_in})
    assert outputs["decoder_sequence_output"].shape == (2, 3, 16 + 16)  # [h_t; c_t]
    alignments = backbone.attention_weights(source, target_in)  # (2, 3, 4)
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
        cell = cell_argument(cell)
        attention = _attention_argument(attention)
        # Keras would name it "rnn_seq2_seq_backbone".
        kwargs.setdefault("name", default_name("rnn_seq2seq_backbone"))
        dtype = kwargs.get("dtype")
        check_model_size(
            "RNNSeq2SeqBackbone",
            {
                "source_vocabulary_size": source_vocabulary_size,
                "target_vocabulary_size": target_vocabulary_size,
                "embedding_dim": embedding_dim,
                "num_layers": num_layers,
                "hidden_dim": hidden_dim,
            },
            [
                (1, "source_vocabulary_size", "embedding_dim"),
                (1, "target_vocabulary_size", "embedding_dim"),
                (2, "num_layers", "hidden_dim", "hidden_dim"),
            ],
            num_blocks=2 * num_layers,
            dtype=dtype,
        )

        # === Layers ===
        self.source_embedding = keras.layers.Embedding(
            source_vocabulary_size,
            embedding_dim,
            mask_zero=True,
            dtype=dtype,
            name="source_embedding",
        )
        self.target_embedding = keras.layers.Embedding(
            target_vocabulary_size, embedding_dim, dtype=dtype, name="target_embedding"
        )
        self.encoder_layers = []
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
            self.encoder_layers.append(encoder_layer)
        self.bridge_layers = []
        if bidirectional_encoder:
            self.bridge_layers = [
                keras.layers.Dense(
                    hidden_dim, activation="tanh", dtype=dtype, name=f"bridge_{index}_{state}"
                )
                for index in range(num_layers)
                for state in range(num_states)
            ]
        self.decoder_layers = []
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
            self.decoder_layers.append(decoder_layer)
        # Dropout before every recurrent layer and on the decoder features.
        self.encoder_dropout_layers = [
            keras.layers.Dropout(dropout, dtype=dtype, name=f"encoder_dropout_{index}")
            for index in range(num_layers)
        ]
        self.decoder_dropout_layers = [
            keras.layers.Dropout(dropout, dtype=dtype, name=f"decoder_dropout_{index}")
            for index in range(num_layers)
        ]
        self.output_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="output_dropout")

        # === Functional model ===
        source = keras.Input(shape=(None,), dtype="int32", name="source")
        target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
        memory, source_mask, initial_states = self.encode(source)  # (B, S, M)
        decoded = self._decode(target_in, initial_states, memory, source_mask)  # (B, T, O)
        super().__init__(
            inputs={"source": source, "target_in": target_in},
            outputs={"encoder_sequence_output": memory, "decoder_sequence_output": decoded},
            **kwargs,
        )

        # === Config ===
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

    # === The computation, shared by the functional graph and cached decoding ===

    def encode(self, source, training=None):
        """Run the encoder on source ids int `(batch_size, source_length)`.

        Returns `(encoder_sequence_output, encoder_padding_mask, initial_states)`: the encoder
        outputs `(batch_size, source_length, M)`, the bool mask `(batch_size, source_length)`
        (`True` at real tokens) and, per decoder layer, the list of its initial states (the
        final states of the encoder layer below it, bridged if bidirectional), each
        `(batch_size, hidden_dim)`.
        """
        source_mask = ops.not_equal(source, 0)  # (B, S), True at real tokens (0 is padding)
        x = self.source_embedding(source)  # (B, S, E)
        initial_states = []
        for index, (encoder_layer, dropout_layer) in enumerate(
            zip(self.encoder_layers, self.encoder_dropout_layers)
        ):
            x, *states = encoder_layer(
                dropout_layer(x, training=training), mask=source_mask, training=training
            )  # (B, S, M)
            if self.bridge_layers:
                # Bidirectional: [forward states, backward states] -> tanh(W [fwd; bwd]) each.
                num_states = len(states) // 2
                bridges = self.bridge_layers[index * num_states : (index + 1) * num_states]
                states = [
                    bridge(ops.concatenate([forward, backward], axis=-1))  # (B, H)
                    for bridge, forward, backward in zip(
                        bridges, states[:num_states], states[num_states:]
                    )
                ]
            initial_states.append(list(states))
        return x, source_mask, initial_states

    def _decode(
        self,
        target_in,
        initial_states,
        memory,
        memory_mask,
        training=None,
        return_attention_scores=False,
    ):
        """Teacher-forced decoder: `target_in` `(B, T)` -> features `(B, T, O)` (and
        alignments `(B, T, S)`)."""
        x = self.target_embedding(target_in)  # (B, T, E)
        alignments = None
        for decoder_layer, dropout_layer, states in zip(
            self.decoder_layers, self.decoder_dropout_layers, initial_states
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
        features = self.output_dropout(x, training=training)  # (B, T, O)
        return (features, alignments) if return_attention_scores else features

    def attention_weights(self, source, target_in):
        """Attention weights `(batch_size, target_length, source_length)` of the teacher-forced
        pass on `source` and `target_in` (int arrays, the data layout of the class docstring),
        zero at padded source positions. Raises `ValueError` for a model without attention."""
        if self.attention is None:
            raise ValueError(
                "`attention_weights` needs a model with attention. Received a "
                f"{type(self).__name__} with attention=None"
            )
        source = ops.convert_to_tensor(source, "int32")
        target_in = ops.convert_to_tensor(target_in, "int32")
        memory, source_mask, initial_states = self.encode(source, training=False)
        _, alignments = self._decode(
            target_in,
            initial_states,
            memory,
            source_mask,
            training=False,
            return_attention_scores=True,
        )
        return alignments

    # === Cached decoding: one decoder step at a time over the recurrent states ===

    def prefill(self, source, target_in):
        """Encode `source` int `(batch_size, source_length)` and feed the decoder prefix
        `target_in` int `(batch_size, prefix_length)` (static length >= 1, e.g. the start
        token) one step at a time.

        Returns `(features, cache)`: features `(batch_size, prefix_length, O)`, equal to the
        teacher-forced pass on that prefix, and the cache that `call_with_cache` continues
        from: `{"states": [...]}` (per decoder layer, the list of its cell's states, each
        `(batch_size, size)`) plus, with attention, `"memory"` `(batch_size, source_length,
        M)` and `"memory_mask"` `(batch_size, source_length)`; all batch first.
        """
        prefix_length = target_in.shape[1]
        if len(target_in.shape) != 2 or prefix_length is None or prefix_length < 1:
            raise ValueError(
                "`target_in` must be int token ids `(batch_size, prefix_length)` with a static "
                f"prefix_length >= 1. Received: shape={tuple(target_in.shape)}"
            )
        memory, source_mask, states = self.encode(source, training=False)
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
        features = []
        for position in range(prefix_length):
            step_features, cache = self.call_with_cache(
                target_in[:, position : position + 1], cache, position
            )
            features.append(step_features)  # (B, 1, O)
        return ops.concatenate(features, axis=1), cache  # (B, P, O)

    def call_with_cache(self, token_ids, cache, index):
        """One decoder step: `token_ids` int `(batch_size, 1)`; returns `(features, cache)`,
        features `(batch_size, 1, O)`. `index` (the decoder position) is not needed by a
        recurrent decoder, whose states carry the position; it keeps the signature of the
        other backbones."""
        x = self.target_embedding(ops.cast(token_ids, "int32")[:, 0])  # (B, E)
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
        return x[:, None, :], {**cache, "states": new_states}  # (B, 1, O)

    def get_config(self):
        return {
            **super().get_config(),
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
        }
