"""Registration of keras_seq objects for `.keras` serialization.

Every layer, model, loss, metric, schedule and callback that can appear in a saved file is
decorated with `keras_seq_export`, which registers it under the package name `keras_seq`
(so its registered name is `keras_seq>ClassName`) and records it for the registration test.
"""

import keras

PACKAGE = "keras_seq"

# Every class registered through `keras_seq_export`, in definition order.
REGISTERED_CLASSES = []


def keras_seq_export(cls):
    """Register `cls` as serializable under `keras_seq>ClassName` and return it."""
    registered = keras.saving.register_keras_serializable(package=PACKAGE)(cls)
    REGISTERED_CLASSES.append(registered)
    return registered
