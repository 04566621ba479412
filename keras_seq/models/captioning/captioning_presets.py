"""Architecture presets of the image captioners (random weights; nothing is downloaded).

Each preset is a `CaptioningCNNBackbone` config plus the arguments of the captioner built on
it (`task_config`): `RNNImageCaptioner.from_preset` and `TransformerImageCaptioner.from_preset`
read the same entries, each taking the task arguments it has (`cell` is the RNN's only).
"""

CAPTIONING_PRESETS = {
    "captioner_tiny": {
        "description": (
            "A tiny captioner for demos and tests: 32x32 images, the three-convolution "
            "backbone (4x4 regions of 128 channels), hidden 64, 1000-word vocabulary; an LSTM "
            "with Bahdanau attention (RNNImageCaptioner) or 2 transformer blocks of 4 heads "
            "(TransformerImageCaptioner)."
        ),
        "config": {"image_shape": (32, 32, 3), "num_filters": (32, 64, 128)},
        "task_config": {
            "vocabulary_size": 1000,
            "hidden_dim": 64,
            "cell": "lstm",
            "dropout": 0.1,
        },
    },
}
