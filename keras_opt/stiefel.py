"""Geometry of the Stiefel manifold `{X : XᵀX = I}`, in `keras.ops`.

Pure functions on `(n, p)` matrices with `n >= p`, shared by the Stiefel
optimizers: the tangent projection, the skew-symmetric generator of the
Cayley SGD/Adam of Li, Li & Todorovic (2020), OGD's step size, the Cayley
and QR retractions, and re-orthonormalization with momentum transport. For
square `X` the generator and the Cayley step also have an orthogonal-group
form (`group_generator`, `group_cayley_retraction`) that needs four `d×d`
products per step instead of six.
The generators and retractions also take stacks `(k, n, p)` of points (the
blocks of a block-diagonal rotation) and step them all at once: the step
size takes the norm over the whole stack (the OGD step of the
block-diagonal matrix as one rotation) and the drift estimate the largest
over the stack.
The tags that mark a variable as a Stiefel variable live in
`keras_opt.variable_tags`.
"""

from keras import ops

from keras_opt import _control
from keras_opt import linalg

# Per-step allowance for float rounding in the drift estimate of the Cayley
# retraction. Measured rounding drift is 1e-9 per step (d = 64 to 1024,
# float32), so with the optimizers' default tolerance of 2e-6 X is
# re-orthonormalized at least every 200 steps.
ROUNDING_ALLOWANCE = 1e-8
NORM_EPSILON = 1e-8
# Below this drift estimate `reorthonormalize` uses Cholesky-QR, above it
# Householder QR.
CHOLESKY_QR_MAX_DRIFT = 0.1


def project_tangent(x, m):
    """Projects `m` onto the tangent space at `x`: `M − X·sym(XᵀM)`.

    Args:
        x: A matrix with orthonormal columns, shape `(n, p)`.
        m: A matrix of shape `(n, p)`.

    Returns:
        The tangent vector `M − X (XᵀM + MᵀX) / 2`, for which `XᵀM'` is
        skew-symmetric.

    Example:

    >>> x = np.eye(3, 2)
    >>> m = np.ones((3, 2))
    >>> keras_opt.stiefel.project_tangent(x, m)  # [[0, 0], [0, 0], [1, 1]]
    """
    xtm = ops.matmul(linalg.transpose(x), m)
    return m - ops.matmul(x, linalg.sym(xtm))


def skew_generator(x, m):
    """Returns the skew generator `W = Ŵ − Ŵᵀ`, `Ŵ = M Xᵀ − ½ X (XᵀM Xᵀ)`.

    `W X` is the projection of `M` onto the tangent space at `x` (for the
    canonical metric), the direction of the Cayley retraction. Computed as
    `Ŵ = (M − ½ X (XᵀM)) Xᵀ`: three matrix products.

    Args:
        x: A matrix with orthonormal columns, shape `(n, p)`.
        m: A matrix of shape `(n, p)`, e.g. a momentum or a gradient.

    Returns:
        A skew-symmetric matrix of shape `(n, n)`.
    """
    xtm = ops.matmul(linalg.transpose(x), m)
    w_hat = ops.matmul(m - 0.5 * ops.matmul(x, xtm), linalg.transpose(x))
    return w_hat - linalg.transpose(w_hat)


def step_size(learning_rate, skew):
    """OGD's adaptive step `α = min(lr, 1 / (‖W‖_F + 1e-8))` (q = ½).

    The cap keeps `α‖W‖ <= 1`, where the two fixed-point iterations of
    `cayley_retraction` converge. `‖W‖_F` is computed scaled by the
    largest entry, so it stays finite wherever W is (float32's
    `sum(W²)` overflows from entries of about 1e19 on).
    """
    return ops.minimum(
        learning_rate, 1.0 / (frobenius_norm(skew) + NORM_EPSILON)
    )


def frobenius_norm(x):
    """`‖X‖_F`, finite for every finite X: `max|X| · ‖X / max|X|‖_F`."""
    largest = ops.max(ops.abs(x))
    scale = ops.where(ops.greater(largest, 0), largest, ops.ones_like(largest))
    return scale * ops.sqrt(ops.sum(ops.square(x / scale)))


def cayley_retraction(x, skew, alpha, tangent=None):
    """Two fixed-point iterations of the Cayley transform, and their drift.

    The Cayley point is `Y = (I − α/2 W)⁻¹ (I + α/2 W) X`. With `M = W X` and
    `Y₀ = X + α M`, the iterations `Y ← X + (α/2) W (X + Y)` give exactly
    `Y₂ = X + α M + (α²/2) W M + (α³/4) W² M`; this form needs the same
    three products and exposes `W² X = W M`. The exact Cayley point differs
    by `(α⁴/8) W⁴ X + …`, so `Y₂ᵀY₂ − I ≈ −(α⁴/4) (W²X)ᵀ(W²X)`, whose
    largest entry is on the diagonal. The drift estimate doubles it and adds
    an allowance for rounding (`ROUNDING_ALLOWANCE`).

    Everything is computed from `αW` and `αM`, whose norms `α‖W‖ <= 1`
    (`step_size`) bounds, so no huge but finite W can overflow the
    products or make the estimate `α⁴·‖W²X‖²` a NaN (0 · inf).

    Args:
        x: A matrix with orthonormal columns, shape `(n, p)`.
        skew: A skew-symmetric matrix of shape `(n, n)`.
        alpha: The step size, a scalar.
        tangent: `skew @ x` if already computed, else `None`.

    Returns:
        A tuple `(y, drift)`: the new point and an estimate of the increase
        of `max |YᵀY − I|` over `max |XᵀX − I|`.
    """
    skew, tangent = _scaled(alpha, skew, tangent, lambda s: ops.matmul(s, x))
    second = ops.matmul(skew, tangent)
    third = ops.matmul(skew, second)
    y = x + tangent + 0.5 * (second + 0.5 * third)
    return y, _drift(second)


