"""Orthogonalization maps and matrix helpers, in `keras.ops` only.

Every function takes matrices of shape `(..., n, p)` and works on the last two
axes, so batches of matrices are supported. The maps `gram_schmidt`,
`householder`, `lowdin`, `cayley` and `newton_schulz` take square matrices
and return orthogonal ones of the same shape and dtype. They reproduce the
maps of the official OPT code (Liu et al., CVPR 2021) without its Python loops
over the matrix dimension, and their gradients are exact, also where autodiff
of `qr`/`svd` is not (repeated singular values, rank deficiency): they are
defined with closed-form adjoints that guard every division by `epsilon`
relative to the largest diagonal or singular value.
"""

import keras
import numpy as np
from keras import ops


def transpose(x):
    """Swaps the last two axes of `x`."""
    return ops.swapaxes(_as_tensor(x), -1, -2)


def sym(x):
    """The symmetric part `(X + Xᵀ) / 2` of square matrices."""
    return (x + transpose(x)) / 2.0


def eye_like(x):
    """The identity matrix of shape `(x.shape[-1], x.shape[-1])`."""
    return ops.eye(x.shape[-1], dtype=x.dtype)


def fold_kernel(kernel, name="kernel"):
    """Folds a kernel of rank >= 2 into its `(d, n)` matrix of neurons.

    The neurons are the last axis, as in every Keras Dense and Conv kernel;
    the other axes are flattened in order (the OPT layout). Float64 stays
    float64, any other dtype is computed in float32.

    Args:
        kernel: A tensor of rank >= 2 with a fully known shape.
        name: The argument name to use in the error message.

    Returns:
        A tensor of shape `(prod(kernel.shape[:-1]), kernel.shape[-1])`.
    """
    x = _as_tensor(kernel)
    if x.dtype != "float64":
        x = ops.cast(x, "float32")
    shape = tuple(x.shape)
    if len(shape) < 2 or any(dim is None for dim in shape):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a kernel of rank "
            ">= 2 with a fully known shape (neurons on the last axis), such "
            "as a Dense or Conv1D/2D/3D kernel. Received: "
            f"{name}.shape={shape}"
        )
    return ops.reshape(x, (-1, shape[-1]))


def orthogonality_error(x):
    """Returns `max |XᵀX − I|` of each matrix in `x`, shape `x.shape[:-2]`."""
    x = _as_tensor(x)
    gram = ops.matmul(transpose(x), x)
    return ops.max(ops.abs(gram - eye_like(x)), axis=(-2, -1))


def orthogonality_penalty(x, squared=False):
    """Returns `‖X Xᵀ − I‖_F` (or its square) of each matrix in `x`.

    This is the penalty of the official OR variant of OPT, on the rows of
    `x`. The non-squared norm has no gradient where `X Xᵀ = I`: there the
    gradient is zero instead of NaN, and near it its norm stays bounded by
    `2 ‖X‖₂`.

    Args:
        x: Matrices of shape `(..., n, p)`.
        squared: Whether to return the squared Frobenius norm.

    Returns:
        A tensor of shape `x.shape[:-2]`.
    """
    x = _as_tensor(x)
    gram = ops.matmul(x, transpose(x))
    squares = ops.sum(ops.square(gram - eye_like(gram)), axis=(-2, -1))
    if squared:
        return squares
    tiny = ops.cast(1e-30, squares.dtype)
    return ops.sqrt(ops.maximum(squares, tiny))


def _as_tensor(x):
    # Read variables into tensors: custom gradients must not read variables
    # themselves, and keras.ops fail on raw backend variables (no `ndim`).
    if isinstance(x, keras.Variable) or not hasattr(x, "ndim"):
        return ops.copy(x)
    return ops.convert_to_tensor(x)


def _signs(values):
    """`sign(values)` with zeros mapped to +1."""
    return ops.where(values < 0, -ops.ones_like(values), ops.ones_like(values))


def _guarded_diagonal(r, epsilon):
    """Pushes the diagonal of triangular `r` away from zero for solves."""
    diagonal = ops.diagonal(r, axis1=-2, axis2=-1)
    scale = ops.max(ops.abs(diagonal), axis=-1, keepdims=True)
    floor = epsilon * ops.maximum(scale, ops.cast(1e-30, r.dtype))
    guarded = _signs(diagonal) * ops.maximum(ops.abs(diagonal), floor)
    eye = eye_like(r)
    return r + (guarded - diagonal)[..., None, :] * eye


