"""Writes legacy_v0_1.keras and its expected outputs, with keras_opt 0.1.

Run once from the repository root, at the commit that still had
`layer.rotation` as the trainable P (commit 969a445):

    PYTHONPATH=. python tests/layers/testdata/make_legacy.py

`tests/layers/legacy_test.py` loads the files with the current code.
"""

import os

import keras
import numpy as np

import keras_opt

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((5, 5, 2)),
            keras_opt.layers.OPTConv2D(
                3, 2, activation="relu", orthogonalizer="ogd", name="conv_ogd"
            ),
            keras.layers.Flatten(),
            keras_opt.layers.OPTDense(
                6, activation="tanh", orthogonalizer="gs", name="dense_gs"
            ),
            keras_opt.layers.OPTDense(
                4,
                orthogonalizer=keras_opt.orthogonalizers.Penalty(
                    beta=0.3, squared=True
                ),
                rotation_regularizer=keras_opt.regularizers.OrthogonalityPenalty(
                    0.05
                ),
                bias_initializer="random_normal",
                name="dense_or",
            ),
        ]
    )
    x = np.random.default_rng(7).standard_normal((4, 5, 5, 2))
    x = x.astype("float32")
    # One SGD step moves the rotations off their initializers, so the test
    # also checks that trained values (not re-initialized ones) are loaded.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch(x, np.ones((4, 4), dtype="float32"))
    model.save(os.path.join(HERE, "legacy_v0_1.keras"))
    np.save(os.path.join(HERE, "legacy_v0_1_inputs.npy"), x)
    np.save(
        os.path.join(HERE, "legacy_v0_1_outputs.npy"),
        model.predict(x, verbose=0),
    )
    np.save(
        os.path.join(HERE, "legacy_v0_1_losses.npy"),
        np.array([float(loss) for loss in model.losses]),
    )


if __name__ == "__main__":
    main()
