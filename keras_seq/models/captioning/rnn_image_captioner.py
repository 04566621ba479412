"""RNNImageCaptioner: an attention LSTM decoder over image regions (Show, Attend and Tell).

Letter legend for shape comments: B batch, R regions, D `hidden_dim`, T caption length, V
vocabulary size.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.layers.recurrent.attention_cell import AttentionCell
from keras_seq.layers.recurrent.attention_rnn import AttentionRNN
from keras_seq.layers.recurrent.cell_sizes import cell_state_sizes
from keras_seq.models.captioning.image_captioning_task import ImageCaptioningTask


def validate_cell(cell):
    if not isinstance(cell, str):
        raise TypeError(
            "`cell` must be the name of a recurrent cell (built with `units=hidden_dim`). "
            f"Received: cell={cell!r}"
        )


@keras_seq_export
class RNNImageCaptioner(ImageCaptioningTask):
    """Image captioning with visual attention: a recurrent decoder attending over image regions.

    The model of Show, Attend and Tell (Xu et al., 2015) with soft attention. The `backbone`
    turns an image into region features (the paper's annotation vectors), projected to
    `hidden_dim` by `region_projection`; the head that this task puts on the backbone is the
    decoder, as in keras_hub's captioning tasks: an `AttentionRNN` of an `AttentionCell`
    wrapping `cell`, with additive (Bahdanau) attention over the regions and input feeding,
    whose initial states are `tanh` dense layers of the mean region vector (as in the paper).
    It projects onto the vocabulary with the transposed token embedding (tied weights).

    Generation (`generate()`) runs the backbone once and steps the cell over the cached
    regions. `generate_with_attention()` also returns where the model looked for each
    generated word (the cell's alignment, from one teacher-forced pass over the generated
    tokens); `attention_maps()` gives the maps of a given caption.

    The paper's configuration (VGG-19 features; Keras' VGG19 without its top gives 7x7
    regions, where the paper took the 14x14 map before the last pooling):
    `RNNImageCaptioner(keras.applications.VGG19(include_top=False, weights=None,
    input_shape=(224, 224, 3)), vocabulary_size=10000, hidden_dim=512, dropout=0.5)`.

    Args:
        backbone: the image encoder: a `keras.Model` (or its config from
            `keras.saving.serialize_keras_object`) with one input, images `(batch_size,
            height, width, channels)` of known size, and one output, either a feature map
            `(batch_size, grid_height, grid_width, channels)` (a CNN:
            `CaptioningCNNBackbone`, a `keras.applications` model with `include_top=False`)
            or region tokens `(batch_size, regions, channels)` (a vision transformer's
            sequence output), of known size. Its weights are shared, not copied; images go
            in as they are (apply a `keras.applications` model's `preprocess_input`
            yourself).
        vocabulary_size: int. Number of token ids, padding id 0 included.
        hidden_dim: int. Width of the projected regions, the token embedding and the cell
            (its `units`). Defaults to `256`.
        cell: str. The recurrent cell: `"lstm"`, `"gru"`, `"elman"` or a registered
            `"package>ClassName"` taking `units`. Defaults to `"lstm"`.
        dropout: float in [0, 1). Dropout on the word embeddings and on the cell's outputs.
            Defaults to `0.1`.
        start_token_id: int. The token that starts every caption; must not be 0.
            Defaults to `1`.
        **kwargs: `generation_defaults` (a dict of `generate()` arguments used when a call
            leaves them out, saved with the model; `from_preset` sets it from a
            checkpoint's generation config) and base model arguments (`name`, `dtype`);
            `dtype` defaults to the backbone's dtype policy.

    Call arguments:
        inputs: dict with `"images"`, float `(batch_size, height, width, channels)`, and
            `"target_in"`, int `(batch_size, caption_length)`: the caption shifted right
            (`start_token_id` first). 0 is padding.
        training: bool or `None`.

    Returns:
        Float logits `(batch_size, caption_length, vocabulary_size)`.

    Example:
    ```python
    backbone = keras_seq.models.CaptioningCNNBackbone(image_shape=(32, 32, 3))
    model = keras_seq.models.RNNImageCaptioner(backbone, vocabulary_size=30, hidden_dim=32)
    images = np.random.rand(2, 32, 32, 3).astype("float32")
    logits = model({"images": images, "target_in": np.array([[1, 5, 7], [1, 4, 0]])})
    assert logits.shape == (2, 3, 30)
    token_ids, attention = model.generate_with_attention(images, 5, stop_token_id=2)
    assert token_ids.shape == (2, 5) and attention.shape == (2, 5, 4, 4)  # a 4x4 grid
    ```

    References:
        - [Xu et al., 2015](https://arxiv.org/abs/1502.03044) (Show, Attend and Tell)
        - [Bahdanau et al., 2015](https://arxiv.org/abs/1409.0473)
    """

    # `GenerativeTask`'s argument, taken through `**kwargs` (see `constructor_arguments`).
    forwarded_arguments = ("generation_defaults",)

    def __init__(
        self,
        backbone,
        vocabulary_size,
        hidden_dim=256,
        cell="lstm",
        dropout=0.1,
        start_token_id=1,
        **kwargs,
    ):
        validate_cell(cell)
        self.cell = cell  # read by `_build_decoder`
        super().__init__(backbone, vocabulary_size, hidden_dim, dropout, start_token_id, **kwargs)

    def _build_decoder(self, num_regions, dtype):
        self.token_embedding = keras.layers.ReversibleEmbedding(
            self.vocabulary_size, self.hidden_dim, dtype=dtype, name="token_embedding"
        )
        # The reverse projection takes the RNN's masked outputs; it returns no mask.
        self.token_embedding.supports_masking = True
        attention_cell = AttentionCell(
            self.cell,
            units=self.hidden_dim,
            attention="bahdanau",
            attention_dim=self.hidden_dim,
            dtype=dtype,
            name="attention_cell",
        )
        self.attention_rnn = AttentionRNN(
            attention_cell, return_sequences=True, dtype=dtype, name="attention_rnn"
        )
        state_sizes = cell_state_sizes(attention_cell.recurrent_cell)
        self.initial_state_layers = [
            keras.layers.Dense(size, activation="tanh", dtype=dtype, name=f"initial_state_{i}")
            for i, size in enumerate(state_sizes)
        ]
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=dtype, name="output_dropout")

    def _initial_states(self, memory):
        """The wrapped cell's initial states, from the mean region vector (Xu et al.)."""
        mean = ops.mean(memory, axis=1)  # (B, D)
        return [layer(mean) for layer in self.initial_state_layers]

    def _decode(self, memory, target_in, return_attention=False, training=None):
        """Teacher-forced decoding: logits `(B, T, V)` and, if asked, attention `(B, T, R)`."""
        target_mask = ops.not_equal(target_in, 0)  # (B, T)
        states = self._initial_states(memory)
        x = self.embedding_dropout(self.token_embedding(target_in), training=training)
        outputs = self.attention_rnn(
            x,
            memory,
            initial_state=states,
            mask=target_mask,
            return_attention_scores=return_attention,
            training=training,
        )
        attention = None
        if return_attention:
            outputs, attention = outputs  # attention (B, T, R)
        x = self.output_dropout(outputs, training=training)
        return self._logits(x), attention

    def _prefill_decoder(self, memory, max_new_tokens):
        batch_size = ops.shape(memory)[0]
        start = ops.full((batch_size,), self.start_token_id, dtype="int32")
        cell = self.attention_rnn.cell
        fed = ops.zeros((batch_size, cell.state_size[-1]), dtype=cell.compute_dtype)
        states = self._initial_states(memory) + [fed]  # a_0 = 0
        return self._step(start, {"memory": memory, "states": states})

    def _step(self, token_ids, cache):
        x = self.token_embedding(token_ids)  # (B, D)
        output, states = self.attention_rnn.cell(
            x, cache["states"], memory=cache["memory"], training=False
        )
        logits = self._logits(output)  # (B, V)
        return logits, {"memory": cache["memory"], "states": list(states)}

    def call_with_cache(self, token_ids, cache, index):
        return self._step(ops.cast(token_ids, "int32"), cache)

    def get_config(self):
        return {**super().get_config(), "cell": self.cell}
