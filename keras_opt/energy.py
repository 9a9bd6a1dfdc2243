"""Hyperspherical energy of the neurons of a layer."""

import math

import numpy as np
from keras import ops

from keras_opt import linalg
from keras_opt._validation import check_number

__all__ = ["ENERGY_TYPES", "check_arguments", "hyperspherical_energy"]

ENERGY_TYPES = ("0", "1", "2", "a0", "a1", "a2")

# Offset added to the normalised angle by the MHE code so that `a0`, `a1`
# and `a2` stay finite for coincident neurons.
_ANGLE_OFFSET = 1e-4

# Gram-matrix tiles of 1024 x 1024 keep matmuls efficient; a float32 tile
# is 4 MiB and each tile needs a handful of temporaries of that size.
_DEFAULT_CHUNK_SIZE = 1024

# Gradient row blocks hold at most 2**23 Gram entries (32 MiB in float32).
_BLOCK_ELEMENTS = 2**23


def hyperspherical_energy(
    weights, s=2, half_space=False, epsilon=1e-4, chunk_size=None
):
    """Pair-averaged hyperspherical energy of the neurons of a kernel.

    The neurons are the last axis of `weights`; all other axes are
    flattened, so a Dense kernel `(d, n)` and a Conv kernel
    `(*kernel_size, c_in, n)` both give `n` neurons of dimension `d`. The
    computation is exactly that of the MHE code (Liu et al., 2018), which is
    also what OPT uses to report the energy:

    1. with `half_space=True` the negated neurons are appended, giving `2n`;
    2. each neuron is normalised with `epsilon` inside the square root,
       `n_i = sqrt(sum(w_i**2) + epsilon)`, and `c_ij = <w_i, w_j> / (n_i n_j)`;
    3. the kernel below is averaged over the `N (N - 1) / 2` pairs `i < j`:

    | `s`    | pair kernel          | meaning                          |
    |--------|----------------------|----------------------------------|
    | `0`    | `-log(2 - 2c)`       | log energy, `-log ‖ŵi − ŵj‖²`    |
    | `1`    | `(2 - 2c) ** -0.5`   | `‖ŵi − ŵj‖ ** -1`                |
    | `2`    | `(2 - 2c) ** -1`     | `‖ŵi − ŵj‖ ** -2`                |
    | `"a0"` | `-log(a)`            | `a = arccos(c) / π + 1e-4`       |
    | `"a1"` | `a ** -1`            | angular, power 1                 |
    | `"a2"` | `a ** -2`            | angular, power 2                 |

    `c` is clipped to `[-1, 1]` first, so rounding never gives NaN. Neurons
    that coincide up to float rounding give an infinite Euclidean energy, as
    the definition says; with `epsilon > 0` this needs `‖w‖² ≫ 1e7 ε`.

    The Gram matrix is never materialised. The forward pass visits only its
    upper-triangular tiles of `chunk_size` × `chunk_size` entries, in one
    `ops.fori_loop` (a `tf.while_loop` on TensorFlow), so the traced graph
    has a fixed size whatever N is and a Python loop never unrolls. The
    gradient is written by hand (`ops.custom_gradient`) with row blocks of
    at most `min(chunk_size, 2**23 / N)` × N entries in one `ops.map`, so
    backpropagation never stores per-tile activations either; it treats `c`
    as constant where it was clipped. Memory is O(`chunk_size` × N) on top
    of the N × d normalised neurons.

    Float64 input is computed in float64; any other float dtype is computed
    in float32 (half precision is not accurate enough for `2 - 2c`). Block
    sums are accumulated in float64 in both cases.

    Args:
        weights: A kernel of rank >= 2 with at least 2 neurons in total (a
            tensor, a NumPy array or a `keras.Variable`).
        s: One of `0`, `1`, `2` (Euclidean; `0` is the log energy) or
            `"a0"`, `"a1"`, `"a2"` (angular). Strings `"0"`, `"1"`, `"2"` are
            accepted too. Defaults to `2`.
        half_space: Whether to add the negated neurons (HS-MHE). Defaults to
            `False`.
        epsilon: Non-negative float added inside the square root of each
            neuron's norm. Defaults to `1e-4`, the MHE value.
        chunk_size: Edge of the Gram-matrix tiles (neurons per block), or
            `None` for 1024.

    Returns:
        A scalar tensor, float64 for float64 input and float32 otherwise.

    Example:

    >>> w = np.eye(4, dtype="float32")  # 4 orthonormal neurons
    >>> float(keras_opt.energy.hyperspherical_energy(w, s=2))  # 1 / (2 - 0)
    0.5

    Reference:
        Liu et al., "Learning towards Minimum Hyperspherical Energy",
        NeurIPS 2018 (https://github.com/wy1iu/MHE); Liu et al., "Orthogonal
        Over-Parameterized Training", CVPR 2021 (arXiv:2004.04690).
    """
    s = check_arguments(s, half_space, epsilon, chunk_size)
    w = linalg.fold_kernel(weights, "weights")
    shape = tuple(ops.shape(weights))
    dim, num_neurons = w.shape
    total = 2 * num_neurons if half_space else num_neurons
    if total < 2 or dim < 1:
        raise ValueError(
            "Invalid value for argument `weights`. Expected at least 2 "
            "neurons (the last axis) of dimension >= 1. Received: "
            f"weights.shape={shape} with half_space={half_space}"
        )

    squared_norms = ops.sum(ops.square(w), axis=0)
    units = ops.transpose(w / ops.sqrt(squared_norms + epsilon)[None, :])
    if chunk_size is None:
        chunk_size = _DEFAULT_CHUNK_SIZE
    pair_sum = _make_pair_sum(s, half_space, chunk_size, w.dtype)(units)
    if not half_space:
        return pair_sum / (num_neurons * (num_neurons - 1) / 2)
    # Among W and -W each pair (w_i, w_j), i < j, appears twice with c and
    # twice with -c. The N pairs (w_i, -w_i) are computed in closed form:
    # 1 + c = ε / (‖w_i‖² + ε) stays accurate there, whereas arccos of a
    # rounded c ≈ -1 would lose half the digits in float32.
    antipodal = ops.sum(_antipodal_kernel(s, squared_norms, epsilon))
    return (2.0 * pair_sum + antipodal) / (num_neurons * (total - 1))


