"""OPTConv1D: a 1D convolution with an orthogonally trained kernel."""

import keras

from keras_opt.layers import _docstrings
from keras_opt.layers.base_opt_conv import BaseOPTConv


@keras.saving.register_keras_serializable(package="keras_opt")
@_docstrings.with_opt_arguments
class OPTConv1D(BaseOPTConv, keras.layers.Conv1D):
    """1D (temporal) convolution layer trained by OPT.

    `OPTConv1D` is a `keras.layers.Conv1D` whose kernel is `W = R·V·diag(g)`:
    V (`basis`, shape `(d, filters)` with d = k * C_in) holds the
    filters, drawn once from N(0, 2/d) and frozen; R (`rotation`, `(d, d)`)
    is one learned orthogonal matrix shared by all filters, made by the
    orthogonalizer from the trainable `rotation_parameter` P; g is a learned
    gain per filter (`use_gain`). `R·V` is reshaped to the Keras kernel
    layout `(k, C_in, filters)`, flattened in that order.
    {{conv_common:Conv1D}}

    Input shape:
        3D tensor `(batch, steps, C_in)` (channels last) or
        `(batch, C_in, steps)` (channels first).

    Output shape:
        3D tensor with `filters` channels and the length of
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
