import csv
import os

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import callbacks
from keras_opt import orthogonalizers
from keras_opt.optimizers import StiefelSGD
from tests import test_case
from tests.callbacks import _models
from tests.energy_test import numpy_energy
from tests.layers.base_opt_test import registered_names

EXACT_MAPS = [
    name
    for name in registered_names()
    if orthogonalizers.get(name).is_exact
]


def kernel_energy(layer, **kwargs):
    return numpy_energy(keras.ops.convert_to_numpy(layer.kernel), **kwargs)


class EnergyMonitorTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("writers_first", False), ("readers_first", True)
    )
    def test_values_reach_history_csv_logger_and_tensorboard(
        self, readers_first
    ):
        # In either order of `callbacks`: the monitors' keys reach the
        # callbacks that read the logs (engineering_notes §1.8).
        model = _models.opt_model()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x, y = _models.data()
        csv_path = os.path.join(self.get_temp_dir(), "log.csv")
        log_dir = self.get_temp_dir()
        writers = [
            callbacks.EnergyMonitor(include_plain_layers=True),
            callbacks.OrthogonalityMonitor(),
            callbacks.SRIPScheduler(schedule=lambda epoch: 0.5**epoch),
        ]
        readers = [
            keras.callbacks.CSVLogger(csv_path),
            keras.callbacks.TensorBoard(log_dir),
        ]
        history = model.fit(
            x,
            y,
            epochs=2,
            batch_size=16,
            verbose=0,
            callbacks=readers + writers if readers_first else writers + readers,
        )
        keys = [
            "energy/opt_conv",
            "energy/opt_dense",
            "energy/classifier",
            "energy/opt_total",
            "orthogonality/opt_conv",
            "orthogonality/opt_dense",
            "srip_multiplier",
        ]
        self.assertEqual(history.history["srip_multiplier"], [1.0, 0.5])
        for key in keys:
            self.assertLen(history.history[key], 2)
        # Last epoch's values are those of the final weights.
        for name in ("opt_conv", "opt_dense", "classifier"):
            self.assertAllClose(
                history.history[f"energy/{name}"][-1],
                kernel_energy(model.get_layer(name)),
                rtol=1e-5,
            )
        self.assertAllClose(
            history.history["energy/opt_total"],
            np.add(
                history.history["energy/opt_conv"],
                history.history["energy/opt_dense"],
            ),
            rtol=1e-6,
        )
        for name in ("opt_conv", "opt_dense"):
            layer = model.get_layer(name)
            rotation = keras.ops.convert_to_numpy(layer.rotation).astype(
                "float64"
            )
            gram = rotation.T @ rotation
            error = np.max(np.abs(gram - np.eye(len(rotation))))
            self.assertAllClose(
                history.history[f"orthogonality/{name}"][-1], error, rtol=1e-6
            )
            self.assertLess(error, 1e-5)

        with open(csv_path, newline="") as file:
            rows = list(csv.DictReader(file))
        self.assertLen(rows, 2)
        for key in keys:
            self.assertAllClose(
                [float(row[key]) for row in rows], history.history[key],
                rtol=1e-6,
            )

        scalars = _models.read_tensorboard_scalars(log_dir)
        for key in keys:
            self.assertAllClose(
                scalars[f"train:epoch_{key}"], history.history[key], rtol=1e-6
            )

    def test_monitors_run_first_and_every_callback_once(self):
        model = _models.opt_model()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x, y = _models.data()
        calls = []

        def recorder(name):
            return keras.callbacks.LambdaCallback(
                on_train_begin=lambda logs: calls.append((name, "begin")),
                on_epoch_end=lambda epoch, logs: calls.append(
                    (name, "energy/opt_total" in logs)
                ),
            )

        listed = [
            recorder("a"),
            callbacks.EnergyMonitor(),
            recorder("b"),
            callbacks.OrthogonalityMonitor(),
            recorder("c"),
        ]
        callback_list = keras.callbacks.CallbackList(
            listed, add_history=True, model=model
        )
        model.fit(
            x, y, epochs=1, verbose=0, callbacks=callback_list
        )
        self.assertEqual(
            calls,
            [("a", "begin"), ("b", "begin"), ("c", "begin")]
            + [("a", True), ("b", True), ("c", True)],
        )
        self.assertEqual(
            [type(c).__name__ for c in callback_list.callbacks],
            ["EnergyMonitor", "OrthogonalityMonitor", "LambdaCallback",
             "LambdaCallback", "LambdaCallback", "History"],
        )
        # Outside a CallbackList the hooks run where they are called.
        monitor = callbacks.EnergyMonitor()
        monitor.set_model(model)
        monitor.on_train_begin()
        logs = {}
        monitor.on_epoch_end(0, logs)
        self.assertIn("energy/opt_total", logs)

    @parameterized.parameters(*EXACT_MAPS, "stiefel")
    def test_opt_energy_constant_through_fit_plain_energy_changes(
        self, orthogonalizer
    ):
        model = _models.opt_model(orthogonalizer)
        optimizer = (
            StiefelSGD(0.1)
            if orthogonalizer == "stiefel"
            else keras.optimizers.SGD(0.1, momentum=0.9)
        )
        model.compile(optimizer=optimizer, loss="categorical_crossentropy")
        x, y = _models.data()
        before = {
            name: {s: kernel_energy(model.get_layer(name), s=s) for s in (0, 2)}
            for name in ("opt_conv", "opt_dense", "classifier")
        }
        parameters = [
            keras.ops.convert_to_numpy(model.get_layer(n).rotation_parameter)
            for n in ("opt_conv", "opt_dense")
        ]
        history = model.fit(
            x,
            y,
            epochs=3,
            batch_size=8,
            verbose=0,
            callbacks=[callbacks.EnergyMonitor(include_plain_layers=True)],
        )
        # Training did move the rotations.
        for name, start in zip(("opt_conv", "opt_dense"), parameters):
            moved = keras.ops.convert_to_numpy(
                model.get_layer(name).rotation_parameter
            )
            self.assertGreater(np.max(np.abs(moved - start)), 1e-3)
        for name in ("opt_conv", "opt_dense"):
            self.assertAllClose(
                history.history[f"energy/{name}"],
                [before[name][2]] * 3,
                rtol=1e-5,
            )
            self.assertAllClose(
                kernel_energy(model.get_layer(name), s=0),
                before[name][0],
                rtol=1e-5,
            )
        changes = np.abs(
            np.array(history.history["energy/classifier"])
            / before["classifier"][2]
            - 1.0
        )
        self.assertGreater(changes[-1], 1e-3)

    def test_batch_frequency_and_epoch_frequency(self):
        model = _models.opt_model()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x, y = _models.data()
        monitor = callbacks.EnergyMonitor(frequency=2, update_freq="batch")
        batch_logs = []
        recorder = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: batch_logs.append(
                dict(logs)
            )
        )
        history = model.fit(
            x, y, epochs=2, batch_size=8, verbose=0,
            callbacks=[monitor, recorder],
        )
        # 4 batches per epoch: batches 2 and 4 of each epoch carry values.
        carrying = ["energy/opt_dense" in logs for logs in batch_logs]
        self.assertEqual(carrying, [False, True, False, True] * 2)
        self.assertLen(history.history["energy/opt_dense"], 2)

        calls = []
        monitor = callbacks.EnergyMonitor(frequency=3)
        original = monitor.measure
        monitor.measure = lambda: calls.append(1) or original()
        history = model.fit(
            x, y, epochs=5, verbose=0, callbacks=[monitor]
        )
        # Epochs 1 (first), 3 (frequency) and 5 (last) are computed.
        self.assertLen(calls, 3)
        self.assertLen(history.history["energy/opt_total"], 5)

    @parameterized.parameters(
        ("a1", True, 1e-4), (0, False, 1e-4), (1, True, 0.5), (2, False, 0.5)
    )
    def test_non_default_settings_are_used(self, s, half_space, epsilon):
        model = _models.opt_model()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x, y = _models.data()
        monitor = callbacks.EnergyMonitor(
            s=s, half_space=half_space, epsilon=epsilon,
            include_plain_layers=True,
        )
        history = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
        for name in ("opt_conv", "opt_dense", "classifier"):
            kernel = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
            logged = history.history[f"energy/{name}"][-1]
            self.assertAllClose(
                logged,
                numpy_energy(
                    kernel, s=s, half_space=half_space, epsilon=epsilon
                ),
                rtol=1e-5,
            )
            # The defaults give another value, so ignoring a setting fails.
            self.assertGreater(
                abs(logged / numpy_energy(kernel) - 1.0), 1e-3
            )

    def test_finds_layers_of_nested_models(self):
        inner = _models.opt_model()
        inputs = keras.Input((6, 6, 2))
        outer = keras_opt.layers.OPTDense(2, name="outer_dense")
        model = keras.Model(inputs, outer(inner(inputs)))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x, _ = _models.data()
        history = model.fit(
            x, np.zeros((len(x), 2)), epochs=1, verbose=0,
            callbacks=[callbacks.EnergyMonitor()],
        )
        layers = [inner.get_layer("opt_conv"), inner.get_layer("opt_dense")]
        for layer in layers + [outer]:
            self.assertAllClose(
                history.history[f"energy/{layer.name}"][-1],
                kernel_energy(layer),
                rtol=1e-5,
            )
        self.assertNotIn("energy/classifier", history.history)

    def test_config_round_trip(self):
        monitor = callbacks.EnergyMonitor(
            s="a1", half_space=True, include_plain_layers=True, frequency=3,
            update_freq="batch", chunk_size=128,
        )
        revived = callbacks.EnergyMonitor.from_config(monitor.get_config())
        self.assertEqual(revived.get_config(), monitor.get_config())

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "update_freq='step'"):
            callbacks.EnergyMonitor(update_freq="step")
        with self.assertRaisesRegex(ValueError, "frequency=0"):
            callbacks.EnergyMonitor(frequency=0)
        with self.assertRaisesRegex(ValueError, "Received: s=4"):
            callbacks.EnergyMonitor(s=4)


if __name__ == "__main__":
    absltest.main()