def check_arguments(s, half_space, epsilon, chunk_size):
    """Validates the arguments of `hyperspherical_energy`; returns `s`."""
    s = _standardize_s(s)
    if not isinstance(half_space, bool):
        raise TypeError(
            "Invalid value for argument `half_space`. Expected a bool. "
            f"Received: half_space={half_space!r}"
        )
    check_number("epsilon", epsilon, low=0.0, high=math.inf, high_inclusive=False)
    check_number("chunk_size", chunk_size, "int", low=1, allow_none=True)

    return s


def _standardize_s(s):
    if isinstance(s, bool) or not isinstance(s, (int, str)):
        key = None
    else:
        key = str(s)
    if key not in ENERGY_TYPES:
        raise ValueError(
            "Invalid value for argument `s`. Expected one of 0, 1, 2, 'a0', "
            f"'a1', 'a2'. Received: s={s!r}"
        )
    return key


def _value(s, cosine):
    """The pair kernel f(c) of the MHE code."""
    cosine = ops.clip(cosine, -1.0, 1.0)
    if s in ("0", "1", "2"):
        distance = 2.0 - 2.0 * cosine
        if s == "0":
            return -ops.log(distance)
        if s == "1":
            return ops.rsqrt(distance)
        return 1.0 / distance
    angle = ops.arccos(cosine) / math.pi + _ANGLE_OFFSET
    if s == "a0":
        return -ops.log(angle)
    if s == "a1":
        return 1.0 / angle
    return 1.0 / ops.square(angle)


def _slope(s, cosine):
    """f'(c), taken as 0 where `cosine` lies outside [-1, 1]."""
    inside = (cosine > -1.0) & (cosine < 1.0)
    cosine = ops.where(inside, cosine, 0.0)
    if s in ("0", "1", "2"):
        distance = 2.0 - 2.0 * cosine
        if s == "0":
            slope = 2.0 / distance
        elif s == "1":
            slope = ops.rsqrt(distance) / distance
        else:
            slope = 2.0 / ops.square(distance)
        return ops.where(inside, slope, 0.0)
    # d(angle)/dc = -1 / (π sqrt(1 - c²)) is infinite at |c| = 1, where the
    # clipped map is flat; the where above makes that derivative 0.
    angle = ops.arccos(cosine) / math.pi + _ANGLE_OFFSET
    steepness = ops.rsqrt(1.0 - ops.square(cosine)) / math.pi
    if s == "a0":
        slope = steepness / angle
    elif s == "a1":
        slope = steepness / ops.square(angle)
    else:
        slope = 2.0 * steepness / (ops.square(angle) * angle)
    return ops.where(inside, slope, 0.0)


