"""Which class gets which prototype: assignments of CLS-OPT's fixed basis.

CLS-OPT's prototypes V keep their angles, and so their hyperspherical
energy, whatever class each column serves. In a low feature dimension the
assignment matters: it decides which classes share a decision boundary.
`match_prototypes` chooses it from class embeddings, so that classes that
are alike get prototypes that are alike. Host-side NumPy, run once before
training, never inside a graph.
"""

import numpy as np

from keras_opt._validation import check_number

__all__ = ["linear_sum_assignment", "match_prototypes"]

MAX_CLASSES = 4096


def linear_sum_assignment(cost):
    """The permutation of least total cost of a square cost matrix.

    The Hungarian method with potentials (shortest augmenting paths),
    O(n³) time, O(n²) memory for the matrix.

    Args:
        cost: `(n, n)` array; `cost[i, j]` is the cost of giving row i
            column j.

    Returns:
        Int array `columns` of shape `(n,)`: row i gets column
        `columns[i]`, and `cost[arange(n), columns].sum()` is minimal.

    Example:

    >>> keras_opt.assignment.linear_sum_assignment([[4, 1], [2, 0]])
    array([1, 0])
    """
    cost = np.asarray(cost, dtype="float64")
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
        raise ValueError(
            "Invalid cost matrix for `linear_sum_assignment`. Expected a "
            f"square 2-D array. Received: shape={cost.shape}"
        )
    if not np.all(np.isfinite(cost)):
        raise ValueError(
            "Invalid cost matrix for `linear_sum_assignment`. Expected "
            "finite entries. Received: a matrix with NaN or inf entries"
        )
    n = cost.shape[0]
    # Index 0 of the column arrays is a virtual column, where each row's
    # augmenting path starts.
    row_potential = np.zeros(n + 1)
    column_potential = np.zeros(n + 1)
    row_of_column = np.zeros(n + 1, dtype=int)
    for row in range(1, n + 1):
        row_of_column[0] = row
        _augment(cost, row_potential, column_potential, row_of_column)
    columns = np.empty(n, dtype=int)
    columns[row_of_column[1:] - 1] = np.arange(n)
    return columns


def _augment(cost, row_potential, column_potential, row_of_column):
    """Assigns the row waiting in virtual column 0 along a shortest path."""
    n = cost.shape[0]
    slack = np.full(n + 1, np.inf)
    previous = np.zeros(n + 1, dtype=int)
    used = np.zeros(n + 1, dtype=bool)
    column = 0
    while row_of_column[column] != 0:
        used[column] = True
        row = row_of_column[column]
        reduced = cost[row - 1] - row_potential[row] - column_potential[1:]
        better = ~used[1:] & (reduced < slack[1:])
        slack[1:][better] = reduced[better]
        previous[1:][better] = column
        candidates = np.where(used[1:], np.inf, slack[1:])
        next_column = int(np.argmin(candidates)) + 1
        delta = candidates[next_column - 1]
        row_potential[row_of_column[used]] += delta
        column_potential[used] -= delta
        slack[~used] -= delta
        column = next_column
    while column != 0:
        row_of_column[column] = row_of_column[previous[column]]
        column = previous[column]


def match_prototypes(class_embeddings, prototypes, num_starts=8, seed=0):
    """Gives classes that are alike prototypes that are alike.

    Finds the permutation π and the orthogonal Q that maximize
    Σ_c cos-similarity(Q·e_c, v_π(c)): the class embeddings e_c (centred,
    reduced to the prototypes' dimension d by PCA when longer, unit
    length) are rotated as a whole onto the prototypes, each class to its
    own. Alternates the best Q for π (orthogonal Procrustes) with the best
    π for Q (`linear_sum_assignment`), from `num_starts` starts (Q = I,
    then seeded random rotations), and keeps the best. The alternation
    ends in a local optimum; in d = 2 the starts agree, in higher d more
    starts search further. Each round costs O(C³): C ≤ 4096.

    Args:
        class_embeddings: `(C, k)` array, one row per class (for example
            the mean input, or the mean feature, of each class).
        prototypes: `(d, C)` array, one prototype per column.
        num_starts: Positive int, the number of starts.
        seed: Int seed of the random starts.

    Returns:
        Int array `order` of shape `(C,)`: class c gets prototype
        `order[c]`, so `prototypes[:, order]` is the assigned basis.
    """
    embeddings = np.asarray(class_embeddings, dtype="float64")
    prototypes = np.asarray(prototypes, dtype="float64")
    dim, count = prototypes.shape
    if embeddings.ndim != 2 or embeddings.shape[0] != count:
        raise ValueError(
            "Invalid `class_embeddings`. Expected a 2-D array with one row "
            f"per prototype ({count} rows). Received: shape="
            f"{embeddings.shape}"
        )
    if count > MAX_CLASSES:
        raise ValueError(
            "Too many classes to match: the assignment takes O(C³) time. "
            f"Expected at most {MAX_CLASSES} classes. Received: {count}. "
            "In a high feature dimension the prototypes are near-orthogonal "
            "and their assignment matters little."
        )
    num_starts = check_number("num_starts", num_starts, "int", low=1)
    seed = check_number("seed", seed, "int")
    embeddings = _unit_rows(_reduce(embeddings, dim))
    targets = _unit_rows(prototypes.T)
    rng = np.random.default_rng(seed)
    best_score, best_order = -np.inf, None
    for start in range(num_starts):
        rotation = np.eye(dim)
        if start:
            rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        score, order = _alternate(embeddings, targets, rotation)
        if score > best_score + 1e-9:
            best_score, best_order = score, order
    return best_order


def _alternate(embeddings, targets, rotation, max_rounds=100):
    """Procrustes and assignment in turn, until the assignment is stable."""
    order = None
    for _ in range(max_rounds):
        similarity = embeddings @ rotation @ targets.T
        new_order = linear_sum_assignment(-similarity)
        if order is not None and np.array_equal(order, new_order):
            break
        order = new_order
        u, _, vt = np.linalg.svd(embeddings.T @ targets[order])
        rotation = u @ vt
    score = float(np.sum((embeddings @ rotation) * targets[order]))
    return score, order


def _reduce(embeddings, dim):
    """Centred embeddings in `dim` coordinates: PCA down, zeros up."""
    centred = embeddings - embeddings.mean(axis=0)
    if centred.shape[1] > dim:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:dim].T
    padding = np.zeros((centred.shape[0], dim - centred.shape[1]))
    return np.concatenate([centred, padding], axis=1)


def _unit_rows(x):
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
