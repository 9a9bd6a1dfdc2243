import keras
import numpy as np
from absl.testing import absltest

from keras_opt import callbacks
from tests import test_case
from tests.callbacks import _models


class OrthogonalityMonitorTest(test_case.TestCase):
    def _fit(self, monitor, orthogonalizer="gram_schmidt", epochs=3):
        model = _models.opt_model(orthogonalizer)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x, y = _models.data()
        history = model.fit(
            x, y, epochs=epochs, verbose=0, callbacks=[monitor]
        )
        return model, history

    def test_exact_map_within_budget_runs_all_epochs(self):
        monitor = callbacks.OrthogonalityMonitor(budget=1e-4, on_exceed="stop")
        _, history = self._fit(monitor)
        self.assertLen(history.history["orthogonality/opt_dense"], 3)
        self.assertLess(max(history.history["orthogonality/opt_dense"]), 1e-4)

    def test_budget_warns(self):
        monitor = callbacks.OrthogonalityMonitor(budget=1e-12)
        with self.assertWarnsRegex(UserWarning, "above the budget 1e-12"):
            _, history = self._fit(monitor, epochs=2)
        self.assertLen(history.history["loss"], 2)

    def test_budget_stops_training(self):
        monitor = callbacks.OrthogonalityMonitor(
            budget=1e-12, on_exceed="stop"
        )
        with self.assertWarnsRegex(UserWarning, "Stopping training"):
            _, history = self._fit(monitor, epochs=4)
        self.assertLen(history.history["loss"], 1)

    def test_penalty_layers_are_logged_but_not_budgeted(self):
        # OR's R is the raw N(0, 1) matrix, far from orthogonal.
        monitor = callbacks.OrthogonalityMonitor(budget=1e-4, on_exceed="stop")
        model, history = self._fit(monitor, orthogonalizer="or", epochs=2)
        self.assertLen(history.history["loss"], 2)
        rotation = keras.ops.convert_to_numpy(
            model.get_layer("opt_dense").rotation
        ).astype("float64")
        error = np.max(np.abs(rotation.T @ rotation - np.eye(len(rotation))))
        self.assertAllClose(
            history.history["orthogonality/opt_dense"][-1], error, rtol=1e-6
        )
        self.assertGreater(error, 1.0)

    def test_config_round_trip_and_errors(self):
        monitor = callbacks.OrthogonalityMonitor(
            budget=1e-5, on_exceed="stop", frequency=2
        )
        revived = callbacks.OrthogonalityMonitor.from_config(
            monitor.get_config()
        )
        self.assertEqual(revived.get_config(), monitor.get_config())
        with self.assertRaisesRegex(ValueError, "budget=0"):
            callbacks.OrthogonalityMonitor(budget=0)
        with self.assertRaisesRegex(ValueError, "on_exceed='raise'"):
            callbacks.OrthogonalityMonitor(on_exceed="raise")


if __name__ == "__main__":
    absltest.main()
