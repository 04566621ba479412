"""Public models of keras_seq: functional models whose config is their constructor arguments."""
