"""Learned object queries of a set-prediction decoder (DETR)."""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.utils.initializers import clone_initializer
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class ObjectQueries(keras.layers.Layer):
    """Learned object queries: a `(num_queries, hidden_dim)` table, repeated for the batch.

    DETR's decoder starts from zeros and adds these embeddings to its queries and keys at
    every layer (`decoder_position_embedding` of `keras_seq.layers.TransformerDecoder`);
    each query learns to ask for objects in some region and of some size. The layer takes
    any tensor whose first axis is the batch (e.g. the encoder's output) only to know the
    batch size.

    Args:
        num_queries: int. Number of queries (the most objects a model can detect).
        hidden_dim: int. Width of each query.
        embeddings_initializer: initializer of the table. Defaults to a standard normal,
            as PyTorch's `nn.Embedding` in the original.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: tensor `(batch_size, ...)`; only its batch size is used.

    Returns:
        Tensor `(batch_size, num_queries, hidden_dim)`.

    Example:
    ```python
    queries = keras_seq.layers.ObjectQueries(num_queries=5, hidden_dim=8)
    assert queries(np.zeros((3, 10, 8), "float32")).shape == (3, 5, 8)
    ```

    References:
        - [Carion et al., 2020](https://arxiv.org/abs/2005.12872) (DETR)
    """

    def __init__(self, num_queries, hidden_dim, embeddings_initializer=None, **kwargs):
        num_queries = validate_positive_int("num_queries", num_queries)
        hidden_dim = validate_positive_int("hidden_dim", hidden_dim)
        super().__init__(**kwargs)
        self.num_queries = num_queries
        self.hidden_dim = hidden_dim
        self.embeddings_initializer = embeddings_initializer

    def build(self, inputs_shape):
        initializer = (
            keras.initializers.RandomNormal(stddev=1.0)
            if self.embeddings_initializer is None
            else clone_initializer(self.embeddings_initializer)
        )
        self.embeddings = self.add_weight(
            shape=(self.num_queries, self.hidden_dim),
            initializer=initializer,
            name="embeddings",
        )

    def call(self, inputs):
        batch_size = ops.shape(inputs)[0]
        embeddings = ops.cast(self.embeddings, self.compute_dtype)[None]  # (1, Q, D)
        return ops.broadcast_to(embeddings, (batch_size, self.num_queries, self.hidden_dim))

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], self.num_queries, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_queries": self.num_queries,
                "hidden_dim": self.hidden_dim,
                "embeddings_initializer": keras.saving.serialize_keras_object(
                    self.embeddings_initializer
                ),
            }
        )
        return config
