"""The paper's plain CNNs for CIFAR: CNN-6, CNN-9 and Wide CNN-9."""

import keras

from keras_opt.models import _blocks

_CNN_DOC = """Builds {title}, {description}

    Every stage is {depth} 3×3 SAME convolutions, each followed by
    BatchNormalization (ε = 1e-3, momentum 0.999) and ReLU, then a 2×2
    max-pool; `fc6` is a 4×4 VALID convolution on the 4×4 map (a dense layer
    of fan-in 16·C, no BN, no ReLU) and `score` a plain dense classifier.
    No layer has a bias, and the model scales raw [0, 255] pixels by
    (x − 127.5)/128 itself (`opt_reference.md` §7).

    All convolutions, the first and `fc6` included, are OPT layers; the
    classifier is a normal He-normal layer, as in the official code.
    `orthogonalizer=None` builds the plain baseline: the same graph with
    He-normal N(0, 2/d) kernels.
    """


_CNN6 = "the network of the official CIFAR-100 demo."
_CNN9 = (
    "CNN-6 with three convolutions per stage.\n\n    The paper gives no "
    "CNN-9 definition or count; this is the most likely reading\n    (64 "
    "channels throughout, `opt_reference.md` §7.2)."
)
_WIDE = "the MHE repository's CIFAR network (64/128/256 channels)."


def _cnn(factory, network, widths, depth):
    inputs = keras.Input(network.input_shape, name="image")
    x = _blocks.rescale(inputs)
    for stage, width in enumerate(widths, start=1):
        for index in range(depth):
            x = _blocks.hidden(
                factory,
                "conv2d",
                width,
                3,
                first=stage == 1 and index == 0,
                name=f"conv{stage}_{index}",
            )(x)
            x = _blocks.batch_norm(network.weight_decay, f"conv{stage}_{index}_bn")(x)
            x = keras.layers.ReLU(name=f"conv{stage}_{index}_relu")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{stage}")(
            x
        )
    x = _blocks.hidden(
        factory, "conv2d", widths[-1], 4, padding="valid", name="fc6"
    )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = _blocks.classifier(
        factory, network.num_classes, network.activation
    )(x)
    return keras.Model(inputs, outputs, name=network.name)


def _builder(name, title, depth_word, description, count, **fixed):
    doc = _CNN_DOC.format(
        title=title, depth=depth_word, description=description
    )
    return _blocks.image_network(name, _cnn, doc, count, **fixed)


cnn6 = _builder("cnn6", "CNN-6", "two", _CNN6, "1358527",
                widths=(64, 64, 64), depth=2)
cnn9 = _builder("cnn9", "CNN-9", "three", _CNN9, "1855327",
                widths=(64, 64, 64), depth=3)
wide_cnn9 = _builder("wide_cnn9", "Wide CNN-9", "three", _WIDE, "16204351",
                     widths=(64, 128, 256), depth=3)
