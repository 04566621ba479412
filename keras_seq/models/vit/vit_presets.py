"""Architecture presets of `ViTBackbone` and its tasks (random weights; nothing is downloaded).

Sizes from Dosovitskiy et al. (2020), Table 1 (B, L) and Steiner et al. (2021) (Ti, S), at
224 x 224; `"config"` holds the backbone's arguments and `"task_config"` the classifier's 1,000
ImageNet classes. Parameter counts (of `ViTImageClassifier`) equal timm's models of the same
names built with 1,000 classes (ViT-Ti/32 was never published and timm has no model of that
name: it is the Ti width at patch 32).
"""

_SIZES = {
    "tiny": {"num_layers": 12, "hidden_dim": 192, "num_heads": 3, "intermediate_dim": 768},
    "small": {"num_layers": 12, "hidden_dim": 384, "num_heads": 6, "intermediate_dim": 1536},
    "base": {"num_layers": 12, "hidden_dim": 768, "num_heads": 12, "intermediate_dim": 3072},
    "large": {"num_layers": 24, "hidden_dim": 1024, "num_heads": 16, "intermediate_dim": 4096},
}
_LABELS = {"tiny": "Ti", "small": "S", "base": "B", "large": "L"}
_PARAMETERS = {
    ("tiny", 16): 5_717_416,
    ("tiny", 32): 6_131_560,
    ("small", 16): 22_050_664,
    ("small", 32): 22_878_952,
    ("base", 16): 86_567_656,
    ("base", 32): 88_224_232,
    ("large", 16): 304_326_632,
    ("large", 32): 306_535_400,
}

VIT_PRESETS = {
    f"vit_{size}_patch{patch}_224": {
        "description": (
            f"ViT-{_LABELS[size]}/{patch} at 224 x 224, 1,000 classes: "
            f"{config['num_layers']} layers, width {config['hidden_dim']}, "
            f"{config['num_heads']} heads ({_PARAMETERS[size, patch]:,} parameters)."
        ),
        "config": {"image_shape": (224, 224, 3), "patch_size": patch, **config},
        "task_config": {"num_classes": 1000},
    }
    for size, config in _SIZES.items()
    for patch in (16, 32)
}
