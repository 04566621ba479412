"""Metrics."""

from keras_seq.metrics.perplexity import Perplexity
