"""The soft orthogonality penalty ‖WᵀW − I‖_F on kernels of any rank."""

import keras

from keras_opt import linalg
from keras_opt.regularizers import _kernel


@keras.saving.register_keras_serializable(package="keras_opt")
class OrthogonalityPenalty(_kernel.GramRegularizer):
    """Penalizes the distance of a kernel's Gram matrix from the identity.

    The kernel is folded to a matrix W of shape `(d, n)`: its last axis holds
    the `n` neurons (output units or filters) and all other axes are
    flattened into the fan-in `d`, so Dense and Conv1D/2D/3D kernels all work
    (Keras's `OrthogonalRegularizer` accepts rank 2 only). The penalty is

        factor * ‖G − I‖_F      (or its square with `squared=True`)

    where G is, by `mode`:

    * `"columns"`: `WᵀW` (n × n), so the neurons become orthonormal;
    * `"rows"`: `WWᵀ` (d × d), so the rows become orthonormal;
    * `"auto"` (default): the smaller of the two, i.e. `"columns"` when
      `n <= d`; it is the only one that can reach the identity.

    With a square kernel both give the same value. The defaults reproduce
    the OR variant of the official OPT code (`0.1 * ‖P Pᵀ − I‖_F`, not
    squared); `squared=True` gives the paper's form and the "SO" regularizer
    of Bansal et al. (2018). The non-squared norm has a bounded gradient,
    and a zero one (not NaN) at exact orthogonality.

    Args:
        factor: Non-negative float, the weight of the penalty. Defaults to
            `0.1`.
        squared: Whether to use the squared Frobenius norm. Defaults to
            `False`.
        mode: `"auto"`, `"columns"` or `"rows"`, see above.

    Example:

    >>> layer = keras.layers.Conv2D(
    ...     8, 3,
    ...     kernel_regularizer=keras_opt.regularizers.OrthogonalityPenalty(),
    ... )

    Reference:
        Liu et al., "Orthogonal Over-Parameterized Training", CVPR 2021
        (arXiv:2004.04690); Bansal et al., "Can We Gain More from
        Orthogonality Regularizations in Training Deep CNNs?", NeurIPS 2018.
    """

    def __init__(self, factor=0.1, squared=False, mode="auto"):
        super().__init__(factor, squared, mode)

    def __call__(self, x):
        return self.factor * linalg.orthogonality_penalty(
            self.gram_side(x), squared=self.squared
        )
