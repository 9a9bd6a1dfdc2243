"""OPTDense: a densely-connected layer with an orthogonally trained kernel."""

import keras

from keras_opt.layers import _docstrings
from keras_opt.layers.base_opt import BaseOPT


@keras.saving.register_keras_serializable(package="keras_opt")
@_docstrings.with_opt_arguments
class OPTDense(BaseOPT, keras.layers.Dense):
    """Densely-connected layer trained by Orthogonal Over-Parameterization.

    `OPTDense` is a `keras.layers.Dense`, `output = activation(dot(input,
    kernel) + bias)`, whose kernel is `W = R·V·diag(g)`: V (`basis`, shape
    `(input_dim, units)`) holds the `units` neurons, drawn once from
    N(0, 2/d) and frozen; R (`rotation`, shape `(input_dim, input_dim)`) is
    one learned orthogonal matrix shared by all neurons, made by the
    orthogonalizer from the trainable `rotation_parameter` P; g is a learned
    gain per neuron (`use_gain`). So the angles between neurons, and the
    layer's hyperspherical energy, stay those of the random start.
    `layer.kernel` returns W, computed from the variables at every access,
    so everything Keras's `Dense` does with its kernel (`call`, shapes,
    config) works unchanged; `layer.rotation` returns R.

    With `orthogonalizer="ogd"` (or `"stiefel"`) P is R itself, starts at the
    identity and is kept orthogonal by a Stiefel optimizer,
    `keras_opt.optimizers.StiefelSGD` or `StiefelAdam`; the paper's OGD.

    Args:
        units: Positive int, the number of neurons (output features).
        {{keras_arguments}}
        {{opt_arguments}}

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
    >>> [w.name for w in layer.weights]  # P, bias, g, V
    ['rotation_parameter', 'bias', 'log_gain', 'basis']

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

    def _build_kernel_shape(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the inputs to {self.__class__.__name__} "
                "must be known at build time: it is the fan-in d of the "
                "rotation. Expected: an int. Received: input_shape="
                f"{tuple(input_shape)}"
            )
        self.input_spec = keras.InputSpec(min_ndim=2, axes={-1: input_dim})
        return (input_dim, self.units)
