"""One check for numeric arguments, with one wording and one exception type.

Keras raises `TypeError` for an argument of the wrong type and `ValueError`
for a value out of range; both name the argument, what was expected and what
was received. Booleans are never numbers here (`True` is an `int` in Python).
"""

import math
import numbers


def check_number(
    name,
    value,
    kind="float",
    low=None,
    high=None,
    low_inclusive=True,
    high_inclusive=True,
    allow_none=False,
):
    """Returns `value` as a Python `float` or `int` after checking it.

    Args:
        name: The argument's name, for the message.
        value: The received value.
        kind: `"float"` (any real number, returned as `float`) or `"int"`
            (an integral number, returned as `int`).
        low, high: The bounds of the allowed range, or `None`.
        low_inclusive, high_inclusive: Whether each bound is allowed.
        allow_none: Whether `None` is accepted (and returned).

    Raises:
        TypeError: `value` is not a number of `kind` (or `None` if allowed).
        ValueError: `value` is outside the range.
    """
    if value is None and allow_none:
        return None
    expected = _describe(kind, low, high, low_inclusive, high_inclusive)
    if allow_none:
        expected = f"None or {expected}"
    integral = isinstance(value, numbers.Integral)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
        kind == "int" and not integral
    ):
        raise TypeError(
            f"Invalid type for argument `{name}`. Expected {expected}. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    received = value
    value = int(value) if kind == "int" else float(value)
    too_low = low is not None and (
        value < low or (value == low and not low_inclusive)
    )
    too_high = high is not None and (
        value > high or (value == high and not high_inclusive)
    )
    if too_low or too_high or value != value:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected {expected}. "
            f"Received: {name}={received!r}"
        )
    return value


def _describe(kind, low, high, low_inclusive, high_inclusive):
    noun = "an int" if kind == "int" else "a float"
    if high == math.inf and not high_inclusive:
        noun = "a finite float"
        high = None
    if low is not None and high is not None:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        return f"{noun} in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"{noun} {'>=' if low_inclusive else '>'} {low:g}"
    if high is not None:
        return f"{noun} {'<=' if high_inclusive else '<'} {high:g}"
    return noun
