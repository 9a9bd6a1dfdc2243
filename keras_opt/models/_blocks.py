"""The building blocks shared by the paper's networks (`keras_opt.models`)."""

import collections

import keras

from keras_opt import baselines
from keras_opt import recipes


# The Args every network builder shares, after `num_classes`.
ARGUMENTS_DOC = """orthogonalizer: The orthogonalizer of the OPT layers (a name from
            `keras_opt.orthogonalizers`, e.g. `"gram_schmidt"`, `"ogd"`), or
            `None` for the plain baseline with He-normal N(0, 2/d) kernels.
        subspace: S-OPT: the dimension p of the rotated subspace of every
            OPT layer but the first (which stays full OPT), as an int or a
            float fraction of d (`0.25` is the paper's d/4). `None` for full
            OPT.
        weight_decay: The official L2 penalty wd·‖θ‖²/2 on the rotations P
            (not on OGD's), the BN γ and β and the classifier (the plain
            kernels for the baseline); the paper's CIFAR recipe uses 5e-4.
            `None` for none.
        recipe: The OPT layers' `recipe` (`keras_opt.recipes`): `"official"`
            (the default here: the paper's layers, no gains, its parameter
            counts) or `"default"` (keras_opt's, with a gain per neuron)."""


class Network(collections.namedtuple(
    "Network",
    ["num_classes", "weight_decay", "input_shape", "activation", "name"],
)):
    """The arguments every network builder passes to its `build`."""


_IMAGE_NETWORK_ARGS_DOC = """

    Args:
        num_classes: Number of classes (logits).
        {arguments}
        input_shape: Shape of one input image, channels last.
        classifier_activation: Activation of `score`; `None` returns logits.
        name: Name of the model.

    Returns:
        A `keras.Model`.

    Example:

    >>> model = keras_opt.models.{function}(num_classes=100)
    >>> keras_opt.models.paper_parameter_count(model)
    {count}
    """


def image_network(name, build, description, count, **fixed):
    """A public builder `name(num_classes=100, ...)` of a CIFAR network.

    It calls `build(factory, network, **fixed)` with the `Baseline` that
    makes the layers and a `Network` of the common arguments. Its docstring is `description`, then the shared Args and an
    example whose paper parameter count is `count`.
    """

    def builder(
        num_classes=100,
        orthogonalizer="gram_schmidt",
        subspace=None,
        weight_decay=None,
        recipe="official",
        input_shape=(32, 32, 3),
        classifier_activation=None,
        name=name,
    ):
        factory = layer_factory(orthogonalizer, subspace, weight_decay, recipe)
        network = Network(
            num_classes, weight_decay, input_shape, classifier_activation, name
        )
        return build(factory, network, **fixed)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = description.rstrip() + _IMAGE_NETWORK_ARGS_DOC.format(
        arguments=ARGUMENTS_DOC, function=name, count=count
    )
    return builder


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
