import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import regularizers
from tests import test_case
from tests.energy_test import numpy_energy
from tests.regularizers import _references


class MHETest(test_case.TestCase):
    @parameterized.named_parameters(
        (f"rank{len(shape)}_s{s}_{half}", shape, s, half)
        for shape in ((10, 4), (3, 4, 6), (3, 3, 2, 7), (2, 2, 2, 3, 9))
        for s in (0, 2, "a1")
        for half in (False, True)
    )
    def test_matches_numpy(self, shape, s, half):
        kernel = np.random.default_rng(0).normal(size=shape)
        regularizer = regularizers.MHE(3.0, s=s, half_space=half)
        expected = 3.0 * numpy_energy(kernel, s=s, half_space=half)
        self.assertAllClose(regularizer(kernel), expected, rtol=1e-12)
        self.assertAllClose(
            regularizer(kernel.astype("float32")), expected, rtol=1e-5
        )

    def test_gradient_matches_finite_differences(self):
        kernel = np.random.default_rng(1).normal(size=(3, 2, 4))
        regularizer = regularizers.MHE(2.0, s=1, half_space=True)
        gradient = test_case.gradient(regularizer, kernel)
        expected = _references.finite_difference_gradient(
            lambda k: 2.0 * numpy_energy(k, s=1, half_space=True), kernel
        )
        self.assertAllClose(gradient, expected, rtol=1e-6, atol=1e-9)

    @parameterized.parameters(
        (keras.layers.Conv1D, (8, 3)),
        (keras.layers.Conv2D, (6, 6, 3)),
        (keras.layers.Conv3D, (4, 4, 4, 2)),
    )
    def test_fit_lowers_energy_of_conv_kernel(self, layer_class, input_shape):
        regularizer = regularizers.MHE(1.0, half_space=True)
        layer = layer_class(
            6,
            2,
            kernel_regularizer=regularizer,
            kernel_initializer=keras.initializers.RandomNormal(0.5, 0.1),
        )
        model = keras.Sequential(
            [keras.Input(input_shape), layer, keras.layers.Flatten()]
        )
        # A zero data loss leaves only the MHE penalty to minimize.
        model.compile(
            optimizer=keras.optimizers.SGD(0.05), loss=lambda y, p: 0.0 * p
        )
        x = np.ones((4,) + input_shape, dtype="float32")
        before = float(regularizer(layer.kernel))
        history = model.fit(x, np.zeros((4, 1)), epochs=3, verbose=0)
        after = float(regularizer(layer.kernel))
        self.assertAllFinite(history.history["loss"])
        self.assertLess(after, before)
        self.assertAllClose(history.history["loss"][0], before, rtol=1e-5)

    def test_serialization(self):
        regularizer = regularizers.MHE(
            10.0, s="a0", half_space=True, chunk_size=64
        )
        revived = self.run_serialization_test(regularizer)
        self.assertEqual(revived.get_config(), regularizer.get_config())

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: s=5"):
            regularizers.MHE(s=5)
        with self.assertRaisesRegex(ValueError, "factor=-2"):
            regularizers.MHE(-2)


if __name__ == "__main__":
    absltest.main()
