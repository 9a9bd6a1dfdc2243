import keras
import numpy as np
from absl.testing import absltest

import keras_opt
from tests import linalg_test
from tests import test_case


class OPTDenseTest(test_case.TestCase):
    def test_output_matches_numpy_reference(self):
        layer = keras_opt.layers.OPTDense(
            5, activation="relu", bias_initializer="random_normal"
        )
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3, 7)).astype("float32")
        layer.build((None, 7))
        # Away from R = I and g = 1, where a wrong formula could still pass.
        layer.rotation_parameter.assign(rng.standard_normal((7, 7)))
        layer.log_gain.assign(rng.standard_normal(5))
        y = layer(x)
        p = np.asarray(layer.rotation_parameter, dtype=np.float64)
        basis = np.asarray(layer.basis, dtype=np.float64)
        gain = np.exp(np.asarray(layer.log_gain, dtype=np.float64))
        rotation = linalg_test.numpy_gram_schmidt(p, "columns")
        kernel = rotation @ basis * gain
        expected = np.maximum(x @ kernel + np.asarray(layer.bias), 0.0)
        self.assertAllClose(y, expected, atol=1e-5, rtol=1e-5)
        self.assertAllClose(layer.kernel, kernel, atol=1e-5, rtol=1e-5)
        self.assertAllClose(layer.rotation, rotation, atol=1e-5)
        self.assertEqual(tuple(layer.basis.shape), (7, 5))

    def test_basis_is_he_normal(self):
        layer = keras_opt.layers.OPTDense(2000)
        layer.build((None, 50))
        basis = np.asarray(layer.basis)
        self.assertAlmostEqual(float(np.std(basis)), np.sqrt(2 / 50), delta=2e-3)
        self.assertAlmostEqual(float(np.mean(basis)), 0.0, delta=2e-3)
        # Untruncated: values beyond two standard deviations exist.
        self.assertGreater(np.max(np.abs(basis)), 3 * np.sqrt(2 / 50))

    def test_seeded_basis_is_reproducible(self):
        def make():
            layer = keras_opt.layers.OPTDense(
                4,
                basis_initializer=keras.initializers.VarianceScaling(
                    2.0, "fan_in", "untruncated_normal", seed=7
                ),
            )
            layer.build((None, 6))
            return np.asarray(layer.basis)

        self.assertAllEqual(make(), make())

    def test_nd_inputs_and_shapes(self):
        layer = keras_opt.layers.OPTDense(4, use_bias=False)
        y = layer(np.ones((2, 3, 5), dtype="float32"))
        self.assertEqual(tuple(y.shape), (2, 3, 4))
        self.assertIsNone(layer.bias)
        self.assertEqual(layer.compute_output_shape((None, 3, 5)), (None, 3, 4))
        symbolic = layer(keras.Input((3, 5)))
        self.assertEqual(tuple(symbolic.shape), (None, 3, 4))

    def test_kernel_before_build(self):
        with self.assertRaisesRegex(AttributeError, "build the layer"):
            keras_opt.layers.OPTDense(3).kernel

    def test_bad_input(self):
        # The stock checks of keras.layers.Dense, then the OPT ones.
        for units in (0, -2, 2.5, "3"):
            with self.assertRaisesRegex(ValueError, f"Received: units={units}"):
                keras_opt.layers.OPTDense(units)
        with self.assertRaisesRegex(TypeError, "Use `basis_initializer`"):
            keras_opt.layers.OPTDense(3, None, True, "ones")
        with self.assertRaisesRegex(TypeError, "Received: lora_rank=2"):
            keras_opt.layers.OPTDense(3, lora_rank=2)
        layer = keras_opt.layers.OPTDense(3)
        with self.assertRaisesRegex(ValueError, "last dimension.*known"):
            layer.build((None, None))
        layer = keras_opt.layers.OPTDense(3)
        layer(np.ones((1, 4), dtype="float32"))
        with self.assertRaises(ValueError):
            layer(np.ones((1, 5), dtype="float32"))


if __name__ == "__main__":
    absltest.main()
