"""Small shared helpers: argument validation, resolution of pluggable parts, checks of the
data given to `fit`, the walk over a model's nested layers, the multi-worker workaround, and a
layout map for model parallelism of the transformers."""

from keras_seq.utils.checkpoint_averaging import average_checkpoints
from keras_seq.utils.fit_checks import check_fit_data
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.layer_walk import find_layers
from keras_seq.utils.layer_walk import iter_layers
from keras_seq.utils.layout_map import transformer_layout_map
from keras_seq.utils.multi_worker import apply_multi_worker_fixes
