"""Built-in presets: lookup of a preset name and the split of `from_preset` overrides.

A preset is an architecture (`{"description": str, "config": backbone arguments,
"task_config": task arguments (optional)}`) in the `presets` dict of a backbone class; its task
classes read the same dict through their `backbone_cls`.
"""

import inspect

# Arguments every model takes through `**kwargs` (the base `keras.Model` arguments).
BASE_ARGUMENTS = ("name", "dtype", "trainable")


def preset_config(cls, preset):
    """The preset entry named `preset` of `cls.presets`; `ValueError` naming the available
    ones when there is none."""
    presets = cls.presets
    if not isinstance(preset, str) or preset not in presets:
        raise ValueError(
            f"Unknown `preset` for {cls.__name__}: {preset!r}. Available presets: {sorted(presets)}"
        )
    return presets[preset]


def constructor_arguments(cls):
    """The names of the arguments of `cls.__init__` (without `self`, `*args`, `**kwargs`),
    plus the base model arguments and the ones a base class takes through `**kwargs` and
    declares in `forwarded_arguments` (`GenerativeTask`'s `generation_defaults`)."""
    parameters = inspect.signature(cls.__init__).parameters
    names = [
        name
        for name, parameter in parameters.items()
        if name != "self"
        and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    ]
    return tuple(names) + tuple(vars(cls).get("forwarded_arguments", ())) + BASE_ARGUMENTS


def check_overrides(cls, preset, overrides, accepted):
    """`TypeError` naming the `overrides` that are not in `accepted`."""
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise TypeError(
            f"{cls.__name__}.from_preset() got overrides that are not arguments of the model: "
            f"{unknown}. Accepted: {sorted(set(accepted))}. Received: preset={preset!r}"
        )
