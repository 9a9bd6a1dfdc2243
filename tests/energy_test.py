import math

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import energy
from tests import test_case

ALL_S = (0, 1, 2, "a0", "a1", "a2")


def numpy_energy(weights, s=2, half_space=False, epsilon=1e-4):
    """The MHE code's computation, in float64 with the full Gram matrix."""
    w = np.asarray(weights, dtype=np.float64)
    w = w.reshape(-1, w.shape[-1])
    if half_space:
        w = np.concatenate([w, -w], axis=1)
    n = w.shape[1]
    norms = np.sqrt(np.sum(w**2, axis=0, keepdims=True) + epsilon)
    cosine = (w.T @ w) / (norms.T @ norms)
    cosine = np.clip(cosine[np.triu_indices(n, 1)], -1.0, 1.0)
    s = str(s)
    if s in ("0", "1", "2"):
        distance = 2.0 - 2.0 * cosine
        if s == "0":
            values = -np.log(distance)
        else:
            values = distance ** (-int(s) / 2)
    else:
        angle = np.arccos(cosine) / np.pi + 1e-4
        values = -np.log(angle) if s == "a0" else angle ** (-int(s[1]))
    return values.sum() / (n * (n - 1) / 2)


def pair_kernel(cosine, s):
    """The pair kernel at one cosine, for configurations with known values."""
    s = str(s)
    if s in ("0", "1", "2"):
        distance = 2.0 - 2.0 * cosine
        return -math.log(distance) if s == "0" else distance ** (-int(s) / 2)
    angle = math.acos(cosine) / math.pi + 1e-4
    return -math.log(angle) if s == "a0" else angle ** (-int(s[1]))


def energy_of(weights, **kwargs):
    return float(keras.ops.convert_to_numpy(
        energy.hyperspherical_energy(weights, **kwargs)
    ))


