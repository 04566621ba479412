"""Image captioning: a small CNN backbone, its presets, and the RNN and transformer captioners."""
