"""Architecture presets of `BERTBackbone`: constructor arguments only, random weights, no download.

`bert_base` and `bert_large` are the two models of Devlin et al. (2019); `bert_tiny`,
`bert_mini`, `bert_small` and `bert_medium` are the compact BERTs of Turc et al. (2019),
`L` layers of width `H` with `H / 64` heads and a `4 H` feed-forward. All use the uncased
WordPiece vocabulary size (30522), 512 positions and 2 segment types; the other arguments
(GELU, layer-norm epsilon 1e-12, dropout 0.1, TruncatedNormal(0.02) initialization) are
`BERTBackbone`'s defaults.
"""


def _config(num_layers, hidden_dim):
    return {
        "vocabulary_size": 30522,
        "num_layers": num_layers,
        "num_heads": hidden_dim // 64,
        "hidden_dim": hidden_dim,
        "intermediate_dim": 4 * hidden_dim,
        "dropout": 0.1,
        "max_sequence_length": 512,
        "num_segments": 2,
    }


BERT_PRESETS = {
    "bert_tiny": {
        "description": "BERT-Tiny (Turc et al.): 2 layers, hidden 128, 2 heads; 4.39M parameters.",
        "config": _config(2, 128),
    },
    "bert_mini": {
        "description": "BERT-Mini (Turc et al.): 4 layers, hidden 256, 4 heads; 11.17M parameters.",
        "config": _config(4, 256),
    },
    "bert_small": {
        "description": (
            "BERT-Small (Turc et al.): 4 layers, hidden 512, 8 heads; 28.76M parameters."
        ),
        "config": _config(4, 512),
    },
    "bert_medium": {
        "description": (
            "BERT-Medium (Turc et al.): 8 layers, hidden 512, 8 heads; 41.37M parameters."
        ),
        "config": _config(8, 512),
    },
    "bert_base": {
        "description": (
            "BERT-base (Devlin et al.): 12 layers, hidden 768, 12 heads; 109,482,240 parameters."
        ),
        "config": _config(12, 768),
    },
    "bert_large": {
        "description": (
            "BERT-large (Devlin et al.): 24 layers, hidden 1024, 16 heads; 335.14M parameters."
        ),
        "config": _config(24, 1024),
    },
}