def _qr_adjoint(q, r, qt_qbar, residual, epsilon):
    """Adjoint of `A = Q R` (reduced, `n >= p`) for a cotangent Q̄ on Q.

    Takes `QᵀQ̄` and the residual `Q̄ − Q QᵀQ̄` (zero, and passed as None,
    when Q is square), so that callers can form them cheaply.
    """
    b = ops.matmul(q, ops.tril(qt_qbar - transpose(qt_qbar)))
    if residual is not None:
        b = b + residual
    return _solve_r_transposed(b, r, epsilon)


def _solve_r_transposed(b, r, epsilon):
    """`B R^-T` with the diagonal of R guarded, as `(R^-1 Bᵀ)ᵀ`."""
    r = _guarded_diagonal(r, epsilon)
    return transpose(
        ops.linalg.solve_triangular(r, transpose(b), lower=False)
    )


_TRIL_BLOCK = 128


def _uses_low_rank_adjoint(d, n):
    # The blocked product costs about 2d²(2n + block) flops against 2d³.
    return d >= 4 * (2 * n + _TRIL_BLOCK)


def _times_strict_tril_outer(q, a, z, block=_TRIL_BLOCK):
    """`Q · strict_tril(A Zᵀ)` for `(..., d, d)` Q and `(..., d, n)` A, Z.

    Blocks of `block` rows and columns: below the diagonal blocks the
    product is `S_J Z_Jᵀ` with `S_J = Σ_{I>J} Q_I A_I` (a reverse cumulative
    sum), on them a small dense product. O(d²(n + block)) instead of O(d³).
    """
    d = q.shape[-1]
    pad = -d % block
    if pad:
        q = ops.pad(q, [(0, 0)] * (q.ndim - 1) + [(0, pad)])
        a = ops.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, pad), (0, 0)])
        z = ops.pad(z, [(0, 0)] * (z.ndim - 2) + [(0, pad), (0, 0)])
    num_blocks = (d + pad) // block
    batch = tuple(q.shape[:-2])
    n = a.shape[-1]
    q = ops.reshape(q, batch + (d, num_blocks, block))
    a = ops.reshape(a, batch + (num_blocks, block, n))
    z = ops.reshape(z, batch + (num_blocks, block, n))
    parts = ops.einsum("...iKb,...Kbn->...Kin", q, a)
    # S_J = Σ_{I>J} Q_I A_I: reverse cumulative sum, excluding J itself.
    later = ops.flip(ops.cumsum(ops.flip(parts, axis=-3), axis=-3), axis=-3)
    later = later - parts
    below = ops.einsum("...Jin,...Jcn->...iJc", later, z)
    mask = ops.tril(ops.ones((block, block), dtype=q.dtype), k=-1)
    diagonal = ops.einsum("...Jbn,...Jcn->...Jbc", a, z) * mask
    on = ops.einsum("...iJb,...Jbc->...iJc", q, diagonal)
    out = ops.reshape(below + on, batch + (d, d + pad))
    return out[..., :d]


def _signed_qr(x, last_sign_fn):
    if last_sign_fn is None:
        q, r = ops.linalg.qr(x, mode="reduced")
    else:
        q, r = _reflected_qr(x)
    signs = _signs(ops.diagonal(r, axis1=-2, axis2=-1))
    if last_sign_fn is not None:
        signs = last_sign_fn(q, signs)
    signs = ops.stop_gradient(signs)
    return q * signs[..., None, :], r * signs[..., :, None]


def _signed_qr_factor(x, last_sign_fn, epsilon):
    @ops.custom_gradient
    def factor(x):
        q, r = _signed_qr(x, last_sign_fn)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            qt_qbar = ops.matmul(transpose(q), upstream)
            residual = upstream - ops.matmul(q, qt_qbar)
            return _qr_adjoint(q, r, qt_qbar, residual, epsilon)

        return q, grad

    return factor(_as_tensor(x))


