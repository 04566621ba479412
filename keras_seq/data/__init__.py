"""Dataset builders used by guides, demos and tests."""

from keras_seq.data.tbptt import truncated_bptt_dataset
