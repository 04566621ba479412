"""Attention layers: additive (Bahdanau), multiplicative (Luong), multi-head."""
