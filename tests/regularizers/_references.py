"""NumPy references shared by the regularizer tests."""

import numpy as np


def as_matrix(kernel):
    kernel = np.asarray(kernel, dtype=np.float64)
    return kernel.reshape(-1, kernel.shape[-1])


def gram_side(matrix, mode):
    dim, units = matrix.shape
    if mode == "columns" or (mode == "auto" and units <= dim):
        return matrix.T
    return matrix


def orthogonality_penalty(kernel, factor=0.1, squared=False, mode="auto"):
    side = gram_side(as_matrix(kernel), mode)
    residual = side @ side.T - np.eye(side.shape[0])
    value = np.sum(residual**2)
    return factor * (value if squared else np.sqrt(value))


def srip(kernel, factor=0.01, squared=False, mode="auto", seed=0):
    side = gram_side(as_matrix(kernel), mode)
    residual = side @ side.T - np.eye(side.shape[0])
    start = np.random.default_rng(seed).uniform(size=(side.shape[0], 1))
    product = residual @ start
    direction = product / np.linalg.norm(product)
    value = np.sum((residual @ direction) ** 2)
    return factor * (value if squared else np.sqrt(value))


def finite_difference_gradient(function, x, step=1e-6):
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        delta = np.zeros_like(x)
        delta[index] = step
        gradient[index] = (function(x + delta) - function(x - delta)) / (
            2 * step
        )
    return gradient
