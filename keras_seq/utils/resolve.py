"""One helper turning a pluggable part's identifier (name, config or instance) into an object.

Blocks that take parts (`cell="lstm"`, `cell=MyCell(64)`, `cell={"class_name": ...}`) all
resolve them here, through Keras' own serialization registry, so a user's registered class
plugs in and still saves and reloads from a `.keras` file.
"""

import keras


def resolve(identifier, argument, aliases, accepts, description, **kwargs):
    """Resolve `identifier` into an object.

    Args:
        identifier: an instance (returned as is), a short alias from `aliases`, a registered
            name (`"package>ClassName"`), or a config dict as produced by
            `keras.saving.serialize_keras_object` (its `class_name` may also be an alias).
        argument: str. Name of the user-facing argument, for error messages.
        aliases: dict mapping short names to classes.
        accepts: callable(obj) -> bool telling whether an object is of the right kind.
        description: str. What the argument expects, for error messages.
        **kwargs: constructor arguments used when `identifier` is a name.
    """
    if isinstance(identifier, str):
        cls = aliases.get(identifier.lower()) or keras.saving.get_registered_object(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown `{argument}`: {identifier!r}. Expected one of {sorted(aliases)}, the "
                'registered name of a class ("package>ClassName", see '
                "keras.saving.register_keras_serializable), a config dict or an instance."
            )
        obj = cls(**kwargs)
    elif isinstance(identifier, dict):
        if kwargs:
            raise ValueError(
                f"Constructor arguments {sorted(kwargs)} only apply when `{argument}` is a "
                f"name; put them in the config instead. Received: {argument}={identifier!r}"
            )
        class_name = identifier.get("class_name")
        if isinstance(class_name, str) and class_name.lower() in aliases:
            obj = aliases[class_name.lower()].from_config(identifier.get("config", {}))
        else:
            obj = keras.saving.deserialize_keras_object(identifier)
    elif kwargs:
        raise ValueError(
            f"Constructor arguments {sorted(kwargs)} only apply when `{argument}` is a name. "
            f"Received: {argument}={identifier!r}"
        )
    else:
        obj = identifier
    if not accepts(obj):
        raise TypeError(
            f"`{argument}` must resolve to {description}. Received: {argument}={identifier!r} "
            f"(resolved to {type(obj).__name__})"
        )
    return obj
