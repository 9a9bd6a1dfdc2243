"""Every output path of an OPT layer agrees with the W of its variables.

For every OPT layer class and dtype policy, a model goes through the ways a
user changes or reloads state (predict, evaluate, fit, train_on_batch,
set_weights, `variable.assign`, load_weights, a `.keras` load, and on
TensorFlow a `tf.train.Checkpoint` restore, a BackupAndRestore resume, a
`keras_opt.distribute.train` resume and MirroredStrategy). After each,
`predict`, `evaluate`, `model(x, training=False)` and `model(x)` must equal a
stock Keras model whose kernel is W = R·V·diag(g) computed in numpy from
the variables, and the gradients under `training=False` must reach P and g
and equal those of `training=True`. A `predict` runs before every change,
so that any state kept from an earlier call would show.
"""

import os

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import layers
from tests import linalg_test
from tests import test_case

# name: (OPT layer, the stock layer it stands for, input shape).
LAYERS = {
    "dense": (
        lambda: layers.OPTDense(4), lambda: keras.layers.Dense(4), (6,)
    ),
    "conv1d": (
        lambda: layers.OPTConv1D(3, 2),
        lambda: keras.layers.Conv1D(3, 2),
        (5, 2),
    ),
    "conv2d": (
        lambda: layers.OPTConv2D(3, 2),
        lambda: keras.layers.Conv2D(3, 2),
        (4, 4, 2),
    ),
    "conv3d": (
        lambda: layers.OPTConv3D(2, 2),
        lambda: keras.layers.Conv3D(2, 2),
        (3, 3, 3, 1),
    ),
    "classifier": (
        lambda: layers.OPTClassifier(5, use_bias=True, use_gain=True),
        lambda: keras.layers.Dense(5),
        (6,),
    ),
}
POLICIES = ("float32", "float64", "mixed_bfloat16")
# float32 agrees to 1e-5; bfloat16 keeps 8 bits of mantissa.
TOLERANCE = {"float32": 1e-5, "float64": 1e-5, "mixed_bfloat16": 2e-2}
CASES = [
    {"testcase_name": f"{name}_{policy}", "name": name, "policy": policy}
    for name in LAYERS
    for policy in POLICIES
]


def make_model(name, stock=False):
    make_opt, make_stock, shape = LAYERS[name]
    layer = make_stock() if stock else make_opt()
    return keras.Sequential([keras.Input(shape), layer, keras.layers.Flatten()])


def opt_layer(model):
    (layer,) = layers.opt_layers(model)
    return layer


def reference_model(model, name):
    """A stock model whose kernel is W computed in numpy from the variables."""
    layer = opt_layer(model)
    p = np.asarray(layer.rotation_parameter, np.float64)
    basis = np.asarray(layer.basis, np.float64)
    gain = np.exp(np.asarray(layer.log_gain, np.float64))
    reference = make_model(name, stock=True)
    kernel = reference.layers[0].kernel
    rotation = linalg_test.numpy_gram_schmidt(p, "columns")
    weights = [(rotation @ basis * gain).reshape(kernel.shape)]
    reference.layers[0].set_weights(weights + [np.asarray(layer.bias)])
    return reference


def data(model, seed=0):
    rng = np.random.default_rng(seed)
    dtype = "float64" if model.dtype_policy.name == "float64" else "float32"
    x = rng.standard_normal((8,) + model.input_shape[1:]).astype(dtype)
    y = rng.standard_normal((8,) + model.output_shape[1:]).astype(dtype)
    return x, y


def compile_model(model):
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


class StateTestCase(test_case.TestCase):
    """The checks: outputs, loss and gradients follow the variables."""

    def assertCoherent(self, model, name, step, policy):
        x, y = data(model)
        atol = TOLERANCE[policy]
        expected = np.asarray(reference_model(model, name)(x), np.float64)
        outputs = {
            "predict": model.predict(x, verbose=0),
            "model(x, training=False)": model(x, training=False),
            "model(x)": model(x),
        }
        for path, output in outputs.items():
            self.assertAllClose(
                np.asarray(output, np.float64), expected, atol=atol,
                rtol=atol, msg=f"{path} after {step}",
            )
        loss = model.evaluate(x, y, verbose=0, batch_size=8)
        self.assertAllClose(
            loss, np.mean((expected - y) ** 2), atol=atol, rtol=atol,
            msg=f"evaluate after {step}",
        )
        self.assertGradientsReachTheRotation(model, x, step, atol)

    def assertGradientsReachTheRotation(self, model, x, step, atol):
        layer = opt_layer(model)
        inference = test_case.trainable_gradients(model, x, training=False)
        training = test_case.trainable_gradients(model, x, training=True)
        for variable in (layer.rotation_parameter, layer.log_gain):
            index = [v.path for v in model.trainable_variables].index(
                variable.path
            )
            self.assertIsNotNone(inference[index], f"{variable.path}, {step}")
            self.assertGreater(
                np.max(np.abs(inference[index])), 0.0, f"{variable.path}"
            )
            self.assertAllClose(
                inference[index], training[index], atol=atol, rtol=atol,
                msg=f"gradient of {variable.path} after {step}",
            )

    def assertWeightsAreThose(self, model):
        layer = opt_layer(model)
        expected = ["rotation_parameter", "bias", "log_gain", "basis"]
        self.assertEqual([w.name for w in layer.weights], expected)
        self.assertLen(layer.get_weights(), 4)
        self.assertEqual(
            layer.count_params(), sum(int(np.prod(w.shape)) for w in layer.weights)
        )



