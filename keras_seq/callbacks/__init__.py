"""Training callbacks: checkpoint averaging, stateful-RNN resets, and TensorBoard loggers of
attention maps, gradient norms and generated samples."""

from keras_seq.callbacks.attention_map_logger import AttentionMapLogger
from keras_seq.callbacks.checkpoint_averaging import CheckpointAveraging
from keras_seq.callbacks.generation_logger import GenerationLogger
from keras_seq.callbacks.gradient_norm_logger import GradientNormLogger
from keras_seq.callbacks.hidden_state_gradients import hidden_state_gradient_norms
from keras_seq.callbacks.reset_states import ResetStatesAtSequenceBoundary
