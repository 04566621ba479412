"""Activation functions that Keras has no registered name for."""

import keras


@keras.saving.register_keras_serializable(package="keras_seq")
def gelu_approximate(x):
    """GELU with the tanh approximation (GPT-2's `gelu_new`), registered for saving.

    `keras.activations.gelu(x, approximate=True)` under a registered name, so a layer given
    this function as its activation saves and reloads from a `.keras` file.
    """
    return keras.activations.gelu(x, approximate=True)
