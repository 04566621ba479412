"""Architecture presets of the deprecated `ImageCaptioner`: its 0.1 constructor arguments,
random weights. (`RNNImageCaptioner` and `TransformerImageCaptioner` read theirs from
`CaptioningCNNBackbone.presets`: keras_seq/models/captioning/captioning_presets.py.)

`show_attend_tell` follows Xu et al. (2015): VGG-19 convolutional features attended by an LSTM
with additive attention, a 10000-word vocabulary and 512 hidden units. Keras' VGG19 without its
top ends with a pooling layer, so its grid is 7x7 regions of 512 channels where the paper took
the 14x14 map before that pooling. `captioner_tiny` is a small model for demos and tests.
"""

IMAGE_CAPTIONER_PRESETS = {
    "captioner_tiny": {
        "description": (
            "A tiny captioner for demos and tests: 32x32 images, the default three-convolution "
            "backbone (4x4 regions), an LSTM decoder with Bahdanau attention, hidden 64, "
            "1000-word vocabulary."
        ),
        "config": {
            "vocabulary_size": 1000,
            "image_shape": (32, 32, 3),
            "backbone": None,
            "decoder": "rnn",
            "hidden_dim": 64,
            "cell": "lstm",
            "dropout": 0.1,
        },
    },
    "show_attend_tell": {
        "description": (
            "Show, Attend and Tell (Xu et al.) with soft attention: 224x224 images, VGG-19 "
            "features (7x7 regions of 512 channels), an LSTM decoder with Bahdanau attention, "
            "hidden 512, 10000-word vocabulary, dropout 0.5."
        ),
        "config": {
            "vocabulary_size": 10000,
            "image_shape": (224, 224, 3),
            "backbone": "VGG19",
            "decoder": "rnn",
            "hidden_dim": 512,
            "cell": "lstm",
            "dropout": 0.5,
        },
    },
}