def _signed_qr_rotate(x, basis, transposed, last_sign_fn, epsilon):
    """`R·V` for R = Q (or Qᵀ) of the signed QR of `x` (or `xᵀ`).

    Fusing the product lets the backward pass use that `R̄ = Ḡ Vᵀ` has the
    rank n of V: `QᵀQ̄` costs O(d²n) instead of O(d³), and the residual term
    vanishes because Q is square.
    """

    @ops.custom_gradient
    def rotate(x, basis):
        q, r = _signed_qr(transpose(x) if transposed else x, last_sign_fn)
        rotation = transpose(q) if transposed else q
        outputs = ops.matmul(rotation, basis)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            basis_grad = ops.matmul(transpose(rotation), upstream)
            # Q̄ = U Zᵀ: Ḡ Vᵀ for R = Q, and its transpose V Ḡᵀ for R = Qᵀ.
            u, z = (basis, upstream) if transposed else (upstream, basis)
            a = ops.matmul(transpose(q), u)
            if _uses_low_rank_adjoint(q.shape[-1], z.shape[-1]):
                # Q tril(A Zᵀ − Z Aᵀ), whose diagonal is zero.
                b = _times_strict_tril_outer(q, a, z)
                b = b - _times_strict_tril_outer(q, z, a)
                x_grad = _solve_r_transposed(b, r, epsilon)
            else:
                qt_qbar = ops.matmul(a, transpose(z))
                x_grad = _qr_adjoint(q, r, qt_qbar, None, epsilon)
            return (transpose(x_grad) if transposed else x_grad), basis_grad

        return outputs, grad

    return rotate(_as_tensor(x), _as_tensor(basis))


_QR_ROTATE_ARGUMENTS = """Args:
        x: Square matrices of shape `(..., d, d)`.
        basis: Matrices of shape `(..., d, n)`.
        epsilon: Relative guard of the gradient, see `sign_fixed_qr`.

    Returns:
        A tensor of shape `(..., d, n)`."""


def _with_qr_rotate_arguments(function):
    """Fills the `{{qr_rotate_arguments}}` placeholder of a docstring."""
    function.__doc__ = function.__doc__.replace(
        "{{qr_rotate_arguments}}", _QR_ROTATE_ARGUMENTS
    )
    return function


def sign_fixed_qr(x, epsilon=1e-6):
    """The Q factor of a QR decomposition with a non-negative diagonal of R.

    For `x` of shape `(..., n, p)` with `n >= p` this returns the unique
    matrix with orthonormal columns `Q` such that `x = Q R`, `R` upper
    triangular with `diag(R) >= 0` (a zero diagonal entry keeps the sign
    `+1`). It is the QR retraction onto the Stiefel manifold. The gradient is
    the closed-form QR adjoint; its triangular solve divides by
    `max(|R_ii|, epsilon * max_j |R_jj|)`, so rank-deficient `x` gives a
    large but finite gradient.

    Args:
        x: Matrices of shape `(..., n, p)` with `n >= p`.
        epsilon: Relative guard of the diagonal of R in the gradient.

    Returns:
        A tensor of shape `(..., n, p)` with orthonormal columns.
    """
    return _signed_qr_factor(x, None, epsilon)


def cholesky_qr(x):
    """`sign_fixed_qr` for nearly orthonormal matrices, via Cholesky.

    `XᵀX = L Lᵀ` gives `Q = X L^-T`, the same Q as `sign_fixed_qr` since
    `R = Lᵀ` has a positive diagonal. It squares the condition number, so use
    it only where `cond(X)` is close to 1 (a Stiefel point after a few
    retraction steps); there it is 2.5–4× faster than Householder QR on CPU
    at d = 576–1024.

    Args:
        x: Matrices of shape `(..., n, p)` with `n >= p`, nearly orthonormal.

    Returns:
        A tensor of shape `(..., n, p)` with orthonormal columns.
    """
    x = _as_tensor(x)
    lower = ops.linalg.cholesky(ops.matmul(transpose(x), x))
    return transpose(ops.linalg.solve_triangular(lower, transpose(x), lower=True))


