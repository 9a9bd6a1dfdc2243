"""Resetting an optimizer's per-variable state (its "slots")."""

import keras
from keras import ops

# Slot lists whose entries do not start at zero, by optimizer attribute:
# the value a fresh slot holds, given the optimizer.
_INITIAL_VALUES = {
    "_accumulators": lambda optimizer: getattr(
        optimizer, "initial_accumulator_value", 0.0
    ),
    # keras_opt's Stiefel optimizers: 1 means "drift unknown".
    "_drifts": lambda optimizer: 1.0,
}
# Slot lists that track the variable's value rather than a statistic.
_VALUE_SLOTS = ("_model_variables_moving_average",)


def reset_slots(optimizer, variables):
    """Resets the optimizer state of `variables` to that of a fresh build.

    S-OPT resets its rotation P̃ to the identity at every episode; the
    momentum (or Adam moments) accumulated for the previous subspace must
    go too, or it is applied to the new one (the official code forgets
    this). `reset_slots` finds the slots of each variable through the
    optimizer's own index (`_get_variable_index`), never by name, and sets
    each to the value it was built with: zero for momenta and moments,
    `initial_accumulator_value` for Adagrad/Ftrl accumulators, 1 for the
    drift estimate of `StiefelSGD`/`StiefelAdam`; an exponential moving
    average (`use_ema=True`) restarts from the variable's current value.
    Optimizer-wide state (`iterations`, the learning rate) is kept. An
    optimizer that is not built yet has no slots, and nothing is done.

    Call it outside a compiled function, between training steps, as
    `keras_opt.callbacks.SubspaceEpisodes` does.

    Args:
        optimizer: A built `keras.optimizers.Optimizer` (a
            `LossScaleOptimizer` is unwrapped).
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
    tracked = optimizer._trainable_variables
    slot_lists = {
        name: value
        for name, value in vars(optimizer).items()
        if isinstance(value, (list, tuple))
        and len(value) == len(tracked)
        and value is not tracked
        and any(isinstance(slot, keras.Variable) for slot in value)
    }
    for variable in variables:
        try:
            index = optimizer._get_variable_index(variable)
        except KeyError:
            raise ValueError(
                f"The variable '{variable.path}' is not trained by optimizer "
                f"'{optimizer.name}'. Expected: one of the variables it was "
                "built with."
            ) from None
        for name, slots in slot_lists.items():
            slot = slots[index]
            if not isinstance(slot, keras.Variable) or slot is variable:
                continue
            if name in _VALUE_SLOTS:
                slot.assign(ops.cast(variable, slot.dtype))
                continue
            value = _INITIAL_VALUES.get(name, lambda optimizer: 0.0)(optimizer)
            slot.assign(ops.full(slot.shape, value, dtype=slot.dtype))
