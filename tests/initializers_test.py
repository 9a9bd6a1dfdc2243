"""`MinimumEnergy`: evenly spread prototypes, reproducible from a seed."""

import keras
import numpy as np
from absl.testing import absltest

import keras_opt
from keras_opt.initializers import MinimumEnergy
from tests import test_case


def directions(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=0)


class MinimumEnergyTest(test_case.TestCase):
    def test_regular_simplex_when_few_prototypes(self):
        for dim, count in ((2, 3), (64, 10), (5, 6)):
            v = np.asarray(MinimumEnergy(seed=3)((dim, count)))
            self.assertAllClose(np.linalg.norm(v, axis=0), np.sqrt(2.0))
            u = directions(v)
            cosines = (u.T @ u)[np.triu_indices(count, 1)]
            self.assertAllClose(cosines, -1.0 / (count - 1), atol=1e-5)

    def test_ten_prototypes_on_a_circle_are_a_regular_decagon(self):
        u = directions(MinimumEnergy(seed=1)((2, 10)))
        angles = np.sort(np.degrees(np.arctan2(u[1], u[0])) % 360.0)
        gaps = np.diff(np.concatenate([angles, angles[:1] + 360.0]))
        self.assertAllClose(gaps, 36.0, atol=0.5)

    def test_twelve_prototypes_in_3d_are_an_icosahedron(self):
        u = directions(MinimumEnergy(seed=2)((3, 12)))
        gram = u.T @ u
        np.fill_diagonal(gram, -1.0)
        # Each vertex has five neighbours at cos = 1/√5, the largest cosine.
        self.assertAllClose(gram.max(axis=0), 1.0 / np.sqrt(5.0), atol=2e-3)

    def test_energy_is_below_random(self):
        v = MinimumEnergy(seed=4)((8, 100))
        gaussian = np.random.default_rng(4).standard_normal((8, 100))
        energy = keras_opt.energy.hyperspherical_energy
        self.assertLess(
            float(energy(v, s=1)), float(energy(gaussian, s=1)) - 0.005
        )

    def test_gaussian_where_descent_is_too_costly(self):
        v = MinimumEnergy(seed=5, num_steps=200)((64, 2000))
        seed = keras.random.SeedGenerator(5)
        expected = keras.random.normal((64, 2000), seed=seed)
        self.assertAllClose(
            directions(v), directions(expected), atol=1e-6, rtol=1e-5
        )

    def test_reproducible_and_serializable(self):
        initializer = MinimumEnergy(seed=6, num_steps=50)
        revived = keras.initializers.deserialize(
            keras.initializers.serialize(initializer)
        )
        self.assertAllEqual(initializer((4, 20)), revived((4, 20)))
        self.assertEqual(revived.num_steps, 50)
        with self.assertRaisesRegex(ValueError, "2-D kernel"):
            initializer((2, 3, 4))

    def test_classifier_prototypes_are_spread_and_regenerated(self):
        head = keras_opt.layers.OPTClassifier(10, save_basis=False)
        model = keras.Sequential([keras.Input((2,)), head])
        u = directions(head.basis)
        self.assertAllClose(np.abs(u.T @ u).min(), np.cos(np.radians(72)),
                            atol=1e-2)
        path = self.get_temp_dir() + "/head.keras"
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertAllEqual(restored.layers[0].basis, head.basis)


if __name__ == "__main__":
    absltest.main()
