"""Transformer blocks and the small blocks they share (MLP)."""
