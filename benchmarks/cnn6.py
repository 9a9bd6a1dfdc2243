"""CNN-6 of the OPT paper's CIFAR-100 demo (opt_reference.md §7.1)."""

import keras

import keras_opt


def build_cnn6(
    orthogonalizer=None, num_classes=100, width=64, block_size=None
):
    """Returns CNN-6; OPT layers with `orthogonalizer`, plain ones with None.

    Six 3×3 SAME convolutions with BatchNormalization and ReLU, a 2×2
    max-pool after every pair, fc6 as a 4×4 VALID convolution (no BN, no
    ReLU) and a plain 1×1 classifier; no biases, inputs scaled in the model.
    `block_size` is that of every OPT layer (block-diagonal rotations).
    """

    def conv(filters, kernel_size, padding, name):
        if orthogonalizer is None:
            return keras.layers.Conv2D(
                filters,
                kernel_size,
                padding=padding,
                use_bias=False,
                kernel_initializer="he_normal",
                name=name,
            )
        return keras_opt.layers.OPTConv2D(
            filters,
            kernel_size,
            padding=padding,
            use_bias=False,
            orthogonalizer=orthogonalizer,
            block_size=block_size,
            name=name,
        )

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.5 / 128.0)(inputs)
    for stage in range(3):
        for index in range(2):
            x = conv(width, 3, "same", f"conv{stage + 1}_{index}")(x)
            x = keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.999)(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = conv(width, 4, "valid", "fc6")(x)
    x = keras.layers.Conv2D(
        num_classes, 1, use_bias=False, kernel_initializer="he_normal", name="score"
    )(x)
    outputs = keras.layers.Flatten()(x)
    return keras.Model(inputs, outputs, name="cnn6")


def orthogonalizer_names(keep=lambda cls: True):
    """The first registered name of each orthogonalizer class `keep` accepts."""
    names = {}
    for name, cls in keras_opt.orthogonalizers.ALIASES.items():
        names.setdefault(cls, name)
    return [name for cls, name in names.items() if keep(cls)]
