"""The shared machinery of OPT layers: W = R·V with R = orthogonalizer(P)."""

import keras
from keras import ops

from keras_opt import orthogonalizers
from keras_opt import variable_tags

_KERNEL_ARGUMENTS = {
    "kernel_initializer": "basis_initializer",
    "kernel_regularizer": "rotation_regularizer",
    "kernel_constraint": None,
    "lora_rank": None,
}


def default_basis_initializer():
    """He-normal N(0, 2/d), not truncated, as the official code draws V."""
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="untruncated_normal"
    )


class _RotationLoss:
    """The user's rotation regularizer plus the orthogonalizer's penalty."""

    def __init__(self, regularizer, orthogonalizer):
        self.regularizer = regularizer
        self.orthogonalizer = orthogonalizer

    def __call__(self, rotation):
        losses = []
        if self.regularizer is not None:
            losses.append(self.regularizer(rotation))
        penalty = self.orthogonalizer.penalty(rotation)
        if penalty is not None:
            losses.append(penalty)
        return ops.sum(ops.stack(losses)) if len(losses) > 1 else losses[0]


class BaseOPT(keras.layers.Layer):
    """Base class of the OPT layers, whose kernel is `W = R·V`.

    V (`basis`, shape `(d, n)`) holds the layer's n neurons of fan-in d, drawn
    at random once and frozen; R is a d×d orthogonal matrix computed from the
    trainable `rotation` P by an orthogonalizer and shared by all neurons.
    Since R is orthogonal, the angles between neurons, and so the layer's
    hyperspherical energy, never change during training. The linear algebra
    runs in float32 (or float64 under a float64 policy) whatever the dtype
    policy; only W is cast to the compute dtype.

    Subclasses call `_build_opt_weights(fan_in, units, kernel_shape)` in
    `build` and use `self._compute_kernel()` in `call`.

    Args:
        activation: Activation function, as for `keras.layers.Dense`.
        use_bias: Whether the layer uses a bias vector.
        basis_initializer: Initializer of V. Defaults to He-normal N(0, 2/d),
            not truncated. Pass a seeded initializer for reproducible neurons,
            or a non-zero mean for the paper's initial-energy ablation.
        bias_initializer: Initializer of the bias.
        rotation_regularizer: Regularizer applied to the rotation P.
        bias_regularizer: Regularizer applied to the bias.
        activity_regularizer: Regularizer applied to the output.
        bias_constraint: Constraint applied to the bias.
        orthogonalizer: How R is made from P: a name from
            `keras_opt.orthogonalizers` (`"gram_schmidt"`/`"gs"`,
            `"householder"`/`"hr"`, `"lowdin"`/`"ls"`, `"cayley"`/`"cp"`,
            `"newton_schulz"`, `"stiefel"`/`"ogd"`, `"penalty"`/`"or"`,
            `"unconstrained"`/`"upt"`), an `Orthogonalizer` or a callable.
        rotation_initializer: Initializer of P. Defaults to the
            orthogonalizer's: N(0, 1), or the identity for `"stiefel"`.
        trainable_basis: Whether V is trained too (the paper's FN ablation).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(
        self,
        activation=None,
        use_bias=True,
        basis_initializer=None,
        bias_initializer="zeros",
        rotation_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        bias_constraint=None,
        orthogonalizer="gram_schmidt",
        rotation_initializer=None,
        trainable_basis=False,
        **kwargs,
    ):
        for argument, replacement in _KERNEL_ARGUMENTS.items():
            if argument in kwargs:
                hint = (
                    f" Use `{replacement}` instead."
                    if replacement
                    else " It has no counterpart here."
                )
                raise TypeError(
                    f"{self.__class__.__name__} has no argument `{argument}`: "
                    "its kernel is computed as W = R·V from a `rotation` and "
                    f"a fixed `basis`.{hint} Received: "
                    f"{argument}={kwargs[argument]!r}"
                )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if orthogonalizer is None:
            raise ValueError(
                "Invalid value for argument `orthogonalizer`. Expected one of "
                f"{sorted(orthogonalizers.ALIASES)}, an Orthogonalizer or a "
                "callable. Received: orthogonalizer=None"
            )
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.basis_initializer = keras.initializers.get(
            basis_initializer or default_basis_initializer()
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.rotation_regularizer = keras.regularizers.get(rotation_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.orthogonalizer = orthogonalizers.get(orthogonalizer)
        self.rotation_initializer = keras.initializers.get(
            rotation_initializer or self.orthogonalizer.rotation_initializer
        )
        self.trainable_basis = trainable_basis
        self.supports_jit = self.orthogonalizer.supports_jit

    def _build_opt_weights(self, fan_in, units, kernel_shape):
        self._kernel_shape = tuple(kernel_shape)
        rotation_loss = None
        has_penalty = (
            type(self.orthogonalizer).penalty
            is not orthogonalizers.Orthogonalizer.penalty
        )
        if self.rotation_regularizer is not None or has_penalty:
            rotation_loss = _RotationLoss(
                self.rotation_regularizer, self.orthogonalizer
            )
        is_stiefel = self.orthogonalizer.is_stiefel
        self.rotation = self.add_weight(
            name="rotation",
            shape=(fan_in, fan_in),
            initializer=self.rotation_initializer,
            regularizer=rotation_loss,
            constraint=variable_tags.StiefelGuard() if is_stiefel else None,
            autocast=False,
        )
        if is_stiefel:
            variable_tags.mark_stiefel(self.rotation)
        self.basis = self.add_weight(
            name="basis",
            shape=(fan_in, units),
            initializer=self.basis_initializer,
            trainable=self.trainable_basis,
            autocast=False,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        if type(self.orthogonalizer) not in orthogonalizers.ALL_OBJECTS:
            rotation = self.orthogonalizer(self.rotation)
            if tuple(rotation.shape) != (fan_in, fan_in):
                raise ValueError(
                    f"The orthogonalizer of layer '{self.name}' must return a "
                    f"matrix of the rotation's shape. Expected: "
                    f"{(fan_in, fan_in)}. Received: shape="
                    f"{tuple(rotation.shape)} from "
                    f"orthogonalizer={self.orthogonalizer!r}"
                )

    @property
    def kernel(self):
        """The effective kernel `W = R·V` in the Keras layout, in float32."""
        if not self.built:
            raise AttributeError(
                "You must build the layer before accessing `kernel`."
            )
        return self._compute_kernel()

    def _compute_kernel(self):
        kernel = self.orthogonalizer.rotate(self.rotation, self.basis)
        return ops.reshape(kernel, self._kernel_shape)

    def _activate(self, outputs):
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "basis_initializer": keras.initializers.serialize(
                    self.basis_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "rotation_regularizer": keras.regularizers.serialize(
                    self.rotation_regularizer
                ),
                "bias_regularizer": keras.regularizers.serialize(
                    self.bias_regularizer
                ),
                "activity_regularizer": keras.regularizers.serialize(
                    self.activity_regularizer
                ),
                "bias_constraint": keras.constraints.serialize(
                    self.bias_constraint
                ),
                "orthogonalizer": orthogonalizers.serialize(
                    self.orthogonalizer
                ),
                "rotation_initializer": keras.initializers.serialize(
                    self.rotation_initializer
                ),
                "trainable_basis": self.trainable_basis,
            }
        )
        return config
