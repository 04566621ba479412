"""Losses."""

from keras_seq.losses.sequence_loss import SequenceCrossEntropy
