"""A mixin for subclasses of Keras layers that `model.quantize(mode)` should quantize."""


class QuantizesLikeParent:
    """Put before a Keras layer class (`class _Dense(QuantizesLikeParent, keras.layers.Dense)`)
    so that the subclass quantizes as its parent does. Keras' `Dense`, `EinsumDense` and
    `ReversibleEmbedding` check `type(self)` in `quantize` and refuse subclasses, so
    `model.quantize(mode)` would skip keras_seq's subclasses that only change how `call`
    computes its product."""

    def quantize(self, mode=None, type_check=True, config=None):
        del type_check  # The parent's type check would reject the subclass.
        return super().quantize(mode, type_check=False, config=config)
