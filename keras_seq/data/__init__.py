"""Dataset builders used by guides, demos and tests."""

from keras_seq.data.masked_lm import mask_tokens
from keras_seq.data.tbptt import truncated_bptt_dataset
