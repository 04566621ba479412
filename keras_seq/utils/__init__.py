"""Small shared helpers: argument validation and resolution of pluggable parts."""

from keras_seq.utils.checkpoint_averaging import average_checkpoints
from keras_seq.utils.initializers import clone_initializer
