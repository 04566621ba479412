"""Training callbacks."""

from keras_seq.callbacks.checkpoint_averaging import CheckpointAveraging
from keras_seq.callbacks.reset_states import ResetStatesAtSequenceBoundary