def _antipodal_kernel(s, squared_norms, epsilon):
    """f(c) for each pair (w_i, -w_i), c = -‖w_i‖² / (‖w_i‖² + ε)."""
    gap = epsilon / (squared_norms + epsilon)
    if s in ("0", "1", "2"):
        return _value(s, gap - 1.0)
    if epsilon == 0:
        angle = ops.ones_like(squared_norms) + _ANGLE_OFFSET
    else:
        # arccos(-c) = π - arccos(c) and arccos(1 - g) = 2 arcsin(sqrt(g/2)).
        half_angle = ops.arcsin(ops.sqrt(gap / 2.0))
        angle = 1.0 - 2.0 * half_angle / math.pi + _ANGLE_OFFSET
    if s == "a0":
        return -ops.log(angle)
    return ops.power(angle, -float(s[1]))


def _make_pair_sum(s, half_space, chunk_size, dtype):
    """Builds `units -> Σ_{i<j} f(c_ij)`, `units` of shape (N, d).

    With `half_space`, f(c) + f(-c) is summed instead. The forward pass
    visits the upper-triangular tiles of the Gram matrix, `chunk_size` ×
    `chunk_size` each, in one `fori_loop`; the gradient visits row blocks
    of at most `chunk_size` × N entries in one `map`.
    """

    def kernel_value(cosine):
        if half_space:
            return _value(s, cosine) + _value(s, -cosine)
        return _value(s, cosine)

    def kernel_slope(cosine):
        if half_space:
            return _slope(s, cosine) - _slope(s, -cosine)
        return _slope(s, cosine)

    @ops.custom_gradient
    def pair_sum(units):
        size = min(chunk_size, units.shape[0])
        result = _tiled_pair_sum(units, kernel_value, size)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            gradient = _pair_sum_gradient(units, kernel_slope, size)
            return ops.cast(upstream, dtype) * gradient

        return ops.cast(result, dtype), grad

    return pair_sum


def _tiled_pair_sum(units, kernel_value, size):
    """Σ_{i<j} f(c_ij) over the upper tiles of the Gram matrix, in float64."""
    num_neurons, dim = units.shape
    num_tiles = -(-num_neurons // size)
    padded = _pad_rows(units, num_tiles * size)
    tile_rows, tile_cols = np.triu_indices(num_tiles)
    tiles = len(tile_rows)
    tile_rows = ops.convert_to_tensor(tile_rows.astype("int32"))
    tile_cols = ops.convert_to_tensor(tile_cols.astype("int32"))
    offsets = ops.arange(size, dtype="int32")

    def body(tile, accumulator):
        row_start = ops.take(tile_rows, tile) * size
        col_start = ops.take(tile_cols, tile) * size
        rows = ops.slice(padded, [row_start, 0], [size, dim])
        cols = ops.slice(padded, [col_start, 0], [size, dim])
        row_ids = (row_start + offsets)[:, None]
        col_ids = (col_start + offsets)[None, :]
        upper = (col_ids > row_ids) & (col_ids < num_neurons)
        value = kernel_value(ops.matmul(rows, ops.transpose(cols)))
        value = ops.sum(ops.where(upper, value, 0.0))
        return accumulator + ops.cast(value, "float64")

    return ops.fori_loop(0, tiles, body, ops.zeros((), dtype="float64"))


def _pair_sum_gradient(units, kernel_slope, size):
    """d/d units of the pair sum, by row blocks of ≤ `size` × N entries."""
    num_neurons, dim = units.shape
    rows_per_block = max(1, min(size, _BLOCK_ELEMENTS // num_neurons))
    num_blocks = -(-num_neurons // rows_per_block)
    padded_rows = _pad_rows(units, num_blocks * rows_per_block)
    col_ids = ops.arange(num_neurons, dtype="int32")[None, :]

    def block_grad(block):
        start = block * rows_per_block
        rows = ops.slice(padded_rows, [start, 0], [rows_per_block, dim])
        cosine = ops.matmul(rows, ops.transpose(units))
        row_ids = start + ops.arange(rows_per_block, dtype="int32")
        off_diagonal = row_ids[:, None] != col_ids
        slope = ops.where(off_diagonal, kernel_slope(cosine), 0.0)
        return ops.matmul(slope, units)

    blocks = ops.map(block_grad, ops.arange(num_blocks, dtype="int32"))
    return ops.reshape(blocks, (-1, dim))[:num_neurons]


def _pad_rows(x, num_rows):
    if num_rows == x.shape[0]:
        return x
    return ops.pad(x, [[0, num_rows - x.shape[0]], [0, 0]])
