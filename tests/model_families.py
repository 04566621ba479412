"""One tiny instance of every model family with a batch of training data, for the tests that
must hold for all of them: tf.distribute, XLA train steps, mixed precision.

`make_case(family)` returns a `Case` whose `build()` makes a fresh model, a task model on its
backbone (call it inside a `strategy.scope()` to distribute it), whose `build_deprecated()`
makes the same architecture through the deprecated 0.1 class, and whose `x`, `y`,
`sample_weight` hold a global batch of `BATCH_SIZE` examples. Padding is spread unevenly over
the batch, so that the two halves of a two-replica split hold different numbers of real
tokens (or boxes): losses that divide by a count must reduce it over the replicas to match
one device. No dropout (replicas would draw different masks).
"""

import dataclasses

import keras
import numpy as np

from keras_seq.data.masked_lm import mask_tokens
from keras_seq.losses import DETRLoss
from keras_seq.losses import SequenceCrossEntropy
from keras_seq.models import BERT
from keras_seq.models import DETR
from keras_seq.models import GPT
from keras_seq.models import BERTBackbone
from keras_seq.models import BERTMaskedLM
from keras_seq.models import CaptioningCNNBackbone
from keras_seq.models import DETRBackbone
from keras_seq.models import DETRObjectDetector
from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM
from keras_seq.models import ImageCaptioner
from keras_seq.models import RNNBackbone
from keras_seq.models import RNNCausalLM
from keras_seq.models import RNNImageCaptioner
from keras_seq.models import RNNLanguageModel
from keras_seq.models import RNNSeq2SeqBackbone
from keras_seq.models import RNNSeq2SeqLM
from keras_seq.models import Seq2Seq
from keras_seq.models import SwinBackbone
from keras_seq.models import SwinImageClassifier
from keras_seq.models import SwinTransformer
from keras_seq.models import TransformerImageCaptioner
from keras_seq.models import TransformerSeq2Seq
from keras_seq.models import TransformerSeq2SeqBackbone
from keras_seq.models import TransformerSeq2SeqLM
from keras_seq.models import VisionTransformer
from keras_seq.models import ViTBackbone
from keras_seq.models import ViTImageClassifier

BATCH_SIZE = 4
VOCABULARY = 23
LENGTH = 8


@dataclasses.dataclass
class Case:
    build_model: object  # () -> uncompiled model (a task on its backbone)
    make_loss: object  # () -> keras.losses.Loss
    x: object
    y: object
    sample_weight: object = None
    # () -> the same architecture as the deprecated 0.1 class (tests/models/test_deprecated_*)
    build_deprecated: object = None

    def build(self, optimizer=None, **compile_kwargs):
        """A fresh compiled model (SGD 0.1 unless `optimizer` is given; no metrics)."""
        model = self.build_model()
        model.compile(
            optimizer=optimizer or keras.optimizers.SGD(0.1),
            loss=self.make_loss(),
            **compile_kwargs,
        )
        return model


def _token_ids(rng, lengths, length=LENGTH, low=3):
    """int32 `(len(lengths), length)` ids in `[low, VOCABULARY)`, right-padded with 0 after
    each row's length."""
    ids = rng.integers(low, VOCABULARY, size=(len(lengths), length)).astype("int32")
    ids[np.arange(length)[None, :] >= np.asarray(lengths)[:, None]] = 0
    return ids


# Real lengths per example: the first half of the batch (replica 0) holds many more real
# tokens than the second (replica 1).
LENGTHS = [LENGTH, LENGTH, 3, 2]


def _sequence_loss():
    return SequenceCrossEntropy(ignore_index=0)


def _rnn_language_model(rng):
    ids = _token_ids(rng, LENGTHS, LENGTH + 1)
    return Case(
        lambda: RNNCausalLM(RNNBackbone(VOCABULARY, embedding_dim=8, hidden_dim=8, num_layers=2)),
        _sequence_loss,
        ids[:, :-1],
        ids[:, 1:],
        build_deprecated=lambda: RNNLanguageModel(
            VOCABULARY, embedding_dim=8, hidden_dim=8, num_layers=2
        ),
    )


