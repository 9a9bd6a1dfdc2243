"""S-OPT: OPT layers with `subspace=p` (opt_reference.md §4)."""

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import layers
from keras_opt import orthogonalizers
from tests import linalg_test
from tests import test_case

EXACT = sorted(
    name
    for name, cls in orthogonalizers.ALIASES.items()
    if cls.is_exact or cls.is_stiefel
)


def _random_orthogonal(p, seed):
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, p)))[0]
    return q.astype("float32")


class SubspaceTest(test_case.TestCase):
    def test_kernel_rotates_only_the_rows_in_the_subspace(self):
        layer = layers.OPTDense(5, subspace=3, use_bias=False)
        layer.build((None, 8))
        p = np.random.default_rng(0).standard_normal((3, 3)).astype("float32")
        layer.rotation_parameter.assign(p)
        indices = np.asarray(layer.subspace_indices)
        basis = np.asarray(layer.basis, np.float64)
        expected = basis.copy()
        rotation = linalg_test.numpy_gram_schmidt(p.astype(np.float64), "columns")
        expected[indices] = rotation @ basis[indices]
        self.assertAllClose(layer.kernel, expected, atol=1e-5)
        self.assertEqual(tuple(layer.rotation_parameter.shape), (3, 3))
        self.assertEqual(tuple(layer.rotation.shape), (3, 3))
        self.assertLen(np.unique(indices), 3)
        self.assertTrue(np.all((indices >= 0) & (indices < 8)))
        x = np.random.default_rng(1).standard_normal((2, 8)).astype("float32")
        self.assertAllClose(layer(x), x @ expected, atol=1e-5)

    @parameterized.named_parameters(
        ("quarter", 0.25, 576, 144),
        ("sixteenth", 1 / 16, 4096, 256),
        ("int", 16, 1152, 16),
        ("whole", 1.0, 27, 27),
    )
    def test_subspace_size(self, subspace, fan_in, expected):
        layer = layers.OPTDense(2, subspace=subspace)
        layer.build((None, fan_in))
        self.assertEqual(layer.subspace_size, expected)
        self.assertEqual(
            tuple(layer.rotation_parameter.shape), (expected, expected)
        )

    def test_conv_subspace_is_over_the_flattened_fan_in(self):
        layer = layers.OPTConv2D(4, 3, subspace=0.25, padding="same")
        layer.build((None, 6, 6, 16))
        self.assertEqual(layer.subspace_size, 36)
        self.assertEqual(tuple(layer.kernel.shape), (3, 3, 16, 4))

    @parameterized.named_parameters(*[(name, name) for name in EXACT])
    def test_merge_keeps_the_function(self, orthogonalizer):
        layer = layers.OPTConv2D(
            6, 3, subspace=0.5, orthogonalizer=orthogonalizer
        )
        x = np.random.default_rng(0).standard_normal((2, 5, 5, 4))
        x = x.astype("float32")
        layer(x)
        start = np.asarray(layer.rotation_parameter)
        self.assertAllEqual(start, np.eye(18))
        # Move P̃ away from the identity, onto the manifold for OGD.
        if orthogonalizers.get(orthogonalizer).is_stiefel:
            layer.rotation_parameter.assign(_random_orthogonal(18, 1))
        else:
            layer.rotation_parameter.assign(
                start + 0.3 * np.random.default_rng(1).standard_normal(
                    start.shape
                )
            )
        before = np.asarray(layer(x))
        indices = np.asarray(layer.subspace_indices)
        basis = np.asarray(layer.basis).copy()
        layer.next_episode()
        self.assertAllClose(layer(x), before, atol=1e-5)
        self.assertAllClose(
            layer.rotation_parameter, np.eye(18, dtype="float32"), atol=0
        )
        self.assertEqual(int(layer.subspace_episode), 1)
        self.assertFalse(
            np.array_equal(np.asarray(layer.subspace_indices), indices)
        )
        # Only the rows of the old subspace changed in V (and, where φ(I)
        # is a reflection, those of the new one).
        changed = np.where(np.any(np.asarray(layer.basis) != basis, axis=1))
        allowed = indices
        if orthogonalizer in ("householder", "hr"):
            allowed = np.union1d(indices, np.asarray(layer.subspace_indices))
        self.assertTrue(np.all(np.isin(changed[0], allowed)))

    def test_episodes_are_a_function_of_seed_and_episode(self):
        def make_layer(seed):
            layer = layers.OPTDense(2, subspace=4, subspace_seed=seed)
            layer.build((None, 32))
            return layer

        self.assertEpisodesFollowTheSeed(make_layer, "subspace_indices", 3)

    def test_saved_mid_episode_resumes_the_same_episode(self):
        model = keras.Sequential(
            [keras.Input((12,)), layers.OPTDense(3, subspace=5)]
        )
        layer = model.layers[0]
        layer.next_episode()
        layer.rotation_parameter.assign(
            np.random.default_rng(0).standard_normal((5, 5))
        )
        x = np.random.default_rng(1).standard_normal((2, 12)).astype("f4")
        restored = self.run_model_saving_test(model, x).layers[0]
        for name in ("subspace_indices", "subspace_episode", "basis"):
            self.assertAllEqual(getattr(restored, name), getattr(layer, name))
        layer.next_episode()
        restored.next_episode()
        self.assertAllEqual(restored.subspace_indices, layer.subspace_indices)
        self.assertAllClose(restored(x), layer(x), atol=0)

    def test_next_episode_of_a_full_opt_layer_raises(self):
        layer = layers.OPTDense(2)
        layer.build((None, 3))
        with self.assertRaisesRegex(ValueError, "full OPT layer"):
            layer.next_episode()

    @parameterized.named_parameters(
        ("zero", 0, ValueError),
        ("too_large_fraction", 1.5, ValueError),
        ("negative", -2, ValueError),
        ("string", "d/4", TypeError),
        ("bool", True, TypeError),
    )
    def test_invalid_subspace(self, subspace, error):
        with self.assertRaisesRegex(error, "subspace"):
            layers.OPTDense(2, subspace=subspace)

    def test_subspace_larger_than_fan_in_raises(self):
        layer = layers.OPTDense(2, subspace=9)
        with self.assertRaisesRegex(ValueError, "at most the fan-in d = 8"):
            layer.build((None, 8))

    def test_trainable_basis_is_refused(self):
        with self.assertRaisesRegex(ValueError, "trainable_basis=False"):
            layers.OPTDense(2, subspace=2, trainable_basis=True)

    def test_serialization(self):
        layer = layers.OPTConv2D(4, 3, subspace=0.25, orthogonalizer="cayley")
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.subspace_seed, layer.subspace_seed)


if __name__ == "__main__":
    absltest.main()
