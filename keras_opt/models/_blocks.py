"""The building blocks shared by the paper's networks (`keras_opt.models`)."""

import keras

from keras_opt import layers
from keras_opt import orthogonalizers
from keras_opt.layers.base_opt import default_basis_initializer


def l2(weight_decay):
    """TF1's `l2_regularizer(wd)`, wd·‖θ‖²/2, as the official code decays."""
    if weight_decay is None:
        return None
    return keras.regularizers.L2(weight_decay / 2.0)


def rescale(x):
    """(x − 127.5)/128: raw [0, 255] pixels scaled inside the model."""
    return keras.layers.Rescaling(
        1.0 / 128.0, offset=-127.5 / 128.0, name="rescale"
    )(x)


def batch_norm(weight_decay, name):
    """The official BN: ε = 1e-3, decay 0.999, L2 on γ and β."""
    return keras.layers.BatchNormalization(
        epsilon=1e-3,
        momentum=0.999,
        beta_regularizer=l2(weight_decay),
        gamma_regularizer=l2(weight_decay),
        name=name,
    )


class LayerMaker:
    """Makes the hidden layers of one network: OPT, S-OPT or plain.

    `orthogonalizer=None` makes plain He-normal layers; otherwise OPT layers
    with that orthogonalizer, and with `subspace` (S-OPT) on every layer but
    the first, which is always full OPT as in the official S-OPT demo. With
    `subspace` set, the first layer's P also starts at the identity, as
    there. Rotations of Stiefel orthogonalizers (OGD) are never decayed.
    """

    def __init__(self, orthogonalizer, subspace, weight_decay, recipe):
        if orthogonalizer is not None:
            orthogonalizer = orthogonalizers.get(orthogonalizer)
        if subspace is not None and orthogonalizer is None:
            raise ValueError(
                "`subspace` needs OPT layers, but `orthogonalizer=None` "
                "builds the plain baseline. Expected: an orthogonalizer "
                "with `subspace`, or `subspace=None`. Received: "
                f"orthogonalizer=None, subspace={subspace!r}"
            )
        self.orthogonalizer = orthogonalizer
        self.subspace = subspace
        self.weight_decay = weight_decay
        self.recipe = recipe
        self._first = True

    def _opt_kwargs(self):
        kwargs = {
            "orthogonalizer": self.orthogonalizer,
            "recipe": self.recipe,
        }
        if not self.orthogonalizer.is_stiefel:
            kwargs["rotation_regularizer"] = l2(self.weight_decay)
        if self.subspace is not None:
            if self._first:
                kwargs["rotation_initializer"] = "identity"
            else:
                kwargs["subspace"] = self.subspace
        self._first = False
        return kwargs

    def conv2d(
        self, filters, kernel_size, strides=1, padding="same", name=None
    ):
        if self.orthogonalizer is None:
            return keras.layers.Conv2D(
                filters,
                kernel_size,
                strides=strides,
                padding=padding,
                use_bias=False,
                kernel_initializer=default_basis_initializer(),
                kernel_regularizer=l2(self.weight_decay),
                name=name,
            )
        return layers.OPTConv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=False,
            name=name,
            **self._opt_kwargs(),
        )

    def dense(self, units, name=None):
        if self.orthogonalizer is None:
            return keras.layers.Dense(
                units,
                use_bias=False,
                kernel_initializer=default_basis_initializer(),
                kernel_regularizer=l2(self.weight_decay),
                name=name,
            )
        return layers.OPTDense(
            units, use_bias=False, name=name, **self._opt_kwargs()
        )

    def classifier(self, num_classes, activation, name="score"):
        """The plain classifier: He-normal, L2-decayed, no bias, never OPT."""
        return keras.layers.Dense(
            num_classes,
            activation=activation,
            use_bias=False,
            kernel_initializer=default_basis_initializer(),
            kernel_regularizer=l2(self.weight_decay),
            name=name,
        )
