"""OPTConv1D: a 1D convolution with an orthogonally trained kernel."""

import keras

from keras_opt.layers import base_opt
from keras_opt.layers.base_opt_conv import BaseOPTConv


@keras.saving.register_keras_serializable(package="keras_opt")
class OPTConv1D(BaseOPTConv):
    """1D convolution layer trained by Orthogonal Over-Parameterization.

    `OPTConv1D` convolves like `keras.layers.Conv1D`, but its kernel is
    `W = R·V`: V (`basis`, shape `(d, filters)` with d = kernel_size * C_in)
    holds the filters, drawn once from N(0, 2/d) and frozen; R (`rotation`,
    shape `(d, d)`) is one learned orthogonal matrix shared by all filters,
    made by the orthogonalizer from the trainable `rotation_parameter` P.
    `R·V` is reshaped to the Keras kernel layout `(kernel_size, C_in,
    filters)`, flattened in that order. Only P and the bias are trained, so
    the angles between filters, and the layer's hyperspherical energy, stay
    those of the random start. `layer.kernel` returns W and `layer.rotation`
    returns R.

    With `orthogonalizer="ogd"` (or `"stiefel"`) P is R itself, starts at the
    identity and is kept orthogonal by `keras_opt.optimizers.StiefelSGD` or
    `StiefelAdam` (the paper's OGD).

    Args:
        filters: Positive int, the number of filters (output channels).
        kernel_size: Int or tuple of 1 ints, the convolution window.
        strides: Int or tuple of 1 ints, the strides of the convolution.
        padding: `"valid"`, `"same"` or `"causal"`, case-insensitive.
        data_format: `"channels_last"` (inputs `(batch, steps, C_in)`) or
            `"channels_first"` (inputs `(batch, C_in, steps)`). Defaults to
            `keras.config.image_data_format()`.
        dilation_rate: Int or tuple of 1 ints, the dilation rate.
        {{base_opt_keyword_args}}

    Input shape:
        3D tensor `(batch, steps, C_in)` (channels last) or
        `(batch, C_in, steps)` (channels first).

    Output shape:
        3D tensor with `filters` channels and the spatial dimensions of
        `keras.layers.Conv1D`.

    Example:

    >>> layer = keras_opt.layers.OPTConv1D(8, 3, padding="causal")
    >>> y = layer(np.ones((2, 10, 4)))
    >>> y.shape
    TensorShape([2, 10, 8])
    >>> layer.rotation.shape  # d = 3 * 4
    TensorShape([12, 12])

    Reference:
        - [Liu et al., 2021](https://arxiv.org/abs/2004.04690),
          Orthogonal Over-Parameterized Training, CVPR 2021.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
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
            rank=1,
            filters=filters,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
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


OPTConv1D.__doc__ = OPTConv1D.__doc__.replace(
    "{{base_opt_keyword_args}}", base_opt.base_opt_keyword_args
)
