"""Architecture presets of `RNNSeq2SeqBackbone` (and `RNNSeq2SeqLM`): random weights.

Character-level translators sized for the synthetic tasks of `keras_seq.data` (dates,
reversal). The vocabulary sizes are placeholders of 128 ids (ASCII); override them for a
task, e.g. `RNNSeq2SeqLM.from_preset("seq2seq_bahdanau_small",
source_vocabulary_size=len(keras_seq.data.DATE_SOURCE_VOCABULARY),
target_vocabulary_size=len(keras_seq.data.DATE_TARGET_VOCABULARY))`. The parameter counts are
those of the `RNNSeq2SeqLM` (backbone and readout).
"""


def _config(attention, bidirectional_encoder):
    return {
        "source_vocabulary_size": 128,
        "target_vocabulary_size": 128,
        "embedding_dim": 32,
        "hidden_dim": 64,
        "num_layers": 1,
        "cell": "lstm",
        "attention": attention,
        "bidirectional_encoder": bidirectional_encoder,
        "dropout": 0.0,
    }


# The arguments of the task models (`RNNSeq2SeqLM`).
_TASK_CONFIG = {"start_token_id": 1}


SEQ2SEQ_PRESETS = {
    "seq2seq_small": {
        "description": (
            "LSTM encoder-decoder without attention (the fixed-vector bottleneck): "
            "embeddings 32, 64 units; 66,176 parameters."
        ),
        "config": _config(None, False),
        "task_config": dict(_TASK_CONFIG),
    },
    "seq2seq_bahdanau_small": {
        "description": (
            "Bidirectional LSTM encoder, LSTM decoder with Bahdanau attention: embeddings "
            "32, 64 units; 169,088 parameters."
        ),
        "config": _config("bahdanau", True),
        "task_config": dict(_TASK_CONFIG),
    },
    "seq2seq_luong_small": {
        "description": (
            "LSTM encoder, LSTM decoder with Luong (general) attention: embeddings 32, "
            "64 units; 94,848 parameters."
        ),
        "config": _config("luong", False),
        "task_config": dict(_TASK_CONFIG),
    },
}
