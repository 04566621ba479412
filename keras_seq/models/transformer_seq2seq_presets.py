"""Architecture presets of `TransformerSeq2SeqBackbone` (and `TransformerSeq2SeqLM`): random
weights.

`transformer_base` and `transformer_big` are the two models of Vaswani et al. (2017), Table 3:
6 encoder and 6 decoder post-norm layers, sinusoidal positions, and one embedding matrix shared
by the source, the target and the output projection over the shared 37000-token byte-pair
vocabulary of WMT 2014 English-German (section 5.1). `transformer_big` uses the dropout of its
English-German model (0.3). `transformer_tiny` is a small model of the same shape for demos
and tests.
"""


def _config(hidden_dim, num_heads, intermediate_dim, dropout, num_layers=6, vocabulary_size=37000):
    return {
        "vocabulary_size": vocabulary_size,
        "num_encoder_layers": num_layers,
        "num_decoder_layers": num_layers,
        "hidden_dim": hidden_dim,
        "num_heads": num_heads,
        "intermediate_dim": intermediate_dim,
        "dropout": dropout,
        "position": "sine",
        "share_embeddings": True,
        "normalize_first": False,
    }


# The arguments of the task models (`TransformerSeq2SeqLM`).
_TASK_CONFIG = {"start_token_id": 1}

TRANSFORMER_SEQ2SEQ_PRESETS = {
    "transformer_tiny": {
        "description": (
            "A tiny Transformer for demos and tests: 2 + 2 layers, hidden 64, 4 heads, "
            "feed-forward 128, 1000-token shared vocabulary; 231,424 parameters."
        ),
        "config": _config(64, 4, 128, 0.1, num_layers=2, vocabulary_size=1000),
        "task_config": dict(_TASK_CONFIG),
    },
    "transformer_base": {
        "description": (
            "Transformer base (Vaswani et al.): 6 + 6 layers, hidden 512, 8 heads, "
            "feed-forward 2048, dropout 0.1, shared 37000-token vocabulary; "
            "63,082,496 parameters."
        ),
        "config": _config(512, 8, 2048, 0.1),
        "task_config": dict(_TASK_CONFIG),
    },
    "transformer_big": {
        "description": (
            "Transformer big (Vaswani et al.): 6 + 6 layers, hidden 1024, 16 heads, "
            "feed-forward 4096, dropout 0.3, shared 37000-token vocabulary; "
            "214,245,376 parameters."
        ),
        "config": _config(1024, 16, 4096, 0.3),
        "task_config": dict(_TASK_CONFIG),
    },
}
