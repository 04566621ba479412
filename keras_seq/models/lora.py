"""LoRA on keras_seq models: enable adapters on chosen layers, save / load them alone, merge.

Keras' `Dense`, `EinsumDense` and `Embedding` layers carry the adapter math themselves
(`layer.enable_lora(rank)`: a frozen kernel plus a trainable low-rank product). What this
module adds over Keras and keras_hub: adapters chosen by layer name over a whole model (a task
or its backbone); adapter files in safetensors format that name each adapter by its layer path
(`keras_seq.utils.iter_layers`, the same in every process; keras_hub numbers them by
position); loading that accounts for every adapter (a missing, unexpected or mis-shaped one is
an error naming it); and `merge_lora`, a copy of the model with the adapters folded in.
"""

import keras

from keras_seq.utils.layer_walk import iter_layers
from keras_seq.utils.validation import validate_positive_int

# The attention projections of keras_seq's MultiHeadAttention (as keras_hub's default).
DEFAULT_TARGET_LAYER_NAMES = ("query_dense", "value_dense")
_FORMAT = "keras_seq.lora"


def _layers(model):
    """`{path: layer}` of every layer in `model` but its inputs; paths from
    `keras_seq.utils.iter_layers`, the same in every process (Keras' automatic names are not)."""
    return {
        path: layer
        for path, layer in iter_layers(model)
        if not isinstance(layer, keras.layers.InputLayer)
    }


def lora_layers(model):
    """The layers of `model` with LoRA enabled, in model order."""
    return [layer for layer in _layers(model).values() if getattr(layer, "lora_enabled", False)]


def _lora_paths(model):
    """`{path: layer}` of the layers of `model` with LoRA enabled."""
    return {
        path: layer
        for path, layer in _layers(model).items()
        if getattr(layer, "lora_enabled", False)
    }


def _adapter_variables(layer):
    """`{name: variable}` of `layer`'s adapter (`lora_kernel_a/b` or `lora_embeddings_a/b`)."""
    return {
        variable.name: variable
        for variable in layer.weights
        if variable.name.startswith("lora_")
    }


def enable_lora(model, rank, target_layer_names=None, lora_alpha=None, trainable_layer_names=()):
    """Freeze `model` and give the layers named in `target_layer_names` trainable adapters.

    Only the adapters train (the adapted layers' kernels and biases are frozen, as PEFT's
    default), plus every weight of the layers in `trainable_layer_names`.

    Args:
        model: a built Keras model.
        rank: int. Rank of every adapter.
        target_layer_names: names of the layers to adapt (every layer of that name, at any
            depth); they must be `Dense`, `EinsumDense` or `Embedding` layers (or subclasses).
            Defaults to the attention query and value projections, `("query_dense",
            "value_dense")`.
        lora_alpha: float or `None`. Scale numerator of the adapters' update (`alpha / rank`);
            `None` means `rank` (a scale of 1), as Keras.
        trainable_layer_names: names of layers that stay fully trainable (a new task head).

    Returns:
        The adapted layers.
    """
    validate_positive_int("rank", rank)
    if lora_enabled(model):
        raise ValueError(
            "LoRA is already enabled on this model (rank "
            f"{lora_layers(model)[0].lora_rank}); Keras enables it once per layer."
        )
    names = tuple(DEFAULT_TARGET_LAYER_NAMES if target_layer_names is None else target_layer_names)
    layers = list(_layers(model).values())
    targets = [layer for layer in layers if layer.name in names]
    if not targets:
        available = sorted({layer.name for layer in layers if hasattr(layer, "enable_lora")})
        raise ValueError(
            f"No layer of the model is named in `target_layer_names`. Received: "
            f"target_layer_names={list(names)}; layers that can take LoRA: {available}"
        )
    for layer in targets:
        if not hasattr(layer, "enable_lora"):
            raise TypeError(
                f"Layer {layer.path!r} ({type(layer).__name__}) in `target_layer_names` cannot "
                "take LoRA: only Dense, EinsumDense and Embedding layers can."
            )
    unknown = sorted(set(trainable_layer_names) - {layer.name for layer in layers})
    if unknown:
        raise ValueError(
            f"`trainable_layer_names` names layers the model does not have: {unknown}."
        )
    model.trainable = True
    for layer in layers:
        layer.trainable = False
    for layer in targets:
        layer.trainable = True
        layer.enable_lora(rank, lora_alpha=lora_alpha)
        for variable in layer.weights:  # Keras freezes the kernel; the bias too (as PEFT)
            if not variable.name.startswith("lora_"):
                variable.trainable = False
    for layer in layers:
        if layer.name in trainable_layer_names:
            layer.trainable = True
    return targets


