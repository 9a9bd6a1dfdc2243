"""Tags that tell optimizers how to step a variable (Stiefel, damped, rotation)."""

import math
import warnings

import keras

from keras_opt._validation import check_number

_STIEFEL_ATTR = "_keras_opt_stiefel"
_HANDLED_ATTR = "_keras_opt_stiefel_handled"
_WARNED_ATTR = "_keras_opt_stiefel_unhandled_warned"
_DAMPED_ATTR = "_keras_opt_damped_step"
_ROTATION_STEP_ATTR = "_keras_opt_rotation_step"


def mark_stiefel(variable):
    """Marks `variable` as a point on the Stiefel manifold.

    A Stiefel optimizer such as `keras_opt.optimizers.StiefelSGD` reads the
    tag once, in its `build()`, and keeps the variable orthonormal
    (`XᵀX = I`) with a Riemannian update instead of a Euclidean one. OPT
    layers tag their `rotation_parameter` when `orthogonalizer="stiefel"`
    (the paper's OGD). The tag is a plain Python attribute of the
    `keras.Variable`; it is set again whenever a loaded model is rebuilt, so
    it is never serialized.

    Args:
        variable: A 2-D `keras.Variable` with at least as many rows as
            columns.

    Returns:
        The same variable.

    Example:

    >>> v = keras.Variable(np.eye(3, dtype="float32"))
    >>> keras_opt.variable_tags.is_stiefel_variable(
    ...     keras_opt.variable_tags.mark_stiefel(v))
    True
    """
    setattr(variable, _STIEFEL_ATTR, True)
    return variable


def is_stiefel_variable(variable):
    """Returns whether `variable` was tagged with `mark_stiefel`."""
    return bool(getattr(variable, _STIEFEL_ATTR, False))


def mark_damped_step(variable):
    """Marks `variable` as a P whose steps `StiefelAdam` shrinks over time.

    OPT layers of `recipe="default"` tag the P of an exact map that is not
    scale-invariant (Cayley): `StiefelAdam` multiplies its learning rate by
    1/√(1 + t·d·lr²) at step t (d = P's row length), as a scale-invariant
    map's steps shrink (`keras_opt.recipes.Recipe`). Other optimizers
    ignore the tag. Like `mark_stiefel`, it is a plain Python attribute.

    Args:
        variable: A `keras.Variable`.

    Returns:
        The same variable.
    """
    setattr(variable, _DAMPED_ATTR, True)
    return variable


def is_damped_step(variable):
    """Returns whether `variable` was tagged with `mark_damped_step`."""
    return bool(getattr(variable, _DAMPED_ATTR, False))


def mark_rotation_step(variable, scale=1.0):
    """Marks `variable` as a P that `StiefelAdam` steps as OGD's R.

    OPT layers of `recipe="default"` tag the P of every exact map:
    `StiefelAdam` keeps Adam's moments for it but divides the first
    moment by one shared scale, the root of the sum of the second moments
    (the running mean of ‖G‖²_F, as Cayley Adam keeps for OGD's R), and
    steps it at `scale` times the rotation learning rate. The step keeps
    the direction of P's gradient and its Frobenius norm is at most that
    rate; the layers choose `scale` so that R moves by at most the rotation
    learning rate, as OGD's R does (`keras_opt.recipes.Recipe`). Other
    optimizers ignore the tag. Like `mark_stiefel`, it is a plain Python
    attribute.

    Args:
        variable: A `keras.Variable` of shape `(..., d, d)`.
        scale: A float > 0, the factor of the rotation learning rate.

    Returns:
        The same variable.
    """
    scale = check_number(
        "scale", scale, low=0.0, high=math.inf, low_inclusive=False,
        high_inclusive=False,
    )
    setattr(variable, _ROTATION_STEP_ATTR, scale)
    return variable


def is_rotation_step(variable):
    """Returns whether `variable` was tagged with `mark_rotation_step`."""
    return rotation_step_scale(variable) is not None


def rotation_step_scale(variable):
    """The `scale` of `mark_rotation_step`, or `None` for other variables."""
    return getattr(variable, _ROTATION_STEP_ATTR, None)


def mark_handled(variable):
    """Records that a Stiefel optimizer keeps `variable` on the manifold.

    `keras_opt.optimizers.StiefelSGD` and `StiefelAdam` call this in
    `build()` for every Stiefel variable they update, which silences the
    warning of `StiefelGuard`. Like `mark_stiefel`, the record is a plain
    Python attribute of the `keras.Variable`.

    Args:
        variable: A `keras.Variable`.

    Returns:
        The same variable.
    """
    setattr(variable, _HANDLED_ATTR, True)
    return variable


def is_handled(variable):
    """Returns whether a Stiefel optimizer called `mark_handled(variable)`."""
    return bool(getattr(variable, _HANDLED_ATTR, False))


@keras.saving.register_keras_serializable(package="keras_opt")
class StiefelGuard(keras.constraints.Constraint):
    """Warns when a Stiefel variable is trained by a Euclidean optimizer.

    OPT layers with `orthogonalizer="stiefel"` (`"ogd"`) use their rotation
    `R` as is in the forward pass and rely on the optimizer to keep it
    orthogonal. An optimizer that does not handle Stiefel variables (for
    example `keras.optimizers.SGD`) silently turns such a layer into
    unconstrained over-parameterized training (UPT).

    The guard is the variable's constraint. Keras calls it after every
    optimizer step with the updated `keras.Variable`; it returns the value
    unchanged and, if no Stiefel optimizer called `mark_handled` on the
    variable, issues one `UserWarning` per variable, naming it. A second
    model trained the same way in the same process warns again. In a
    compiled `model.fit` the check runs when the train step is traced.

    Example:

    >>> v = keras_opt.variable_tags.mark_stiefel(
    ...     keras.Variable(np.eye(3, dtype="float32")))
    >>> v.constraint = keras_opt.variable_tags.StiefelGuard()
    """

    def __call__(self, w):
        if not is_handled(w):
            _warn_unhandled(w)
        return w

    def get_config(self):
        return {}


def _warn_unhandled(variable):
    if getattr(variable, _WARNED_ATTR, False):
        return
    try:
        setattr(variable, _WARNED_ATTR, True)
    except AttributeError:
        # Not a `keras.Variable` (a plain tensor): warn every time.
        pass
    name = getattr(variable, "path", None) or getattr(variable, "name", "?")
    warnings.warn(
        f"The Stiefel variable '{name}' (an OPT layer with "
        "orthogonalizer='stiefel'/'ogd') is trained by an optimizer that "
        "does not handle Stiefel variables, so it is updated as an "
        "unconstrained matrix: this trains UPT, not OGD, and the rotation "
        "drifts away from orthogonality. Compile the model with "
        "`keras_opt.optimizers.StiefelSGD` or "
        "`keras_opt.optimizers.StiefelAdam`, or choose another "
        "orthogonalizer. This warning is shown once per variable.",
        UserWarning,
        stacklevel=2,
    )