def gram_schmidt(x, epsilon=1e-6, vectors="rows"):
    """Classical Gram–Schmidt on the rows (or columns) of square matrices.

    The official OPT code orthonormalizes the rows `p_1, ..., p_d` of P one
    after the other, `e_i ∝ p_i − Σ_{j<i} ⟨p_i, e_j⟩ e_j`. In exact arithmetic
    the result equals `Qᵀ` for `Pᵀ = Q T` with `diag(T) > 0`, which is how it
    is computed here: one Householder QR, with no loop over the rows and the
    backward stability of Householder instead of classical Gram–Schmidt.
    With `vectors="columns"` the columns are orthonormalized instead: the
    result is `Q` for `P = Q T`, `gram_schmidt(Pᵀ)ᵀ`.

    Args:
        x: Square matrices of shape `(..., d, d)`.
        epsilon: Relative guard of the gradient, see `sign_fixed_qr`.
        vectors: `"rows"` or `"columns"`: which vectors of `x` are
            orthonormalized.

    Returns:
        Orthogonal matrices of shape `(..., d, d)` whose rows (or columns)
        span the same nested subspaces as those of `x`.
    """
    if _transposes(vectors):
        return transpose(sign_fixed_qr(transpose(x), epsilon=epsilon))
    return sign_fixed_qr(x, epsilon=epsilon)


@_with_qr_rotate_arguments
def gram_schmidt_rotate(x, basis, epsilon=1e-6, vectors="rows"):
    """`gram_schmidt(x, vectors=vectors) @ basis`, with a cheaper gradient.

    The backward pass exploits that basis has few columns (n << d), so the
    gradient costs one d×d product and one triangular solve instead of four.
    `vectors` is as for `gram_schmidt`.

    {{qr_rotate_arguments}}
    """
    return _signed_qr_rotate(x, basis, _transposes(vectors), None, epsilon)


def _transposes(vectors):
    if vectors not in ("rows", "columns"):
        raise ValueError(
            "Invalid value for argument `vectors`. Expected one of "
            f"['rows', 'columns']. Received: vectors={vectors!r}"
        )
    return vectors == "rows"


def _householder_last_sign(q, signs):
    # The official loop applies d − 1 reflections, so det(R) = (−1)^(d−1).
    # `_reflected_qr` gives det(Q) = (−1)^d, so the signs' product is −1.
    head = ops.prod(signs[..., :-1], axis=-1)
    return ops.concatenate([signs[..., :-1], -head[..., None]], axis=-1)


def _mixing_vector(d, dtype):
    """A fixed dense unit vector, the normal of the reflection `G`.

    Its entries lie in [1, 3] (golden-angle steps: no zeros, no pattern)
    and the last one is 4, so that every entry is smaller than the norm of
    the entries after it. Then the QR of `G X` for the structured X that
    layers start from (I, and any diagonal matrix: the identity-point
    initializers) applies exactly d − 1 reflectors with margin: its k-th
    step meets the block `(I − 2wwᵀ) D` with w the normalized tail of u,
    whose pivot `1 − 2w₁²` stays >= 0.28, so no later column is zero up to
    rounding (with entries merely dense the tail of the QR of G is the
    identity plus rounding noise, and the reflector count, so the sign of
    the last column, depends on the backend's rounding).
    """
    # Made in numpy from the static d: `ops.sin` computes float64 in
    # float32 on JAX, and G must be orthogonal to the working precision.
    u = 2.0 + np.sin(2.39996323 * np.arange(d))
    u[-1] = 4.0
    return ops.convert_to_tensor(u / np.sqrt(np.sum(np.square(u))), dtype)


def _reflected_qr(x):
    """Householder QR `X = Q R` with `det(Q) = (−1)^d`, without `slogdet`.

    `det` and `slogdet` have no XLA kernel. Every backend QR (LAPACK,
    Eigen, XLA, cuSOLVER) applies Householder reflectors and skips one
    (`τ = 0`) only when the column below the diagonal is exactly zero, as in
    the last column of a square matrix. The columns of `G X`, with
    `G = I − 2uuᵀ` the fixed reflection of `_mixing_vector`, have no exact
    zeros short of an adversarial X, so its QR uses exactly d − 1
    reflectors: `det(Q_G) = (−1)^(d−1)` and `X = (G Q_G) R` with
    `det(G Q_G) = (−1)^d`. `G` is applied in O(d²).
    """
    u = _mixing_vector(x.shape[-2], x.dtype)

    def reflect(y):
        return y - 2.0 * u[:, None] * ops.einsum("i,...ij->...j", u, y)[
            ..., None, :
        ]

    q, r = ops.linalg.qr(reflect(x), mode="reduced")
    return reflect(q), r


