"""Losses."""

from keras_seq.losses.detr_loss import DETRLoss
from keras_seq.losses.sequence_loss import SequenceCrossEntropy
