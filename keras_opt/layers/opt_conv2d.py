"""OPTConv2D: a 2D convolution with an orthogonally trained kernel."""

import keras

from keras_opt.layers import _docstrings
from keras_opt.layers.base_opt_conv import BaseOPTConv


@keras.saving.register_keras_serializable(package="keras_opt")
@_docstrings.with_opt_arguments
class OPTConv2D(BaseOPTConv, keras.layers.Conv2D):
    """2D convolution layer trained by OPT.

    `OPTConv2D` is a `keras.layers.Conv2D` whose kernel is `W = R·V·diag(g)`:
    V (`basis`, shape `(d, filters)` with d = kh * kw * C_in) holds the
    filters, drawn once from N(0, 2/d) and frozen; R (`rotation`, `(d, d)`)
    is one learned orthogonal matrix shared by all filters, made by the
    orthogonalizer from the trainable `rotation_parameter` P; g is a learned
    gain per filter (`use_gain`). `R·V` is reshaped to the Keras kernel
    layout `(kh, kw, C_in, filters)`, flattened in that order.
    {{conv_common:Conv2D}}

    Input shape:
        4D tensor `(batch, height, width, C_in)` (channels last) or
        `(batch, C_in, height, width)` (channels first).

    Output shape:
        4D tensor with `filters` channels and the spatial dimensions of
        `keras.layers.Conv2D`.

    Example:

    >>> layer = keras_opt.layers.OPTConv2D(64, 3, padding="same")
    >>> y = layer(np.ones((2, 32, 32, 3)))
    >>> y.shape
    TensorShape([2, 32, 32, 64])
    >>> layer.rotation.shape  # d = 3 * 3 * 3
    TensorShape([27, 27])
    >>> layer.kernel.shape
    TensorShape([3, 3, 3, 64])

    The official CNN-6 block, with OGD:

    ```python
    x = keras_opt.layers.OPTConv2D(
        64, 3, padding="same", use_bias=False, orthogonalizer="ogd"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.999)(x)
    x = keras.layers.ReLU()(x)
    ```

    Reference:
        - [Liu et al., 2021](https://arxiv.org/abs/2004.04690),
          Orthogonal Over-Parameterized Training, CVPR 2021.
    """