class StateTest(StateTestCase):
    @parameterized.named_parameters(CASES)
    def test_every_output_path_follows_the_variables(self, name, policy):
        keras.config.set_dtype_policy(policy)
        model = compile_model(make_model(name))
        layer = opt_layer(model)
        x, y = data(model)
        temp = self.get_temp_dir()
        model.save_weights(os.path.join(temp, "start.weights.h5"))
        rng = np.random.default_rng(1)

        def set_weights(model):
            weights = [
                w + 0.3 * rng.standard_normal(w.shape).astype(w.dtype)
                for w in layer.get_weights()
            ]
            layer.set_weights(weights)

        def assign(model):
            size = layer.rotation_parameter.shape[0]
            layer.rotation_parameter.assign(
                np.eye(size) + 0.5 * rng.standard_normal((size, size))
            )
            layer.log_gain.assign(rng.standard_normal(layer.log_gain.shape))

        def keras_file(model):
            path = os.path.join(temp, "model.keras")
            model.save(path)
            return keras.saving.load_model(path)

        steps = [
            ("predict", lambda m: m.predict(x, verbose=0)),
            ("evaluate", lambda m: m.evaluate(x, y, verbose=0)),
            ("fit", lambda m: m.fit(x, y, batch_size=4, verbose=0)),
            ("train_on_batch", lambda m: m.train_on_batch(x, y)),
            ("set_weights", set_weights),
            ("variable.assign", assign),
            ("load_weights", lambda m: m.load_weights(
                os.path.join(temp, "start.weights.h5"))),
            ("a .keras load", keras_file),
        ]
        for step, change in steps:
            model.predict(x, verbose=0)
            model = change(model) if step == "a .keras load" else model
            if step != "a .keras load":
                change(model)
            self.assertCoherent(model, name, step, policy)
            self.assertWeightsAreThose(model)

    def test_set_weights_takes_the_real_weights(self):
        model = make_model("dense")
        layer = opt_layer(model)
        arrays = [np.full(w.shape, 0.5, "float32") for w in layer.weights]
        layer.set_weights(arrays)
        for weight, array in zip(layer.weights, arrays):
            self.assertAllEqual(weight, array)
        self.assertEqual(layer.count_params(), 36 + 4 + 4 + 24)


class TensorFlowStateTest(StateTestCase):
    """The state paths that exist on TensorFlow only."""

    def setUp(self):
        super().setUp()
        self.model = compile_model(make_model("conv2d"))
        self.x, self.y = data(self.model)
        self.model.fit(self.x, self.y, batch_size=4, verbose=0)

    def test_checkpoint_restore(self):
        import tensorflow as tf

        model, x, y = self.model, self.x, self.y
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        model.predict(x, verbose=0)
        model.train_on_batch(x, y)
        path = checkpoint.save(os.path.join(self.get_temp_dir(), "ckpt"))
        model.predict(x, verbose=0)
        checkpoint.restore(path)
        self.assertCoherent(
            model, "conv2d", "a tf.train.Checkpoint restore", "float32"
        )

    def test_backup_and_restore_resume(self):
        model, x, y = self.model, self.x, self.y
        backup = os.path.join(self.get_temp_dir(), "backup")

        class Interrupt(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    raise RuntimeError("interrupted")

        with self.assertRaisesRegex(RuntimeError, "interrupted"):
            model.fit(x, y, epochs=3, verbose=0, callbacks=[
                keras.callbacks.BackupAndRestore(backup), Interrupt()])
        model.train_on_batch(x, y)
        model.predict(x, verbose=0)
        model.fit(x, y, epochs=1, verbose=0, callbacks=[
            _Check(self, "inside a resumed fit"),
            keras.callbacks.BackupAndRestore(backup)])
        self.assertCoherent(model, "conv2d", "a BackupAndRestore resume", "float32")

    def test_distribute_train_resume(self):
        import tensorflow as tf

        from keras_opt import distribute

        model, x, y = self.model, self.x, self.y
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
        directory = os.path.join(self.get_temp_dir(), "ckpt")
        distribute.train(model, dataset, epochs=1, checkpoint_dir=directory)
        model.predict(x, verbose=0)
        model.train_on_batch(x, y)
        model.predict(x, verbose=0)
        # A finished run restores its last checkpoint and trains no more.
        distribute.train(model, dataset, epochs=1, checkpoint_dir=directory)
        self.assertCoherent(model, "conv2d", "a distribute.train resume", "float32")

    def test_mirrored_strategy(self):
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(
            cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
        self.assertEqual(strategy.num_replicas_in_sync, 2)
        with strategy.scope():
            model = compile_model(make_model("conv2d"))
        x, y = data(model)
        for _ in range(2):
            model.predict(x, verbose=0)
            model.fit(x, y, batch_size=4, verbose=0)
            self.assertCoherent(
                model, "conv2d", "fit under MirroredStrategy", "float32"
            )



class _Check(keras.callbacks.Callback):
    """Checks the model at the start of a (resumed) fit."""

    def __init__(self, test, step):
        super().__init__()
        self.test = test
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            layer = opt_layer(self.model)
            self.test.assertAllClose(
                np.asarray(layer.kernel).reshape(layer.basis.shape),
                linalg_test.numpy_gram_schmidt(
                    np.asarray(layer.rotation_parameter, np.float64), "columns"
                )
                @ np.asarray(layer.basis)
                * np.exp(np.asarray(layer.log_gain)),
                atol=1e-5, msg=self.step,
            )


if __name__ == "__main__":
    absltest.main()
