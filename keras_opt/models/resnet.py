"""The CIFAR ResNets of He et al. (2016) with OPT layers: ResNet-20/32."""

import keras

from keras_opt.models import _blocks

_RESNET_DOC = """Builds the CIFAR {title} of He et al. (2016) with OPT layers.

    A 3×3 convolution with 16 filters, then three stages of {blocks} basic
    blocks with 16, 32 and 64 filters (the first block of stages 2 and 3
    has stride 2), global average pooling and a plain dense classifier.
    Every 3×3 convolution is followed by BatchNormalization (ε = 1e-3,
    momentum 0.999); ReLU follows the first convolution of a block and the
    residual sum. No layer has a bias, and the model scales raw [0, 255]
    pixels by (x − 127.5)/128 itself, as the paper's CNNs do.

    Shortcuts are He et al.'s option A, parameter-free: identity, or, where
    a stage halves the map and doubles the channels, a stride-2 subsampling
    padded with zero channels. So every convolution is an OPT layer and the
    classifier is the only normal weight; the paper does not say how it
    handled projection shortcuts (`opt_reference.md` §7.4).
    """


def _shortcut(x, filters, name):
    if x.shape[-1] == filters:
        return x
    x = keras.layers.MaxPooling2D(1, strides=2, name=f"{name}_subsample")(x)
    zeros = keras.layers.Rescaling(0.0, name=f"{name}_zeros")(x)
    return keras.layers.Concatenate(name=f"{name}_pad")([x, zeros])


def _resnet(factory, network, blocks):
    inputs = keras.Input(network.input_shape, name="image")
    x = _blocks.rescale(inputs)
    x = _blocks.hidden(factory, "conv2d", 16, 3, first=True, name="conv1")(x)
    x = _blocks.batch_norm(network.weight_decay, "conv1_bn")(x)
    x = keras.layers.ReLU(name="conv1_relu")(x)
    for stage, filters in enumerate((16, 32, 64), start=2):
        for block in range(blocks):
            prefix = f"conv{stage}_block{block + 1}"
            strides = 2 if stage > 2 and block == 0 else 1
            y = _blocks.hidden(
                factory, "conv2d", filters, 3, strides=strides,
                name=f"{prefix}_1_conv",
            )(x)
            y = _blocks.batch_norm(network.weight_decay, f"{prefix}_1_bn")(y)
            y = keras.layers.ReLU(name=f"{prefix}_1_relu")(y)
            y = _blocks.hidden(
                factory, "conv2d", filters, 3, name=f"{prefix}_2_conv"
            )(y)
            y = _blocks.batch_norm(network.weight_decay, f"{prefix}_2_bn")(y)
            shortcut = _shortcut(x, filters, f"{prefix}_shortcut")
            x = keras.layers.Add(name=f"{prefix}_add")([shortcut, y])
            x = keras.layers.ReLU(name=f"{prefix}_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = _blocks.classifier(
        factory, network.num_classes, network.activation
    )(x)
    return keras.Model(inputs, outputs, name=network.name)


resnet20 = _blocks.image_network(
    "resnet20", _resnet, _RESNET_DOC.format(title="ResNet-20", blocks="three"),
    "1154791", blocks=3,
)
resnet32 = _blocks.image_network(
    "resnet32", _resnet, _RESNET_DOC.format(title="ResNet-32", blocks="five"),
    "2023687", blocks=5,
)
