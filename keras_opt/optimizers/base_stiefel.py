"""Shared machinery of the Stiefel optimizers (roles, rates, retractions)."""

import keras
from keras import ops

from keras_opt import linalg
from keras_opt import stiefel

RETRACTIONS = ("cayley", "qr")

# Per-step allowance for float rounding in the drift estimate of the Cayley
# retraction. Measured rounding drift is 1e-9 per step (d = 64 to 1024,
# float32), so this forces a re-orthonormalization at least every
# `drift_tolerance / 1e-8` steps (200 with the defaults).
_ROUNDING_ALLOWANCE = 1e-8
_NORM_EPSILON = 1e-8
# Below this drift estimate, X is re-orthonormalized by Cholesky-QR, above
# it (and at the first step, whose drift slot starts at 1) by Householder QR.
_CHOLESKY_QR_MAX_DRIFT = 0.1

base_stiefel_keyword_args = """rotation_learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule` instance, or
            a callable that takes no arguments, used for the Stiefel
            variables instead of `learning_rate`. Defaults to `None`: the
            Stiefel variables follow `learning_rate` (and its schedule).
        retraction: How a Riemannian step returns to the manifold.
            `"cayley"` (the default, OPT's OGD): the Cayley transform by
            two fixed-point iterations. `"qr"`: the QR retraction with a
            non-negative diagonal of R.
        drift_tolerance: Float > 0. The Cayley iterations drift off the
            manifold a little every step; the optimizer accumulates an
            estimate of `max |XᵀX − I|` (the exact leading truncation term
            plus a rounding allowance of 1e-8 per step) and
            re-orthonormalizes X by QR with a non-negative diagonal of R,
            projecting the momentum onto the new tangent space, once the
            estimate passes this tolerance. The estimate starts at 1, so X
            is also re-orthonormalized at the first step. Defaults to `2e-6`
            (with the float32 QR error this keeps `max |XᵀX − I| <= 1e-5`).
            Ignored by `retraction="qr"`.
        reorthonormalize_every: `None` or an integer >= 1. If set, X is also
            re-orthonormalized every that many steps. Defaults to `None`."""

base_optimizer_keyword_args = """weight_decay: Float. If set,
            decoupled weight decay is applied to the variables that are
            not Stiefel variables.
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
        ema_overwrite_frequency, loss_scale_factor,
        gradient_accumulation_steps, name: As in
            `keras.optimizers.Optimizer`. Gradient clipping applies to all
            variables; `use_ema` averages Stiefel variables off the
            manifold, so re-orthonormalize them if you use it."""


