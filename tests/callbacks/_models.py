"""Small models and data shared by the callback tests."""

import keras
import numpy as np

import keras_opt


def opt_model(orthogonalizer="gram_schmidt", recipe="official"):
    """OPTConv2D → OPTDense → plain Dense classifier.

    The official recipe (P ~ N(0, 1), no gain) by default: the monitors'
    tests compare energies and orthogonality errors exactly, which a learned
    gain would move within the energy's ε guard.
    """
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras_opt.layers.OPTConv2D(
                4, 3, orthogonalizer=orthogonalizer, recipe=recipe,
                name="opt_conv",
            ),
            keras.layers.Flatten(),
            keras_opt.layers.OPTDense(
                8, orthogonalizer=orthogonalizer, recipe=recipe,
                name="opt_dense",
            ),
            keras.layers.Dense(3, name="classifier"),
        ]
    )


def data(samples=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 6, 6, 2)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, samples), 3)
    return x, y


def read_tensorboard_scalars(log_dir):
    """{tag: [values]} from every event file under `log_dir`."""
    import os

    import tensorflow as tf

    scalars = {}
    for root, _, files in os.walk(log_dir):
        for name in files:
            if "tfevents" not in name:
                continue
            run = os.path.relpath(root, log_dir)
            for record in tf.data.TFRecordDataset(os.path.join(root, name)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    if value.HasField("tensor"):
                        number = tf.make_ndarray(value.tensor)
                        if number.ndim or number.dtype.kind != "f":
                            continue  # text summaries, e.g. the model config
                    else:
                        number = value.simple_value
                    scalars.setdefault(f"{run}:{value.tag}", []).append(
                        float(number)
                    )
    return scalars
