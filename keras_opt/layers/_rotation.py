"""How an OPT layer makes its rotation parameter P, for every structure.

Full OPT (P is d×d), S-OPT (p×p, `keras_opt.layers.subspace`) and blocks
(`(k, m, m)`, `keras_opt.layers.blocks`) differ in P's shape, initializer
and regularizer only; `BaseOPT.build` takes them from `spec`.
"""

from keras import ops

from keras_opt import orthogonalizers
from keras_opt import variable_tags
from keras_opt.layers import blocks as blocks_lib


def get_orthogonalizer(identifier):
    """The orthogonalizer of an OPT layer from its `orthogonalizer` argument."""
    orthogonalizer = orthogonalizers.get(identifier)
    if orthogonalizer is None:
        raise ValueError(
            "Invalid value for argument `orthogonalizer`. Expected one of "
            f"{sorted(orthogonalizers.ALIASES)}, an Orthogonalizer or a "
            "callable. Received: orthogonalizer=None"
        )
    return orthogonalizer


def spec(layer, fan_in):
    """`(shape, initializer, regularizer)` of the P of `layer`."""
    losses = [
        loss
        for loss in (
            layer.rotation_regularizer,
            layer.orthogonalizer.rotation_regularizer,
        )
        if loss is not None
    ]
    if layer.block_size is not None:
        return blocks_lib.rotation_spec(layer, fan_in, losses)
    size = layer.subspace_size or fan_in
    if len(losses) > 1:
        losses = [SumOfRegularizers(losses)]
    return (size, size), layer.rotation_initializer, (losses or [None])[0]


def constraint(layer):
    """The constraint of the P of `layer`: a Stiefel guard, or `None`."""
    if layer.orthogonalizer.is_stiefel:
        return variable_tags.StiefelGuard()
    return None


def tag(layer):
    """Tags the P of `layer` for the optimizers (`keras_opt.variable_tags`)."""
    if layer.orthogonalizer.is_stiefel:
        variable_tags.mark_stiefel(layer.rotation_parameter)
    elif layer._recipe.steps_like_ogd(layer.orthogonalizer):
        variable_tags.mark_rotation_step(
            layer.rotation_parameter,
            layer._recipe.rotation_step_scale(layer.orthogonalizer),
        )
    elif layer._recipe.damps_step(layer.orthogonalizer):
        variable_tags.mark_damped_step(layer.rotation_parameter)


def check_orthogonalizer_output(layer):
    """Checks that a custom orthogonalizer keeps the shape of P."""
    if type(layer.orthogonalizer) in orthogonalizers.ALL_OBJECTS:
        return
    expected = tuple(layer.rotation_parameter.shape)
    shape = tuple(layer.orthogonalizer(layer.rotation_parameter).shape)
    if shape != expected:
        raise ValueError(
            f"The orthogonalizer of layer '{layer.name}' must return "
            f"matrices of the rotation's shape. Expected: {expected}. "
            f"Received: shape={shape} from "
            f"orthogonalizer={layer.orthogonalizer!r}"
        )


class SumOfRegularizers:
    """The sum of several regularizers of one variable."""

    def __init__(self, regularizers):
        self.regularizers = regularizers

    def __call__(self, x):
        return ops.sum(ops.stack([r(x) for r in self.regularizers]))
