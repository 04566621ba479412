"""Recipe `seq2seq-attention`: an encoder-decoder with attention translates dates.

Human-readable dates in nine formats ("Tuesday, March 3, 1998", "03/03/98", ...) are
translated character by character to ISO 8601 ("1998-03-03") (`keras_seq.data.
date_translation_data`; nothing is downloaded). `--model bahdanau` (the default) trains an
`RNNSeq2SeqLM` on an `RNNSeq2SeqBackbone` with `attention="bahdanau"`, `--model transformer`
a small `TransformerSeq2SeqLM` (separate source and target character embeddings,
`share_embeddings=False`), on the same data and vocabularies.
Validation and held-out dates are days never seen in training, in any format. The held-out
score is the exact-match rate of greedy decoding (and the rate of correct characters).

Outputs beyond the runner's: `vocabulary.json` (for `keras-seq generate`), `translations.txt`
(held-out examples) and, for the LSTM model, `attention.png` (the alignment of a few held-out
translations: which source characters each output character attended to) and the decoder's
attention maps on a probe batch in TensorBoard (`AttentionMapLogger`).

With `--data` (`run.data`: tab-separated files, source TAB target per line) the model
learns the user's pairs instead (`pairs_data`): the vocabularies are their characters, every
tenth pair validates and gives the held-out scores. With `--from` it fine-tunes a saved
`RNNSeq2SeqLM` or `TransformerSeq2SeqLM` with its `vocabulary.json` (the pairs may use only
its characters); the saved model's class decides the architecture.

Settings from integration_tests/test_seq2seq_learning.py, measured on 2 shared CPU cores:
8,000 examples, embedding 32, LSTM 64, Adam 5e-3 with a cosine decay, clipnorm 1, batch 64,
6 epochs: 0.988 held-out exact match in 40-51 s; this recipe: 1.000 on its held-out dates
(500) in 46 s (93 s on a busy machine). `--model transformer` (2 + 2 post-norm layers of
width 64, 4 heads, 172,224 parameters; Adam with a warm-up to 3e-3 over a tenth of the steps,
then a cosine decay, `learning_rates.warmup_cosine_decay`): 0.876 held-out exact match (0.978
of characters) in 104 s on a busy machine; without the warm-up (Adam 5e-3, cosine decay) 0.70.
"""

import math
import os

import keras
import numpy as np

from keras_seq.callbacks.attention_map_logger import AttentionMapLogger
from keras_seq.data.char_vocabulary import CharVocabulary
from keras_seq.data.date_translation import DATE_SOURCE_LENGTH
from keras_seq.data.date_translation import DATE_SOURCE_VOCABULARY
from keras_seq.data.date_translation import DATE_TARGET_VOCABULARY
from keras_seq.data.date_translation import date_translation_data
from keras_seq.data.teacher_forcing import teacher_forcing_inputs
from keras_seq.metrics.perplexity import Perplexity
from keras_seq.models.rnn_seq2seq_backbone import RNNSeq2SeqBackbone
from keras_seq.models.rnn_seq2seq_lm import RNNSeq2SeqLM
from keras_seq.models.transformer_seq2seq_backbone import TransformerSeq2SeqBackbone
from keras_seq.models.transformer_seq2seq_lm import TransformerSeq2SeqLM
from keras_seq.recipes import outputs
from keras_seq.recipes import vocabulary_file
from keras_seq.recipes.data_files import DataPathError
from keras_seq.recipes.data_files import FromModelError
from keras_seq.recipes.data_files import read_pairs
from keras_seq.recipes.learning_rates import warmup_cosine_decay

NUM_PLOTTED = 4
VALIDATION_EVERY = 10


# Examples for training and for each of validation and held-out data; model widths (the
# transformer's: `hidden_dim` with 2 or 4 heads, a feed-forward layer twice as wide).
SIZES = {
    "quick": {"train": 256, "held_out": 64, "embedding_dim": 8, "hidden_dim": 16, "layers": 1},
    "full": {"train": 8000, "held_out": 500, "embedding_dim": 32, "hidden_dim": 64, "layers": 2},
}


def _build(kind, sizes, vocabularies):
    """A new model of `kind` (`"bahdanau"` or `"transformer"`) for `(source, target)`
    vocabularies."""
    source_vocabulary, target_vocabulary = vocabularies
    if kind == "transformer":
        backbone = TransformerSeq2SeqBackbone(
            source_vocabulary_size=len(source_vocabulary),
            target_vocabulary_size=len(target_vocabulary),
            share_embeddings=False,
            num_encoder_layers=sizes["layers"],
            num_decoder_layers=sizes["layers"],
            hidden_dim=sizes["hidden_dim"],
            num_heads=2 * sizes["layers"],
            intermediate_dim=2 * sizes["hidden_dim"],
            dropout=0.1,
        )
        return TransformerSeq2SeqLM(backbone, start_token_id=target_vocabulary.start_id)
    backbone = RNNSeq2SeqBackbone(
        source_vocabulary_size=len(source_vocabulary),
        target_vocabulary_size=len(target_vocabulary),
        embedding_dim=sizes["embedding_dim"],
        hidden_dim=sizes["hidden_dim"],
        attention="bahdanau",
    )
    return RNNSeq2SeqLM(backbone, start_token_id=target_vocabulary.start_id)


