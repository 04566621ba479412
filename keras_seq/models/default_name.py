"""Default model names: `prefix`, then `prefix_1`, `prefix_2`, ... as Keras names layers."""

import keras


def default_name(prefix):
    """A unique name for a new model: `prefix` for the first, then `prefix_<n>`.

    Keras derives a layer's default name from its class name, which splits acronyms and digits
    (`TransformerSeq2Seq` becomes `transformer_seq2_seq`); this gives a readable prefix the
    same numbering, through Keras' public per-prefix counter `keras.backend.get_uid` (the one
    Keras' own names use, reset by `keras.backend.clear_session()`).
    """
    uid = keras.backend.get_uid(prefix)
    return prefix if uid == 1 else f"{prefix}_{uid - 1}"
