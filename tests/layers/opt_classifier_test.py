import os

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import layers
from keras_opt import models
from tests import linalg_test
from tests import test_case


def _classifier_model(**kwargs):
    return keras.Sequential(
        [keras.Input((16,)), layers.OPTClassifier(2000, **kwargs)]
    )


class OPTClassifierTest(test_case.TestCase):
    def test_logits_are_x_r_v(self):
        head = layers.OPTClassifier(7)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3, 5)).astype("float32")
        head.build((None, 5))
        # Away from R = I, where rows and columns give the same R.
        head.rotation_parameter.assign(rng.standard_normal((5, 5)))
        logits = head(x)
        rotation = linalg_test.numpy_gram_schmidt(
            np.asarray(head.rotation_parameter, np.float64), "columns"
        )
        basis = np.asarray(head.basis, np.float64)
        self.assertAllClose(logits, x @ rotation @ basis, atol=1e-5)
        self.assertAllClose(head.kernel, rotation @ basis, atol=1e-5)
        self.assertIsNone(head.bias)
        self.assertEqual(tuple(head.basis.shape), (5, 7))
        self.assertFalse(head.basis.trainable)

    def test_paper_count_is_d_d_minus_1_over_2(self):
        # The paper's CLS-OPT rows: 512·511/2 = 130,816 ("131K").
        model = keras.Sequential(
            [keras.Input((512,)), layers.OPTClassifier(1000, recipe="official")]
        )
        self.assertEqual(models.paper_parameter_count(model), 130_816)
        # The default recipe learns no gain in a classifier, unless asked.
        model = keras.Sequential(
            [keras.Input((512,)), layers.OPTClassifier(1000)]
        )
        self.assertEqual(models.paper_parameter_count(model), 130_816)
        self.assertIsNone(model.layers[0].log_gain)
        model = keras.Sequential(
            [keras.Input((512,)), layers.OPTClassifier(1000, use_gain=True)]
        )
        self.assertEqual(models.paper_parameter_count(model), 131_816)

    def test_training_keeps_prototypes_and_orthogonality(self):
        model = _classifier_model(orthogonalizer="cayley")
        basis = np.asarray(model.layers[0].basis).copy()
        model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 16)).astype("float32")
        y = rng.integers(0, 2000, 64)
        before = model.evaluate(x, y, verbose=0)
        model.fit(x, y, epochs=5, batch_size=16, verbose=0)
        self.assertLess(model.evaluate(x, y, verbose=0), before)
        self.assertAllEqual(model.layers[0].basis, basis)
        self.assertOrthonormal(model.layers[0].rotation)

    @parameterized.named_parameters(("keras", "model.keras"),
                                    ("weights", "model.weights.h5"))
    def test_save_basis_false_stores_only_the_rotation(self, filename):
        x = np.random.default_rng(0).standard_normal((4, 16)).astype("float32")
        sizes = {}
        for save_basis in (True, False):
            keras.utils.set_random_seed(save_basis)
            model = _classifier_model(save_basis=save_basis)
            model.layers[0].rotation_parameter.assign(
                np.random.default_rng(1).standard_normal((16, 16))
            )
            path = os.path.join(self.get_temp_dir(), filename)
            if filename.endswith(".keras"):
                model.save(path)
                restored = keras.saving.load_model(path)
            else:
                model.save_weights(path)
                restored = keras.models.clone_model(model)
                restored.load_weights(path)
            self.assertAllEqual(restored(x), model(x))
            self.assertAllEqual(restored.layers[0].basis, model.layers[0].basis)
            sizes[save_basis] = os.path.getsize(path)
        # V is 16·2000 float32 = 128,000 bytes; P is 16·16 = 1,024.
        self.assertGreater(sizes[True], 128_000)
        self.assertLess(sizes[False], 128_000 / 4)
        self.assertLess(sizes[False], sizes[True] - 120_000)

    def test_save_basis_false_needs_a_seeded_fixed_basis(self):
        with self.assertRaisesRegex(ValueError, "needs a seed"):
            layers.OPTClassifier(
                3, save_basis=False, basis_initializer="random_normal"
            )
        with self.assertRaisesRegex(ValueError, "trainable_basis=False"):
            layers.OPTClassifier(3, save_basis=False, trainable_basis=True)
        head = layers.OPTClassifier(
            3,
            save_basis=False,
            basis_initializer=keras.initializers.RandomNormal(seed=3),
        )
        self.assertFalse(head.get_config()["save_basis"])

    def test_s_opt_head(self):
        head = layers.OPTClassifier(30, subspace=4)
        x = np.random.default_rng(0).standard_normal((3, 8)).astype("float32")
        head(x)
        head.rotation_parameter.assign(
            np.random.default_rng(1).standard_normal((4, 4))
        )
        expected = np.asarray(head(x))
        self.assertAllClose(expected, x @ np.asarray(head.kernel), atol=1e-5)
        head.next_episode()
        self.assertAllClose(head(x), expected, atol=1e-5)
        with self.assertRaisesRegex(ValueError, "subspace=None"):
            layers.OPTClassifier(3, save_basis=False, subspace=2)

    def test_folds_to_a_dense_head(self):
        model = keras.Sequential(
            [keras.Input((6,)), layers.OPTClassifier(9, use_bias=True)]
        )
        model.layers[0].rotation_parameter.assign(
            np.random.default_rng(0).standard_normal((6, 6))
        )
        model.layers[0].bias.assign(np.arange(9.0))
        folded = keras_opt.fold(model)
        self.assertIsInstance(folded.layers[0], keras.layers.Dense)
        x = np.random.default_rng(1).standard_normal((3, 6)).astype("f4")
        self.assertAllClose(folded(x), model(x), atol=1e-5)

    def test_assign_prototypes_permutes_the_basis(self):
        # Classes whose embeddings are neighbours on a circle get
        # neighbouring prototypes; the prototypes' set and energy stay.
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((2,)), layers.OPTClassifier(10, name="head")]
        )
        head = model.get_layer("head")
        head.rotation_parameter.assign([[0.8, -0.6], [0.5, 0.9]])
        before = np.asarray(head.basis).copy()
        rng = np.random.default_rng(0)
        classes = rng.permutation(10)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 10))
        embeddings = np.empty((10, 2))
        embeddings[classes] = np.stack([np.cos(angles), np.sin(angles)], 1)
        order = head.assign_prototypes(embeddings + [5.0, -2.0])
        self.assertAllEqual(head.basis, before[:, order])
        self.assertAllClose(
            keras_opt.energy.hyperspherical_energy(head.basis),
            keras_opt.energy.hyperspherical_energy(before),
        )
        directions = np.arctan2(before[1, order], before[0, order])
        steps = np.round(np.diff(directions[classes]) / (2 * np.pi / 10)) % 10
        self.assertTrue(set(steps) in ({1}, {9}), steps)
        x = rng.standard_normal((3, 2)).astype("float32")
        rotation = linalg_test.numpy_gram_schmidt(
            np.asarray(head.rotation_parameter, np.float64), "columns")
        self.assertAllClose(model(x), x @ rotation @ before[:, order],
                            atol=1e-5)
        path = os.path.join(self.get_temp_dir(), "assigned.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertAllEqual(restored(x), model(x))
        self.assertAllEqual(restored.get_layer("head").basis, head.basis)

    def test_assign_prototypes_errors(self):
        head = layers.OPTClassifier(4)
        with self.assertRaisesRegex(ValueError, "must be built"):
            head.assign_prototypes(np.eye(4))
        head = layers.OPTClassifier(4, save_basis=False)
        head.build((None, 3))
        with self.assertRaisesRegex(ValueError, "save_basis=True"):
            head.assign_prototypes(np.eye(4))
        head = layers.OPTClassifier(4)
        head.build((None, 3))
        with self.assertRaisesRegex(ValueError, "one row"):
            head.assign_prototypes(np.eye(3))

    def test_invalid_num_classes(self):
        with self.assertRaisesRegex(ValueError, "num_classes"):
            layers.OPTClassifier(0)

    def test_serialization(self):
        self.run_serialization_test(
            layers.OPTClassifier(10, save_basis=False, orthogonalizer="ogd")
        )


if __name__ == "__main__":
    absltest.main()