def attention_figure(alignments, sources, outputs_text):
    """Heatmaps of `alignments` `(N, T, S)`: rows are output characters, columns source
    characters (only the real ones: source padding and steps after the end are cut)."""
    count = len(sources)
    columns = min(2, count)
    rows = math.ceil(count / columns)
    figure = outputs.new_figure(6.0 * columns, 3.2 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, weights, source, output in zip(axes, alignments, sources, outputs_text):
        output_labels = list(output) + ["<end>"]
        weights = np.asarray(weights)[: len(output_labels), : len(source)]
        ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(source)), list(source), fontsize=7)
        ax.set_yticks(range(len(output_labels)), output_labels, fontsize=7)
        ax.set_title(f"{source} -> {output}", fontsize=9)
    for ax in axes[count:]:
        ax.set_visible(False)
    figure.suptitle("Bahdanau attention: output characters (rows) over source characters")
    return figure


def _builtin_data(run):
    """The dates: training, validation and held-out examples (different days)."""
    sizes = SIZES["quick" if run.quick else "full"]
    inputs, targets = date_translation_data(sizes["train"], split="train", seed=0)
    validation = date_translation_data(sizes["held_out"], split="test", seed=1)
    test = date_translation_data(sizes["held_out"], split="test", seed=2)
    vocabularies = (DATE_SOURCE_VOCABULARY, DATE_TARGET_VOCABULARY)
    return (inputs, targets), validation, test, vocabularies, DATE_SOURCE_LENGTH


def pairs_data(pairs, vocabularies=None, source_length=None):
    """Examples from `(source, target)` text pairs: the vocabularies are their characters
    (the target's with `<start>` and `<end>`), or the `(source, target)` vocabularies given
    (a model's, to fine-tune); sources are padded to the longest (at least `source_length`),
    and every tenth pair (the 1st, 11th, ...) is the validation set, which gives the
    held-out scores. Characters outside given vocabularies are a `ValueError`.

    Returns:
        `(train, validation, (source_vocabulary, target_vocabulary), source_length)`, each
        set `(inputs, targets)` as `keras_seq.data.date_translation_data` returns them.
    """
    if len(pairs) < 2:
        raise ValueError(
            f"`data` holds {len(pairs)} pair(s): training needs at least 2 (one of them for "
            "validation)."
        )
    sources = [source for source, _ in pairs]
    targets = [target for _, target in pairs]
    if vocabularies is None:
        source_vocabulary = CharVocabulary(sorted(set("".join(sources))), special_tokens=())
        target_vocabulary = CharVocabulary(sorted(set("".join(targets))))  # <start>, <end>
    else:
        source_vocabulary, target_vocabulary = vocabularies
        for side, texts, vocabulary in (
            ("sources", sources, source_vocabulary),
            ("targets", targets, target_vocabulary),
        ):
            unknown = sorted(set("".join(texts)) - set(vocabulary.characters))
            if unknown:
                raise ValueError(
                    f"the {side} hold characters outside the model's vocabulary: {unknown[:20]}"
                )
    source_length = max([source_length or 0] + [len(source) for source in sources])
    target_length = max(len(target) for target in targets) + 1  # with <end>
    source_ids = source_vocabulary.encode(sources, length=source_length)  # (N, S)
    target_ids = target_vocabulary.encode(targets, length=target_length, add_end=True)  # (N, T)
    inputs = teacher_forcing_inputs(
        source_ids, target_ids, start_token_id=target_vocabulary.start_id
    )
    held = np.arange(len(pairs)) % VALIDATION_EVERY == 0

    def subset(mask):
        return {key: value[mask] for key, value in inputs.items()}, target_ids[mask]

    vocabularies = (source_vocabulary, target_vocabulary)
    return subset(~held), subset(held), vocabularies, source_length


