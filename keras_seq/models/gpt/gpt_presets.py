"""Architecture presets of `GPTBackbone` / `GPTCausalLM` (random weights; nothing downloaded)."""

# GPT-2 sizes from Radford et al. (2019), Table 2, with the released checkpoints' vocabulary
# (50,257 byte-level BPE tokens) and context (1,024 positions).
_GPT2 = {"vocabulary_size": 50257, "sequence_length": 1024, "dropout": 0.1}

GPT_PRESETS = {
    "gpt2_small": {
        "description": "GPT-2 small: 12 layers, width 768, 12 heads (124,439,808 parameters).",
        "config": {
            **_GPT2,
            "num_layers": 12,
            "hidden_dim": 768,
            "num_heads": 12,
            "intermediate_dim": 3072,
        },
    },
    "gpt2_medium": {
        "description": "GPT-2 medium: 24 layers, width 1024, 16 heads (354,823,168 parameters).",
        "config": {
            **_GPT2,
            "num_layers": 24,
            "hidden_dim": 1024,
            "num_heads": 16,
            "intermediate_dim": 4096,
        },
    },
    "gpt2_large": {
        "description": "GPT-2 large: 36 layers, width 1280, 20 heads (774,030,080 parameters).",
        "config": {
            **_GPT2,
            "num_layers": 36,
            "hidden_dim": 1280,
            "num_heads": 20,
            "intermediate_dim": 5120,
        },
    },
    "gpt_tiny": {
        "description": "A demo-sized GPT: 2 layers, width 64, 4 heads, 256 positions.",
        "config": {
            "vocabulary_size": 256,
            "sequence_length": 256,
            "dropout": 0.0,
            "num_layers": 2,
            "hidden_dim": 64,
            "num_heads": 4,
            "intermediate_dim": 256,
        },
    },
    "gpt_small_char": {
        "description": "A character-level GPT for CPU demos: 4 layers, width 256, 4 heads.",
        "config": {
            "vocabulary_size": 256,
            "sequence_length": 512,
            "dropout": 0.1,
            "num_layers": 4,
            "hidden_dim": 256,
            "num_heads": 4,
            "intermediate_dim": 1024,
        },
    },
}
