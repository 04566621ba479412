"""One fresh initializer per weight."""

import keras


def clone_initializer(initializer):
    """A new initializer equal to `initializer` (a name, a config dict or an instance).

    Keras initializers are stateless: an unseeded instance draws its seed once, when it is
    created, so one instance shared by several weights of equal shape gives them identical
    values (query, key and value projections starting equal). Every layer here gives each
    weight its own clone, as `keras.layers.MultiHeadAttention` does. A seeded initializer
    stays seeded in its clones (Keras' documented behaviour: same seed, same values).
    """
    return keras.initializers.get(keras.initializers.serialize(keras.initializers.get(initializer)))