class BaseStiefelOptimizer(keras.optimizers.Optimizer):
    """Base class of the Stiefel optimizers; not part of the public API.

    Subclasses implement `_build_slots(variables)`,
    `_euclidean_update_step(gradient, variable, learning_rate, index)` and
    `_stiefel_update_step(gradient, variable, index)`.
    """

    def __init__(
        self,
        learning_rate,
        rotation_learning_rate=None,
        retraction="cayley",
        drift_tolerance=2e-6,
        reorthonormalize_every=None,
        name=None,
        **kwargs,
    ):
        _check_learning_rate("learning_rate", learning_rate)
        _check_learning_rate(
            "rotation_learning_rate", rotation_learning_rate, allow_none=True
        )
        if retraction not in RETRACTIONS:
            raise ValueError(
                "Invalid value for argument `retraction`. Expected one of "
                f"{list(RETRACTIONS)}. Received: retraction={retraction!r}"
            )
        if (
            isinstance(drift_tolerance, bool)
            or not isinstance(drift_tolerance, (int, float))
            or not drift_tolerance > 0
        ):
            raise ValueError(
                "Invalid value for argument `drift_tolerance`. Expected a "
                "float > 0. Received: "
                f"drift_tolerance={drift_tolerance!r}"
            )
        if reorthonormalize_every is not None and (
            isinstance(reorthonormalize_every, bool)
            or not isinstance(reorthonormalize_every, int)
            or reorthonormalize_every < 1
        ):
            raise ValueError(
                "Invalid value for argument `reorthonormalize_every`. "
                "Expected None or an integer >= 1. Received: "
                f"reorthonormalize_every={reorthonormalize_every!r}"
            )
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.retraction = retraction
        self.drift_tolerance = float(drift_tolerance)
        self.reorthonormalize_every = reorthonormalize_every
        self._extra_stiefel_keys = []
        self._stiefel_roles = ()
        if isinstance(rotation_learning_rate, (int, float)):
            rotation_learning_rate = self.add_variable(
                shape=(),
                initializer=keras.initializers.Constant(
                    float(rotation_learning_rate)
                ),
                dtype=keras.config.floatx(),
                aggregation="only_first_replica",
                name="rotation_learning_rate",
            )
        self._rotation_learning_rate = rotation_learning_rate

    def add_stiefel_variables(self, variables):
        """Marks more variables as Stiefel variables of this optimizer.

        Variables made by keras_opt layers are tagged where they are made;
        use this for Stiefel variables made elsewhere. It must be called
        before the optimizer is built (before the first training step).

        Args:
            variables: A list of 2-D `keras.Variable`s with at least as many
                rows as columns, each with orthonormal columns.
        """
        if self.built:
            raise ValueError(
                "`add_stiefel_variables()` can only be called before the "
                "optimizer is built. Call it before `fit()` or the first "
                "`apply()`, or create a new optimizer."
            )
        for variable in variables:
            self._extra_stiefel_keys.append(self._var_key(variable))

    @property
    def rotation_learning_rate(self):
        """The current learning rate of the Stiefel variables."""
        return self._get_rotation_learning_rate()

    @rotation_learning_rate.setter
    def rotation_learning_rate(self, value):
        if not isinstance(self._rotation_learning_rate, keras.Variable):
            raise TypeError(
                "`rotation_learning_rate` can only be set when the optimizer "
                "was created with a float `rotation_learning_rate`. Received: "
                f"rotation_learning_rate={self._rotation_learning_rate!r}"
            )
        self._rotation_learning_rate.assign(value)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        extra = set(self._extra_stiefel_keys)
        roles = []
        for variable in variables:
            role = stiefel.is_stiefel(variable) or (
                self._var_key(variable) in extra
            )
            if role:
                _check_stiefel_variable(variable)
                stiefel.mark_handled(variable)
            roles.append(role)
        self._stiefel_roles = tuple(roles)
        self._build_slots(variables)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        if self._stiefel_roles[index]:
            self._stiefel_update_step(gradient, variable, index)
        else:
            self._euclidean_update_step(
                gradient, variable, learning_rate, index
            )

    def _use_weight_decay(self, variable):
        if self._stiefel_roles[self._get_variable_index(variable)]:
            return False
        return super()._use_weight_decay(variable)

    def _get_rotation_learning_rate(self):
        rate = self._rotation_learning_rate
        if rate is None:
            return self._get_current_learning_rate()
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            return rate(self._iterations)
        if isinstance(rate, keras.Variable):
            return rate
        return rate()

    def _add_scalar_slot(
        self, variable, name, dtype="float32", initializer="zeros"
    ):
        prefix = getattr(variable, "path", None) or variable.name
        prefix = str(prefix).replace("/", "_").replace(":", "_")
        return self.add_variable(
            shape=(),
            dtype=dtype,
            initializer=initializer,
            name=f"{prefix}_{name}",
        )

    def _add_drift_slot(self, variable):
        # Starting at 1 ("unknown") re-orthonormalizes X at the first step,
        # so a variable that starts slightly off the manifold is fixed too.
        return self._add_scalar_slot(variable, "drift", initializer="ones")

    def _retract(self, x, tangent, skew, alpha):
        """Returns the retracted point and its drift estimate (or None)."""
        if self.retraction == "qr":
            y = x + alpha * tangent
            # Householder at the first step, in case X starts off the
            # manifold; after that Y = (I + αW)X has cond(Y) <= √2.
            y = ops.cond(
                ops.equal(self.iterations, 0),
                lambda: linalg.sign_fixed_qr(y),
                lambda: linalg.cholesky_qr(y),
            )
            return y, None
        return _cayley_retraction(x, tangent, skew, alpha)

    def _finish_stiefel_step(self, variable, index, x, momentum, drift):
        """Re-orthonormalizes when needed, then writes X and the momentum."""
        if drift is not None:
            drift_slot = self._drifts[index]
            drift = ops.convert_to_tensor(drift_slot) + ops.cast(
                drift, "float32"
            )
            needed = ops.greater(drift, self.drift_tolerance)
            if self.reorthonormalize_every is not None:
                due = ops.equal(
                    ops.mod(self.iterations + 1, self.reorthonormalize_every),
                    0,
                )
                needed = ops.logical_or(needed, due)
            x, momentum = ops.cond(
                needed,
                lambda: _reorthonormalize(x, momentum, drift),
                lambda: (x, momentum),
            )
            self.assign(drift_slot, ops.where(needed, 0.0, drift))
        slot = self._momentums[index]
        self.assign(slot, ops.cast(momentum, slot.dtype))
        self.assign(variable, ops.cast(x, variable.dtype))

    def _build_slots(self, variables):
        raise NotImplementedError

    def _euclidean_update_step(self, gradient, variable, learning_rate, index):
        raise NotImplementedError

    def _stiefel_update_step(self, gradient, variable, index):
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        rate = self._rotation_learning_rate
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            rate = keras.optimizers.schedules.serialize(rate)
        elif isinstance(rate, keras.Variable):
            rate = float(ops.convert_to_numpy(rate))
        elif rate is not None:
            rate = keras.saving.serialize_keras_object(rate)
        config.update(
            {
                "rotation_learning_rate": rate,
                "retraction": self.retraction,
                "drift_tolerance": self.drift_tolerance,
                "reorthonormalize_every": self.reorthonormalize_every,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("rotation_learning_rate"), dict):
            config["rotation_learning_rate"] = (
                keras.saving.deserialize_keras_object(
                    config["rotation_learning_rate"],
                    custom_objects=custom_objects,
                )
            )
        return super().from_config(config, custom_objects=custom_objects)


def linalg_dtype(dtype):
    """float64 stays float64; every other dtype does its linalg in float32."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float64" if dtype == "float64" else "float32"


def skew_generator(m, x):
    """Returns `W = Ŵ − Ŵᵀ` with `Ŵ = M Xᵀ − ½ X (Xᵀ M Xᵀ)`.

    Computed as `Ŵ = (M − ½ X (Xᵀ M)) Xᵀ`: three matrix products.
    """
    xtm = ops.matmul(linalg.transpose(x), m)
    w_hat = ops.matmul(m - 0.5 * ops.matmul(x, xtm), linalg.transpose(x))
    return w_hat - linalg.transpose(w_hat)


def frobenius_norm(x):
    return ops.sqrt(ops.sum(ops.square(x)))


def step_size(learning_rate, skew):
    """`α = min(lr, 1 / (‖W‖_F + 1e-8))`, OGD's adaptive step (q = ½)."""
    return ops.minimum(
        learning_rate, 1.0 / (frobenius_norm(skew) + _NORM_EPSILON)
    )


def _cayley_retraction(x, tangent, skew, alpha):
    """Two fixed-point iterations of the Cayley transform, and their drift.

    With `M = W X` and `Y₀ = X + α M`, the iterations `Y ← X + (α/2) W (X + Y)`
    give exactly `Y₂ = X + α M + (α²/2) W M + (α³/4) W² M`; this form needs
    the same three products and exposes `W² X = W M`. The exact Cayley point
    differs by `(α⁴/8) W⁴ X + …`, so `Y₂ᵀY₂ − I ≈ −(α⁴/4) (W²X)ᵀ(W²X)`,
    whose largest entry is on the diagonal. The estimate doubles it.
    """
    second = ops.matmul(skew, tangent)
    third = ops.matmul(skew, second)
    half = 0.5 * alpha
    x_new = x + alpha * (tangent + half * (second + half * third))
    column_norms = ops.sum(ops.square(second), axis=0)
    drift = 0.5 * ops.square(ops.square(alpha)) * ops.max(column_norms)
    return x_new, drift + _ROUNDING_ALLOWANCE


def _reorthonormalize(x, momentum, drift):
    x = ops.cond(
        ops.less(drift, _CHOLESKY_QR_MAX_DRIFT),
        lambda: linalg.cholesky_qr(x),
        lambda: linalg.sign_fixed_qr(x),
    )
    xtm = ops.matmul(linalg.transpose(x), momentum)
    momentum = momentum - ops.matmul(x, linalg.sym(xtm))
    return x, momentum


def _check_learning_rate(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)):
        if value >= 0:
            return
    elif isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        return
    elif callable(value):
        return
    choices = "a float >= 0, a `LearningRateSchedule` or a callable"
    if allow_none:
        choices = "None, " + choices
    raise ValueError(
        f"Invalid value for argument `{name}`. Expected {choices}. "
        f"Received: {name}={value!r}"
    )


def _check_stiefel_variable(variable):
    shape = tuple(variable.shape)
    if len(shape) != 2 or shape[0] < shape[1]:
        name = getattr(variable, "path", None) or variable.name
        raise ValueError(
            f"Invalid Stiefel variable '{name}'. A Stiefel variable must be "
            "a 2-D matrix with at least as many rows as columns (a point X "
            f"with XᵀX = I). Received: shape={shape}"
        )
