"""StiefelAdam: Cayley Adam on Stiefel variables, Adam/AdamW on the rest."""

import keras
from keras import ops

from keras_opt._validation import check_number
from keras_opt.optimizers import base_stiefel


@keras.saving.register_keras_serializable(package="keras_opt")
@base_stiefel.with_keyword_args
class StiefelAdam(
    base_stiefel.StiefelOptimizerMixin, keras.optimizers.Adam
):
    """Cayley Adam on Stiefel variables, Adam (AdamW) on the rest.

    The Cayley Adam of Li, Li & Todorovic (2020), the adaptive sibling of
    OPT's OGD (`keras_opt.optimizers.StiefelSGD`). Variables tagged with
    `keras_opt.variable_tags.mark_stiefel` (the `rotation_parameter` of OPT
    layers with `orthogonalizer="ogd"`) or passed to
    `add_stiefel_variables()` stay on the Stiefel manifold `XᵀX = I`. Each
    keeps a bias-corrected first moment and a single scalar second moment,
    the running mean of `‖G‖²_F`. With `lr = rotation_learning_rate` and
    step count `t`:

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
    A square X takes the same step in the orthogonal-group form by default
    (`use_group_form`, four `d×d` products instead of six; see
    `StiefelSGD`).
    Drift control, dtypes and the skipping of steps with a non-finite
    gradient are as in `StiefelSGD`; a step whose second moment overflows
    (`‖G‖²` beyond float32's range, from gradients of about 1e18 on) is
    skipped too. A Stiefel variable gets none of Adam's per-entry moments,
    only its own slots.

    `StiefelAdam` is a `keras.optimizers.Adam`, and all other variables get
    its `update_step` (and slots) unchanged: the update of Adam, and that of
    `keras.optimizers.AdamW` when `weight_decay` is set. Weight decay
    never applies to Stiefel variables. One exception: a variable tagged
    with `keras_opt.variable_tags.mark_damped_step` (the P of a Cayley OPT
    layer of `recipe="default"`) gets Adam's update at the learning rate
    `lr / sqrt(1 + t * d * lr**2)` at step t (d = its last dimension): the
    rate at which a scale-invariant map's steps shrink under Adam, as its
    P grows (`keras_opt.recipes.Recipe`, docs/recipes.md). Another: a
    variable tagged with `keras_opt.variable_tags.mark_rotation_step`
    (the P of every exact map of `recipe="default"`) keeps Adam's moments
    m and v but steps as a Stiefel variable does: by
    `scale · rotation_learning_rate · m̂ / (sqrt(sum(v̂)) + epsilon)`, the
    sum over each d×d matrix and `scale` the tag's, so that the step keeps
    the gradient's direction and its Frobenius norm is at most
    `scale · rotation_learning_rate` (`amsgrad` does not apply to it). OPT
    layers set `scale` so that R, like a Stiefel variable, moves by at most
    the rotation learning rate (`keras_opt.recipes.Recipe`).

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

    default_rotation_learning_rate_factor = 10.0
    damps_tagged_steps = True
    steps_tagged_rotations = True

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
        use_group_form=True,
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
            check_number(arg, value, low=0.0, high=1.0, high_inclusive=False)
        check_number("epsilon", epsilon, low=0.0)
        base_stiefel.check_learning_rate("learning_rate", learning_rate)
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
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
        self._init_stiefel(
            rotation_learning_rate,
            retraction,
            drift_tolerance,
            reorthonormalize_every,
            use_group_form,
        )

    def build(self, variables):
        if self.built:
            return
        self._stiefel_velocities = [None] * len(variables)
        super().build(variables)

    def _add_stiefel_moment_slots(self, variable, index):
        # One scalar second moment, the running mean of ‖G‖²_F.
        self._stiefel_velocities[index] = self._add_scalar_slot(
            variable, "velocity", base_stiefel.linalg_dtype(variable.dtype)
        )

    def _stiefel_state(self, index):
        return {"velocity": self._stiefel_velocities[index]}

    def _rotation_step(self, gradient, variable, scale):
        # Adam's moments, but one scale per matrix: the step keeps the
        # direction of the gradient, as Cayley Adam's on OGD's R does.
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        momentum = self._momentums[index]
        velocity = self._velocities[index]
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        self.assign_add(momentum, (gradient - momentum) * (1 - self.beta_1))
        self.assign_add(
            velocity, (ops.square(gradient) - velocity) * (1 - self.beta_2)
        )
        first = momentum / (1 - ops.power(ops.cast(self.beta_1, dtype), step))
        second = ops.sum(velocity, axis=(-2, -1), keepdims=True) / (
            1 - ops.power(ops.cast(self.beta_2, dtype), step)
        )
        rate = ops.cast(self._get_rotation_learning_rate() * scale, dtype)
        self.assign_sub(
            variable, rate * first / (ops.sqrt(second) + self.epsilon)
        )

    def _stiefel_direction(self, x, gradient, state):
        dtype = x.dtype
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1_correction = 1 - ops.power(
            ops.convert_to_tensor(self.beta_1, dtype), local_step
        )
        beta_2_correction = 1 - ops.power(
            ops.convert_to_tensor(self.beta_2, dtype), local_step
        )
        momentum = self.beta_1 * state["momentum"] + (
            1 - self.beta_1
        ) * gradient
        velocity = self.beta_2 * state["velocity"] + (
            1 - self.beta_2
        ) * ops.sum(ops.square(gradient))
        scale = ops.sqrt(velocity / beta_2_correction) + self.epsilon
        skew, tangent = self._stiefel_generator(
            x, momentum / beta_1_correction
        )
        skew = -skew / scale
        tangent = -tangent / scale
        new_state = {
            "momentum": -tangent * (scale * beta_1_correction),
            "velocity": velocity,
        }
        return skew, tangent, new_state
