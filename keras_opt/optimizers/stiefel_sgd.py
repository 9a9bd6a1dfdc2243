"""StiefelSGD: Cayley SGD with momentum (OPT's OGD) plus momentum SGD."""

import keras

from keras_opt._validation import check_number
from keras_opt.optimizers import base_stiefel


@keras.saving.register_keras_serializable(package="keras_opt")
@base_stiefel.with_keyword_args
class StiefelSGD(
    base_stiefel.StiefelOptimizerMixin, keras.optimizers.SGD
):
    """Cayley SGD with momentum on Stiefel variables, SGD on the rest.

    This is the orthogonality-preserving gradient descent (OGD) of OPT
    (Liu et al., 2021), which is the Cayley SGD with momentum of Li, Li &
    Todorovic (2020). Variables tagged with
    `keras_opt.variable_tags.mark_stiefel` (the `rotation_parameter` of OPT
    layers with `orthogonalizer="ogd"`) or passed to
    `add_stiefel_variables()` stay on the Stiefel manifold `XᵀX = I`; X may
    be square or tall (more rows than columns). For such a variable X with
    gradient G, one step is, with `lr = rotation_learning_rate`:

    ```python
    M = momentum * M - G                       # ambient momentum
    W_hat = M @ X.T - 0.5 * X @ (X.T @ M @ X.T)
    W = W_hat - W_hat.T                        # skew-symmetric generator
    M = W @ X                                  # projected momentum (stored)
    alpha = min(lr, 1 / (norm(W) + 1e-8))
    Y = X + alpha * M
    Y = X + alpha / 2 * W @ (X + Y)            # two fixed-point iterations
    X = X + alpha / 2 * W @ (X + Y)            # of the Cayley transform
    ```

    With `retraction="qr"` the last three lines become
    `X = qf(X + alpha * M)`, the QR factor with a non-negative diagonal of R.
    The Cayley iterations drift off the manifold slowly; X is
    re-orthonormalized by QR (and M projected onto the new tangent space)
    whenever an estimate of the drift passes `drift_tolerance`, which keeps
    `max |XᵀX − I| <= 1e-5` in float32. The linear algebra runs in float32
    (float64 for float64 variables) whatever the dtype policy.

    For a square X, such as the rotation of an OPT layer, the same step is
    by default computed in the orthogonal-group form (`use_group_form`):

    ```python
    A = 0.5 * (X.T @ M - M.T @ X)              # W = X @ A @ X.T
    M = X @ A                                  # = W @ X
    X = X + M @ (alpha * I + alpha**2 / 2 * A + alpha**3 / 4 * A @ A)
    ```

    Four `d×d` products instead of six; the two forms agree while
    `XᵀX = I` and differ by `O(max |XᵀX − I|)` as X drifts.

    A Stiefel step whose gradient has a non-finite entry (NaN or inf), or
    whose result would (a finite gradient that overflows the momentum), is
    skipped: X and its slots stay unchanged. The step is computed from
    `alpha * W`, whose norm the step cap bounds by 1, so a huge finite
    gradient (1e20 in float32) still takes a step of length 1 and the drift
    estimate stays finite. When the step runs eagerly, a `UserWarning`
    names the variable; in a compiled graph the skip is silent.

    `StiefelSGD` is a `keras.optimizers.SGD`, and all other variables get
    its `update_step` (and slots) unchanged:

    ```python
    velocity = momentum * velocity - learning_rate * g
    w = w + velocity            # or, with nesterov=True:
    w = w + momentum * velocity - learning_rate * g
    ```

    Weight decay never applies to Stiefel variables. `nesterov` only applies
    to the other variables; the Stiefel update is the paper's heavy-ball
    form.

    Works in eager and graph mode and with `jit_compile=True` on one device.
    On TensorFlow, `MirroredStrategy` keeps the replicas bit-identical. Keras
    cannot run `model.fit` with both `MirroredStrategy` and
    `jit_compile=True`, whatever the optimizer (`jit_compile="auto"` already
    turns XLA off under a strategy). No option compiles only the optimizer
    math with XLA: that needs `tf.function(jit_compile=True)`, which a
    backend-neutral optimizer cannot use, and on CPU XLA is slower for this
    math and drifts more.

    Args:
        learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule` instance, or
            a callable that takes no arguments and returns the actual value to
            use. The learning rate. Defaults to `0.01`.
        momentum: A float in `[0, 1)`. Defaults to `0.9`.
        nesterov: Boolean. Whether to apply Nesterov momentum to the
            variables that are not Stiefel variables. Defaults to `False`.
        {{base_stiefel_keyword_args}}
        {{base_optimizer_keyword_args}}

    Example:

    The OGD recipe of OPT on CIFAR-100: the rotations with learning rate
    0.02 (×0.2 at 30k, 50k and 65k steps), the rest with 0.1 (×0.1), weight
    decay on the rest only.

    >>> boundaries = [30000, 50000, 65000]
    >>> rotation_lr = keras.optimizers.schedules.PiecewiseConstantDecay(
    ...     boundaries, [0.02, 0.004, 0.0008, 0.00016])
    >>> lr = keras.optimizers.schedules.PiecewiseConstantDecay(
    ...     boundaries, [0.1, 0.01, 0.001, 0.0001])
    >>> optimizer = keras_opt.optimizers.StiefelSGD(
    ...     learning_rate=lr, momentum=0.9, rotation_learning_rate=rotation_lr)
    >>> model = keras.Sequential([
    ...     keras.Input((8,)),
    ...     keras_opt.layers.OPTDense(4, orthogonalizer="ogd"),
    ... ])
    >>> model.compile(optimizer=optimizer, loss="mse")

    Reference:
    - [Li, Li & Todorovic, 2020](https://arxiv.org/abs/2002.01113)
    - [Liu et al., 2021](https://arxiv.org/abs/2004.04690)
    """

    default_rotation_learning_rate_factor = 0.2

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.9,
        nesterov=False,
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
        momentum = check_number(
            "momentum", momentum, low=0.0, high=1.0, high_inclusive=False
        )
        base_stiefel.check_learning_rate("learning_rate", learning_rate)
        super().__init__(
            learning_rate=learning_rate,
            momentum=float(momentum),
            nesterov=nesterov,
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

    def _stiefel_direction(self, x, gradient, state):
        momentum = self.momentum * state["momentum"] - gradient
        skew, tangent = self._stiefel_generator(x, momentum)
        return skew, tangent, {"momentum": tangent}
