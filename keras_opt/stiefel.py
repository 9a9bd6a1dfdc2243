"""Tags that mark a variable as a point on the Stiefel manifold."""

_STIEFEL_ATTR = "_keras_opt_stiefel"


def mark_stiefel(variable):
    """Marks `variable` as a point on the Stiefel manifold.

    A Stiefel optimizer such as `keras_opt.optimizers.StiefelSGD` reads the
    tag once, in its `build()`, and keeps the variable orthonormal
    (`XᵀX = I`) with a Riemannian update instead of a Euclidean one. OPT
    layers tag their `rotation` when `orthogonalizer="stiefel"` (the paper's
    OGD). The tag is a plain Python attribute of the `keras.Variable`; it is
    set again whenever a loaded model is rebuilt, so it is never serialized.

    Args:
        variable: A 2-D `keras.Variable` with at least as many rows as
            columns.

    Returns:
        The same variable.

    Example:

    >>> v = keras.Variable(np.eye(3, dtype="float32"))
    >>> keras_opt.stiefel.is_stiefel(keras_opt.stiefel.mark_stiefel(v))
    True
    """
    setattr(variable, _STIEFEL_ATTR, True)
    return variable


def is_stiefel(variable):
    """Returns whether `variable` was tagged with `mark_stiefel`."""
    return bool(getattr(variable, _STIEFEL_ATTR, False))
