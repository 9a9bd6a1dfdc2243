"""Kernel regularizers for the paper's baselines: OR/SO, SRIP and MHE."""

import inspect

import keras

from keras_opt import _registry
from keras_opt.regularizers.mhe import MHE
from keras_opt.regularizers.orthogonality_penalty import OrthogonalityPenalty
from keras_opt.regularizers.srip import SRIP

__all__ = [
    "ALL_OBJECTS",
    "ALL_OBJECTS_DICT",
    "MHE",
    "OrthogonalityPenalty",
    "SRIP",
    "deserialize",
    "get",
    "serialize",
]

ALL_OBJECTS = {
    MHE,
    OrthogonalityPenalty,
    SRIP,
}

ALL_OBJECTS_DICT = _registry.objects_dict(
    ALL_OBJECTS,
    {
        "mhe": MHE,
        "orthogonality_penalty": OrthogonalityPenalty,
        "srip": SRIP,
    },
)


def serialize(regularizer):
    """Returns the config of a regularizer, for `get` or `deserialize`."""
    return keras.saving.serialize_keras_object(regularizer)


def deserialize(config, custom_objects=None):
    """Returns a regularizer from the output of `serialize`."""
    return _registry.deserialize(config, ALL_OBJECTS_DICT, custom_objects)


def get(identifier):
    """Returns a regularizer from a name, config, instance or callable.

    Names are `"mhe"`, `"orthogonality_penalty"` and `"srip"` (or the class
    names); other names and configs fall back to `keras.regularizers.get`,
    so `"l2"` works too.

    Args:
        identifier: `None`, a string, a config dict, a regularizer or a
            callable.

    Returns:
        A regularizer, or `None` for `None`.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        if identifier.get("class_name") in ALL_OBJECTS_DICT:
            obj = deserialize(identifier)
        else:
            obj = keras.regularizers.get(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier)
        if obj is None:
            try:
                obj = keras.regularizers.get(identifier)
            except ValueError:
                raise ValueError(
                    "Invalid value for argument `identifier`. Expected one "
                    f"of {sorted(ALL_OBJECTS_DICT)} or a Keras regularizer "
                    f"name. Received: identifier={identifier!r}"
                ) from None
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if not callable(obj):
        raise ValueError(
            "Could not interpret regularizer identifier. Expected None, a "
            "name, a config dict or a callable. Received: "
            f"identifier={identifier!r}"
        )
    return obj