def load_base_model(path):
    """The model `--from` names (a `.keras` file of an `RNNSeq2SeqLM` or a
    `TransformerSeq2SeqLM`) and the vocabulary file beside it
    (`vocabulary_file.read_vocabulary_file`)."""
    model = keras.saving.load_model(path, compile=False)
    if not isinstance(model, (RNNSeq2SeqLM, TransformerSeq2SeqLM)):
        raise FromModelError(
            path,
            f"holds a {type(model).__name__}; recipe seq2seq-attention fine-tunes an "
            "RNNSeq2SeqLM or a TransformerSeq2SeqLM",
        )
    directory = os.path.dirname(os.path.abspath(path))
    vocabulary = vocabulary_file.read_vocabulary_file(
        os.path.join(directory, vocabulary_file.FILENAME)
    )
    return model, vocabulary


def _user_data(run, base_vocabulary=None):
    vocabularies, source_length = None, None
    if base_vocabulary is not None:
        vocabularies = (base_vocabulary["source"], base_vocabulary["target"])
        source_length = base_vocabulary.get("source_length")
    try:
        train, validation, vocabularies, source_length = pairs_data(
            read_pairs(run.data), vocabularies, source_length
        )
    except ValueError as error:
        raise DataPathError(" ".join(run.data), str(error)) from None
    run.details["data_pairs"] = {"train": len(train[1]), "validation": len(validation[1])}
    return train, validation, validation, vocabularies, source_length


def train_seq2seq_attention(run):
    """Train the `seq2seq-attention` recipe (see the module docstring) for a `RecipeRun`."""
    sizes = SIZES["quick" if run.quick else "full"]
    kind, base = run.model_name, None
    if run.from_model is not None:
        with run.scope():
            base, base_vocabulary = load_base_model(run.from_model)
        kind = "transformer" if isinstance(base, TransformerSeq2SeqLM) else "bahdanau"
        run.details["from_model_class"] = type(base).__name__
        loaded = _user_data(run, base_vocabulary)
    else:
        loaded = _builtin_data(run) if run.data is None else _user_data(run)
    (inputs, targets), validation, test, vocabularies, source_length = loaded
    test_inputs, test_targets = test
    source_vocabulary, target_vocabulary = vocabularies
    target_length = targets.shape[1]

    steps = run.epochs * math.ceil(len(targets) / run.batch_size)
    with run.scope():
        model = base or _build(kind, sizes, vocabularies)
        if kind == "transformer":  # warm-up, as post-norm Transformers need
            schedule = warmup_cosine_decay(3e-3, steps)
        else:
            schedule = keras.optimizers.schedules.CosineDecay(5e-3, steps)
        model.compile(
            optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
            metrics=[Perplexity(ignore_index=0)],
            jit_compile=run.compile_jit(),
        )

    end_id = target_vocabulary.end_id
    vocabulary_file.write_vocabulary_file(
        run.path(vocabulary_file.FILENAME),
        source_vocabulary,
        target_vocabulary,
        source_length=source_length,
        stop_token_id=end_id,
        max_new_tokens=target_length,
    )
    run.add_file(vocabulary_file.FILENAME)
    probe = {key: value[:2] for key, value in test_inputs.items()}
    callbacks = []
    if kind == "bahdanau":
        callbacks.append(
            AttentionMapLogger(run.log_dir, probe, ["decoder_layer_0"], colormap="viridis")
        )
    run.fit(model, inputs, targets, validation_data=validation, callbacks=callbacks)
    run.save_model(model, probe_inputs={key: value[:8] for key, value in test_inputs.items()})

    generated = np.asarray(
        model.generate(
            test_inputs["source"],
            max_new_tokens=target_length,
            stop_token_id=end_id,
            jit_compile=False,
        )
    )  # (N, T)
    exact = float(np.mean(np.all(generated == test_targets, axis=1)))
    characters = float(np.mean((generated == test_targets)[test_targets > 0]))
    run.report(exact_match=exact, character_accuracy=characters)

    sources = source_vocabulary.decode(test_inputs["source"])
    predicted = target_vocabulary.decode(generated)
    expected = target_vocabulary.decode(test_targets)
    lines = [
        f"{'ok ' if p == e else 'BAD'} {s!r} -> {p} (expected {e})"
        for s, p, e in zip(sources[:20], predicted[:20], expected[:20])
    ]
    run.write_text("translations.txt", "\n".join(lines) + "\n")
    if kind != "bahdanau":
        return  # only the recurrent model has one alignment per output character to draw

    start = np.full((len(generated), 1), target_vocabulary.start_id, dtype="int32")
    target_in = np.concatenate([start, generated[:, :-1]], axis=1)  # (N, T)
    alignments = np.asarray(
        model.attention_weights(test_inputs["source"][:NUM_PLOTTED], target_in[:NUM_PLOTTED])
    )  # (N, T, S)
    run.save_figure(
        attention_figure(alignments, sources[:NUM_PLOTTED], predicted[:NUM_PLOTTED]),
        "attention.png",
    )
