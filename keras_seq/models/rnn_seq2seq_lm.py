"""RNNSeq2SeqLM: a readout over the target vocabulary on an `RNNSeq2SeqBackbone`.

Letter legend for shape comments: B batch, S source length, T target length, O decoder
feature size, V target vocabulary size.
"""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.models.default_name import default_name
from keras_seq.models.encoder_decoder_lm import has_decoder_sequence_output
from keras_seq.models.encoder_decoder_lm import source_token_ids
from keras_seq.models.encoder_decoder_lm import validate_start_token_id
from keras_seq.models.generative_model import GenerativeTask
from keras_seq.models.rnn_seq2seq_backbone import RNNSeq2SeqBackbone


def _is_rnn_seq2seq_backbone(model):
    return has_decoder_sequence_output(model) and all(
        hasattr(model, name) for name in ("target_vocabulary_size", "prefill", "call_with_cache")
    )


@keras_seq_export
class RNNSeq2SeqLM(GenerativeTask):
    """Recurrent encoder-decoder language model: next-token logits and `generate()`.

    A `Dense` readout turns the backbone's decoder features into unnormalised scores over the
    target vocabulary at every step; `generate()` encodes the source once, feeds the start
    token, then one token per step through the decoder's recurrent states (every strategy of
    `keras_seq.generation.generate`).

    Train it with teacher forcing: with a target `y` `(batch_size, target_length)` that ends
    with an end token, the inputs are `{"source": x, "target_in": y_in}` where `y_in[:, 0] =
    start_token_id` and `y_in[:, 1:] = y[:, :-1]` (`keras_seq.data.teacher_forcing_inputs`
    builds it), the targets are `y`, and the loss is
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)`, which leaves
    the padding of `y` out.

    Args:
        backbone: an `RNNSeq2SeqBackbone`, or its config from
            `keras.saving.serialize_keras_object`; any backbone with the same inputs, a
            `"decoder_sequence_output"` output, a `target_vocabulary_size`, and the `prefill` /
            `call_with_cache` methods of `RNNSeq2SeqBackbone` plugs in (`attention_weights`
            also, to call it here). Its weights are shared, not copied.
        start_token_id: int in `[1, target_vocabulary_size)`. The first decoder input, in
            `target_in` and in generation; not the padding id 0. Defaults to `1`.
        **kwargs: `generation_defaults` (a dict of `generate()` arguments used when a call
            leaves them out, saved with the model; `from_preset` sets it from a
            checkpoint's generation config) and base model arguments (`name`, `dtype`);
            `dtype` defaults to the backbone's dtype policy.

    Call arguments:
        inputs: dict with `"source"`, int `(batch_size, source_length)`, and `"target_in"`,
            int `(batch_size, target_length)` (the target shifted right behind the start
            token; 0 is padding).
        training: bool or `None`; enables dropout.

    Returns:
        Logits `(batch_size, target_length, target_vocabulary_size)`, the unnormalised scores
        of `y` at every step (use `from_logits=True`).

    Generation:
        `generate(source, max_new_tokens, stop_token_id=...)` takes the source ids
        `(batch_size, source_length)` (or a dict with `"source"`, such as the training inputs)
        and returns the new tokens only (the prefix is empty). The cache is the backbone's
        (see `RNNSeq2SeqBackbone.prefill`), all batch first, so beam search tiles the encoder
        outputs across the beams. Cached decoding equals the teacher-forced model on the
        generated prefix.

    Alignments:
        `attention_weights(source, target_in)` returns the backbone's attention weights
        `(batch_size, target_length, source_length)` of the teacher-forced pass; for a
        generated output `y`, pass `target_in = [start_token_id] + y[:, :-1]`.

    Example:
    ```python
    backbone = keras_seq.models.RNNSeq2SeqBackbone(
        source_vocabulary_size=20,
        target_vocabulary_size=15,
        embedding_dim=8,
        hidden_dim=16,
        attention="bahdanau",
        bidirectional_encoder=True,
    )
    model = keras_seq.models.RNNSeq2SeqLM(backbone, start_token_id=1)
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
        - [Bahdanau et al., 2015](https://arxiv.org/abs/1409.0473)
        - [Luong et al., 2015](https://arxiv.org/abs/1508.04025)
    """

    # `GenerativeTask`'s argument, taken through `**kwargs` (see `constructor_arguments`).
    forwarded_arguments = ("generation_defaults",)
    # Id 0 is padding: the encoder's recurrent layers and the attention mask it out.
    pads_sources_right = True
    source_padding_token_id = 0

    backbone_cls = RNNSeq2SeqBackbone

    def __init__(self, backbone, start_token_id=1, **kwargs):
        backbone = self.resolve_backbone(
            backbone,
            _is_rnn_seq2seq_backbone,
            "an RNNSeq2SeqBackbone (or a backbone with its interface)",
        )
        validate_start_token_id(start_token_id, backbone.target_vocabulary_size)
        kwargs.setdefault("dtype", backbone.dtype_policy)
        kwargs.setdefault("name", default_name("rnn_seq2seq_lm"))  # Keras: "rnn_seq2_seq_lm"

        # === Layers ===
        self.output_dense = keras.layers.Dense(
            backbone.target_vocabulary_size, dtype=kwargs["dtype"], name="output_dense"
        )

        # === Functional model ===
        inputs = backbone.input
        features = backbone(inputs)["decoder_sequence_output"]  # (B, T, O)
        logits = self.output_dense(features)  # (B, T, V)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.start_token_id = start_token_id

    def attention_weights(self, source, target_in):
        """The backbone's attention weights `(batch_size, target_length, source_length)` of
        the teacher-forced pass (see `RNNSeq2SeqBackbone.attention_weights`)."""
        return self.backbone.attention_weights(source, target_in)

    # === Generation protocol (keras_seq.generation.protocol) ===

    def prefill(self, inputs, max_new_tokens):
        source = source_token_ids(inputs, type(self).__name__)  # (B, S)
        batch_size = ops.shape(source)[0]
        start = ops.full((batch_size, 1), self.start_token_id, dtype="int32")  # (B, 1)
        features, cache = self.backbone.prefill(source, start)  # (B, 1, O)
        logits = self.output_dense(features[:, -1])  # (B, V)
        prefix = ops.zeros((batch_size, 0), dtype="int32")  # (B, 0): no prompt in the output
        return prefix, logits, cache

    def call_with_cache(self, token_ids, cache, index):
        # Output position `index` is decoder position `index + 1`: the start token is at 0.
        features, cache = self.backbone.call_with_cache(
            ops.cast(token_ids, "int32")[:, None], cache, index + 1
        )  # (B, 1, O)
        return self.output_dense(features[:, 0]), cache  # (B, V)

    def get_config(self):
        return {**super().get_config(), "start_token_id": self.start_token_id}