def lora_enabled(model):
    return bool(lora_layers(model))


def save_lora_weights(model, filepath):
    """Write the adapters of `model` alone to a safetensors file `filepath`, each tensor named
    `<layer path>/<variable name>`, with the rank and alpha in the file's metadata."""
    from safetensors.numpy import save_file

    layers = lora_layers(model)
    if not layers:
        raise ValueError("The model has no LoRA adapters: call `enable_lora(rank)` first.")
    tensors = {
        f"{path}/{name}": keras.ops.convert_to_numpy(variable)
        for path, layer in _lora_paths(model).items()
        for name, variable in _adapter_variables(layer).items()
    }
    metadata = {
        "format": _FORMAT,
        "rank": str(layers[0].lora_rank),
        "lora_alpha": repr(float(layers[0].lora_alpha)),
        "target_layer_names": ",".join(sorted({layer.name for layer in layers})),
    }
    save_file(tensors, str(filepath), metadata=metadata)


def load_lora_weights(model, filepath):
    """Set the adapters of `model` from a file written by `save_lora_weights`.

    Enables LoRA first (the file's rank, alpha and layer names) when the model has none. Every
    tensor of the file must set one adapter variable of the model and every adapter variable
    must be set, with equal shapes; otherwise `ValueError` naming them.
    """
    from safetensors import safe_open

    with safe_open(str(filepath), framework="numpy") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != _FORMAT:
            raise ValueError(
                f"{filepath} is not a keras_seq LoRA file (metadata format "
                f"{metadata.get('format')!r}, expected {_FORMAT!r})."
            )
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    rank = int(metadata["rank"])
    if not lora_enabled(model):
        enable_lora(
            model,
            rank,
            target_layer_names=metadata["target_layer_names"].split(","),
            lora_alpha=float(metadata["lora_alpha"]),
        )
    elif lora_layers(model)[0].lora_rank != rank:
        raise ValueError(
            f"The adapters in {filepath} have rank {rank}; the model's have rank "
            f"{lora_layers(model)[0].lora_rank}."
        )
    variables = {
        f"{path}/{name}": variable
        for path, layer in _lora_paths(model).items()
        for name, variable in _adapter_variables(layer).items()
    }
    unexpected = sorted(set(tensors) - set(variables))
    missing = sorted(set(variables) - set(tensors))
    if unexpected or missing:
        raise ValueError(
            f"The adapters in {filepath} do not match the model's. In the file but not the "
            f"model: {unexpected}; in the model but not the file: {missing}."
        )
    for key, value in tensors.items():
        if tuple(variables[key].shape) != value.shape:
            raise ValueError(
                f"Adapter {key!r} has shape {value.shape} in {filepath}; the model's is "
                f"{tuple(variables[key].shape)}."
            )
    for key, value in tensors.items():
        variables[key].assign(value)


def merge_lora(model):
    """A copy of `model` with every adapter folded into its kernel (`kernel + a @ b * alpha /
    rank`), with no adapters: the model to deploy. `model` is unchanged.

    The copy is built from `model.get_config()` and takes each layer's variables through
    Keras' `save_own_variables` / `load_own_variables`, which store a LoRA layer's merged kernel
    (what `.keras` files hold too).
    """
    if not lora_enabled(model):
        raise ValueError("The model has no LoRA adapters to merge.")
    merged = type(model).from_config(model.get_config())
    source = _layers(model)
    target = _layers(merged)
    if set(source) != set(target):
        raise ValueError(
            "The model rebuilt from its config has other layers than the model: "
            f"{sorted(set(source) ^ set(target))}"
        )
    for path, layer in source.items():
        store = {}
        layer.save_own_variables(store)
        target[path].load_own_variables(store)
    merged.trainable = model.trainable
    return merged

