"""The building blocks shared by the paper's networks (`keras_opt.models`)."""

import keras

from keras_opt import baselines
from keras_opt import recipes


def layer_factory(orthogonalizer, subspace, weight_decay, recipe):
    """The `keras_opt.baselines.Baseline` that makes a network's layers.

    `orthogonalizer=None` makes the plain He-normal network.
    """
    return baselines.get(
        "baseline" if orthogonalizer is None else orthogonalizer,
        weight_decay=weight_decay,
        recipe=recipe,
        subspace=subspace,
    )


def hidden(factory, kind, *args, first=False, **kwargs):
    """A hidden layer of a paper network: no bias, SAME padding for convs."""
    if kind == "conv2d":
        kwargs.setdefault("padding", "same")
    return getattr(factory, kind)(*args, use_bias=False, first=first, **kwargs)


def classifier(factory, num_classes, activation, name="score"):
    """The plain classifier: He-normal, L2-decayed, no bias, never OPT."""
    return factory.dense(
        num_classes,
        classifier=True,
        activation=activation,
        use_bias=False,
        name=name,
    )


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
        beta_regularizer=recipes.official_l2(weight_decay),
        gamma_regularizer=recipes.official_l2(weight_decay),
        name=name,
    )
