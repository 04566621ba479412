"""Pure keras.ops functions (no weights): attention kernels, masks, windows, resizing, boxes,
the dense products."""

from keras_seq.ops.activations import gelu_approximate
from keras_seq.ops.assignment import linear_sum_assignment
from keras_seq.ops.attention import attention_logits
from keras_seq.ops.attention import attention_probabilities
from keras_seq.ops.attention import causal_mask
from keras_seq.ops.attention import chunked_attention
from keras_seq.ops.boxes import box_area
from keras_seq.ops.boxes import box_cxcywh_to_xyxy
from keras_seq.ops.boxes import box_iou
from keras_seq.ops.boxes import box_xyxy_to_cxcywh
from keras_seq.ops.boxes import generalized_box_iou
from keras_seq.ops.detection_matching import detr_matching_cost
from keras_seq.ops.detection_matching import hungarian_match
from keras_seq.ops.interpolation import bicubic_resize
from keras_seq.ops.linear import dense_matmul
from keras_seq.ops.linear import reverse_dense_matmul
from keras_seq.ops.loops import counted_loop
from keras_seq.ops.windows import relative_position_index
from keras_seq.ops.windows import shifted_window_mask
from keras_seq.ops.windows import window_partition
from keras_seq.ops.windows import window_reverse
