"""Helpers shared by the kernel regularizers."""

import math

import keras
from keras import ops

from keras_opt import linalg
from keras_opt._validation import check_number


MODES = ("auto", "columns", "rows")


def validate_factor(factor):
    return check_number(
        "factor", factor, low=0.0, high=math.inf, high_inclusive=False
    )


def validate_mode(mode):
    if mode not in MODES:
        raise ValueError(
            "Invalid value for argument `mode`. Expected one of "
            f"{MODES}. Received: mode={mode!r}"
        )
    return mode


def gram_side(matrix, mode):
    """Returns `M` such that the penalty is on `M Mᵀ − I`.

    `"columns"` gives `Wᵀ` (the n×n Gram of the neurons), `"rows"` gives `W`
    (the d×d Gram of the rows) and `"auto"` the smaller of the two, the one
    that can equal the identity.
    """
    dim, units = matrix.shape
    if mode == "columns" or (mode == "auto" and units <= dim):
        return ops.transpose(matrix)
    return matrix


class GramRegularizer(keras.regularizers.Regularizer):
    """A penalty on `M Mᵀ − I`, M the `gram_side` of the folded kernel."""

    def __init__(self, factor, squared, mode):
        self.factor = validate_factor(factor)
        if not isinstance(squared, bool):
            raise TypeError(
                "Invalid value for argument `squared`. Expected a bool. "
                f"Received: squared={squared!r}"
            )
        self.squared = squared
        self.mode = validate_mode(mode)

    def gram_side(self, x):
        return gram_side(linalg.fold_kernel(x, "x"), self.mode)

    def get_config(self):
        return {
            "factor": self.factor,
            "squared": self.squared,
            "mode": self.mode,
        }
