"""Tests of examples/cifar.py on TFDS mock data (no download)."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import flags
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from examples import cifar
from tests import test_case


def _flag_values(argv=()):
    flag_values = flags.FlagValues()
    cifar.define_flags(flag_values)
    flag_values(["cifar", "--verbose=0", *argv])
    return flag_values


class CifarExampleTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("mlp", ["--model=mlp", "--method=plain"]),  # OPT: d = 3072
        ("cnn6_gs", ["--model=cnn6", "--method=gs"]),
        ("cnn6_ogd", ["--model=cnn6", "--method=ogd"]),
        ("cnn6_plain", ["--model=cnn6", "--method=plain"]),
        ("cnn9", ["--model=cnn9", "--method=cayley"]),
        ("wide_cnn9_s_opt", ["--model=wide_cnn9", "--subspace=0.0625"]),
        ("resnet20", ["--model=resnet20"]),
        ("resnet32_s_opt", ["--model=resnet32", "--subspace=0.25"]),
        ("cnn6_s_opt", ["--model=cnn6", "--subspace=0.25"]),
    )
    def test_a_few_steps_on_mock_data(self, argv):
        flag_values = _flag_values(
            [
                "--train_steps=3",
                "--steps_per_epoch=3",
                "--episode_steps=1",
                "--batch_size=4",
                *argv,
            ]
        )
        with tfds.testing.mock_data(num_examples=8):
            results = cifar.run(flag_values)
        (record,) = results["runs"]
        self.assertEqual(record["train_steps"], 3)
        self.assertTrue(np.isfinite(record["test_loss"]))
        self.assertBetween(record["test_accuracy"], 0.0, 1.0)
        model = cifar.build_model(flag_values)
        self.assertEqual(
            record["paper_parameter_count"],
            keras_opt.models.paper_parameter_count(model),
        )
        expected = 3 if flag_values.subspace else None
        self.assertEqual(record["subspace_episodes"], expected)

    @parameterized.named_parameters(
        ("default", "default"), ("mirrored", "mirrored")
    )
    def test_custom_loop_runs_the_monitors_and_episodes(self, strategy):
        # The multi-worker path (`keras_opt.distribute.train`), forced with
        # --training_loop=custom: S-OPT's episodes and the monitors run.
        model_dir = self.get_temp_dir()
        flag_values = _flag_values(
            [
                "--train_steps=4",
                "--steps_per_epoch=2",
                "--episode_steps=1",
                "--batch_size=4",
                "--model=cnn6",
                "--subspace=0.25",
                f"--strategy={strategy}",
                "--training_loop=custom",
                f"--model_dir={model_dir}",
            ]
        )
        with tfds.testing.mock_data(num_examples=8):
            results = cifar.run(flag_values)
        (record,) = results["runs"]
        self.assertEqual(record["train_steps"], 4)
        self.assertEqual(record["subspace_episodes"], 4)
        self.assertEqual(record["epochs_run"], 2)
        self.assertBetween(record["test_accuracy"], 0.0, 1.0)
        self.assertNotEmpty(record["orthogonality_errors"])
        for name, error in record["orthogonality_errors"].items():
            self.assertLess(error, 1e-4, msg=name)
        self.assertIn("opt_total", record["energy_first_last"])
        self.assertLen(record["history"]["energy/opt_total"], 2)
        self.assertNotEmpty(
            tf.io.gfile.glob(f"{model_dir}/seed_0/checkpoints/ckpt-*")
        )

    def test_official_loss(self):
        rng = np.random.default_rng(0)
        logits = rng.standard_normal((4, 100)).astype("float32") * 5
        labels = np.array([0, 5, 99, 42])
        targets = np.full((4, 100), 0.01 / 100)
        targets[np.arange(4), labels] += 0.99
        softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        expected = -(targets * np.log(softmax + 1e-4)).sum(-1).mean()
        self.assertAllClose(
            cifar.OfficialLoss()(labels, logits), expected, rtol=1e-5
        )
        # The floor caps the loss of a hopeless sample at about −log(1e-4).
        hopeless = np.full((1, 100), -50.0, "float32")
        hopeless[0, 1] = 50.0
        self.assertLess(float(cifar.OfficialLoss()([0], hopeless)), 9.22)

    def test_augment_crops_a_mirror_padded_flip(self):
        image = np.arange(32 * 32 * 3).reshape(32, 32, 3).astype("uint8")
        tf.random.set_seed(0)
        for _ in range(5):
            out, _ = cifar.augment(tf.constant(image), 0)
            out = out.numpy()
            self.assertEqual(out.shape, (32, 32, 3))
            padded = np.pad(image, ((4, 4), (4, 4), (0, 0)), "symmetric")
            found = any(
                np.array_equal(out, crop) or np.array_equal(out, crop[:, ::-1])
                for crop in (
                    padded[i : i + 32, j : j + 32]
                    for i in range(9)
                    for j in range(9)
                )
            )
            self.assertTrue(found)

    @parameterized.named_parameters(
        ("opt", [], 75_000, (30_000, 50_000, 65_000), None),
        ("s_opt", ["--subspace=0.25"], 300_000, (120_000, 195_000, 255_000),
         None),
        ("ogd", ["--method=ogd"], 75_000, (30_000, 50_000, 65_000),
         [0.02, 0.02, 0.004, 0.0008, 0.00016]),
    )
    def test_recipe_schedules(self, argv, steps, drops, rotation_rates):
        flag_values = _flag_values(argv)
        self.assertEqual(cifar.schedule(flag_values)[0], steps)
        optimizer = cifar.build_optimizer(flag_values)
        probe = [0, drops[0] - 1] + [drop + 1 for drop in drops]
        rates = [0.1, 0.1, 0.01, 0.001, 0.0001]
        schedule = optimizer._learning_rate
        self.assertAllClose([float(schedule(s)) for s in probe], rates)
        if rotation_rates:
            rotation = optimizer._rotation_learning_rate
            self.assertAllClose(
                [float(rotation(s)) for s in probe], rotation_rates
            )

    def test_ogd_decays_only_the_plain_variables_by_a_tenth(self):
        model = cifar.build_model(_flag_values(["--method=ogd"]))
        self.assertIsNone(model.get_layer("conv1_1").rotation_regularizer)
        l2 = model.get_layer("score").kernel_regularizer
        self.assertAllClose(l2.l2, 0.1 * 5e-4 / 2)

    def test_baselines_other_than_plain_are_refused(self):
        with self.assertRaisesRegex(ValueError, "--method"):
            cifar.build_model(_flag_values(["--method=srip"]))


if __name__ == "__main__":
    absltest.main()