def householder(x, epsilon=1e-6):
    """The orthogonal factor of a Householder QR of the columns of matrices.

    The official OPT code runs d − 1 Householder reflections
    `H = I − 2 v vᵀ`, `v ∝ x − ‖x‖ e₁`, down the columns of P and returns
    their product. That is the Q factor of `P = Q T` with the first d − 1
    diagonal entries of T positive and `det(Q) = (−1)^(d−1)`, which fixes the
    sign of the last column. It is computed from one QR decomposition,
    without materializing any reflector, and reads that sign off the
    reflector count of the QR instead of a determinant, so it compiles under
    XLA.

    Args:
        x: Square matrices of shape `(..., d, d)`.
        epsilon: Relative guard of the gradient, see `sign_fixed_qr`.

    Returns:
        Orthogonal matrices of shape `(..., d, d)`.
    """
    return _signed_qr_factor(x, _householder_last_sign, epsilon)


@_with_qr_rotate_arguments
def householder_rotate(x, basis, epsilon=1e-6):
    """`householder(x) @ basis`, with a cheaper fused gradient.

    See `gram_schmidt_rotate`.

    {{qr_rotate_arguments}}
    """
    return _signed_qr_rotate(x, basis, False, _householder_last_sign, epsilon)


def lowdin(x, epsilon=1e-6):
    """Löwdin symmetric orthogonalization, the polar factor `P (PᵀP)^(-1/2)`.

    Computed as `U Vᵀ` from the SVD `P = U Σ Vᵀ`, as the official code does.
    Autodiff of the SVD is wrong where singular values repeat, which includes
    every orthogonal P, so the gradient is the closed-form polar adjoint
    `∂P = U K Vᵀ`, `K_ij = (M_ij − M_ji) / (σ_i + σ_j)`, `M = Uᵀ Ḡ V`.
    The denominators are guarded by `epsilon · σ_max`, so rank-deficient
    input gives finite gradients. For rank-deficient P the polar factor is
    not unique and the SVD's completion of U is used.

    Args:
        x: Square matrices of shape `(..., d, d)`.
        epsilon: Relative guard of `σ_i + σ_j` in the gradient.

    Returns:
        Orthogonal matrices of shape `(..., d, d)`.
    """

    @ops.custom_gradient
    def polar(x):
        u, s, vt = ops.linalg.svd(x, full_matrices=False)
        r = ops.matmul(u, vt)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            m = ops.matmul(ops.matmul(transpose(u), upstream), transpose(vt))
            denominator = s[..., :, None] + s[..., None, :]
            floor = epsilon * ops.max(s, axis=-1, keepdims=True)[..., None]
            floor = ops.maximum(floor, ops.cast(1e-30, s.dtype))
            k = (m - transpose(m)) / ops.maximum(denominator, floor)
            return ops.matmul(ops.matmul(u, k), vt)

        return r, grad

    return polar(_as_tensor(x))


def _cayley_skew(x):
    """`S = triu(P) − triu(P)ᵀ`, the skew matrix of the official CP map."""
    upper = ops.triu(_as_tensor(x))
    return upper - transpose(upper)


def _finite_cayley_skew(x):
    """The Cayley skew matrix with non-finite inputs zeroed, and a mask.

    A NaN or infinite entry would reach the solve, which fails with a
    misleading "matrix is not invertible" on some backends; such matrices
    are solved at zero instead and their output is set to NaN.
    """
    s = _cayley_skew(x)
    finite = ops.all(ops.isfinite(s), axis=(-2, -1))
    return ops.where(finite[..., None, None], s, ops.zeros_like(s)), finite


def _nan_where_not(finite, outputs):
    nan = ops.full_like(outputs, float("nan"))
    return ops.where(finite[..., None, None], outputs, nan)