class HypersphericalEnergyTest(test_case.TestCase):
    @parameterized.parameters(*ALL_S)
    def test_orthonormal_basis(self, s):
        # All pairs are orthogonal, so every pair has c = 0 whatever ε is.
        weights = np.eye(6)
        expected = pair_kernel(0.0, s)
        self.assertAllClose(energy_of(weights, s=s), expected, rtol=1e-12)

    @parameterized.parameters(*ALL_S)
    def test_regular_simplex(self, s):
        # n points centred on the sphere in R^n: every pair has c = -1/(n-1).
        n = 5
        weights = np.eye(n) - 1.0 / n
        expected = pair_kernel(-1.0 / (n - 1), s)
        self.assertAllClose(
            energy_of(weights, s=s, epsilon=0.0), expected, rtol=1e-12
        )
        # With ε every cosine shrinks by ‖w‖² / (‖w‖² + ε).
        squared_norm = 1.0 - 1.0 / n
        shrunk = -1.0 / (n - 1) * squared_norm / (squared_norm + 1e-4)
        self.assertAllClose(
            energy_of(weights, s=s), pair_kernel(shrunk, s), rtol=1e-12
        )

    @parameterized.parameters(*ALL_S)
    def test_antipodal_pairs(self, s):
        # ±e1 and ±e2: two pairs at c = -1 and four at c = 0.
        weights = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
        expected = (2 * pair_kernel(-1.0, s) + 4 * pair_kernel(0.0, s)) / 6
        self.assertAllClose(
            energy_of(weights, s=s, epsilon=0.0), expected, rtol=1e-12
        )
        # Half space of e1 and e2 is exactly this configuration.
        self.assertAllClose(
            energy_of(np.eye(2), s=s, half_space=True, epsilon=0.0),
            expected,
            rtol=1e-12,
        )
        for dtype in ("float32", "float64"):
            self.assertAllClose(
                energy_of(np.eye(2, dtype=dtype) * 3.0, s=s, half_space=True),
                numpy_energy(np.eye(2) * 3.0, s=s, half_space=True),
                rtol=1e-6 if dtype == "float32" else 1e-12,
            )

    @parameterized.named_parameters(
        (f"rank{rank}_s{s}_{'half' if half else 'full'}", rank, s, half)
        for rank in (2, 3, 4, 5)
        for s in ALL_S
        for half in (False, True)
    )
    def test_matches_numpy(self, rank, s, half):
        shape = {2: (9, 7), 3: (3, 4, 8), 4: (2, 3, 2, 6), 5: (2, 2, 2, 2, 5)}
        rng = np.random.default_rng(rank)
        weights = rng.normal(size=shape[rank])
        expected = numpy_energy(weights, s=s, half_space=half)
        self.assertAllClose(
            energy_of(weights, s=s, half_space=half, chunk_size=3),
            expected,
            rtol=1e-12,
            atol=0,
        )
        # Float32 input is computed in float32: the honest bound there is
        # 1e-6 relative to the float64 energy of the same (rounded) kernel.
        weights32 = weights.astype("float32")
        self.assertAllClose(
            energy_of(weights32, s=s, half_space=half),
            numpy_energy(weights32, s=s, half_space=half),
            rtol=1e-6,
            atol=0,
        )

    @parameterized.parameters(*ALL_S)
    def test_chunked_equals_unchunked(self, s):
        weights = np.random.default_rng(0).normal(size=(8, 13))
        for half in (False, True):
            expected = energy_of(weights, s=s, half_space=half, chunk_size=13)
            for chunk_size in (1, 5, 12, 100, None):
                self.assertAllClose(
                    energy_of(
                        weights, s=s, half_space=half, chunk_size=chunk_size
                    ),
                    expected,
                    rtol=1e-13,
                    atol=0,
                )

    def test_larger_kernel_float32_across_tiles(self):
        weights = np.random.default_rng(1).normal(size=(64, 2500))
        weights = weights.astype("float32")
        for s in (0, 2, "a2"):
            self.assertAllClose(
                energy_of(weights, s=s),
                numpy_energy(weights, s=s),
                rtol=1e-6,
                atol=0,
            )

    def test_invariant_to_permutation_and_rotation(self):
        rng = np.random.default_rng(2)
        weights = rng.normal(size=(3, 3, 4, 10))
        permuted = weights[..., rng.permutation(10)]
        rotation, _ = np.linalg.qr(rng.normal(size=(36, 36)))
        rotated = (rotation @ weights.reshape(36, 10)).reshape(weights.shape)
        for s in ALL_S:
            for half in (False, True):
                expected = energy_of(weights, s=s, half_space=half)
                for other in (permuted, rotated):
                    self.assertAllClose(
                        energy_of(other, s=s, half_space=half),
                        expected,
                        rtol=1e-12,
                    )

    def test_dtypes(self):
        weights = np.random.default_rng(3).normal(size=(5, 4))
        self.assertEqual(
            energy.hyperspherical_energy(weights.astype("float64")).dtype,
            "float64",
        )
        for dtype in ("float32", "float16", "bfloat16"):
            value = energy.hyperspherical_energy(
                keras.ops.cast(weights, dtype)
            )
            self.assertEqual(value.dtype, "float32")
        variable = keras.Variable(weights.astype("float32"))
        self.assertAllClose(
            energy_of(variable), numpy_energy(weights), rtol=1e-6
        )

    @parameterized.parameters(*ALL_S)
    def test_gradient_matches_finite_differences(self, s):
        rng = np.random.default_rng(4)
        weights = rng.normal(size=(2, 2, 5))
        for half in (False, True):
            gradient = test_case.gradient(
                lambda w: energy.hyperspherical_energy(
                    w, s=s, half_space=half, chunk_size=2
                ),
                weights,
            )
            numeric = np.zeros_like(weights)
            step = 1e-6
            for index in np.ndindex(weights.shape):
                delta = np.zeros_like(weights)
                delta[index] = step
                numeric[index] = (
                    numpy_energy(weights + delta, s=s, half_space=half)
                    - numpy_energy(weights - delta, s=s, half_space=half)
                ) / (2 * step)
            np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)

    def test_gradient_finite_for_coincident_and_antipodal_neurons(self):
        weights = np.array([[1.0, 1.0, -1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
        for s in ALL_S:
            for half in (False, True):
                for dtype in ("float32", "float64"):
                    value, gradient = test_case.value_and_gradient(
                        lambda w: energy.hyperspherical_energy(
                            w, s=s, half_space=half
                        ),
                        weights.astype(dtype),
                    )
                    self.assertAllFinite(value)
                    self.assertAllFinite(gradient)

    def test_traced_and_xla_compiled(self):
        weights = np.random.default_rng(5).normal(size=(6, 11))
        weights = weights.astype("float32")
        expected = numpy_energy(weights, s="a1", half_space=True)

        def function(w):
            return energy.hyperspherical_energy(
                w, s="a1", half_space=True, chunk_size=4
            )

        eager = test_case.value_and_gradient(function, weights)
        for jit_compile in (False, True):
            value, gradient = test_case.value_and_gradient(
                function, weights, jit_compile=jit_compile
            )
            self.assertAllClose(value, expected, rtol=1e-6)
            self.assertAllClose(gradient, eager[1], rtol=1e-5, atol=1e-6)

    def test_invalid_arguments(self):
        weights = np.ones((3, 4))
        with self.assertRaisesRegex(ValueError, "Expected one of 0, 1, 2"):
            energy.hyperspherical_energy(weights, s=3)
        with self.assertRaisesRegex(ValueError, "Received: s=True"):
            energy.hyperspherical_energy(weights, s=True)
        with self.assertRaisesRegex(ValueError, "rank >= 2"):
            energy.hyperspherical_energy(np.ones(4))
        with self.assertRaisesRegex(ValueError, "at least 2 neurons"):
            energy.hyperspherical_energy(np.ones((3, 1)))
        with self.assertRaisesRegex(ValueError, "chunk_size=0"):
            energy.hyperspherical_energy(weights, chunk_size=0)
        with self.assertRaisesRegex(ValueError, "epsilon=-1"):
            energy.hyperspherical_energy(weights, epsilon=-1)
        with self.assertRaisesRegex(TypeError, "half_space='yes'"):
            energy.hyperspherical_energy(weights, half_space="yes")
        # One neuron in half space still makes a pair with its negation.
        self.assertAllClose(
            energy_of(np.ones((3, 1)), half_space=True),
            numpy_energy(np.ones((3, 1)), half_space=True),
            rtol=1e-6,
        )


if __name__ == "__main__":
    absltest.main()
