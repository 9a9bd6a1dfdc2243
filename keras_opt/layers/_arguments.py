"""Checks of the arguments of OPT layers: stock ones and their own."""

import inspect

# Arguments of the stock layers that have no meaning for an OPT kernel, and
# what to use instead.
KERNEL_ARGUMENTS = {
    "kernel_initializer": "basis_initializer",
    "kernel_constraint": None,
    "lora_rank": None,
    "lora_alpha": None,
}


# What a stock Dense/Conv config holds about its kernel variable.
STOCK_KERNEL_CONFIG_KEYS = (*KERNEL_ARGUMENTS, "quantization_config")


def check_stock_arguments(layer, stock_init, args, kwargs):
    """Rejects the stock arguments an OPT kernel has no use for."""
    bound = inspect.signature(stock_init).bind_partial(*args, **kwargs)
    arguments = dict(bound.arguments)
    arguments.update(arguments.pop("kwargs", {}))
    for argument, replacement in KERNEL_ARGUMENTS.items():
        if arguments.get(argument) is not None:
            hint = (
                f" Use `{replacement}` instead."
                if replacement
                else " It has no counterpart here."
            )
            raise TypeError(
                f"{layer.__class__.__name__} has no argument `{argument}`: "
                "its kernel is computed as W = R·V from a `rotation` and a "
                f"fixed `basis`.{hint} Received: "
                f"{argument}={arguments[argument]!r}"
            )
    for argument, default in (("quantization_config", None), ("groups", 1)):
        if arguments.get(argument, default) != default:
            raise ValueError(
                f"Invalid value for argument `{argument}` of "
                f"{layer.__class__.__name__}: OPT layers have no "
                f"counterpart. Expected: {argument}={default!r}. "
                f"Received: {argument}={arguments[argument]!r}"
            )


def use_gain(recipe, value):
    """Whether an OPT layer learns gains: `value`, or the recipe's if None."""
    if value is None:
        return recipe.use_gain
    if not isinstance(value, bool):
        raise TypeError(
            "Invalid type for argument `use_gain`. Expected a bool or "
            f"None. Received: use_gain={value!r}"
        )
    return value