def _gpt(rng):
    ids = _token_ids(rng, LENGTHS, LENGTH + 1)
    inputs = {"token_ids": ids[:, :-1], "padding_mask": (ids[:, :-1] > 0).astype("int32")}
    arguments = dict(
        vocabulary_size=VOCABULARY,
        num_layers=2,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        sequence_length=LENGTH,
        dropout=0.0,
    )
    return Case(
        lambda: GPTCausalLM(GPTBackbone(**arguments)),
        _sequence_loss,
        inputs,
        ids[:, 1:],
        build_deprecated=lambda: GPT(**arguments),
    )


def _bert_masked_lm(rng):
    ids = _token_ids(rng, LENGTHS, low=5)
    batch = mask_tokens(
        ids,
        vocabulary_size=VOCABULARY,
        mask_token_id=4,
        max_predictions=3,
        padding_mask=ids > 0,
        seed=int(rng.integers(1000)),
    )
    batch = {key: np.asarray(value) for key, value in batch.items()}
    inputs = {
        "token_ids": batch["token_ids"],
        "segment_ids": np.zeros_like(ids),
        "padding_mask": (ids > 0).astype("int32"),
        "mask_positions": batch["mask_positions"],
    }

    arguments = dict(
        vocabulary_size=VOCABULARY,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=LENGTH,
        dropout=0.0,
    )
    return Case(
        lambda: BERTMaskedLM(BERTBackbone(**arguments)),
        SequenceCrossEntropy,
        inputs,
        batch["mask_ids"],
        batch["mask_weights"],
        build_deprecated=lambda: BERTMaskedLM(BERT(**arguments)),
    )


def _seq2seq(rng, attention="bahdanau"):
    source = _token_ids(rng, [7, 6, 2, 3], 7)
    target = _token_ids(rng, LENGTHS, LENGTH + 1)
    target[:, 0] = 1  # start token
    arguments = dict(
        embedding_dim=8, hidden_dim=8, attention=attention, bidirectional_encoder=True
    )
    return Case(
        lambda: RNNSeq2SeqLM(RNNSeq2SeqBackbone(VOCABULARY, VOCABULARY, **arguments)),
        _sequence_loss,
        {"source": source, "target_in": target[:, :-1]},
        target[:, 1:],
        build_deprecated=lambda: Seq2Seq(VOCABULARY, VOCABULARY, **arguments),
    )


def _transformer_seq2seq(rng):
    source = _token_ids(rng, [7, 6, 2, 3], 7)
    target = _token_ids(rng, LENGTHS, LENGTH + 1)
    target[:, 0] = 1
    arguments = dict(
        num_encoder_layers=1,
        num_decoder_layers=1,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        dropout=0.0,
    )
    return Case(
        lambda: TransformerSeq2SeqLM(TransformerSeq2SeqBackbone(VOCABULARY, **arguments)),
        _sequence_loss,
        {"source": source, "target_in": target[:, :-1]},
        target[:, 1:],
        build_deprecated=lambda: TransformerSeq2Seq(VOCABULARY, **arguments),
    )


def _image_captioner(rng, decoder):
    image_shape = (24, 16, 3)
    target = _token_ids(rng, LENGTHS, LENGTH + 1)
    target[:, 0] = 1
    images = rng.uniform(size=(BATCH_SIZE,) + image_shape).astype("float32")
    decoder_arguments = dict(num_layers=1, num_heads=2, intermediate_dim=32)

    def build():
        backbone = CaptioningCNNBackbone(image_shape=image_shape)
        if decoder == "rnn":
            return RNNImageCaptioner(backbone, VOCABULARY, hidden_dim=16, dropout=0.0)
        return TransformerImageCaptioner(
            backbone, VOCABULARY, hidden_dim=16, dropout=0.0, **decoder_arguments
        )

    return Case(
        build,
        _sequence_loss,
        {"images": images, "target_in": target[:, :-1]},
        target[:, 1:],
        build_deprecated=lambda: ImageCaptioner(
            VOCABULARY,
            image_shape,
            decoder=decoder,
            hidden_dim=16,
            dropout=0.0,
            **decoder_arguments,
        ),
    )


