"""Refuse a weights file that holds more weights for a model than its config builds.

Keras (3.15) loads a `.keras` file or `load_weights` by walking the model it built from the
config and reading, for each layer, the variables stored at that layer's path; entries of the
file that no layer asks for are never read, and nothing reports them. A config edited from
`num_layers=2` to `num_layers=1` (or any config that builds a smaller model than the one
saved) thus loads, silently dropping the weights of the missing blocks. A file with fewer
weights than the model is already an error in Keras ("Layer ... expected 2 variables, but
received 0").

`check_no_extra_weights` counts the variables stored under the model's path in the file and
refuses more than the model has. It runs in `FunctionalModel.load_own_variables`, which Keras
calls with the model's entry of the file before it visits the layers.
"""

import h5py


def stored_variable_count(store):
    """The number of variables stored under the model's path of an `.h5` weights `store`
    (Keras' `H5IOStore` positioned on the model's entry), or `None` when unknown.

    Private Keras API: the store keeps its `h5py` group in `_h5_entry_group` (the model's
    `vars` group); no public accessor exists. Checked in tests/test_private_keras_api.py.
    Sharded files may spread a model over several files: this count is then of one file, a
    lower bound, so the check never refuses a legitimate file.
    """
    group = getattr(store, "_h5_entry_group", None)
    if not isinstance(group, h5py.Group):
        return None  # not an h5 store, or the model has no entry in the file
    model_group = group.parent
    count = len(group)
    if "layers" in model_group:
        datasets = []
        model_group["layers"].visititems(
            lambda _, item: datasets.append(1) if isinstance(item, h5py.Dataset) else None
        )
        count += len(datasets)
    return count


def check_no_extra_weights(model, store):
    """Raise `ValueError` if `store` holds more variables for `model` than it has."""
    stored = stored_variable_count(store)
    expected = len({id(variable) for variable in model.weights})
    if stored is not None and stored > expected:
        raise ValueError(
            f"The weights file holds {stored} variables for the model `{model.name}` "
            f"({type(model).__name__}), but the model built from its config has {expected}: "
            "the config does not describe the saved weights (a size such as `num_layers` "
            "edited in the `.keras` file's config.json?), and loading would silently drop "
            "the others."
        )
