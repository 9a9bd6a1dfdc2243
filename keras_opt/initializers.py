"""Initializers of OPT's fixed neurons: evenly spread class prototypes."""

import math

import keras
from keras import ops

from keras_opt._validation import check_number

__all__ = ["MinimumEnergy"]

# A descent step costs about 6·C²·d flops; above this budget for all steps
# the prototypes stay Gaussian (in high dimension those are already spread).
_MAX_DESCENT_FLOPS = 2e10


@keras.saving.register_keras_serializable(package="keras_opt")
class MinimumEnergy(keras.initializers.Initializer):
    """Columns spread evenly on the sphere: low hyperspherical energy.

    For a `(d, C)` kernel (C neurons or class prototypes of dimension d):

    - `C <= d + 1`: a regular simplex, every pair at the same angle
      (cos = −1/(C − 1)), the minimum of every Riesz energy, in a random
      orientation;
    - otherwise: Gaussian columns, then `num_steps` steps of projected
      gradient descent of the Riesz s-energy Σ 1/‖ûᵢ − ûⱼ‖ˢ on the sphere
      (the MHE objective, s = 1), each step moving a column by a fixed
      fraction of the mean neighbour distance. When
      `num_steps · 6·C²·d` exceeds 2·10¹⁰ flops the columns stay Gaussian,
      which in high dimension is already near-uniform.

    Every column is then scaled to norm √(2 · `scale`) (the expected norm
    of a He-normal column), so only the directions change. The result is a
    deterministic function of `seed`, `shape` and the backend, so
    `OPTClassifier(save_basis=False)` regenerates the same prototypes.

    Args:
        seed: Int seed (required for reproducible prototypes).
        num_steps: Descent steps for `C > d + 1`.
        scale: The columns' squared norm is `2 · scale`.

    Example:

    >>> v = keras_opt.initializers.MinimumEnergy(seed=1)((2, 10))
    >>> # ten unit directions 36° apart, each of norm √2
    """

    def __init__(self, seed=None, num_steps=200, scale=1.0):
        self.seed = seed
        self.num_steps = check_number("num_steps", num_steps, "int", low=0)
        self.scale = check_number(
            "scale", scale, low=0.0, low_inclusive=False, high=math.inf,
            high_inclusive=False,
        )

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(
                "Invalid shape for `MinimumEnergy`. Expected a 2-D kernel "
                f"(d, C). Received: shape={tuple(shape)}"
            )
        dim, count = shape
        seed = keras.random.SeedGenerator(self.seed)
        if count <= dim + 1:
            units = _simplex(dim, count, seed)
        else:
            units = _normalize(keras.random.normal((dim, count), seed=seed))
            if self.num_steps * 6.0 * count * count * dim <= _MAX_DESCENT_FLOPS:
                units = _spread(units, self.num_steps)
        units = units * math.sqrt(2.0 * self.scale)
        return ops.cast(units, dtype or keras.config.floatx())

    def get_config(self):
        return {
            "seed": self.seed,
            "num_steps": self.num_steps,
            "scale": self.scale,
        }


def _normalize(x):
    return x / ops.sqrt(ops.sum(ops.square(x), axis=0, keepdims=True))


def _simplex(dim, count, seed):
    """C unit vectors with pairwise cos −1/(C − 1), randomly oriented."""
    centered = ops.eye(count) - ops.full((count, count), 1.0 / count)
    # The centred basis vectors span a (C − 1)-dim subspace; an orthonormal
    # (C, C − 1) basis Q of it maps them to R^(C−1) with their angles kept.
    gaussian = keras.random.normal((dim, dim), seed=seed)
    rotation, _ = ops.linalg.qr(gaussian)
    if count == 1:
        return rotation[:, :1]
    q, _ = ops.linalg.qr(centered[:, : count - 1])
    coordinates = ops.matmul(ops.transpose(q), centered)
    return _normalize(ops.matmul(rotation[:, : count - 1], coordinates))


def _spread(units, num_steps):
    """Projected descent of the Riesz 1-energy of the columns of `units`."""

    def step(index, units):
        gram = ops.matmul(ops.transpose(units), units)
        distance = ops.sqrt(ops.maximum(2.0 - 2.0 * gram, 1e-12))
        count = units.shape[1]
        weights = (1.0 - ops.eye(count)) / ops.power(distance, 3.0)
        # −∇ of Σ 1/‖uᵢ − uⱼ‖ for column i: Σⱼ (uᵢ − uⱼ)/‖uᵢ − uⱼ‖³.
        force = units * ops.sum(weights, axis=0) - ops.matmul(units, weights)
        tangent = force - units * ops.sum(force * units, axis=0)
        norms = ops.sqrt(ops.sum(ops.square(tangent), axis=0, keepdims=True))
        spacing = ops.sum(distance * (1.0 - ops.eye(count))) / (
            count * (count - 1)
        )
        # A fraction of the mean spacing, shrinking to 0 over the steps.
        fraction = 0.1 * (1.0 - ops.cast(index, units.dtype) / num_steps)
        move = fraction * spacing * tangent / ops.maximum(ops.max(norms), 1e-12)
        return _normalize(units + move)

    return ops.fori_loop(0, num_steps, step, units)
