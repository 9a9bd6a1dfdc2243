import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import stiefel
from tests import test_case


def random_stiefel(rng, n, p):
    q, r = np.linalg.qr(rng.standard_normal((n, p)))
    return q * np.sign(np.diag(r))


def qf(y):
    q, r = np.linalg.qr(y)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def skew_generator(x, m):
    w_hat = m @ x.T - 0.5 * x @ (x.T @ m @ x.T)
    return w_hat - w_hat.T


def project_tangent(x, m):
    xtm = x.T @ m
    return m - x @ (0.5 * (xtm + xtm.T))


def orthogonality_error(x):
    x = np.asarray(x, dtype=np.float64)
    return np.max(np.abs(x.T @ x - np.eye(x.shape[1])))


SHAPES = (("square", 6, 6), ("tall", 7, 4))


class StiefelTest(test_case.TestCase):
    @parameterized.named_parameters(*SHAPES)
    def test_project_tangent(self, n, p):
        rng = np.random.default_rng(0)
        x = random_stiefel(rng, n, p)
        m = rng.standard_normal((n, p))
        tangent = stiefel.project_tangent(x, m)
        self.assertAllClose(tangent, project_tangent(x, m), atol=1e-12)
        xtt = x.T @ np.asarray(tangent)
        self.assertAllClose(xtt, -xtt.T, atol=1e-12)
        # A projection: a tangent vector is left unchanged.
        self.assertAllClose(
            stiefel.project_tangent(x, tangent), tangent, atol=1e-12
        )
        if n > p:
            # The normal part (I − XXᵀ)M is kept, unlike M − XXᵀM.
            self.assertGreater(
                np.max(np.abs(np.asarray(tangent) - (m - x @ (x.T @ m)))),
                0.1,
            )

    @parameterized.named_parameters(*SHAPES)
    def test_skew_generator(self, n, p):
        rng = np.random.default_rng(1)
        x = random_stiefel(rng, n, p)
        m = rng.standard_normal((n, p))
        w = np.asarray(stiefel.skew_generator(x, m))
        self.assertAllClose(w, skew_generator(x, m), atol=1e-12)
        self.assertAllClose(w, -w.T, atol=1e-12)
        # W X is a tangent vector at X.
        xtwx = x.T @ w @ x
        self.assertAllClose(xtwx, -xtwx.T, atol=1e-12)

    def test_step_size(self):
        skew = np.array([[0.0, 3.0], [-3.0, 0.0]])
        norm = np.sqrt(18.0)
        self.assertAllClose(stiefel.step_size(0.1, skew), 0.1, atol=0)
        # The cap 1/‖W‖ is active for a large learning rate.
        self.assertAllClose(
            stiefel.step_size(10.0, skew), 1.0 / (norm + 1e-8), atol=1e-15
        )

    @parameterized.named_parameters(
        ("1e10", 1e10), ("1e20", 1e20), ("1e30", 1e30)
    )
    def test_step_size_of_a_huge_generator(self, scale):
        # ‖W‖² overflows float32 from about 1e19 on; the step size must not
        # drop to 0 (no step) or turn NaN.
        skew = np.array([[0.0, 3.0], [-3.0, 0.0]], "float32") * scale
        alpha = float(stiefel.step_size(np.float32(0.1), skew))
        self.assertAllClose(alpha * np.sqrt(18.0) * scale, 1.0, rtol=1e-6)

    @parameterized.named_parameters(
        (f"{form}_{scale:.0e}", form, scale)
        for form in ("official", "group")
        for scale in (1e10, 1e20, 1e30)
    )
    def test_drift_estimate_of_a_huge_generator(self, form, scale):
        # The retraction and its drift estimate depend on α·W only: a W
        # scaled by 1e10 to 1e30 (float32) with the capped step α = 1/‖W‖
        # gives the point and the estimate of W at the scale 1, not NaN
        # from α⁴ underflowing to 0 times ‖W²‖² overflowing to inf.
        rng = np.random.default_rng(4)
        x = random_stiefel(rng, 6, 6).astype("float32")
        m = rng.standard_normal((6, 6)).astype("float32")
        if form == "group":
            skew, tangent = stiefel.group_generator(x, m)
            skew, tangent = np.asarray(skew), np.asarray(tangent)
            retraction = stiefel.group_cayley_retraction
        else:
            skew = skew_generator(x, m).astype("float32")
            tangent = skew @ x
            retraction = stiefel.cayley_retraction
        results = []
        for factor in (1.0, scale):
            big = skew * np.float32(factor)
            alpha = stiefel.step_size(np.float32(10.0), big)
            results.append(
                retraction(x, big, alpha, tangent * np.float32(factor))
            )
        (y, drift), (big_y, big_drift) = results
        self.assertAllFinite(big_y)
        self.assertAllClose(big_y, y, atol=1e-5, rtol=0)
        self.assertAllClose(big_drift, drift, atol=0, rtol=1e-4)
        self.assertGreater(float(drift), 1e-3)

    @parameterized.named_parameters(*SHAPES)
    def test_cayley_retraction(self, n, p):
        rng = np.random.default_rng(2)
        x = random_stiefel(rng, n, p)
        w = skew_generator(x, rng.standard_normal((n, p)))
        alpha = 0.5 / np.linalg.norm(w)
        y, drift = stiefel.cayley_retraction(x, w, alpha)
        expected = x + alpha * w @ x
        expected = x + alpha / 2 * w @ (x + expected)
        expected = x + alpha / 2 * w @ (x + expected)
        self.assertAllClose(y, expected, atol=1e-12, rtol=0)
        y_with_tangent, _ = stiefel.cayley_retraction(x, w, alpha, w @ x)
        self.assertAllClose(y_with_tangent, y, atol=1e-15, rtol=0)
        # The exact Cayley point is O(α⁴) away.
        eye = np.eye(n)
        exact = np.linalg.solve(eye - alpha / 2 * w, (eye + alpha / 2 * w) @ x)
        self.assertLess(np.max(np.abs(np.asarray(y) - exact)), 1e-2)
        self.assertLess(orthogonality_error(exact), 1e-12)
        # The drift estimate bounds the drift, within a factor of 10.
        error = orthogonality_error(y)
        self.assertGreater(error, 1e-6)
        self.assertGreater(float(drift), error)
        self.assertLess(float(drift), 10 * error)

    def test_group_generator(self):
        # On the orthogonal group W = X A Xᵀ with A = skew(XᵀM).
        rng = np.random.default_rng(5)
        x = random_stiefel(rng, 6, 6)
        m = rng.standard_normal((6, 6))
        skew, tangent = stiefel.group_generator(x, m)
        w = skew_generator(x, m)
        self.assertAllClose(skew, -np.asarray(skew).T, atol=0, rtol=0)
        self.assertAllClose(x @ skew @ x.T, w, atol=1e-12, rtol=0)
        self.assertAllClose(tangent, w @ x, atol=1e-12, rtol=0)
        self.assertAllClose(
            np.linalg.norm(skew), np.linalg.norm(w), atol=1e-12, rtol=0
        )

    def test_group_cayley_retraction(self):
        rng = np.random.default_rng(2)
        x = random_stiefel(rng, 6, 6)
        m = rng.standard_normal((6, 6))
        skew, tangent = stiefel.group_generator(x, m)
        w = skew_generator(x, m)
        alpha = 0.5 / np.linalg.norm(w)
        y, drift = stiefel.group_cayley_retraction(x, skew, alpha, tangent)
        expected, expected_drift = stiefel.cayley_retraction(x, w, alpha)
        self.assertAllClose(y, expected, atol=1e-12, rtol=0)
        self.assertAllClose(drift, expected_drift, atol=0, rtol=1e-10)
        y_without_tangent, _ = stiefel.group_cayley_retraction(x, skew, alpha)
        self.assertAllClose(y_without_tangent, y, atol=1e-15, rtol=0)
        error = orthogonality_error(y)
        self.assertGreater(error, 1e-6)
        self.assertGreater(float(drift), error)
        self.assertLess(float(drift), 10 * error)

    @parameterized.named_parameters(("group", True), ("official", False))
    def test_stack_steps_each_point_and_drift_is_the_largest(self, group):
        # A (k, n, n) stack steps every point as on its own, with the step
        # size and the drift estimate taken over the whole stack.
        rng = np.random.default_rng(8)
        x = np.stack([random_stiefel(rng, 5, 5) for _ in range(3)])
        m = rng.standard_normal((3, 5, 5))
        m[1] *= 4.0  # the largest drift is not the first block's
        if group:
            skew, tangent = stiefel.group_generator(x, m)
            retraction = stiefel.group_cayley_retraction
        else:
            skew = stiefel.skew_generator(x, m)
            tangent = np.asarray(skew) @ x
            retraction = stiefel.cayley_retraction
        alpha = stiefel.step_size(1.0, skew)
        norm = np.sqrt(sum(np.sum(np.square(s)) for s in np.asarray(skew)))
        self.assertAllClose(alpha, min(1.0, 1 / (norm + 1e-8)), atol=1e-12)
        y, drift = retraction(x, skew, alpha, tangent)
        drifts = []
        for index in range(3):
            y_i, drift_i = retraction(
                x[index], np.asarray(skew)[index], alpha,
                np.asarray(tangent)[index],
            )
            self.assertAllClose(y[index], y_i, atol=1e-12, rtol=0)
            drifts.append(float(drift_i))
        self.assertEqual(int(np.argmax(drifts)), 1)
        self.assertAllClose(drift, max(drifts), atol=0, rtol=1e-12)
        y_after, _ = stiefel.reorthonormalize(y, m, drift)
        for index in range(3):
            self.assertLess(orthogonality_error(y_after[index]), 1e-12)

    @parameterized.named_parameters(*SHAPES)
    def test_qr_retraction(self, n, p):
        rng = np.random.default_rng(3)
        x = random_stiefel(rng, n, p)
        w = skew_generator(x, rng.standard_normal((n, p)))
        tangent = w @ x
        alpha = 1.0 / np.linalg.norm(w)
        expected = qf(x + alpha * tangent)
        for nearly_orthonormal in (False, True):
            y = stiefel.qr_retraction(x, tangent, alpha, nearly_orthonormal)
            self.assertAllClose(y, expected, atol=1e-12, rtol=0)

    @parameterized.named_parameters(
        ("square_householder", 6, 6, None),
        ("tall_householder", 7, 4, None),
        ("square_cholesky", 6, 6, 1e-3),
        ("tall_cholesky", 7, 4, 1e-3),
        ("tall_large_drift", 7, 4, 0.5),
    )
    def test_reorthonormalize(self, n, p, drift):
        rng = np.random.default_rng(4)
        x0 = random_stiefel(rng, n, p)
        x = x0 + 1e-3 * rng.standard_normal((n, p))
        momentum = project_tangent(x0, rng.standard_normal((n, p)))
        new_x, new_momentum = stiefel.reorthonormalize(x, momentum, drift)
        expected_x = qf(x)
        self.assertAllClose(new_x, expected_x, atol=1e-12, rtol=0)
        self.assertLess(orthogonality_error(new_x), 1e-12)
        self.assertAllClose(
            new_momentum,
            project_tangent(expected_x, momentum),
            atol=1e-12,
            rtol=0,
        )


if __name__ == "__main__":
    absltest.main()
