"""OPTDense: a densely-connected layer with an orthogonally trained kernel."""

import keras
from keras import ops

from keras_opt.layers import base_opt
from keras_opt.layers.base_opt import BaseOPT


@keras.saving.register_keras_serializable(package="keras_opt")
class OPTDense(BaseOPT):
    """Densely-connected layer trained by Orthogonal Over-Parameterization.

    `OPTDense` computes `output = activation(dot(input, W) + bias)` like
    `keras.layers.Dense`, but its kernel is `W = R·V`: V (`basis`, shape
    `(input_dim, units)`) holds the `units` neurons, drawn once from N(0, 2/d)
    and frozen; R (`rotation`, shape `(input_dim, input_dim)`) is one learned
    orthogonal matrix shared by all neurons, made by the orthogonalizer from
    the trainable `rotation_parameter` P. Only P and the bias are trained,
    so the angles between neurons, and the layer's hyperspherical energy,
    stay those of the random start. `layer.kernel` returns W, so code that
    reads a Dense kernel keeps working, and `layer.rotation` returns R.

    With `orthogonalizer="ogd"` (or `"stiefel"`) P is R itself, starts at the
    identity and is kept orthogonal by a Stiefel optimizer,
    `keras_opt.optimizers.StiefelSGD` or `StiefelAdam`; the paper's OGD.

    Args:
        units: Positive int, the number of neurons (output features).
        {{base_opt_keyword_args}}

    Input shape:
        N-D tensor of shape `(batch_size, ..., input_dim)`.

    Output shape:
        N-D tensor of shape `(batch_size, ..., units)`.

    Example:

    >>> layer = keras_opt.layers.OPTDense(32, orthogonalizer="cayley")
    >>> y = layer(np.ones((2, 16)))
    >>> y.shape
    TensorShape([2, 32])
    >>> layer.rotation.shape  # R, with RᵀR = I
    TensorShape([16, 16])
    >>> layer.rotation_parameter.shape  # P, the trained variable
    (16, 16)

    OGD, with the rotation on the Stiefel manifold:

    ```python
    model = keras.Sequential([
        keras.Input((784,)),
        keras_opt.layers.OPTDense(256, "relu", orthogonalizer="ogd"),
        keras.layers.Dense(10),
    ])
    model.compile(
        optimizer=keras_opt.optimizers.StiefelSGD(
            learning_rate=0.1, rotation_learning_rate=0.02
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ```

    Reference:
        - [Liu et al., 2021](https://arxiv.org/abs/2004.04690),
          Orthogonal Over-Parameterized Training, CVPR 2021.
    """

    def __init__(
        self,
        units,
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
        recipe="default",
        **kwargs,
    ):
        super().__init__(
            activation=activation,
            use_bias=use_bias,
            basis_initializer=basis_initializer,
            bias_initializer=bias_initializer,
            rotation_regularizer=rotation_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            bias_constraint=bias_constraint,
            orthogonalizer=orthogonalizer,
            rotation_initializer=rotation_initializer,
            trainable_basis=trainable_basis,
            recipe=recipe,
            **kwargs,
        )
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(
                "Invalid value for argument `units`. Expected a strictly "
                f"positive int. Received: units={units!r}"
            )
        self.units = units
        self.input_spec = keras.InputSpec(min_ndim=2)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the inputs to {self.__class__.__name__} "
                "must be known at build time: it is the fan-in d of the "
                "rotation. Expected: an int. Received: input_shape="
                f"{tuple(input_shape)}"
            )
        self._build_opt_weights(input_dim, self.units, (input_dim, self.units))
        self.input_spec = keras.InputSpec(min_ndim=2, axes={-1: input_dim})

    def call(self, inputs, training=None):
        kernel = ops.cast(self._kernel_for_call(training), self.compute_dtype)
        outputs = ops.matmul(inputs, kernel)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self._activate(outputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config


OPTDense.__doc__ = OPTDense.__doc__.replace(
    "{{base_opt_keyword_args}}", base_opt.base_opt_keyword_args
)
