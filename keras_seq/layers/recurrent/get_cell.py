"""Resolution of recurrent cells given by name, config or instance."""

from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.layers.recurrent.gru_cell import GRUCell
from keras_seq.layers.recurrent.lstm_cell import LSTMCell
from keras_seq.utils.resolve import resolve

CELL_ALIASES = {
    "elman": ElmanCell,
    "simple_rnn": ElmanCell,
    "vanilla": ElmanCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
}


def is_recurrent_cell(obj):
    """Whether `obj` follows the Keras cell protocol (`state_size` and `call`)."""
    return hasattr(obj, "state_size") and callable(getattr(obj, "call", None))


def get_cell(identifier, **kwargs):
    """Return a recurrent cell from a name, a config dict or an instance.

    Every keras_seq block that takes a cell resolves it here, so any cell that follows the
    Keras cell protocol (`call(inputs, states, training=None)`, `state_size`, `output_size`)
    and is registered with `keras.saving.register_keras_serializable` plugs in and saves.

    Args:
        identifier: one of `"elman"` (aliases `"simple_rnn"`, `"vanilla"`), `"lstm"`, `"gru"`;
            a registered name such as `"my_package>MyCell"`; a config dict from
            `keras.saving.serialize_keras_object(cell)`; or a cell instance (returned as is).
        **kwargs: constructor arguments when `identifier` is a name (e.g. `units=64`).

    Returns:
        A cell instance, unbuilt unless an instance was given.

    Example:
    ```python
    cell = keras_seq.layers.get_cell("lstm", units=32, use_layer_norm=True)
    layer = keras.layers.RNN(cell, return_sequences=True)
    ```
    """
    return resolve(
        identifier,
        argument="cell",
        aliases=CELL_ALIASES,
        accepts=is_recurrent_cell,
        description="a recurrent cell (an object with `state_size` and `call`)",
        **kwargs,
    )
