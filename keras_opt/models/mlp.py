"""A multilayer perceptron with OPT hidden layers."""

import keras

from keras_opt.models import _blocks


def mlp(
    num_classes=10,
    orthogonalizer="gram_schmidt",
    subspace=None,
    weight_decay=None,
    recipe="official",
    input_shape=(28, 28, 1),
    hidden_units=(256, 256),
    classifier_activation=None,
    name="mlp",
):
    """Builds an MLP whose hidden layers are OPT layers.

    The input is flattened and scaled by (x − 127.5)/128, then every hidden
    layer is a dense layer without bias followed by BatchNormalization
    (ε = 1e-3, momentum 0.999) and ReLU, as in the paper's CNNs; `score` is
    a plain dense classifier. The paper's MNIST MLPs are not defined in its
    available text: the default 784-256-256-10 is an assumption
    (`opt_reference.md` §7.4).

    Args:
        num_classes: Number of classes (logits).
        {arguments}
        input_shape: Shape of one input, flattened by the model.
        hidden_units: Widths of the hidden layers.
        classifier_activation: Activation of `score`; `None` returns logits.
        name: Name of the model.

    Returns:
        A `keras.Model`.

    Example:

    >>> model = keras_opt.models.mlp(orthogonalizer="cayley")  # 784-256-256-10
    >>> keras_opt.models.paper_parameter_count(model)
    342136
    """
    factory = _blocks.layer_factory(
        orthogonalizer, subspace, weight_decay, recipe
    )
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = _blocks.rescale(x)
    for index, units in enumerate(hidden_units, start=1):
        x = _blocks.hidden(
            factory, "dense", units, first=index == 1, name=f"dense{index}"
        )(x)
        x = _blocks.batch_norm(weight_decay, f"dense{index}_bn")(x)
        x = keras.layers.ReLU(name=f"dense{index}_relu")(x)
    outputs = _blocks.classifier(factory, num_classes, classifier_activation)(x)
    return keras.Model(inputs, outputs, name=name)


mlp.__doc__ = mlp.__doc__.replace("{arguments}", _blocks.ARGUMENTS_DOC)
