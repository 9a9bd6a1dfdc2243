"""Tests of the main job, examples/fashion_mnist.py, on synthetic data."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl import flags
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from examples import fashion_mnist
from tests import test_case


def _synthetic_splits(train_size=320, test_size=160, seed=0):
    """Fashion-MNIST-shaped data whose class is a bright block's position."""
    rng = np.random.default_rng(seed)

    def make(size):
        labels = rng.integers(0, 10, size=size)
        images = rng.integers(0, 60, size=(size, 28, 28, 1))
        for i, label in enumerate(labels):
            row, col = 5 * (label // 2) + 2, 14 * (label % 2)
            images[i, row : row + 5, col : col + 14] = 255
        return tf.data.Dataset.from_tensor_slices(
            (images.astype(np.uint8), labels.astype(np.int64))
        )

    return {"train": make(train_size), "test": make(test_size)}


def _flag_values(argv=()):
    flag_values = flags.FlagValues()
    fashion_mnist.define_flags(flag_values)
    flag_values(["fashion_mnist", "--verbose=0", *argv])
    return flag_values


class FashionMnistTest(test_case.TestCase):
    def test_flags(self):
        flag_values = _flag_values(["--epochs=3", "--orthogonalizer=ogd"])
        self.assertEqual(flag_values.epochs, 3)
        self.assertEqual(flag_values.orthogonalizer, "ogd")
        self.assertEqual(
            set(flag_values["orthogonalizer"].parser.enum_values),
            set(keras_opt.orthogonalizers.ALIASES),
        )
        with self.assertRaises(flags.IllegalFlagValueError):
            _flag_values(["--orthogonalizer=qr"])

    @parameterized.named_parameters(
        ("gram_schmidt", "gram_schmidt"), ("ogd", "ogd")
    )
    def test_run_learns_and_keeps_rotations_orthogonal(self, orthogonalizer):
        flag_values = _flag_values(
            [
                "--epochs=3",
                "--batch_size=32",
                f"--orthogonalizer={orthogonalizer}",
            ]
        )
        stats = fashion_mnist.run(flag_values, datasets=_synthetic_splits())

        self.assertGreater(stats["test_accuracy"], 0.8)  # chance is 0.1
        self.assertEqual(stats["train_steps"], 3 * 10)
        errors = stats["orthogonality_errors"]
        self.assertLen(errors, 3)
        for name, error in errors.items():
            self.assertLess(error, 1e-4, name)
            self.assertLen(stats["history"][f"orthogonality/{name}"], 3)
            # R orthogonal: the neurons' energy stays that of the basis V.
            energies = stats["history"][f"energy/{name}"]
            self.assertAllClose(energies, [energies[0]] * 3, rtol=1e-4)
        report = fashion_mnist.format_stats(stats)
        self.assertIn(f"test accuracy: {stats['test_accuracy']:.4f}", report)
        for name in errors:
            self.assertIn(name, report)

    def test_max_steps_per_epoch_and_model_dir(self):
        model_dir = self.get_temp_dir()
        flag_values = _flag_values(
            [
                "--epochs=2",
                "--batch_size=16",
                "--max_steps_per_epoch=3",
                f"--model_dir={model_dir}",
            ]
        )
        datasets = _synthetic_splits(train_size=200, test_size=32)
        stats = fashion_mnist.run(flag_values, datasets=datasets)

        self.assertEqual(stats["train_steps"], 2 * 3)
        model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
        # The reloaded rotations are the trained ones.
        errors = {
            layer.name: keras_opt.linalg.orthogonality_error(
                keras.ops.cast(layer.orthogonalizer(layer.rotation), "float64")
            )
            for layer in model.layers
            if isinstance(layer, keras_opt.layers.BaseOPT)
        }
        self.assertEqual(errors.keys(), stats["orthogonality_errors"].keys())
        for name, error in errors.items():
            self.assertAllClose(
                error, stats["orthogonality_errors"][name], atol=0, rtol=1e-12
            )
        self.assertTrue(os.listdir(os.path.join(model_dir, "train")))

    def test_build_model_uses_opt_layers(self):
        model = fashion_mnist.build_model("householder")
        opt_layers = [
            layer
            for layer in model.layers
            if isinstance(layer, keras_opt.layers.BaseOPT)
        ]
        self.assertLen(opt_layers, 3)
        # d = fan-in: 3·3·1, 3·3·16 and 2·2·32.
        self.assertEqual(
            [tuple(layer.rotation.shape) for layer in opt_layers],
            [(9, 9), (144, 144), (128, 128)],
        )
        for layer in opt_layers:
            self.assertOrthonormal(layer.orthogonalizer(layer.rotation))
        self.assertEqual(model.output_shape, (None, 10))


if __name__ == "__main__":
    absltest.main()
