import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import regularizers
from tests import test_case
from tests.regularizers import _references

KERNEL_SHAPES = {
    "dense": (12, 5),
    "conv1d": (3, 4, 6),
    "conv2d": (3, 3, 2, 7),
    "conv3d": (2, 2, 2, 3, 30),
}


class OrthogonalityPenaltyTest(test_case.TestCase):
    @parameterized.named_parameters(
        (f"{kind}_{mode}_{'sq' if squared else 'norm'}", shape, mode, squared)
        for kind, shape in KERNEL_SHAPES.items()
        for mode in ("auto", "columns", "rows")
        for squared in (False, True)
    )
    def test_matches_numpy(self, shape, mode, squared):
        kernel = np.random.default_rng(0).normal(size=shape) * 0.3
        regularizer = regularizers.OrthogonalityPenalty(
            0.5, squared=squared, mode=mode
        )
        expected = _references.orthogonality_penalty(
            kernel, 0.5, squared, mode
        )
        self.assertAllClose(regularizer(kernel), expected, rtol=1e-12)
        self.assertAllClose(
            regularizer(kernel.astype("float32")), expected, rtol=1e-5
        )

    def test_modes_on_square_kernel_agree_and_auto_picks_smaller(self):
        kernel = np.random.default_rng(1).normal(size=(6, 6))
        columns = regularizers.OrthogonalityPenalty(mode="columns")(kernel)
        rows = regularizers.OrthogonalityPenalty(mode="rows")(kernel)
        self.assertAllClose(columns, rows, rtol=1e-10)
        # A (4, 8) kernel with orthonormal rows: only "rows" can be zero.
        q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(8, 4)))
        wide = q.T
        auto = regularizers.OrthogonalityPenalty(mode="auto")(wide)
        self.assertAllClose(auto, 0.0, atol=1e-7)
        columns = regularizers.OrthogonalityPenalty(mode="columns")(wide)
        self.assertAllClose(columns, 0.1 * 2.0, rtol=1e-10)

    @parameterized.parameters(False, True)
    def test_gradient_matches_finite_differences(self, squared):
        kernel = np.random.default_rng(3).normal(size=(2, 3, 4))
        regularizer = regularizers.OrthogonalityPenalty(squared=squared)
        gradient = test_case.gradient(regularizer, kernel)
        expected = _references.finite_difference_gradient(
            lambda k: _references.orthogonality_penalty(k, squared=squared),
            kernel,
        )
        self.assertAllClose(gradient, expected, rtol=1e-6, atol=1e-9)

    def test_gradient_finite_at_orthogonality(self):
        value, gradient = test_case.value_and_gradient(
            regularizers.OrthogonalityPenalty(), np.eye(5, 3, dtype="float32")
        )
        self.assertAllClose(value, 0.0, atol=1e-7)
        self.assertAllFinite(gradient)

    @parameterized.parameters(
        (keras.layers.Conv1D, (8, 3)),
        (keras.layers.Conv2D, (6, 6, 3)),
        (keras.layers.Conv3D, (4, 4, 4, 2)),
        (keras.layers.Dense, (7,)),
    )
    def test_as_kernel_regularizer(self, layer_class, input_shape):
        regularizer = regularizers.OrthogonalityPenalty(0.2, squared=True)
        if layer_class is keras.layers.Dense:
            layer = layer_class(5, kernel_regularizer=regularizer)
        else:
            layer = layer_class(5, 2, kernel_regularizer=regularizer)
        layer.build((None,) + input_shape)
        self.assertLen(layer.losses, 1)
        expected = _references.orthogonality_penalty(
            keras.ops.convert_to_numpy(layer.kernel), 0.2, True
        )
        self.assertAllClose(layer.losses[0], expected, rtol=1e-5)

    def test_serialization(self):
        regularizer = regularizers.OrthogonalityPenalty(
            0.3, squared=True, mode="rows"
        )
        revived = self.run_serialization_test(regularizer)
        self.assertEqual(revived.get_config(), regularizer.get_config())

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "factor=-1"):
            regularizers.OrthogonalityPenalty(-1)
        with self.assertRaisesRegex(ValueError, "mode='both'"):
            regularizers.OrthogonalityPenalty(mode="both")
        with self.assertRaisesRegex(TypeError, "squared=1"):
            regularizers.OrthogonalityPenalty(squared=1)
        with self.assertRaisesRegex(ValueError, "rank >= 2"):
            regularizers.OrthogonalityPenalty()(np.ones(3))


if __name__ == "__main__":
    absltest.main()
