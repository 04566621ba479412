"""Architecture presets of `RNNBackbone`: constructor arguments only, random weights.

Character-level models sized for small corpora (Karpathy's char-rnn scale): a vocabulary of
128 ids covers ASCII (override `vocabulary_size` for another character set, e.g.
`len(keras_seq.data.CHAR_CORPUS_VOCABULARY)`). The parameter counts in the descriptions are
those of `RNNCausalLM.from_preset(name)`, with its default `Dense` readout.
"""

RNN_PRESETS = {
    "char_lstm_small": {
        "description": "Character LSTM: embeddings 32, 1 layer of 128 units; 103,040 parameters.",
        "config": {
            "vocabulary_size": 128,
            "embedding_dim": 32,
            "hidden_dim": 128,
            "num_layers": 1,
            "cell": "lstm",
            "dropout": 0.0,
        },
    },
    "char_lstm_medium": {
        "description": (
            "Character LSTM: embeddings 64, 2 layers of 256 units, dropout 0.2; 895,104 parameters."
        ),
        "config": {
            "vocabulary_size": 128,
            "embedding_dim": 64,
            "hidden_dim": 256,
            "num_layers": 2,
            "cell": "lstm",
            "dropout": 0.2,
        },
    },
    "char_gru_small": {
        "description": "Character GRU: embeddings 32, 1 layer of 128 units; 82,816 parameters.",
        "config": {
            "vocabulary_size": 128,
            "embedding_dim": 32,
            "hidden_dim": 128,
            "num_layers": 1,
            "cell": "gru",
            "dropout": 0.0,
        },
    },
}
