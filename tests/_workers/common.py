"""Models, data and probes shared by tests/distribute_test.py and its workers."""

import keras
import numpy as np
import tensorflow as tf

import keras_opt

GLOBAL_BATCH = 16
NUM_EXAMPLES = 320
STEPS_PER_EPOCH = NUM_EXAMPLES // GLOBAL_BATCH
EPISODE_STEPS = 7


def make_model(kind, seed=0):
    """A small compiled OPT model.

    "gs", "ogd", "mixed" (GS then OGD), or "sopt" (S-OPT: GS and OGD layers
    with `subspace=`, for `SubspaceEpisodes`).
    """
    keras.utils.set_random_seed(seed)
    if kind == "sopt":
        hidden = [
            keras_opt.layers.OPTDense(
                12, "relu", orthogonalizer="gs", subspace=6
            ),
            keras_opt.layers.OPTDense(
                8, "relu", orthogonalizer="ogd", subspace=5
            ),
        ]
        optimizer = keras_opt.optimizers.StiefelSGD(
            learning_rate=0.05, momentum=0.9, rotation_learning_rate=0.1
        )
    elif kind == "gs":
        hidden = [keras_opt.layers.OPTDense(8, "relu", orthogonalizer="gs")]
        optimizer = keras.optimizers.Adam(learning_rate=0.01)
    elif kind == "ogd":
        hidden = [keras_opt.layers.OPTDense(8, "relu", orthogonalizer="ogd")]
        optimizer = keras_opt.optimizers.StiefelSGD(
            learning_rate=0.05, momentum=0.9, rotation_learning_rate=0.1
        )
    else:
        hidden = [
            keras_opt.layers.OPTDense(12, "relu", orthogonalizer="gs"),
            keras_opt.layers.OPTDense(8, "relu", orthogonalizer="ogd"),
        ]
        optimizer = keras_opt.optimizers.StiefelSGD(
            learning_rate=0.05, momentum=0.9, rotation_learning_rate=0.1
        )
    model = keras.Sequential(
        [keras.Input((16,))] + hidden + [keras.layers.Dense(4)]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def make_dataset_fn(shuffle=True, sleep=0.0):
    """`epoch -> dataset` of global batches, shuffled with the epoch as seed."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((NUM_EXAMPLES, 16)).astype("float32")
    y = rng.standard_normal((NUM_EXAMPLES, 4)).astype("float32")

    def dataset_fn(epoch):
        # A NumPy permutation: `Dataset.shuffle(seed=...)` also depends on
        # TensorFlow's global seed, which model creation resets.
        order = np.random.default_rng(epoch) if shuffle else None
        order = order.permutation(NUM_EXAMPLES) if shuffle else slice(None)
        data = tf.data.Dataset.from_tensor_slices((x[order], y[order]))
        data = data.batch(GLOBAL_BATCH, drop_remainder=True)
        if sleep:
            data = data.map(lambda x, y: _slow(x, y, sleep))
        return data

    return dataset_fn


def _slow(x, y, seconds):
    import time

    def wait():
        time.sleep(seconds)
        return np.int64(0)

    done = tf.py_function(wait, [], tf.int64)
    with tf.control_dependencies([done]):
        return tf.identity(x), tf.identity(y)


def rotations(model):
    """R of every OPT layer."""
    return [
        keras.ops.convert_to_numpy(layer.rotation)
        for layer in model.layers
        if isinstance(layer, keras_opt.layers.OPTDense)
    ]


def orthogonality_errors(model):
    """max |RᵀR − I| of every OPT layer, in float64."""
    errors = []
    for r in rotations(model):
        r = r.astype("float64")
        errors.append(float(np.max(np.abs(r.T @ r - np.eye(len(r))))))
    return errors


def make_callbacks(kind):
    """The callbacks a run of `kind` trains with: S-OPT's and the monitors."""
    if kind != "sopt":
        return None
    return [
        keras_opt.callbacks.SubspaceEpisodes(every_n_steps=EPISODE_STEPS),
        keras_opt.callbacks.EnergyMonitor(),
        keras_opt.callbacks.OrthogonalityMonitor(),
    ]


def summary(model, history):
    """What a run reports: weights, iterations, orthogonality, losses."""
    weights = [np.asarray(w) for w in model.get_weights()]
    return {
        "weights": weights,
        "iterations": int(model.optimizer.iterations.numpy()),
        "orthogonality": orthogonality_errors(model),
        "loss": list(history["loss"]),
        "episodes": [
            int(keras.ops.convert_to_numpy(layer.subspace_episode))
            for layer in keras_opt.layers.opt_layers(model)
            if layer.subspace_size is not None
        ],
        "energy": list(history.get("energy/opt_total", [])),
    }
