"""StiefelAdam: Cayley Adam on Stiefel variables, Adam/AdamW on the rest."""

import keras
from keras import ops

from keras_opt.optimizers import base_stiefel


@keras.saving.register_keras_serializable(package="keras_opt")
class StiefelAdam(base_stiefel.BaseStiefelOptimizer):
    """Cayley Adam on Stiefel variables, Adam (AdamW) on the rest.

    The Cayley Adam of Li, Li & Todorovic (2020), the adaptive sibling of
    OPT's OGD (`keras_opt.optimizers.StiefelSGD`). Variables tagged with
    `keras_opt.stiefel.mark_stiefel` (the `rotation` of OPT layers with
    `orthogonalizer="ogd"`) or passed to `add_stiefel_variables()` stay on
    the Stiefel manifold `XᵀX = I`. Each keeps a bias-corrected first moment
    and a single scalar second moment, the running mean of `‖G‖²_F`. With
    `lr = rotation_learning_rate` and step count `t`:

    ```python
    m = beta_1 * m + (1 - beta_1) * G
    v = beta_2 * v + (1 - beta_2) * sum(G ** 2)
    m_hat = m / (1 - beta_1 ** t)
    r = sqrt(v / (1 - beta_2 ** t)) + epsilon
    W_hat = m_hat @ X.T - 0.5 * X @ (X.T @ m_hat @ X.T)
    W = -(W_hat - W_hat.T) / r                 # skew-symmetric generator
    alpha = min(lr, 1 / (norm(W) + 1e-8))
    Y = X + alpha * W @ X
    Y = X + alpha / 2 * W @ (X + Y)            # two fixed-point iterations
    X = X + alpha / 2 * W @ (X + Y)            # of the Cayley transform
    m = -(W @ X_old) * r * (1 - beta_1 ** t)   # projected first moment
    ```

    With `retraction="qr"` the retraction is `X = qf(X + alpha * W @ X)`.
    Drift control and dtypes are as in `StiefelSGD`.

    All other variables get the update of `keras.optimizers.Adam`, and that
    of `keras.optimizers.AdamW` when `weight_decay` is set. Weight decay
    never applies to Stiefel variables.

    Args:
        learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule` instance, or
            a callable that takes no arguments and returns the actual value to
            use. The learning rate. Defaults to `0.001`.
        beta_1: A float in `[0, 1)`. The decay rate of the first moments.
            Defaults to `0.9`.
        beta_2: A float in `[0, 1)`. The decay rate of the second moments.
            Defaults to `0.999`.
        epsilon: A float >= 0 added to the root of the second moment.
            Defaults to `1e-7`.
        amsgrad: Boolean. Whether to apply AMSGrad to the variables that
            are not Stiefel variables. Defaults to `False`.
        {{base_stiefel_keyword_args}}
        {{base_optimizer_keyword_args}}

    Example:

    >>> optimizer = keras_opt.optimizers.StiefelAdam(
    ...     learning_rate=1e-3, rotation_learning_rate=0.01, weight_decay=0.01)
    >>> model = keras.Sequential([
    ...     keras.Input((8,)),
    ...     keras_opt.layers.OPTDense(4, orthogonalizer="ogd"),
    ... ])
    >>> model.compile(optimizer=optimizer, loss="mse")

    Reference:
    - [Li, Li & Todorovic, 2020](https://arxiv.org/abs/2002.01113)
    - [Kingma & Ba, 2014](https://arxiv.org/abs/1412.6980)
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        rotation_learning_rate=None,
        retraction="cayley",
        drift_tolerance=2e-6,
        reorthonormalize_every=None,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        for arg, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value < 1
            ):
                raise ValueError(
                    f"Invalid value for argument `{arg}`. Expected a float "
                    f"in [0, 1). Received: {arg}={value!r}"
                )
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, (int, float))
            or epsilon < 0
        ):
            raise ValueError(
                "Invalid value for argument `epsilon`. Expected a float >= 0. "
                f"Received: epsilon={epsilon!r}"
            )
        super().__init__(
            learning_rate=learning_rate,
            rotation_learning_rate=rotation_learning_rate,
            retraction=retraction,
            drift_tolerance=drift_tolerance,
            reorthonormalize_every=reorthonormalize_every,
            name=name,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            **kwargs,
        )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def _build_slots(self, variables):
        self._momentums = []
        self._velocities = []
        self._velocity_hats = []
        self._drifts = []
        for variable, is_stiefel in zip(variables, self._stiefel_roles):
            momentum = self.add_variable_from_reference(
                variable, name="momentum"
            )
            velocity_hat = drift = None
            if is_stiefel:
                velocity = self._add_scalar_slot(
                    variable,
                    "velocity",
                    base_stiefel.linalg_dtype(variable.dtype),
                )
                if self.retraction == "cayley":
                    drift = self._add_drift_slot(variable)
            else:
                velocity = self.add_variable_from_reference(
                    variable, name="velocity"
                )
                if self.amsgrad:
                    velocity_hat = self.add_variable_from_reference(
                        variable, name="velocity_hat"
                    )
            self._momentums.append(momentum)
            self._velocities.append(velocity)
            self._velocity_hats.append(velocity_hat)
            self._drifts.append(drift)

    def _euclidean_update_step(self, gradient, variable, learning_rate, index):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        local_step = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(
            ops.cast(self.beta_1, variable.dtype), local_step
        )
        beta_2_power = ops.power(
            ops.cast(self.beta_2, variable.dtype), local_step
        )
        m = self._momentums[index]
        v = self._velocities[index]
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        self.assign_add(
            m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1)
        )
        self.assign_add(
            v,
            ops.multiply(
                ops.subtract(ops.square(gradient), v), 1 - self.beta_2
            ),
        )
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        self.assign_sub(
            variable,
            ops.divide(
                ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)
            ),
        )

    def _stiefel_update_step(self, gradient, variable, index):
        dtype = base_stiefel.linalg_dtype(variable.dtype)
        x = ops.cast(ops.convert_to_tensor(variable), dtype)
        gradient = ops.cast(gradient, dtype)
        learning_rate = ops.cast(self._get_rotation_learning_rate(), dtype)
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1_correction = 1 - ops.power(
            ops.convert_to_tensor(self.beta_1, dtype), local_step
        )
        beta_2_correction = 1 - ops.power(
            ops.convert_to_tensor(self.beta_2, dtype), local_step
        )
        velocity_slot = self._velocities[index]
        momentum = ops.cast(
            ops.convert_to_tensor(self._momentums[index]), dtype
        )
        momentum = self.beta_1 * momentum + (1 - self.beta_1) * gradient
        velocity = ops.cast(ops.convert_to_tensor(velocity_slot), dtype)
        velocity = self.beta_2 * velocity + (1 - self.beta_2) * ops.sum(
            ops.square(gradient)
        )
        scale = ops.sqrt(velocity / beta_2_correction) + self.epsilon
        skew = base_stiefel.skew_generator(momentum / beta_1_correction, x)
        skew = -skew / scale
        tangent = ops.matmul(skew, x)
        alpha = base_stiefel.step_size(learning_rate, skew)
        x, drift = self._retract(x, tangent, skew, alpha)
        self.assign(velocity_slot, ops.cast(velocity, velocity_slot.dtype))
        self._finish_stiefel_step(
            variable, index, x, -tangent * (scale * beta_1_correction), drift
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "amsgrad": self.amsgrad,
            }
        )
        return config


StiefelAdam.__doc__ = StiefelAdam.__doc__.replace(
    "{{base_stiefel_keyword_args}}", base_stiefel.base_stiefel_keyword_args
).replace(
    "{{base_optimizer_keyword_args}}", base_stiefel.base_optimizer_keyword_args
)
