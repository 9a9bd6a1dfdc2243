"""The monitors under MirroredStrategy on 2 logical CPUs (TF backend only)."""

import keras
from absl.testing import absltest

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    # Must run before any op: virtual devices cannot be changed afterwards.
    _cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
        )
    except RuntimeError:
        pass

import keras_opt  # noqa: E402
from keras_opt import callbacks  # noqa: E402
from keras_opt import regularizers  # noqa: E402
from tests import test_case  # noqa: E402
from tests.callbacks import _models  # noqa: E402
from tests.energy_test import numpy_energy  # noqa: E402


class MirroredMonitorsTest(test_case.TestCase):
    def setUp(self):
        super().setUp()
        if keras.backend.backend() != "tensorflow":
            self.skipTest("MirroredStrategy needs the TensorFlow backend.")
        if len(tf.config.list_logical_devices("CPU")) < 2:
            self.skipTest("Could not configure 2 logical CPUs.")

    def test_monitors_and_srip_scheduler_under_mirrored_strategy(self):
        strategy = tf.distribute.MirroredStrategy(
            ["/cpu:0", "/cpu:1"],
            # Collective all-reduce keys clash between strategies made in one
            # process (pytest runs every file in one); reduce to one device.
            cross_device_ops=tf.distribute.ReductionToOneDevice(),
        )
        with strategy.scope():
            srip = regularizers.SRIP(0.5)
            model = keras.Sequential(
                [
                    keras.Input((6, 6, 2)),
                    keras_opt.layers.OPTConv2D(4, 3, name="opt_conv"),
                    keras.layers.Flatten(),
                    keras_opt.layers.OPTDense(8, name="opt_dense"),
                    keras.layers.Dense(
                        3, kernel_regularizer=srip, name="classifier"
                    ),
                ]
            )
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x, y = _models.data()
        history = model.fit(
            x,
            y,
            epochs=2,
            batch_size=16,
            verbose=0,
            callbacks=[
                callbacks.EnergyMonitor(include_plain_layers=True),
                callbacks.OrthogonalityMonitor(budget=1e-4, on_exceed="stop"),
                callbacks.SRIPScheduler(schedule=lambda epoch: 0.5**epoch),
            ],
        )
        self.assertLen(history.history["loss"], 2)
        for name in ("opt_conv", "opt_dense", "classifier"):
            kernel = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
            self.assertAllClose(
                history.history[f"energy/{name}"][-1],
                numpy_energy(kernel),
                rtol=1e-5,
            )
        self.assertLess(max(history.history["orthogonality/opt_dense"]), 1e-4)
        self.assertAllClose(srip.coefficient, 0.25)


if __name__ == "__main__":
    absltest.main()
