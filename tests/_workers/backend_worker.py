"""Trains small OPT models on the backend of `KERAS_BACKEND`, from numpy.

Run as `python tests/_workers/backend_worker.py MODE OUT.npz` from the
repository root (tests/cross_backend_test.py and
tests/jax_distribution_test.py do, one process per backend). Every starting
weight and every batch comes from numpy, so two backends start equal. MODE:

- `train`: every case of `cases()` (each orthogonalizer with SGD, OGD
  with StiefelSGD and StiefelAdam) for `STEPS` steps; writes
  `<case>/initial/<path>` and `<case>/final/<path>` for every float weight.
- `data_parallel` (JAX, 2 host devices): the Stiefel and a map case on one
  device and under `keras.distribution.DataParallel`; writes
  `<case>/single/<path>`, `<case>/parallel/<path>`, and for every
  variable, `<case>/spread/<path>`: the largest difference between its
  copies on the devices.
- `model_parallel` (JAX, 2 host devices): a wide OPTDense whose V and R·V
  columns are split over the devices by `keras.distribution.ModelParallel`,
  against one device; writes `initial/...`, `single/...`, `parallel/...`
  and `basis_sharding`, the number of distinct shards of V.
"""

import os
import sys

sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_opt  # noqa: E402
from keras_opt import orthogonalizers  # noqa: E402

STEPS = 3
BATCH = 8


def _optimizer(name):
    if name == "sgd":
        return keras.optimizers.SGD(0.05, momentum=0.9)
    if name == "stiefel_sgd":
        return keras_opt.optimizers.StiefelSGD(0.05, rotation_learning_rate=0.1)
    return keras_opt.optimizers.StiefelAdam(0.01)


def cases():
    """`{name: (orthogonalizer class, optimizer)}`: every map, both OGDs."""
    result = {
        cls.__name__: (cls, "sgd")
        for cls in orthogonalizers.ALL_OBJECTS
        if not cls.is_stiefel
    }
    result["Stiefel_sgd"] = (orthogonalizers.Stiefel, "stiefel_sgd")
    result["Stiefel_adam"] = (orthogonalizers.Stiefel, "stiefel_adam")
    return dict(sorted(result.items()))


def data(num_batches=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_batches * BATCH, 6, 6, 2)).astype("float32")
    y = rng.integers(0, 3, num_batches * BATCH)
    return x, y


def build(cls, optimizer):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras_opt.layers.OPTConv2D(
                3, 3, activation="relu", orthogonalizer=cls()
            ),
            keras.layers.Flatten(),
            keras_opt.layers.OPTDense(
                5, activation="relu", orthogonalizer=cls()
            ),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer=_optimizer(optimizer),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    set_numpy_weights(model, cls())
    return model


def _start(leaf, shape, orthogonalizer, rng):
    """A starting value, from numpy, for a weight called `leaf`."""
    noise = rng.standard_normal(shape)
    if leaf == "rotation_parameter" and orthogonalizer.is_stiefel:
        q, r = np.linalg.qr(noise)
        return q * np.where(np.diag(r) < 0, -1.0, 1.0)
    if leaf == "rotation_parameter":  # Near the map's identity point.
        start = orthogonalizer.rotation_initializer(shape, "float32")
        return keras.ops.convert_to_numpy(start) + 0.3 * noise
    if leaf in ("basis", "kernel"):
        return noise * np.sqrt(2.0 / np.prod(shape[:-1]))
    return 0.1 * noise  # bias, log_gain


def set_numpy_weights(model, orthogonalizer, seed=1):
    """Assigns every trainable weight, and each basis V, a numpy value."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        leaf = variable.path.split("/")[-1]
        if variable.trainable or leaf == "basis":
            value = _start(leaf, tuple(variable.shape), orthogonalizer, rng)
            variable.assign(value.astype(variable.dtype))


def float_weights(model):
    return {
        v.path: keras.ops.convert_to_numpy(v)
        for v in model.weights
        if "float" in str(v.dtype)
    }


def train_all(out):
    x, y = data()
    arrays = {}
    for name, (cls, optimizer) in cases().items():
        keras.backend.clear_session()  # The same variable paths each time.
        model = build(cls, optimizer)
        for path, value in float_weights(model).items():
            arrays[f"{name}/initial/{path}"] = value
        model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
        for path, value in float_weights(model).items():
            arrays[f"{name}/final/{path}"] = value
    np.savez(out, **arrays)


def _spread(variable):
    """Largest difference between the copies of `variable` on the devices."""
    shards = [
        np.asarray(s.data, "float64") for s in variable.value.addressable_shards
    ]
    if any(s.shape != shards[0].shape for s in shards):
        return np.float64(np.inf)
    return np.float64(max(np.max(np.abs(s - shards[0])) for s in shards))


def data_parallel(out):
    import jax

    x, y = data(num_batches=4)
    arrays = {"num_devices": np.int64(len(jax.devices()))}
    for name in ("GramSchmidt", "Stiefel_sgd", "Stiefel_adam"):
        cls, optimizer = cases()[name]
        for mode in ("single", "parallel"):
            keras.backend.clear_session()
            distribution = None
            if mode == "parallel":
                distribution = keras.distribution.DataParallel(
                    devices=jax.devices()
                )
            keras.distribution.set_distribution(distribution)
            model = build(cls, optimizer)
            model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
            for path, value in float_weights(model).items():
                arrays[f"{name}/{mode}/{path}"] = value
            if mode == "parallel":
                for v in model.weights + model.optimizer.variables:
                    arrays[f"{name}/spread/{v.path}"] = _spread(v)
    keras.distribution.set_distribution(None)
    np.savez(out, **arrays)


def model_parallel(out, units=64):
    import jax

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 48)).astype("float32")
    y = rng.standard_normal((32, units)).astype("float32")
    arrays = {}
    for mode in ("single", "parallel"):
        keras.backend.clear_session()
        distribution = None
        if mode == "parallel":
            mesh = keras.distribution.DeviceMesh(
                (1, len(jax.devices())), ["batch", "model"], jax.devices()
            )
            layout_map = keras.distribution.LayoutMap(mesh)
            layout_map[".*/wide/basis"] = (None, "model")
            layout_map[".*/wide/(bias|log_gain)"] = ("model",)
            distribution = keras.distribution.ModelParallel(
                layout_map=layout_map, batch_dim_name="batch"
            )
        keras.distribution.set_distribution(distribution)
        layer = keras_opt.layers.OPTDense(units, name="wide")
        model = keras.Sequential([keras.Input((48,)), layer])
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "mse")
        set_numpy_weights(model, orthogonalizers.GramSchmidt())
        if mode == "single":
            for path, value in float_weights(model).items():
                arrays[f"initial/{path}"] = value
        model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
        for path, value in float_weights(model).items():
            arrays[f"{mode}/{path}"] = value
        if mode == "parallel":
            shards = layer.basis.value.addressable_shards
            arrays["basis_sharding"] = np.int64(
                len({str(s.index) for s in shards})
            )
    keras.distribution.set_distribution(None)
    np.savez(out, **arrays)


MODES = {
    "train": train_all,
    "data_parallel": data_parallel,
    "model_parallel": model_parallel,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](sys.argv[2])
