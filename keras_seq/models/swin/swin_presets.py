"""Architecture presets of `SwinBackbone` and its tasks (random weights; nothing is downloaded).

Sizes from Liu et al. (2021), Section 3.3, at 224 x 224 with window 7 and the paper's
stochastic depth rates; `"config"` holds the backbone's arguments and `"task_config"` the
classifier's 1,000 ImageNet classes. Parameter counts (of `SwinImageClassifier`) equal timm's
models of the same names.
"""

_TASK = {"num_classes": 1000}

SWIN_PRESETS = {
    "swin_tiny_patch4_window7_224": {
        "description": "Swin-T: width 96, blocks (2, 2, 6, 2) (28,288,354 parameters).",
        "config": {
            "image_shape": (224, 224, 3),
            "hidden_dim": 96,
            "num_layers": (2, 2, 6, 2),
            "num_heads": (3, 6, 12, 24),
            "drop_path_rate": 0.2,
        },
        "task_config": _TASK,
    },
    "swin_small_patch4_window7_224": {
        "description": "Swin-S: width 96, blocks (2, 2, 18, 2) (49,606,258 parameters).",
        "config": {
            "image_shape": (224, 224, 3),
            "hidden_dim": 96,
            "num_layers": (2, 2, 18, 2),
            "num_heads": (3, 6, 12, 24),
            "drop_path_rate": 0.3,
        },
        "task_config": _TASK,
    },
    "swin_base_patch4_window7_224": {
        "description": "Swin-B: width 128, blocks (2, 2, 18, 2) (87,768,224 parameters).",
        "config": {
            "image_shape": (224, 224, 3),
            "hidden_dim": 128,
            "num_layers": (2, 2, 18, 2),
            "num_heads": (4, 8, 16, 32),
            "drop_path_rate": 0.5,
        },
        "task_config": _TASK,
    },
}
