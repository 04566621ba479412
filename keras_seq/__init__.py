"""keras_seq: pluggable Keras 3 layers for sequence and vision-transformer models."""

from keras_seq import callbacks
from keras_seq import data
from keras_seq import generation
from keras_seq import layers
from keras_seq import losses
from keras_seq import metrics
from keras_seq import models
from keras_seq import ops
from keras_seq import schedules
from keras_seq import testing
from keras_seq import utils
from keras_seq.version import __version__
