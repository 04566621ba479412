"""BERT: the encoder backbone, its presets and the masked-language-model task model."""
