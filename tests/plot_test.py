import csv
import os

from absl.testing import absltest

from keras_opt import plot
from tests import test_case

HISTORY = {
    "loss": [2.0, 1.5, 1.2],
    "energy/opt_conv": [0.51, 0.51, 0.51],
    "energy/classifier": [0.60, 0.58, 0.55],
    "energy/opt_total": [1.02, 1.02, 1.02],
    "orthogonality/opt_conv": [1e-7, 2e-7, 1.5e-7],
}


class PlotTrainingDynamicsTest(test_case.TestCase):
    def assertIsPng(self, path):
        self.assertTrue(os.path.isfile(path))
        with open(path, "rb") as file:
            self.assertEqual(file.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(path), 10_000)

    def test_from_history_dict(self):
        path = os.path.join(self.get_temp_dir(), "dynamics.png")
        self.assertEqual(
            plot.plot_training_dynamics(HISTORY, path, title="CNN-6"), path
        )
        self.assertIsPng(path)

    def test_from_csv_logger_file(self):
        directory = self.get_temp_dir()
        csv_path = os.path.join(directory, "log.csv")
        with open(csv_path, "w", newline="") as file:
            writer = csv.DictWriter(file, ["epoch"] + sorted(HISTORY))
            writer.writeheader()
            for epoch in range(3):
                row = {key: values[epoch] for key, values in HISTORY.items()}
                writer.writerow({"epoch": epoch, **row})
        path = os.path.join(directory, "dynamics.png")
        plot.plot_training_dynamics(csv_path, path)
        self.assertIsPng(path)

    def test_from_fit_history(self):
        import keras

        import keras_opt

        model = keras.Sequential(
            [keras.Input((4,)), keras_opt.layers.OPTDense(3, name="opt")]
        )
        model.compile(optimizer="sgd", loss="mse")
        history = model.fit(
            keras.ops.ones((8, 4)),
            keras.ops.zeros((8, 3)),
            epochs=2,
            verbose=0,
            callbacks=[
                keras_opt.callbacks.EnergyMonitor(),
                keras_opt.callbacks.OrthogonalityMonitor(),
            ],
        )
        path = os.path.join(self.get_temp_dir(), "fit.png")
        plot.plot_training_dynamics(history, path)
        self.assertIsPng(path)

    def test_no_energy_keys(self):
        with self.assertRaisesRegex(ValueError, "'energy/'"):
            plot.plot_training_dynamics(
                {"loss": [1.0]}, os.path.join(self.get_temp_dir(), "x.png")
            )


if __name__ == "__main__":
    absltest.main()