def cayley(x):
    """The Cayley transform of the skew part of the upper triangle.

    As in the official code, only the upper triangle of P is used:
    `S = triu(P) − triu(P)ᵀ` and `R = (I + S)(I − S)^(-1)`, computed with a
    linear solve. `I − S` is invertible for every skew-symmetric S, so the
    map is defined everywhere; it cannot reach orthogonal matrices with
    eigenvalue −1, and `R = I` at `P = 0`. A matrix with a NaN or infinite
    entry in its upper triangle maps to a matrix of NaNs (not to a solver
    error), so that the NaN shows in the loss.

    Args:
        x: Square matrices of shape `(..., d, d)`.

    Returns:
        Orthogonal matrices of shape `(..., d, d)` with determinant 1.
    """
    s, finite = _finite_cayley_skew(x)
    eye = eye_like(s)
    # (I + S)(I − S)^-1 = (I − S)^-1 (I + S) since both are functions of S.
    return _nan_where_not(finite, ops.linalg.solve(eye - s, eye + s))


def cayley_rotate(x, basis):
    """`cayley(x) @ basis`, as one solve with n right-hand sides.

    `(I − S)^(-1) (I + S) V` never forms R, so forward and backward pass
    cost one LU factorization plus O(d²n) instead of a solve with d
    right-hand sides.

    Args:
        x: Square matrices of shape `(..., d, d)`.
        basis: Matrices of shape `(..., d, n)`.

    Returns:
        A tensor of shape `(..., d, n)`.
    """
    s, finite = _finite_cayley_skew(x)
    basis = _as_tensor(basis)
    outputs = ops.linalg.solve(eye_like(s) - s, basis + ops.matmul(s, basis))
    return _nan_where_not(finite, outputs)


def newton_schulz_iterations(dimension, max_condition=1e4, tolerance=1e-6):
    """Number of Newton–Schulz steps that reach `tolerance` for a bound.

    `newton_schulz` scales P by `‖PᵀP‖_F^(1/2) >= σ_max`, so the scaled
    singular values lie in `[1 / (κ d^(1/4)), 1]` for `cond(P) <= κ`. Each
    step maps every singular value by the increasing function
    `f(σ) = (3σ − σ³) / 2`, so the smallest one converges last; this counts
    the steps until `|σ² − 1| <= tolerance` for it.

    Args:
        dimension: The number of columns d of P.
        max_condition: An upper bound κ of the condition number of P.
        tolerance: The wanted bound of `max |σ_i² − 1|`.

    Returns:
        A Python int.
    """
    sigma = 1.0 / (max_condition * dimension**0.25)
    iterations = 0
    while 1.0 - sigma * sigma > tolerance and iterations < 1000:
        sigma = 1.5 * sigma - 0.5 * sigma**3
        iterations += 1
    return iterations


def newton_schulz(x, num_iterations=None, max_condition=1e4, tolerance=1e-6):
    """Polar factor by the Newton–Schulz iteration, matrix products only.

    `Y ← (3Y − Y YᵀY) / 2`, started at `P / ‖PᵀP‖_F^(1/2)`, converges to the
    polar factor of P (the `lowdin` map) for every full-rank P. It uses only
    matmuls, which suits accelerators. Unless `num_iterations` is given, the
    number of steps is chosen by `newton_schulz_iterations` so that
    `max |σ_i² − 1| <= tolerance` for every P with `cond(P) <= max_condition`
    (the count is static, chosen for the worst case). Float32 round-off adds about `1e-6` to the
    error. The gradient is the exact derivative of the iteration. A zero P
    returns zero.

    Args:
        x: Square matrices of shape `(..., d, d)`.
        num_iterations: A fixed number of steps, or `None` to derive it.
        max_condition: The condition number the count is chosen for.
        tolerance: The orthogonality tolerance the count is chosen for.

    Returns:
        Matrices of shape `(..., d, d)`.
    """
    x = _as_tensor(x)
    if num_iterations is None:
        num_iterations = newton_schulz_iterations(
            x.shape[-1], max_condition=max_condition, tolerance=tolerance
        )
    gram = ops.matmul(transpose(x), x)
    squares = ops.sum(ops.square(gram), axis=(-2, -1))
    scale = ops.sqrt(ops.sqrt(ops.maximum(squares, ops.cast(1e-30, x.dtype))))
    y = x / scale[..., None, None]

    # Unrolled: the count is static and small, and the gradient of a loop
    # accumulates a tensor list of unknown size, which XLA cannot compile.
    for _ in range(num_iterations):
        y = 1.5 * y - 0.5 * ops.matmul(y, ops.matmul(transpose(y), y))
    return y
