"""Metrics."""

from keras_seq.metrics.detection_evaluation import evaluate_detection
from keras_seq.metrics.mean_average_precision import mean_average_precision
from keras_seq.metrics.perplexity import Perplexity