def _scaled(alpha, skew, tangent, tangent_of):
    """`(α·skew, α·tangent)`; `tangent_of(α·skew)` if `tangent` is `None`."""
    skew = alpha * skew
    if tangent is None:
        return skew, tangent_of(skew)
    return skew, alpha * tangent


def _drift(second):
    """The drift estimate `½ max_j ‖(α²W²X)_j‖²` plus the rounding allowance."""
    column_norms = ops.sum(ops.square(second), axis=-2)
    return 0.5 * ops.max(column_norms) + ROUNDING_ALLOWANCE


def group_generator(x, m):
    """The generator of a square `x` in the group frame: `(A, X·A)`.

    On the orthogonal group (`XᵀX = XXᵀ = I`), `M = X K` with `K = XᵀM`, so
    `Ŵ = ½ X K Xᵀ` and `skew_generator(x, m) = X A Xᵀ`, `A = ½ (K − Kᵀ)`.
    `A` has the norm of `W` (the same `step_size`), and the tangent is
    `W X = X A`: two `d×d` products instead of four. Off the manifold the
    results differ from `skew_generator` by `O(‖XᵀX − I‖)`.

    Args:
        x: A square orthogonal matrix, shape `(n, n)`.
        m: A matrix of shape `(n, n)`, e.g. a momentum or a gradient.

    Returns:
        A tuple `(skew, tangent)`: the skew-symmetric `A = skew(XᵀM)` and
        the tangent vector `X A`, both of shape `(n, n)`.

    Example:

    >>> x = np.eye(2)
    >>> m = np.array([[0.0, 2.0], [0.0, 0.0]])
    >>> keras_opt.stiefel.group_generator(x, m)  # A = [[0, 1], [-1, 0]]
    """
    xtm = ops.matmul(linalg.transpose(x), m)
    skew = 0.5 * (xtm - linalg.transpose(xtm))
    return skew, ops.matmul(x, skew)


def group_cayley_retraction(x, skew, alpha, tangent=None):
    """`cayley_retraction` of a square `x` from its group generator `A`.

    With `W = X A Xᵀ` and `XᵀX = I`, `Wᵏ X = X Aᵏ`, so the two fixed-point
    iterations give `Y₂ = X + T (αI + (α²/2) A + (α³/4) A²)`, `T = X A`:
    two `d×d` products (`A²` and `T·(…)`) instead of three. The drift
    estimate is that of `cayley_retraction`: the columns of `W²X = X A²`
    have the norms of those of `A²`. As there, everything is computed from
    `αA` and `αT`.

    Args:
        x: A square orthogonal matrix, shape `(n, n)`.
        skew: The skew-symmetric generator `A` of `group_generator`.
        alpha: The step size, a scalar.
        tangent: `x @ skew` if already computed, else `None`.

    Returns:
        A tuple `(y, drift)` as for `cayley_retraction`.
    """
    skew, tangent = _scaled(alpha, skew, tangent, lambda s: ops.matmul(x, s))
    square = ops.matmul(skew, skew)
    y = x + tangent + 0.5 * ops.matmul(tangent, skew + 0.5 * square)
    return y, _drift(square)


def qr_retraction(x, tangent, alpha, nearly_orthonormal=False):
    """The QR retraction `qf(X + α T)`, with a non-negative diagonal of R.

    Args:
        x: A matrix with orthonormal columns, shape `(n, p)`.
        tangent: A tangent vector at `x`, shape `(n, p)`.
        alpha: The step size, a scalar.
        nearly_orthonormal: Whether `X + α T` is known to be well
            conditioned, as it is for `T = W X` with `α‖W‖ <= 1`
            (`cond <= √2`): then the cheaper Cholesky-QR is used, else
            Householder QR.

    Returns:
        The new point, shape `(n, p)`.
    """
    y = x + alpha * tangent
    if nearly_orthonormal:
        return linalg.cholesky_qr(y)
    return linalg.sign_fixed_qr(y)


def reorthonormalize(x, momentum, drift=None):
    """Puts `x` back on the manifold and transports `momentum` to it.

    `x` becomes the Q factor of its QR decomposition with a non-negative
    diagonal of R (by Cholesky-QR when `drift` is below
    `CHOLESKY_QR_MAX_DRIFT`, else by Householder QR), and `momentum` its
    tangent projection at the new point, `M − X·sym(XᵀM)`.

    Args:
        x: A matrix of shape `(n, p)` with nearly orthonormal columns.
        momentum: A matrix of shape `(n, p)`.
        drift: `None` (unknown, Householder QR) or a scalar estimate of
            `max |XᵀX − I|`.

    Returns:
        A tuple `(x, momentum)`.
    """
    if drift is None:
        x = linalg.sign_fixed_qr(x)
    else:
        x = _control.cond(
            ops.less(drift, CHOLESKY_QR_MAX_DRIFT),
            lambda: linalg.cholesky_qr(x),
            lambda: linalg.sign_fixed_qr(x),
        )
    return x, project_tangent(x, momentum)
