"""Training callbacks."""

from keras_seq.callbacks.reset_states import ResetStatesAtSequenceBoundary
