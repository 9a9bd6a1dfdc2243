"""SRIP: the spectral norm of WᵀW − I by power iteration (Bansal et al.)."""

import keras
import numpy as np
from keras import ops

from keras_opt._validation import check_number
from keras_opt.regularizers import _kernel


@keras.saving.register_keras_serializable(package="keras_opt")
class SRIP(_kernel.GramRegularizer):
    """Spectral restricted isometry property regularizer.

    The kernel is folded to W of shape `(d, n)` (neurons on the last axis,
    other axes flattened, so Dense and Conv1D/2D/3D kernels work) and the
    penalty is

        coefficient * σ(G − I)      (σ², with `squared=True`)

    where σ is the spectral norm, estimated as the SRIP code does by two
    power-iteration products from a fixed start vector `b` drawn uniformly
    from [0, 1) (seeded):

        u = (G − I) b / ‖(G − I) b‖,   σ ≈ ‖(G − I) u‖.

    G is chosen by `mode` as in `OrthogonalityPenalty`: `"columns"` is `WᵀW`
    (what the Keras SRIP code uses), `"rows"` is `WWᵀ`, and `"auto"` (the
    default, what the PyTorch SRIP code does) takes the smaller one.
    Gradients flow through the whole estimate, as in the SRIP code, and the
    norms are guarded so that an exactly orthogonal W gives a zero gradient,
    not NaN. The weight decay term of the Keras SRIP code is left out; add
    `keras.regularizers.L2` to the layer for it.

    The SRIP recipe lowers the coefficient during training; `coefficient`
    is a non-trainable `keras.Variable` (starting at `factor`) so that
    `keras_opt.callbacks.SRIPScheduler` can change it inside a compiled
    `fit` without retracing.

    Args:
        factor: Non-negative float, the initial coefficient. Defaults to
            `0.01`, the SRIP code's value.
        squared: Whether to penalize σ² (the PyTorch SRIP code) instead of σ
            (the paper and the Keras SRIP code). Defaults to `False`.
        mode: `"auto"`, `"columns"` or `"rows"`. Defaults to `"auto"`.
        seed: Int seed of the start vector `b`. Defaults to `0`.

    Example:

    >>> srip = keras_opt.regularizers.SRIP(0.01)
    >>> layer = keras.layers.Conv2D(8, 3, kernel_regularizer=srip)
    >>> scheduler = keras_opt.callbacks.SRIPScheduler()  # in `fit` callbacks

    Reference:
        Bansal, Chen and Wang, "Can We Gain More from Orthogonality
        Regularizations in Training Deep CNNs?", NeurIPS 2018
        (https://github.com/VITA-Group/Orthogonality-in-CNNs).
    """

    def __init__(self, factor=0.01, squared=False, mode="auto", seed=0):
        super().__init__(factor, squared, mode)
        self.seed = check_number("seed", seed, "int", low=0)
        self.coefficient = keras.Variable(
            self.factor,
            dtype="float32",
            trainable=False,
            name="srip_coefficient",
        )

    def __call__(self, x):
        side = self.gram_side(x)
        size = side.shape[0]
        residual = ops.matmul(side, ops.transpose(side)) - ops.eye(
            size, dtype=side.dtype
        )
        start = np.random.default_rng(self.seed).uniform(size=(size, 1))
        start = ops.convert_to_tensor(
            start.astype(keras.backend.standardize_dtype(side.dtype))
        )
        product = ops.matmul(residual, start)
        direction = product / _safe_norm(product)
        squares = ops.sum(ops.square(ops.matmul(residual, direction)))
        if self.squared:
            value = squares
        else:
            value = ops.sqrt(ops.maximum(squares, _TINY))
        return ops.cast(self.coefficient, value.dtype) * value

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


# Floor under squared norms: sqrt has an infinite slope at 0.
_TINY = 1e-30


def _safe_norm(x):
    return ops.sqrt(ops.maximum(ops.sum(ops.square(x)), _TINY))
