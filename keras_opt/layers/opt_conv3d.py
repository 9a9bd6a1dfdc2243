"""OPTConv3D: a 3D convolution with an orthogonally trained kernel."""

import keras

from keras_opt.layers import _docstrings
from keras_opt.layers.base_opt_conv import BaseOPTConv


@keras.saving.register_keras_serializable(package="keras_opt")
@_docstrings.with_opt_arguments
class OPTConv3D(BaseOPTConv, keras.layers.Conv3D):
    """3D convolution layer trained by OPT.

    `OPTConv3D` is a `keras.layers.Conv3D` whose kernel is `W = R·V·diag(g)`:
    V (`basis`, shape `(d, filters)` with d = k1 * k2 * k3 * C_in) holds the
    filters, drawn once from N(0, 2/d) and frozen; R (`rotation`, `(d, d)`)
    is one learned orthogonal matrix shared by all filters, made by the
    orthogonalizer from the trainable `rotation_parameter` P; g is a learned
    gain per filter (`use_gain`). `R·V` is reshaped to the Keras kernel
    layout `(k1, k2, k3, C_in, filters)`, flattened in that order.
    {{conv_common:Conv3D}}

    Input shape:
        5D tensor `(batch, d1, d2, d3, C_in)` (channels last) or
        `(batch, C_in, d1, d2, d3)` (channels first).

    Output shape:
        5D tensor with `filters` channels and the spatial dimensions of
        `keras.layers.Conv3D`.

    Example:

    >>> layer = keras_opt.layers.OPTConv3D(4, 2, orthogonalizer="hr")
    >>> y = layer(np.ones((1, 5, 5, 5, 2)))
    >>> y.shape
    TensorShape([1, 4, 4, 4, 4])
    >>> layer.rotation.shape  # d = 2 * 2 * 2 * 2
    TensorShape([16, 16])

    Reference:
        - [Liu et al., 2021](https://arxiv.org/abs/2004.04690),
          Orthogonal Over-Parameterized Training, CVPR 2021.
    """
