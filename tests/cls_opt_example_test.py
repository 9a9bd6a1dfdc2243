"""Tests of examples/cls_opt.py on synthetic Fashion-MNIST-shaped data."""

import os

import keras
import numpy as np
from absl import flags
from absl.testing import absltest

import keras_opt
from examples import cls_opt
from tests import test_case
from tests.examples_test import _synthetic_splits


def _flag_values(argv=()):
    flag_values = flags.FlagValues()
    cls_opt.define_flags(flag_values)
    flag_values(["cls_opt", "--verbose=0", *argv])
    return flag_values


class ClsOptExampleTest(test_case.TestCase):
    def test_trains_both_heads_and_draws_the_features(self):
        model_dir = self.get_temp_dir()
        # The script's learning rate (0.05): at 0.1 this 320-example task
        # collapses either head on some seeds (the plain one at seed 1).
        flag_values = _flag_values(
            ["--epochs=6", "--batch_size=32", "--validation_size=0",
             f"--model_dir={model_dir}"]
        )
        results = cls_opt.run(flag_values, datasets=_synthetic_splits())
        cls_run = results["runs"][0]
        plain_run = results["compare"]["runs"][0]
        # Chance is 0.1; both heads learn the synthetic classes.
        self.assertGreater(cls_run["test_accuracy"], 0.5)
        self.assertGreater(plain_run["test_accuracy"], 0.5)
        self.assertLess(cls_run["orthogonality_errors"]["classifier"], 1e-5)
        self.assertEqual(results["prototype_energy"],
                         cls_run["prototype_energy"])
        png = results["png"]
        self.assertEqual(png, os.path.join(model_dir, "cls_opt_features.png"))
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertTrue(
            os.path.exists(os.path.join(model_dir, "seed_0", "model.keras"))
        )

    def test_build_model(self):
        model = cls_opt.build_model("cls_opt", feature_dim=3)
        head = model.get_layer("classifier")
        self.assertIsInstance(head, keras_opt.layers.OPTClassifier)
        self.assertEqual(tuple(head.rotation_parameter.shape), (3, 3))
        self.assertEqual(tuple(head.basis.shape), (3, 10))
        plain = cls_opt.build_model("plain").get_layer("classifier")
        self.assertIsInstance(plain, keras.layers.Dense)
        self.assertFalse(plain.use_bias)

    def test_features_and_directions(self):
        model = cls_opt.build_model("cls_opt")
        images = np.random.default_rng(0).uniform(size=(5, 28, 28, 1))
        features, directions = cls_opt.features_and_directions(model, images)
        self.assertEqual(features.shape, (5, 2))
        logits = model.predict(images, verbose=0)
        self.assertAllClose(features @ directions, logits, atol=1e-4)

    def test_prototype_energy(self):
        keras.utils.set_random_seed(0)
        head = cls_opt.build_model("cls_opt").get_layer("classifier")
        energy = cls_opt.prototype_energy(head, seed=0)
        for key in ("s=1", "s=2"):
            mine, regular = energy["prototypes"][key], energy["regular"][key]
            # Equally spaced directions are the minimum on the circle; the
            # MinimumEnergy prototypes come within 1 % of it, far below a
            # Gaussian draw's median.
            self.assertBetween(mine, regular * (1 - 1e-6), regular * 1.01)
            self.assertLess(mine, 0.9 * energy["gaussian"][key])
        self.assertIsNone(cls_opt.prototype_energy(
            cls_opt.build_model("cls_opt", feature_dim=3).get_layer(
                "classifier"), seed=0)["regular"])
        averaged = cls_opt.mean_energy([energy, energy])
        self.assertEqual(averaged, energy)

    def test_class_mean_images(self):
        splits = _synthetic_splits(200, 10)
        images = np.concatenate([x.numpy() for x, _ in splits["train"].batch(64)])
        labels = np.concatenate([y.numpy() for _, y in splits["train"].batch(64)])
        means = cls_opt.class_mean_images(splits["train"])
        flat = images.reshape(len(labels), -1) / 255.0
        for k in range(10):
            self.assertAllClose(means[k], flat[labels == k].mean(0))

    def test_prototypes_assigned_from_the_class_means(self):
        # The trained head's (frozen) basis is the seed's MinimumEnergy draw,
        # its columns permuted by matching the class-mean training images;
        # `--noassign_prototypes` keeps the draw as it is.
        splits = _synthetic_splits(120, 20)
        keras.utils.set_random_seed(0)
        drawn = np.asarray(
            cls_opt.build_model("cls_opt").get_layer("classifier").basis)
        order = keras_opt.assignment.match_prototypes(
            cls_opt.class_mean_images(splits["train"]), drawn)
        self.assertNotEqual(list(order), list(range(10)))
        for assign, expected in ((True, drawn[:, order]), (False, drawn)):
            model_dir = os.path.join(self.get_temp_dir(), str(assign))
            cls_opt.run(_flag_values(
                ["--epochs=1", "--validation_size=0", "--png=",
                 f"--assign_prototypes={assign}", f"--model_dir={model_dir}"]
            ), datasets=splits)
            trained = keras.saving.load_model(
                os.path.join(model_dir, "seed_0", "model.keras"))
            self.assertAllClose(trained.get_layer("classifier").basis,
                                expected, atol=1e-6)

    def test_plain_method_is_refused(self):
        with self.assertRaisesRegex(ValueError, "--method"):
            cls_opt.run(_flag_values(["--method=plain"]),
                        datasets=_synthetic_splits(40, 20))


if __name__ == "__main__":
    absltest.main()
