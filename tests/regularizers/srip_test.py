import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import callbacks
from keras_opt import regularizers
from tests import test_case
from tests.regularizers import _references


class SRIPTest(test_case.TestCase):
    @parameterized.named_parameters(
        (f"rank{len(shape)}_{mode}_{squared}", shape, mode, squared)
        for shape in ((10, 4), (3, 4, 6), (3, 3, 2, 7), (2, 2, 2, 3, 30))
        for mode in ("auto", "columns", "rows")
        for squared in (False, True)
    )
    def test_matches_numpy(self, shape, mode, squared):
        kernel = np.random.default_rng(0).normal(size=shape) * 0.3
        regularizer = regularizers.SRIP(0.5, squared=squared, mode=mode)
        expected = _references.srip(kernel, 0.5, squared, mode)
        self.assertAllClose(regularizer(kernel), expected, rtol=1e-12)
        self.assertAllClose(
            regularizer(kernel.astype("float32")), expected, rtol=1e-5
        )

    def test_estimates_spectral_norm(self):
        # Two power steps from a positive start vector already get close on
        # a matrix with a dominant singular value.
        rng = np.random.default_rng(1)
        q, _ = np.linalg.qr(rng.normal(size=(20, 8)))
        kernel = q * np.array([3.0] + [1.05] * 7)
        residual = kernel.T @ kernel - np.eye(8)
        exact = np.linalg.norm(residual, 2)
        value = keras.ops.convert_to_numpy(regularizers.SRIP(1.0)(kernel))
        self.assertLessEqual(value, exact * (1 + 1e-12))
        self.assertGreater(value, 0.99 * exact)

    @parameterized.parameters(False, True)
    def test_gradient_matches_finite_differences(self, squared):
        kernel = np.random.default_rng(2).normal(size=(2, 3, 4))
        regularizer = regularizers.SRIP(0.7, squared=squared)
        gradient = test_case.gradient(regularizer, kernel)
        expected = _references.finite_difference_gradient(
            lambda k: _references.srip(k, 0.7, squared), kernel
        )
        self.assertAllClose(gradient, expected, rtol=1e-6, atol=1e-9)

    def test_gradient_finite_at_orthogonality(self):
        value, gradient = test_case.value_and_gradient(
            regularizers.SRIP(), np.eye(6, 4, dtype="float32")
        )
        self.assertAllClose(value, 0.0, atol=1e-7)
        self.assertAllFinite(gradient)

    @parameterized.parameters(
        (keras.layers.Conv1D, (8, 3)),
        (keras.layers.Conv2D, (6, 6, 3)),
        (keras.layers.Conv3D, (4, 4, 4, 2)),
    )
    def test_as_conv_kernel_regularizer(self, layer_class, input_shape):
        layer = layer_class(5, 2, kernel_regularizer=regularizers.SRIP(0.1))
        layer.build((None,) + input_shape)
        expected = _references.srip(
            keras.ops.convert_to_numpy(layer.kernel), 0.1
        )
        self.assertAllClose(layer.losses[0], expected, rtol=1e-5)

    @parameterized.parameters(False, True)
    def test_coefficient_change_takes_effect_in_compiled_fit(self, jit):
        # With a zero learning rate the weights stay put, so each epoch's
        # loss is data loss + coefficient * penalty at fixed weights.
        srip = regularizers.SRIP(0.5)
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(3, kernel_regularizer=srip),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=jit
        )
        x = np.random.default_rng(3).normal(size=(16, 4)).astype("float32")
        y = np.zeros((16, 3), dtype="float32")
        multipliers = [1.0, 0.0, 0.25]
        history = model.fit(
            x,
            y,
            batch_size=16,
            epochs=3,
            verbose=0,
            callbacks=[
                callbacks.SRIPScheduler(schedule=lambda e: multipliers[e])
            ],
        )
        kernel = keras.ops.convert_to_numpy(model.layers[0].kernel)
        penalty = _references.srip(kernel, 1.0)
        data_loss = np.mean(
            keras.ops.convert_to_numpy(model.predict(x, verbose=0)) ** 2
        )
        expected = [data_loss + 0.5 * m * penalty for m in multipliers]
        self.assertAllClose(history.history["loss"], expected, rtol=1e-5)
        self.assertEqual(history.history["srip_multiplier"], multipliers)
        self.assertAllClose(srip.coefficient, 0.125)

    def test_serialization_and_model_saving(self):
        srip = regularizers.SRIP(0.02, squared=True, mode="columns", seed=3)
        revived = self.run_serialization_test(srip)
        self.assertEqual(revived.get_config(), srip.get_config())
        self.assertAllClose(revived.coefficient, 0.02)
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(3, kernel_regularizer=srip)]
        )
        restored = self.run_model_saving_test(model, np.ones((2, 4)))
        self.assertIsInstance(
            restored.layers[0].kernel_regularizer, regularizers.SRIP
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(TypeError, "factor='a'"):
            regularizers.SRIP("a")
        with self.assertRaisesRegex(ValueError, "seed=-1"):
            regularizers.SRIP(seed=-1)
        with self.assertRaisesRegex(ValueError, "mode='diag'"):
            regularizers.SRIP(mode="diag")


if __name__ == "__main__":
    absltest.main()
