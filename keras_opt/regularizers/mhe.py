"""Minimum hyperspherical energy (MHE) as a kernel regularizer."""

import keras

from keras_opt import energy
from keras_opt import linalg
from keras_opt.regularizers import _kernel


@keras.saving.register_keras_serializable(package="keras_opt")
class MHE(keras.regularizers.Regularizer):
    """Penalizes the hyperspherical energy of a layer's neurons.

    The penalty is `factor * keras_opt.energy.hyperspherical_energy(kernel,
    s, half_space, epsilon)`: the pair-averaged energy of the normalised
    neurons (the last axis of the kernel, other axes flattened), computed
    exactly as the MHE code does. Minimizing it spreads the neurons evenly
    over the sphere. It works on Dense and Conv1D/2D/3D kernels, and its
    memory is O(`chunk_size` × n) for n neurons.

    The HS-MHE baseline of the OPT paper is `MHE(1.0, half_space=True)` on
    every hidden layer plus `MHE(10.0)` (full space) on the classifier; the
    MHE code uses λ = 0.1 and 1 instead for `s="a1"` and `"a2"`.
    `keras_opt.baselines.get("hs_mhe")` builds that set-up.

    Args:
        factor: Non-negative float, the weight λ of the penalty. Defaults to
            `1.0`.
        s: The energy: `0`, `1`, `2` (Euclidean, `0` is the log energy) or
            `"a0"`, `"a1"`, `"a2"` (angular). Defaults to `2`.
        half_space: Whether to add the negated neurons (HS-MHE). Defaults to
            `False`.
        epsilon: Added inside the square root of each neuron's norm.
            Defaults to `1e-4`, the MHE value.
        chunk_size: Gram-matrix block size, see `hyperspherical_energy`.

    Example:

    >>> layer = keras.layers.Dense(
    ...     16, kernel_regularizer=keras_opt.regularizers.MHE(half_space=True)
    ... )

    Reference:
        Liu et al., "Learning towards Minimum Hyperspherical Energy",
        NeurIPS 2018 (https://github.com/wy1iu/MHE).
    """

    def __init__(
        self, factor=1.0, s=2, half_space=False, epsilon=1e-4, chunk_size=None
    ):
        self.factor = _kernel.validate_factor(factor)
        energy.check_arguments(s, half_space, epsilon, chunk_size)
        self.s = s
        self.half_space = half_space
        self.epsilon = float(epsilon)
        self.chunk_size = chunk_size

    def __call__(self, x):
        matrix = linalg.fold_kernel(x, "x")
        return self.factor * energy.hyperspherical_energy(
            matrix,
            s=self.s,
            half_space=self.half_space,
            epsilon=self.epsilon,
            chunk_size=self.chunk_size,
        )

    def get_config(self):
        return {
            "factor": self.factor,
            "s": self.s,
            "half_space": self.half_space,
            "epsilon": self.epsilon,
            "chunk_size": self.chunk_size,
        }
