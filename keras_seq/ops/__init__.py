"""Pure keras.ops functions (no weights): attention kernels, masks."""

from keras_seq.ops.activations import gelu_approximate
from keras_seq.ops.attention import attention_logits
from keras_seq.ops.attention import attention_probabilities
from keras_seq.ops.attention import causal_mask
from keras_seq.ops.attention import chunked_attention
