"""Refuse a model whose constructor arguments ask for more than the machine can build.

A `.keras` file is a config plus weights, and `keras.saving.load_model` (safe mode included)
builds the model from the config before it reads a single weight. A config asking for a
vocabulary of 10**12 or a million layers then allocates until the process is killed, or spends
hours creating layers. The model constructors call `check_model_size` with their sizes before
they create any layer: a cheap product of a few integers, checked against two limits.

- Parameters: their number times the bytes of one weight (4 for float32 variables, 2 for
  float16 / bfloat16 ones, 1 for a quantized model) must not exceed the machine's memory
  (`psutil.virtual_memory().total` when psutil is installed, else `os.sysconf`, and the
  cgroup limit `/sys/fs/cgroup/memory.max` when lower). The environment variable
  `KERAS_SEQ_MAX_PARAMETERS` (a positive integer) replaces this limit.
- Blocks: at most `KERAS_SEQ_MAX_LAYERS` (default 4096) transformer blocks or recurrent layers
  in one model; each takes tens of milliseconds to create, so a million of them never finishes.

The estimate counts the weight matrices that dominate (embeddings, attention and feed-forward
kernels), not biases and norms, so it is a lower bound: it never refuses a model that fits.
"""

import math
import os

import keras

DEFAULT_MAX_LAYERS = 4096
MAX_PARAMETERS_VARIABLE = "KERAS_SEQ_MAX_PARAMETERS"
MAX_LAYERS_VARIABLE = "KERAS_SEQ_MAX_LAYERS"


def _environment_limit(variable):
    """The positive integer in the environment variable `variable`, or `None` if unset."""
    text = os.environ.get(variable)
    if text is None or not text.strip():
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(
            f"The environment variable `{variable}` must be a positive integer. "
            f"Received: {variable}={text!r}"
        )
    return value


def memory_bytes():
    """The memory this process may use, in bytes: physical memory, or a lower cgroup limit;
    `None` when neither can be read."""
    try:
        import psutil

        total = psutil.virtual_memory().total
    except ImportError:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = None
    try:
        with open("/sys/fs/cgroup/memory.max") as file:
            text = file.read().strip()
        if text.isdigit():
            total = int(text) if total is None else min(total, int(text))
    except OSError:
        pass
    return total


def _bytes_per_weight(dtype):
    if isinstance(dtype, keras.dtype_policies.DTypePolicyMap):
        if len(dtype) > 0:
            return 1  # quantized layers: int8 (or int4) kernels
        dtype = dtype.default_policy
    try:
        variable_dtype = keras.dtype_policies.get(dtype).variable_dtype
    except (ValueError, TypeError):
        variable_dtype = "float32"
    return 2 if variable_dtype in ("float16", "bfloat16") else 4


def _describe(names, sizes):
    return ", ".join(f"{name}={sizes[name]}" for name in dict.fromkeys(names))


def check_model_size(owner, sizes, parts, num_blocks=0, dtype=None):
    """Raise `ValueError` if a model of `sizes` cannot be built on this machine.

    Args:
        owner: str. The class being built, for the message.
        sizes: dict mapping a constructor argument's name to its (validated) integer value.
        parts: list of tuples `(factor, name, name, ...)`: the model has about
            `sum(factor * product of sizes[name])` weights.
        num_blocks: int. The number of blocks (transformer or recurrent layers) it creates.
        dtype: the model's `dtype` argument (a policy name, policy or `DTypePolicyMap`).

    Raises:
        ValueError: naming the arguments of the largest part and their values, the estimate
            and the limit, and the environment variable that raises the limit.
    """
    max_layers = _environment_limit(MAX_LAYERS_VARIABLE) or DEFAULT_MAX_LAYERS
    if num_blocks > max_layers:
        names = [name for name in sizes if "layers" in name]
        raise ValueError(
            f"{owner} with {_describe(names, sizes)} would create {num_blocks} blocks, more "
            f"than the limit of {max_layers}. Check the value (a `.keras` file's config may "
            f"have been edited), or raise the limit with the environment variable "
            f"{MAX_LAYERS_VARIABLE}."
        )
    counts = [
        (factor * math.prod(sizes[name] for name in names), names) for factor, *names in parts
    ]
    num_parameters = sum(count for count, _ in counts)
    limit = _environment_limit(MAX_PARAMETERS_VARIABLE)
    if limit is None:
        memory = memory_bytes()
        if memory is None:
            return
        limit = memory // _bytes_per_weight(dtype)
        where = f"what fits in this machine's memory ({memory:.3g} bytes)"
    else:
        where = f"the limit {MAX_PARAMETERS_VARIABLE}={limit}"
    if num_parameters <= limit:
        return
    _, names = max(counts, key=lambda part: part[0])
    raise ValueError(
        f"{owner} with {_describe(names, sizes)} would hold at least {num_parameters:.3g} "
        f"weights, more than {where}. Check these arguments (a `.keras` file's config may have "
        f"been edited), or set the environment variable {MAX_PARAMETERS_VARIABLE} to allow "
        f"more weights."
    )