def _vit(rng):
    arguments = dict(
        image_shape=(16, 16, 3),
        patch_size=4,
        num_layers=1,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
    )
    return Case(
        lambda: ViTImageClassifier(ViTBackbone(**arguments), num_classes=5),
        lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        rng.normal(size=(BATCH_SIZE, 16, 16, 3)).astype("float32"),
        rng.integers(0, 5, size=(BATCH_SIZE,)).astype("int32"),
        build_deprecated=lambda: VisionTransformer(**arguments, num_classes=5),
    )


def _swin(rng):
    arguments = dict(
        image_shape=(16, 16, 3),
        patch_size=2,
        hidden_dim=8,
        num_layers=(1, 1),
        num_heads=(2, 2),
        window_size=4,
        drop_path_rate=0.0,
    )
    return Case(
        lambda: SwinImageClassifier(SwinBackbone(**arguments), num_classes=5),
        lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        rng.normal(size=(BATCH_SIZE, 16, 16, 3)).astype("float32"),
        rng.integers(0, 5, size=(BATCH_SIZE,)).astype("int32"),
        build_deprecated=lambda: SwinTransformer(**arguments, num_classes=5),
    )


def _detr(rng):
    labels = np.full((BATCH_SIZE, 3), -1, "int32")
    labels[0, :3] = [0, 1, 2]  # replica 0: 4 boxes, replica 1: 1
    labels[1, :1] = [1]
    labels[2, :1] = [2]
    centers = rng.uniform(0.3, 0.7, (BATCH_SIZE, 3, 2))
    sizes = rng.uniform(0.1, 0.3, (BATCH_SIZE, 3, 2))
    boxes = np.where(labels[..., None] >= 0, np.concatenate([centers, sizes], -1), 0.0)

    def image_encoder():
        return keras.Sequential(
            [keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu")],
            name="tiny_backbone",
        )

    arguments = dict(
        image_shape=(32, 32, 3),
        hidden_dim=16,
        num_queries=4,
        num_encoder_layers=1,
        num_decoder_layers=2,
        num_heads=2,
        intermediate_dim=32,
        dropout=0.0,
    )
    return Case(
        lambda: DETRObjectDetector(
            DETRBackbone(image_encoder=image_encoder(), **arguments), num_classes=3
        ),
        DETRLoss,
        rng.normal(size=(BATCH_SIZE, 32, 32, 3)).astype("float32"),
        {"boxes": boxes.astype("float32"), "labels": labels},
        build_deprecated=lambda: DETR(num_classes=3, backbone=image_encoder(), **arguments),
    )


FACTORIES = {
    "rnn_language_model": _rnn_language_model,
    "gpt": _gpt,
    "bert_masked_lm": _bert_masked_lm,
    "seq2seq_bahdanau": lambda rng: _seq2seq(rng, "bahdanau"),
    "seq2seq_luong": lambda rng: _seq2seq(rng, "luong"),
    "transformer_seq2seq": _transformer_seq2seq,
    "image_captioner_rnn": lambda rng: _image_captioner(rng, "rnn"),
    "image_captioner_transformer": lambda rng: _image_captioner(rng, "transformer"),
    "vit": _vit,
    "swin": _swin,
    "detr": _detr,
}
FAMILIES = sorted(FACTORIES)


def make_case(family, seed=0):
    """The `Case` of `family` (one of `FAMILIES`), its data drawn with `seed`."""
    return FACTORIES[family](np.random.default_rng(seed))
