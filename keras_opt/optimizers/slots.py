"""Resetting an optimizer's per-variable state (its "slots")."""

import keras
from keras import ops

from keras_opt.optimizers import base_stiefel

# Stock Keras slot lists whose entries do not start at zero, by the
# attribute Keras keeps them in: the value a fresh slot holds.
_STOCK_INITIAL_VALUES = {
    "_accumulators": lambda optimizer: getattr(
        optimizer, "initial_accumulator_value", 0.0
    ),
}
# Stock slot lists that track the variable's value rather than a statistic.
_STOCK_VALUE_SLOTS = ("_model_variables_moving_average",)


def reset_slots(optimizer, variables):
    """Resets the optimizer state of `variables` to that of a fresh build.

    S-OPT resets its rotation P̃ to the identity at every episode; the
    momentum (or Adam moments) accumulated for the previous subspace must
    go too, or it is applied to the new one (the official code forgets
    this). Each slot of each variable is set to the value it was built
    with; optimizer-wide state (`iterations`, the learning rate) is kept.
    An optimizer that is not built yet has no slots, and nothing is done.

    - `keras_opt.optimizers.StiefelSGD` / `StiefelAdam` reset the slots of
      their Stiefel variables themselves (`reset_stiefel_slots`): momentum
      and moments to zero, the drift estimate to 1, so that the next step
      re-orthonormalizes X.
    - Every other slot is a stock Keras one. Keras keeps those in list
      attributes of the optimizer with one entry per trained variable
      (`momentums`, `_velocities`, ...); each such list is read at the
      variable's index (`_get_variable_index`), never by the slot's name,
      and its slot set to zero, except Adagrad's and Ftrl's accumulators
      (`initial_accumulator_value`) and the moving averages of
      `use_ema=True`, which restart from the variable's current value.

    Call it outside a compiled function, between training steps, as
    `keras_opt.callbacks.SubspaceEpisodes` does.

    Args:
        optimizer: A `keras.optimizers.Optimizer` (a `LossScaleOptimizer`
            is unwrapped).
        variables: The model variables whose state is reset.

    Example:

    >>> optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    >>> model.compile(optimizer=optimizer, loss="mse")
    >>> model.fit(x, y)
    >>> keras_opt.optimizers.reset_slots(optimizer, [layer.rotation_parameter])
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(
            "Expected a `keras.optimizers.Optimizer`. Received: "
            f"optimizer={optimizer!r} of type {type(optimizer).__name__}"
        )
    if not optimizer.built:
        return
    indices = [_index(optimizer, variable) for variable in variables]
    done = set()
    if isinstance(optimizer, base_stiefel.StiefelOptimizerMixin):
        done = {id(slot) for slot in optimizer.reset_stiefel_slots(variables)}
    for name, slots in _stock_slot_lists(optimizer).items():
        for index, variable in zip(indices, variables):
            slot = slots[index]
            if not isinstance(slot, keras.Variable) or id(slot) in done:
                continue
            if name in _STOCK_VALUE_SLOTS:
                slot.assign(ops.cast(variable, slot.dtype))
                continue
            value = _STOCK_INITIAL_VALUES.get(name, lambda _: 0.0)(optimizer)
            slot.assign(ops.full(slot.shape, value, dtype=slot.dtype))


def _index(optimizer, variable):
    try:
        return optimizer._get_variable_index(variable)
    except KeyError:
        raise ValueError(
            f"The variable '{variable.path}' is not trained by optimizer "
            f"'{optimizer.name}'. Expected: one of the variables it was "
            "built with."
        ) from None


def _stock_slot_lists(optimizer):
    """The optimizer's list attributes with one slot per trained variable."""
    tracked = optimizer._trainable_variables
    return {
        name: value
        for name, value in vars(optimizer).items()
        if isinstance(value, (list, tuple))
        and len(value) == len(tracked)
        and value is not tracked
        and any(isinstance(slot, keras.Variable) for slot in value)
    }
