import os
import warnings

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import optimizers
from keras_opt import variable_tags
from tests import test_case

RUN_SLOW = os.environ.get("KERAS_OPT_RUN_SLOW_TESTS") == "1"


def random_stiefel(rng, n, p):
    q, r = np.linalg.qr(rng.standard_normal((n, p)))
    return q * np.sign(np.diag(r))


def official_ogd_step(x, m, g, lr, momentum):
    """OPT's `opt_ogd` update, steps 1–8 of opt_reference §2.5."""
    m = momentum * m - g
    w_hat = m @ x.T - 0.5 * x @ (x.T @ m @ x.T)
    w = w_hat - w_hat.T
    m = w @ x
    alpha = min(lr, 1.0 / (np.linalg.norm(w) + 1e-8))
    y = x + alpha * m
    y = x + alpha / 2 * w @ (x + y)
    x = x + alpha / 2 * w @ (x + y)
    return x, m


def projected_qr_step(x, m, g, lr, momentum):
    m = momentum * m - g
    w_hat = m @ x.T - 0.5 * x @ (x.T @ m @ x.T)
    w = w_hat - w_hat.T
    m = w @ x
    alpha = min(lr, 1.0 / (np.linalg.norm(w) + 1e-8))
    q, r = np.linalg.qr(x + alpha * m)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0), m


def qf(y):
    q, r = np.linalg.qr(y)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def project_tangent(x, m):
    xtm = x.T @ m
    return m - x @ (0.5 * (xtm + xtm.T))


def orthogonality_error(x):
    x = np.asarray(test_case.numpy(x), dtype=np.float64)
    return np.max(np.abs(x.T @ x - np.eye(x.shape[1])))


def fit_ogd_layer(optimizer, dim, steps=1000, **compile_kwargs):
    """Trains one OPT layer with a Stiefel rotation for `steps` steps."""
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((dim,)),
            keras_opt.layers.OPTDense(4, orthogonalizer="ogd"),
        ]
    )
    # V from numpy (He-normal, as the layer draws it): every backend starts
    # from the same layer.
    basis = rng.standard_normal((dim, 4)) * np.sqrt(2.0 / dim)
    model.layers[0].basis.assign(basis.astype("float32"))
    model.compile(
        optimizer=optimizer,
        loss="mse",
        steps_per_execution=100,
        **compile_kwargs,
    )
    x = rng.standard_normal((4 * steps, dim)).astype("float32")
    y = rng.standard_normal((4 * steps, 4)).astype("float32")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    return model


class StiefelSGDTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("square", 6, 6, "float32", True),
        ("square_official_form", 6, 6, "float32", False),
        ("tall", 7, 4, "float32", True),
        ("square_float64", 6, 6, "float64", True),
        ("square_official_form_float64", 6, 6, "float64", False),
        ("tall_float64", 7, 4, "float64", True),
    )
    def test_one_step_matches_official_ogd(self, n, p, dtype, group_form):
        # At an orthogonal X the group form of a square X is the official
        # step too.
        rng = np.random.default_rng(1)
        x0 = random_stiefel(rng, n, p)
        m0 = 0.3 * rng.standard_normal((n, p))
        g = rng.standard_normal((n, p))
        lr = 0.03125
        variable = variable_tags.mark_stiefel(keras.Variable(x0, dtype=dtype))
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.5,
            rotation_learning_rate=lr,
            momentum=0.9,
            drift_tolerance=1.0,
            use_group_form=group_form,
        )
        optimizer.build([variable])
        optimizer._stiefel_momentums[0].assign(m0.astype(dtype))
        optimizer._stiefel_drifts[0].assign(0.0)
        optimizer.apply([keras.ops.convert_to_tensor(g, dtype)], [variable])
        expected_x, expected_m = official_ogd_step(x0, m0, g, lr, 0.9)
        atol = 1e-12 if dtype == "float64" else 2e-6
        self.assertAllClose(variable, expected_x, atol=atol, rtol=0)
        self.assertAllClose(
            optimizer._stiefel_momentums[0], expected_m, atol=10 * atol, rtol=0
        )

    def test_group_form_tracks_official_off_the_manifold(self):
        # Every step of a 50-step float64 run of the group form is compared
        # with the official step (numpy) from the same state X, M, G. With
        # E = XᵀX − I and m = momentum·M − G, first order in E gives
        #   W X − X A = X (sym(K) E − E K),  K = Xᵀm,
        # so ‖ΔM‖ <= 2‖E‖‖m‖ (the stored momentum is the tangent), and,
        # as Wᵏ X − X Aᵏ = O(k ‖A‖^(k−1) ‖ΔM‖) with α‖A‖ <= 1,
        #   ‖ΔX‖ <= α (1 + 2/2 + 3/4) ‖ΔM‖ <= 5.5 α ‖E‖ ‖m‖
        # (Frobenius norms), with a factor 1 + ‖E‖ for higher orders and
        # 1e-13 for float64 rounding. Steps that end in a
        # re-orthonormalization are left out (that code is shared).
        rng = np.random.default_rng(5)
        lr = 0.0625
        variable = variable_tags.mark_stiefel(
            keras.Variable(random_stiefel(rng, 8, 8), dtype="float64")
        )
        optimizer = optimizers.StiefelSGD(
            learning_rate=lr,
            rotation_learning_rate=lr,
            momentum=0.9,
            drift_tolerance=1e-5,
        )
        optimizer.build([variable])
        momentum = optimizer._stiefel_momentums[0]
        resets, compared, largest_drift = 0, 0, 0.0
        for _ in range(50):
            g = 0.1 * rng.standard_normal((8, 8))
            x, m = test_case.numpy(variable), test_case.numpy(momentum)
            drift = np.linalg.norm(x.T @ x - np.eye(8))
            ambient = np.linalg.norm(0.9 * m - g)
            expected_x, expected_m = official_ogd_step(x, m, g, lr, 0.9)
            optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
            if float(test_case.numpy(optimizer._stiefel_drifts[0])) == 0.0:
                resets += 1
                continue
            compared += 1
            largest_drift = max(largest_drift, drift)
            bound = 2 * drift * ambient * (1 + drift) + 1e-13
            self.assertLess(
                np.linalg.norm(test_case.numpy(momentum) - expected_m), bound
            )
            self.assertLess(
                np.linalg.norm(test_case.numpy(variable) - expected_x),
                2.75 * lr * bound,
            )
        self.assertGreaterEqual(resets, 3)
        self.assertGreaterEqual(compared, 40)
        self.assertGreater(largest_drift, 1e-6)

    @parameterized.named_parameters(("square", 6, 6), ("tall", 7, 4))
    def test_one_step_with_active_step_cap(self, n, p):
        rng = np.random.default_rng(11)
        x0 = random_stiefel(rng, n, p)
        m0 = 0.3 * rng.standard_normal((n, p))
        g = rng.standard_normal((n, p))
        lr = 10.0
        m = 0.9 * m0 - g
        w_hat = m @ x0.T - 0.5 * x0 @ (x0.T @ m @ x0.T)
        # α = 1/‖W‖ < lr: the step is set by the cap, not by lr.
        self.assertLess(1.0 / np.linalg.norm(w_hat - w_hat.T), lr / 10)
        variable = variable_tags.mark_stiefel(
            keras.Variable(x0, dtype="float64")
        )
        optimizer = optimizers.StiefelSGD(
            learning_rate=lr, rotation_learning_rate=lr, momentum=0.9,
            drift_tolerance=1.0
        )
        optimizer.build([variable])
        optimizer._stiefel_momentums[0].assign(m0)
        optimizer._stiefel_drifts[0].assign(0.0)
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
        expected_x, expected_m = official_ogd_step(x0, m0, g, lr, 0.9)
        self.assertAllClose(variable, expected_x, atol=1e-12, rtol=0)
        self.assertAllClose(
            optimizer._stiefel_momentums[0], expected_m, atol=1e-12, rtol=0
        )

    @parameterized.named_parameters(
        ("square_householder", 6, 6, None),
        ("tall_householder", 7, 4, None),
        ("square_cholesky", 6, 6, 1),
        ("tall_cholesky", 7, 4, 1),
    )
    def test_one_step_through_reorthonormalization(self, n, p, every):
        # A fresh drift slot (1) re-orthonormalizes by Householder QR at the
        # first step; `reorthonormalize_every=1` after a drift reset by
        # Cholesky-QR. Either way the momentum is transported to the new
        # point by M − X·sym(XᵀM).
        rng = np.random.default_rng(12)
        x0 = random_stiefel(rng, n, p)
        m0 = 0.3 * rng.standard_normal((n, p))
        g = rng.standard_normal((n, p))
        lr = 0.25  # exact in float32, the dtype of the learning rate
        variable = variable_tags.mark_stiefel(
            keras.Variable(x0, dtype="float64")
        )
        optimizer = optimizers.StiefelSGD(
            learning_rate=lr, rotation_learning_rate=lr, momentum=0.9,
            reorthonormalize_every=every
        )
        optimizer.build([variable])
        optimizer._stiefel_momentums[0].assign(m0)
        if every is not None:
            optimizer._stiefel_drifts[0].assign(0.0)
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
        x, m = official_ogd_step(x0, m0, g, lr, 0.9)
        expected_x = qf(x)
        expected_m = project_tangent(expected_x, m)
        self.assertAllClose(variable, expected_x, atol=1e-12, rtol=0)
        self.assertAllClose(
            optimizer._stiefel_momentums[0], expected_m, atol=1e-12, rtol=0
        )
        self.assertEqual(float(test_case.numpy(optimizer._stiefel_drifts[0])), 0.0)

    @parameterized.named_parameters(
        ("cayley_nan", "cayley", np.nan), ("qr_inf", "qr", np.inf)
    )
    def test_non_finite_gradient_skips_the_step(self, retraction, bad):
        rng = np.random.default_rng(13)
        rotation = variable_tags.mark_stiefel(
            keras.Variable(
                random_stiefel(rng, 5, 5).astype("float32"), name="rot"
            )
        )
        other = keras.Variable(np.ones((3,), "float32"))
        optimizer = optimizers.StiefelSGD(0.1, retraction=retraction)
        optimizer.apply(
            [rng.standard_normal((5, 5)).astype("f4"), np.ones(3, "f4")],
            [rotation, other],
        )
        before = [test_case.numpy(v) for v in optimizer.variables if "rot" in v.path]
        rotation_before = test_case.numpy(rotation)
        other_before = test_case.numpy(other)
        bad_grad = rng.standard_normal((5, 5)).astype("f4")
        bad_grad[1, 2] = bad
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            optimizer.apply([bad_grad, np.ones(3, "f4")], [rotation, other])
        caught = [w for w in caught if "non-finite" in str(w.message)]
        self.assertLen(caught, 1)
        self.assertIn("'rot'", str(caught[0].message))
        self.assertAllEqual(rotation, rotation_before)
        after = [test_case.numpy(v) for v in optimizer.variables if "rot" in v.path]
        self.assertLen(after, 2 if retraction == "cayley" else 1)
        for a, b in zip(before, after):
            self.assertAllEqual(a, b)
        # The other variable still gets its SGD step.
        self.assertTrue(np.all(test_case.numpy(other) < other_before))
        # The next finite step goes on from the same point.
        optimizer.apply(
            [np.ones((5, 5), "f4"), np.ones(3, "f4")], [rotation, other]
        )
        self.assertOrthonormal(rotation, atol=1e-6)

    def test_non_finite_gradient_skipped_in_fit(self):
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras_opt.layers.OPTDense(3, orthogonalizer="ogd"),
            ]
        )
        model.compile(optimizer=optimizers.StiefelSGD(0.1), loss="mse")
        x = np.ones((8, 4), "float32")
        y = np.zeros((8, 3), "float32")
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        layer, optimizer = model.layers[0], model.optimizer
        index = optimizer._get_variable_index(layer.rotation_parameter)
        # Copies of the values now; the variables are read again below.
        before = {
            key: np.array(test_case.numpy(variable))
            for key, variable in [
                ("P", layer.rotation_parameter),
                *optimizer._stiefel_slots(index).items(),
            ]
        }
        self.assertFalse(np.all(before["momentum"] == 0))
        x[:, 1] = np.nan
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        self.assertEqual(int(optimizer.iterations), 4)
        self.assertTrue(np.isnan(test_case.numpy(model.layers[0].bias)).any())
        after = {
            "P": layer.rotation_parameter,
            **optimizer._stiefel_slots(index),
        }
        for key, value in before.items():
            self.assertAllEqual(after[key], value, msg=key)
        self.assertOrthonormal(layer.rotation_parameter, atol=1e-6)

    def test_one_step_qr_retraction(self):
        rng = np.random.default_rng(2)
        x0 = random_stiefel(rng, 7, 4)
        m0 = 0.3 * rng.standard_normal((7, 4))
        g = rng.standard_normal((7, 4))
        variable = variable_tags.mark_stiefel(keras.Variable(x0, dtype="float64"))
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.03125, rotation_learning_rate=0.03125, momentum=0.9,
            retraction="qr"
        )
        optimizer.build([variable])
        optimizer._stiefel_momentums[0].assign(m0)
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
        expected_x, expected_m = projected_qr_step(x0, m0, g, 0.03125, 0.9)
        self.assertAllClose(variable, expected_x, atol=1e-12, rtol=0)
        self.assertAllClose(
            optimizer._stiefel_momentums[0], expected_m, atol=1e-12, rtol=0
        )
        self.assertEqual(len(optimizer.variables), 4)  # + rotation_learning_rate

    @parameterized.named_parameters(
        ("momentum", 0.9, False, None),
        ("nesterov", 0.9, True, None),
        ("no_momentum", 0.0, False, None),
        ("weight_decay", 0.5, False, 0.1),
    )
    def test_untagged_variables_match_keras_sgd(
        self, momentum, nesterov, weight_decay
    ):
        rng = np.random.default_rng(3)
        values = [
            rng.standard_normal((5, 3)).astype("float32"),
            rng.standard_normal((3,)).astype("float32"),
        ]
        stiefel_value = random_stiefel(rng, 4, 4).astype("float32")
        ours = [keras.Variable(v) for v in values]
        rotation = variable_tags.mark_stiefel(keras.Variable(stiefel_value))
        theirs = [keras.Variable(v) for v in values]
        kwargs = dict(
            learning_rate=0.05,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
        )
        optimizer = optimizers.StiefelSGD(**kwargs)
        reference = keras.optimizers.SGD(**kwargs)
        for _ in range(5):
            grads = [rng.standard_normal(v.shape) for v in values]
            stiefel_grad = rng.standard_normal((4, 4))
            optimizer.apply(
                [keras.ops.convert_to_tensor(g, "float32") for g in grads]
                + [keras.ops.convert_to_tensor(stiefel_grad, "float32")],
                ours + [rotation],
            )
            reference.apply(
                [keras.ops.convert_to_tensor(g, "float32") for g in grads],
                theirs,
            )
        for a, b in zip(ours, theirs):
            self.assertAllClose(a, b, atol=1e-7, rtol=0)
        self.assertOrthonormal(rotation)

    def test_weight_decay_never_touches_stiefel_variables(self):
        rng = np.random.default_rng(4)
        x0 = random_stiefel(rng, 5, 5).astype("float32")
        grads = [rng.standard_normal((5, 5)).astype("f4") for _ in range(3)]
        results = []
        for weight_decay in (None, 0.5):
            variable = variable_tags.mark_stiefel(keras.Variable(x0))
            optimizer = optimizers.StiefelSGD(
                learning_rate=0.1, weight_decay=weight_decay
            )
            for g in grads:
                optimizer.apply([g], [variable])
            results.append(test_case.numpy(variable))
        self.assertAllEqual(results[0], results[1])

    def test_rotation_learning_rate_is_separate(self):
        rng = np.random.default_rng(5)
        rotation = variable_tags.mark_stiefel(
            keras.Variable(random_stiefel(rng, 4, 4).astype("float32"))
        )
        other = keras.Variable(np.ones((4, 2), "float32"))
        before = test_case.numpy(rotation)
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.1, rotation_learning_rate=0.0
        )
        optimizer.apply(
            [np.ones((4, 4), "float32"), np.ones((4, 2), "float32")],
            [rotation, other],
        )
        # Only the first-step re-orthonormalization (float rounding) moves R.
        self.assertAllClose(rotation, before, atol=1e-6, rtol=0)
        self.assertAllClose(other, np.full((4, 2), 0.9), atol=1e-7)

        optimizer = optimizers.StiefelSGD(
            learning_rate=0.0, rotation_learning_rate=0.1
        )
        optimizer.apply(
            [np.ones((4, 4), "float32"), np.ones((4, 2), "float32")],
            [rotation, other],
        )
        self.assertAllClose(other, np.full((4, 2), 0.9), atol=1e-7)
        self.assertGreater(np.max(np.abs(test_case.numpy(rotation) - before)), 1e-3)

    def test_rotation_learning_rate_schedule(self):
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [2], [0.02, 0.004]
        )
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.1, rotation_learning_rate=schedule
        )
        variable = variable_tags.mark_stiefel(keras.Variable(np.eye(3)))
        optimizer.build([variable])
        self.assertAllClose(optimizer.rotation_learning_rate, 0.02)
        optimizer.iterations.assign(5)
        self.assertAllClose(optimizer.rotation_learning_rate, 0.004)
        self.assertAllClose(optimizer.learning_rate, 0.1)
        # Without one, 0.2 × learning_rate (the official OGD ratio),
        # following the learning rate's schedule.
        default = optimizers.StiefelSGD(learning_rate=0.25)
        self.assertAllClose(default.rotation_learning_rate, 0.05)
        scheduled = optimizers.StiefelSGD(
            learning_rate=keras.optimizers.schedules.PiecewiseConstantDecay(
                [2], [0.1, 0.01]
            )
        )
        scheduled.build([variable_tags.mark_stiefel(keras.Variable(np.eye(3)))])
        self.assertAllClose(scheduled.rotation_learning_rate, 0.02)
        scheduled.iterations.assign(5)
        self.assertAllClose(scheduled.rotation_learning_rate, 0.002)
        adam = optimizers.StiefelAdam(learning_rate=0.01)
        self.assertAllClose(adam.rotation_learning_rate, 0.1)

    @parameterized.named_parameters(("cayley", "cayley"), ("qr", "qr"))
    def test_fit_1000_steps_d64(self, retraction):
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.01,
            rotation_learning_rate=0.1,
            retraction=retraction,
        )
        model = fit_ogd_layer(optimizer, 64)
        self.assertEqual(int(optimizer.iterations), 1000)
        rotation = model.layers[0].rotation
        self.assertOrthonormal(rotation, atol=1e-5)
        # The rotation really moved: the bound is not met by standing still.
        self.assertGreater(np.max(np.abs(test_case.numpy(rotation) - np.eye(64))), 0.3)

    def test_fit_1000_steps_d64_drifts_without_control(self):
        # The same run with drift control off leaves the manifold, so the
        # bound above is a real test of the default drift control.
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.01, rotation_learning_rate=0.1, drift_tolerance=1e9
        )
        model = fit_ogd_layer(optimizer, 64)
        self.assertGreater(orthogonality_error(model.layers[0].rotation), 1e-3)

    def test_fit_1000_steps_d576(self):
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.01, rotation_learning_rate=0.1
        )
        model = fit_ogd_layer(optimizer, 576)
        self.assertOrthonormal(model.layers[0].rotation, atol=1e-5)

    @absltest.skipUnless(RUN_SLOW, "set KERAS_OPT_RUN_SLOW_TESTS=1 to run")
    def test_fit_1000_steps_d576_qr(self):
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.01, rotation_learning_rate=0.1, retraction="qr"
        )
        model = fit_ogd_layer(optimizer, 576)
        self.assertOrthonormal(model.layers[0].rotation, atol=1e-5)

    def test_large_steps_trigger_reorthonormalization(self):
        rng = np.random.default_rng(6)
        variable = variable_tags.mark_stiefel(
            keras.Variable(random_stiefel(rng, 16, 16).astype("float32"))
        )
        optimizer = optimizers.StiefelSGD(learning_rate=10.0, momentum=0.9)
        for _ in range(20):
            g = 100.0 * rng.standard_normal((16, 16)).astype("float32")
            optimizer.apply([g], [variable])
            self.assertOrthonormal(variable, atol=1e-5)
            # A reset drift estimate means X was just re-orthonormalized and
            # the momentum put back in the tangent space.
            self.assertEqual(float(test_case.numpy(optimizer._stiefel_drifts[0])), 0.0)
            x = test_case.numpy(variable).astype(np.float64)
            m = test_case.numpy(optimizer._stiefel_momentums[0]).astype(np.float64)
            sym = x.T @ m + m.T @ x
            self.assertLess(np.max(np.abs(sym)), 1e-4 * np.max(np.abs(m)))

    def test_drift_estimate_bounds_the_drift(self):
        rng = np.random.default_rng(7)
        variable = variable_tags.mark_stiefel(
            keras.Variable(random_stiefel(rng, 32, 32).astype("float32"))
        )
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.05, drift_tolerance=1e9
        )
        optimizer.build([variable])
        optimizer._stiefel_drifts[0].assign(0.0)
        for _ in range(30):
            g = rng.standard_normal((32, 32)).astype("float32")
            optimizer.apply([g], [variable])
        error = orthogonality_error(variable)
        self.assertGreater(error, 1e-5)
        self.assertGreater(float(test_case.numpy(optimizer._stiefel_drifts[0])), error)
        self.assertLess(float(test_case.numpy(optimizer._stiefel_drifts[0])), 10 * error)

    def test_reorthonormalize_every(self):
        variable = variable_tags.mark_stiefel(keras.Variable(np.eye(4, dtype="f4")))
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.01, reorthonormalize_every=3
        )
        g = 1e-3 * np.ones((4, 4), "float32") * np.arange(4, dtype="float32")
        drifts = []
        for _ in range(6):
            optimizer.apply([g], [variable])
            drifts.append(float(test_case.numpy(optimizer._stiefel_drifts[0])))
        self.assertEqual(drifts[2], 0.0)
        self.assertEqual(drifts[5], 0.0)
        self.assertGreater(drifts[3], 0.0)

    def test_energy_is_invariant(self):
        model = keras.Sequential(
            [
                keras.Input((16,)),
                keras_opt.layers.OPTDense(
                    8, orthogonalizer="ogd", recipe="official"
                ),
            ]
        )
        layer = model.layers[0]
        basis = test_case.numpy(layer.basis)
        model.compile(
            optimizer=optimizers.StiefelSGD(rotation_learning_rate=0.2),
            loss="mse",
        )
        rng = np.random.default_rng(8)
        x = rng.standard_normal((64, 16)).astype("float32")
        y = rng.standard_normal((64, 8)).astype("float32")
        model.fit(x, y, batch_size=8, epochs=5, verbose=0)
        kernel = test_case.numpy(layer.kernel)
        self.assertGreater(np.max(np.abs(kernel - basis)), 0.05)
        initial = keras_opt.energy.hyperspherical_energy(basis, s=2)
        final = keras_opt.energy.hyperspherical_energy(kernel, s=2)
        self.assertAllClose(final, initial, atol=0, rtol=1e-5)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "momentum=1.0"):
            optimizers.StiefelSGD(momentum=1.0)
        with self.assertRaisesRegex(ValueError, r"\[0, 1\)"):
            optimizers.StiefelSGD(momentum=-0.1)
        with self.assertRaisesRegex(ValueError, "learning_rate=-0.1"):
            optimizers.StiefelSGD(learning_rate=-0.1)
        with self.assertRaisesRegex(ValueError, "rotation_learning_rate=-1"):
            optimizers.StiefelSGD(rotation_learning_rate=-1)
        with self.assertRaisesRegex(
            ValueError, r"\['cayley', 'qr'\]. Received: retraction='cailey'"
        ):
            optimizers.StiefelSGD(retraction="cailey")
        with self.assertRaisesRegex(ValueError, "drift_tolerance=0"):
            optimizers.StiefelSGD(drift_tolerance=0)
        with self.assertRaisesRegex(ValueError, "reorthonormalize_every=0"):
            optimizers.StiefelSGD(reorthonormalize_every=0)
        with self.assertRaisesRegex(
            TypeError,
            "Expected a boolean. Received: use_group_form='official' of type "
            "str",
        ):
            optimizers.StiefelSGD(use_group_form="official")

    def test_get_config(self):
        optimizer = optimizers.StiefelSGD(
            learning_rate=0.1,
            momentum=0.8,
            nesterov=True,
            rotation_learning_rate=0.02,
            retraction="qr",
            weight_decay=5e-4,
            reorthonormalize_every=50,
            use_group_form=False,
        )
        revived = self.run_serialization_test(optimizer)
        self.assertIsInstance(revived, optimizers.StiefelSGD)
        config = revived.get_config()
        self.assertAllClose(config["rotation_learning_rate"], 0.02)
        self.assertEqual(config["retraction"], "qr")
        self.assertEqual(config["reorthonormalize_every"], 50)
        self.assertEqual(config["momentum"], 0.8)
        self.assertIs(config["use_group_form"], False)
        # A config saved before `use_group_form` existed gets the default.
        del config["use_group_form"]
        old = optimizers.StiefelSGD.from_config(config)
        self.assertIs(old.use_group_form, True)


if __name__ == "__main__":
    absltest.main()
