"""Learnable parameters counted as the OPT paper counts them."""

import keras

from keras_opt import layers
from keras_opt.layers import blocks


def paper_parameter_count(model):
    """Returns the number of learnable parameters as the OPT paper counts.

    The paper's "Params" columns (`opt_reference.md` §4.5, §9.4) count an
    orthogonal k×k rotation as the dimension of its manifold, k(k−1)/2:
    d(d−1)/2 for a full OPT layer, p(p−1)/2 for an S-OPT layer (its p×p
    rotation) and for a CLS-OPT head, whatever the orthogonalizer stores
    (P has d² entries), and a block layer's (`block_size`) as the sum of
    b_i(b_i−1)/2 over its blocks of sizes b_i. Rotations that are not kept orthogonal (`"penalty"`,
    `"unconstrained"`) count all k² entries. Every other trainable weight
    (classifier kernels, biases, a trainable basis) counts in full;
    BatchNormalization is not counted, nor are non-trainable weights (the
    fixed bases V, moving statistics).

    Args:
        model: A `keras.Model` or layer, built.

    Returns:
        An int.

    Example:

    >>> keras_opt.models.paper_parameter_count(keras_opt.models.cnn6())
    1358527
    >>> keras_opt.models.paper_parameter_count(
    ...     keras_opt.models.cnn6(orthogonalizer=None))
    257984
    """
    if not model.built:
        raise ValueError(
            "`paper_parameter_count` needs a built model: its weights set "
            f"the count. Received: an unbuilt {model.__class__.__name__} "
            f"'{model.name}'"
        )
    excluded = set()
    count = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, layers.BaseOPT) and layer.trainable:
            rotation = layer.rotation_parameter
            excluded.add(id(rotation))
            if rotation.trainable:
                orthogonalizer = layer.orthogonalizer
                exact = orthogonalizer.is_exact or orthogonalizer.is_stiefel
                if layer.block_size is not None:
                    count += blocks.parameter_count(layer, exact)
                else:
                    size = rotation.shape[0]
                    count += size * (size - 1) // 2 if exact else size * size
        elif _is_batch_normalization(layer):
            excluded.update(id(v) for v in layer.weights)
    for variable in model.trainable_weights:
        if id(variable) not in excluded:
            count += _size(variable)
    return count


def _is_batch_normalization(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def _size(variable):
    size = 1
    for dim in variable.shape:
        size *= dim
    return size
