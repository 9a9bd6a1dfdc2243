"""The one way keras_opt walks the layers of a model."""


def iter_layers(model):
    """Yields `model` and every layer nested in it, depth first, once each.

    Nested Sequential and Functional models, subclassed models and layers
    that hold sublayers (a residual block written as a `keras.layers.Layer`)
    are all walked. Keras lists tracked sublayers of any layer only through
    `Layer._flatten_layers`, which every Keras 3 layer has; it is used here
    and nowhere else in keras_opt.

    Args:
        model: A `keras.Model` or `keras.layers.Layer`.

    Yields:
        `keras.layers.Layer` objects, `model` first.
    """
    yield from model._flatten_layers(include_self=True, recursive=True)


def opt_layers(model, built_only=True):
    """The OPT layers of `model` (`keras_opt.layers.BaseOPT`), in order.

    Args:
        model: A `keras.Model` or `keras.layers.Layer`.
        built_only: Whether to leave out layers that are not built yet.

    Returns:
        A list of layers.
    """
    from keras_opt.layers.base_opt import BaseOPT

    return [
        layer
        for layer in iter_layers(model)
        if isinstance(layer, BaseOPT) and (layer.built or not built_only)
    ]
