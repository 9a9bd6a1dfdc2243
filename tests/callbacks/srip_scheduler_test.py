import keras
import numpy as np
from absl.testing import absltest

import keras_opt
from keras_opt import callbacks
from keras_opt import regularizers
from tests import test_case


class SRIPSchedulerTest(test_case.TestCase):
    def test_default_schedule_is_the_srip_recipe(self):
        expected = {0: 1.0, 19: 1.0, 20: 1e-3, 49: 1e-3, 50: 1e-4,
                    69: 1e-4, 70: 1e-6, 119: 1e-6, 120: 0.0, 199: 0.0}
        for epoch, multiplier in expected.items():
            self.assertEqual(callbacks.srip_schedule(epoch), multiplier)

    def test_finds_regularizers_on_plain_and_opt_layers(self):
        hidden = regularizers.SRIP(0.02)
        rotation = regularizers.SRIP(0.04)
        model = keras.Sequential(
            [
                keras.Input((5,)),
                keras_opt.layers.OPTDense(4, rotation_regularizer=rotation),
                keras.layers.Dense(3, kernel_regularizer=hidden),
            ]
        )
        model.compile(optimizer="sgd", loss="mse")
        x = np.ones((8, 5), dtype="float32")
        y = np.zeros((8, 3), dtype="float32")
        scheduler = callbacks.SRIPScheduler(
            schedule=lambda epoch: 0.1 ** epoch
        )
        history = model.fit(x, y, epochs=3, verbose=0, callbacks=[scheduler])
        self.assertAllClose(hidden.coefficient, 0.02 * 0.01)
        self.assertAllClose(rotation.coefficient, 0.04 * 0.01)
        self.assertAllClose(history.history["srip_multiplier"], [1, 0.1, 0.01])

    def test_explicit_regularizers_only(self):
        chosen = regularizers.SRIP(1.0)
        other = regularizers.SRIP(1.0)
        model = keras.Sequential(
            [keras.Input((2,)), keras.layers.Dense(2, kernel_regularizer=other)]
        )
        model.compile(optimizer="sgd", loss="mse")
        scheduler = callbacks.SRIPScheduler(
            schedule=lambda epoch: 0.5, regularizers=[chosen]
        )
        model.fit(np.ones((2, 2)), np.ones((2, 2)), verbose=0,
                  callbacks=[scheduler])
        self.assertAllClose(chosen.coefficient, 0.5)
        self.assertAllClose(other.coefficient, 1.0)

    def test_config_round_trip_and_errors(self):
        scheduler = callbacks.SRIPScheduler()
        revived = callbacks.SRIPScheduler.from_config(scheduler.get_config())
        self.assertIs(revived.schedule, callbacks.srip_schedule)
        with self.assertRaisesRegex(TypeError, "schedule=3"):
            callbacks.SRIPScheduler(schedule=3)
        with self.assertRaisesRegex(TypeError, "SRIP"):
            callbacks.SRIPScheduler(regularizers=[keras.regularizers.L2()])


if __name__ == "__main__":
    absltest.main()
