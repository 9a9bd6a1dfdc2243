import warnings

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import layers
from keras_opt import optimizers
from keras_opt import variable_tags
from tests import recipes_test
from tests import test_case
from tests.optimizers import stiefel_sgd_test

RUN_SLOW = stiefel_sgd_test.RUN_SLOW


def cayley_adam_steps(
    x,
    grads,
    lr,
    beta_1,
    beta_2,
    epsilon,
    retraction,
    first_qr=False,
    m=None,
    v=0.0,
    start=1,
):
    """Numpy Cayley Adam (Li, Li & Todorovic 2020, official code's form).

    With `first_qr`, X is re-orthonormalized after the first step and the
    first moment transported to it, as the optimizer does with a fresh
    drift estimate. `m`, `v` and `start` give the slots and the step count
    to start from (zeros and 1 by default).
    """
    m = np.zeros_like(x) if m is None else m
    alphas = []
    for t, g in enumerate(grads, start=start):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * np.sum(g**2)
        m_hat = m / (1 - beta_1**t)
        r = np.sqrt(v / (1 - beta_2**t)) + epsilon
        w_hat = m_hat @ x.T - 0.5 * x @ (x.T @ m_hat @ x.T)
        w = -(w_hat - w_hat.T) / r
        alpha = min(lr, 1.0 / (np.linalg.norm(w) + 1e-8))
        tangent = w @ x
        if retraction == "cayley":
            y = x + alpha * tangent
            y = x + alpha / 2 * w @ (x + y)
            x_new = x + alpha / 2 * w @ (x + y)
        else:
            q, rr = np.linalg.qr(x + alpha * tangent)
            x_new = q * np.where(np.diag(rr) < 0, -1.0, 1.0)
        m = -tangent * r * (1 - beta_1**t)
        x = x_new
        if first_qr and t == start:
            x = stiefel_sgd_test.qf(x)
            m = stiefel_sgd_test.project_tangent(x, m)
        alphas.append((alpha, lr))
    return x, m, v, alphas


def rotation_steps(p, grads, rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Numpy steps of a P tagged with `mark_rotation_step`."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        second = np.sum(v, axis=(-2, -1), keepdims=True) / (1 - beta_2**t)
        p = p - rate * (m / (1 - beta_1**t)) / (np.sqrt(second) + epsilon)
    return p


class _ShrinkingRate(keras.optimizers.schedules.LearningRateSchedule):
    """lr/√(1 + step·d·lr²): the damped rate, as a Keras schedule."""

    def __init__(self, rate, row):
        self.rate, self.row = rate, row

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        return self.rate / keras.ops.sqrt(1.0 + step * self.row * self.rate**2)


class StiefelAdamTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("cayley_square", "cayley", 6, 6),
        ("cayley_tall", "cayley", 7, 4),
        ("qr_tall", "qr", 7, 4),
    )
    def test_steps_match_numpy_cayley_adam(self, retraction, n, p):
        rng = np.random.default_rng(1)
        x0 = stiefel_sgd_test.random_stiefel(rng, n, p)
        grads = [rng.standard_normal((n, p)) for _ in range(3)]
        variable = variable_tags.mark_stiefel(keras.Variable(x0, dtype="float64"))
        optimizer = optimizers.StiefelAdam(
            learning_rate=0.03125,
            rotation_learning_rate=0.03125,
            retraction=retraction,
            drift_tolerance=1.0,
            use_group_form=False,
        )
        optimizer.build([variable])
        if retraction == "cayley":
            optimizer._stiefel_drifts[0].assign(0.0)
        for g in grads:
            optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
        x, m, v, _ = cayley_adam_steps(
            x0, grads, 0.03125, 0.9, 0.999, 1e-7, retraction
        )
        self.assertAllClose(variable, x, atol=1e-12, rtol=0)
        self.assertAllClose(optimizer._stiefel_momentums[0], m, atol=1e-11, rtol=0)
        self.assertAllClose(optimizer._stiefel_velocities[0], v, atol=0, rtol=1e-6)

    @parameterized.named_parameters(
        ("cap_square", 6, 6, 8.0, False),
        ("cap_tall", 7, 4, 8.0, False),
        ("reorthonormalize_square", 6, 6, 0.25, True),
        ("reorthonormalize_tall", 7, 4, 0.25, True),
    )
    def test_steps_match_numpy_with_cap_or_reorthonormalization(
        self, n, p, lr, first_qr
    ):
        rng = np.random.default_rng(21)
        x0 = stiefel_sgd_test.random_stiefel(rng, n, p)
        grads = [rng.standard_normal((n, p)) for _ in range(3)]
        variable = variable_tags.mark_stiefel(
            keras.Variable(x0, dtype="float64")
        )
        optimizer = optimizers.StiefelAdam(
            learning_rate=lr,
            rotation_learning_rate=lr,
            drift_tolerance=1.0,
            use_group_form=False,
        )
        optimizer.build([variable])
        if not first_qr:
            optimizer._stiefel_drifts[0].assign(0.0)
        for g in grads:
            optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
        x, m, v, alphas = cayley_adam_steps(
            x0, grads, lr, 0.9, 0.999, 1e-7, "cayley", first_qr=first_qr
        )
        if not first_qr:
            # α = 1/‖W‖ < lr at every step: the cap sets the step.
            for alpha, rate in alphas:
                self.assertLess(alpha, rate / 2)
        self.assertAllClose(variable, x, atol=1e-12, rtol=0)
        self.assertAllClose(
            optimizer._stiefel_momentums[0], m, atol=1e-11, rtol=0
        )
        self.assertAllClose(
            optimizer._stiefel_velocities[0], v, atol=0, rtol=1e-12
        )

    @parameterized.named_parameters(
        ("group_form", True), ("official_form", False)
    )
    def test_one_step_at_orthogonal_x_matches_numpy(self, group_form):
        # From an orthogonal square X, with both moments and the step count
        # set, the group form is the official step too.
        rng = np.random.default_rng(23)
        x0 = stiefel_sgd_test.random_stiefel(rng, 6, 6)
        m0 = stiefel_sgd_test.project_tangent(
            x0, 0.3 * rng.standard_normal((6, 6))
        )
        v0, start = 2.5, 4
        g = rng.standard_normal((6, 6))
        variable = variable_tags.mark_stiefel(
            keras.Variable(x0, dtype="float64")
        )
        optimizer = optimizers.StiefelAdam(
            learning_rate=0.03125,
            rotation_learning_rate=0.03125,
            drift_tolerance=1.0,
            use_group_form=group_form,
        )
        optimizer.build([variable])
        optimizer._stiefel_drifts[0].assign(0.0)
        optimizer._stiefel_momentums[0].assign(m0)
        optimizer._stiefel_velocities[0].assign(v0)
        optimizer.iterations.assign(start - 1)
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
        x, m, v, _ = cayley_adam_steps(
            x0, [g], 0.03125, 0.9, 0.999, 1e-7, "cayley", m=m0, v=v0,
            start=start,
        )
        self.assertAllClose(variable, x, atol=1e-12, rtol=0)
        self.assertAllClose(
            optimizer._stiefel_momentums[0], m, atol=1e-12, rtol=0
        )
        self.assertAllClose(
            optimizer._stiefel_velocities[0], v, atol=0, rtol=1e-12
        )

    def test_stiefel_variables_get_no_adam_moments(self):
        rotation = variable_tags.mark_stiefel(
            keras.Variable(np.eye(4, dtype="float32"), name="rot")
        )
        other = keras.Variable(np.ones((4, 3), "float32"), name="other")
        optimizer = optimizers.StiefelAdam(amsgrad=True)
        optimizer.build([rotation, other])
        self.assertIsNone(optimizer._momentums[0])
        self.assertIsNone(optimizer._velocities[0])
        self.assertIsNone(optimizer._velocity_hats[0])
        self.assertEqual(optimizer._velocities[1].shape, (4, 3))
        shapes = {v.path: tuple(v.shape) for v in optimizer.variables}
        rotation_slots = {k: s for k, s in shapes.items() if "rot" in k}
        self.assertEqual(sorted(rotation_slots.values()), [(), (), (4, 4)])

    def test_non_finite_gradient_skips_the_step(self):
        rng = np.random.default_rng(22)
        rotation = variable_tags.mark_stiefel(
            keras.Variable(
                stiefel_sgd_test.random_stiefel(rng, 6, 3).astype("f4"),
                name="rot",
            )
        )
        optimizer = optimizers.StiefelAdam(0.1)
        optimizer.apply([rng.standard_normal((6, 3)).astype("f4")], [rotation])
        before = [test_case.numpy(v) for v in optimizer.variables if "rot" in v.path]
        rotation_before = test_case.numpy(rotation)
        bad_grad = np.full((6, 3), np.nan, "float32")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            optimizer.apply([bad_grad], [rotation])
        caught = [w for w in caught if "non-finite" in str(w.message)]
        self.assertLen(caught, 1)
        self.assertIn("'rot'", str(caught[0].message))
        self.assertAllEqual(rotation, rotation_before)
        after = [test_case.numpy(v) for v in optimizer.variables if "rot" in v.path]
        self.assertLen(after, 3)
        for a, b in zip(before, after):
            self.assertAllEqual(a, b)
        self.assertOrthonormal(rotation, atol=1e-6)

    @parameterized.named_parameters(
        ("adam", None, False),
        ("amsgrad", None, True),
        ("adamw", 0.004, False),
    )
    def test_untagged_variables_match_keras_adam(self, weight_decay, amsgrad):
        rng = np.random.default_rng(3)
        values = [
            rng.standard_normal((5, 3)).astype("float32"),
            rng.standard_normal((3,)).astype("float32"),
        ]
        rotation = variable_tags.mark_stiefel(
            keras.Variable(np.eye(4, dtype="float32"))
        )
        ours = [keras.Variable(v) for v in values]
        theirs = [keras.Variable(v) for v in values]
        optimizer = optimizers.StiefelAdam(
            learning_rate=0.01, amsgrad=amsgrad, weight_decay=weight_decay
        )
        if weight_decay is None:
            reference = keras.optimizers.Adam(
                learning_rate=0.01, amsgrad=amsgrad
            )
        else:
            reference = keras.optimizers.AdamW(
                learning_rate=0.01, weight_decay=weight_decay
            )
        for _ in range(5):
            grads = [
                rng.standard_normal(v.shape).astype("float32") for v in values
            ]
            optimizer.apply(
                [rng.standard_normal((4, 4)).astype("float32")] + grads,
                [rotation] + ours,
            )
            reference.apply(grads, theirs)
        for a, b in zip(ours, theirs):
            self.assertAllClose(a, b, atol=1e-7, rtol=0)
        self.assertOrthonormal(rotation)

    def test_damped_steps_shrink_as_a_scale_invariant_ps(self):
        # A tagged P gets Adam at lr/√(1 + t·d·lr²) at step t (t from 0):
        # Keras's Adam with that schedule is the reference. An untagged
        # variable beside it keeps Adam's constant rate.
        rng = np.random.default_rng(5)
        start = rng.standard_normal((6, 6)).astype("float32")
        other = rng.standard_normal((3,)).astype("float32")
        damped = variable_tags.mark_damped_step(keras.Variable(start))
        ours = [damped, keras.Variable(other)]
        theirs = [keras.Variable(start), keras.Variable(other)]
        lr = 0.1
        optimizer = optimizers.StiefelAdam(learning_rate=lr)
        shrinking = keras.optimizers.Adam(learning_rate=_ShrinkingRate(lr, 6))
        constant = keras.optimizers.Adam(learning_rate=lr)
        for _ in range(8):
            grads = [rng.standard_normal(v.shape).astype("float32")
                     for v in ours]
            optimizer.apply(grads, ours)
            shrinking.apply(grads[:1], theirs[:1])
            constant.apply(grads[1:], theirs[1:])
        for a, b in zip(ours, theirs):
            self.assertAllClose(a, b, atol=1e-6, rtol=0)
        # The shrinking is real: undamped Adam ends elsewhere.
        undamped = keras.Variable(start)
        reference = keras.optimizers.Adam(learning_rate=lr)
        rng = np.random.default_rng(5)
        rng.standard_normal((6, 6)), rng.standard_normal((3,))
        for _ in range(8):
            grads = [rng.standard_normal(v.shape).astype("float32")
                     for v in ours]
            reference.apply(grads[:1], [undamped])
        self.assertGreater(np.max(np.abs(undamped - damped)), 1e-2)

    def test_fit_damps_a_cayley_layers_p(self):
        # Through `fit` (JAX's stateless step included): a Cayley layer of
        # a recipe that shrinks Adam's steps trains under StiefelAdam as
        # under Keras's Adam with the shrinking schedule, not as under a
        # constant rate.
        recipe = recipes_test.shrinking_recipe()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((32, 6)).astype("float32")
        y = rng.standard_normal((32, 3)).astype("float32")

        def trained_p(optimizer):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([
                keras.Input((6,)),
                # P alone trains: the reference's schedule is for all.
                layers.OPTDense(3, orthogonalizer="cayley", use_bias=False,
                                use_gain=False, recipe=recipe),
            ])
            model.compile(optimizer=optimizer, loss="mse")
            model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
            return np.asarray(model.layers[0].rotation_parameter)

        damped = trained_p(optimizers.StiefelAdam(learning_rate=0.1))
        self.assertAllClose(
            damped,
            trained_p(keras.optimizers.Adam(
                learning_rate=_ShrinkingRate(0.1, 6))),
            atol=1e-6, rtol=0,
        )
        constant = trained_p(keras.optimizers.Adam(learning_rate=0.1))
        self.assertGreater(np.max(np.abs(damped - constant)), 1e-2)

    def test_rotation_steps_match_numpy(self):
        # A tagged P, a stack of two P's (one scale each) at half the rate
        # and an untagged variable beside them, which keeps Keras's Adam.
        rng = np.random.default_rng(7)
        starts = [rng.standard_normal((5, 5)).astype("float32"),
                  rng.standard_normal((2, 4, 4)).astype("float32")]
        other = rng.standard_normal((3,)).astype("float32")
        scales = [1.0, 0.5]
        ours = [variable_tags.mark_rotation_step(keras.Variable(start), scale)
                for start, scale in zip(starts, scales)]
        ours.append(keras.Variable(other))
        theirs = keras.Variable(other)
        optimizer = optimizers.StiefelAdam(
            learning_rate=0.01, rotation_learning_rate=0.2)
        reference = keras.optimizers.Adam(learning_rate=0.01)
        grads = [[rng.standard_normal(v.shape).astype("float32")
                  for v in ours] for _ in range(4)]
        for step in grads:
            optimizer.apply(step, ours)
            reference.apply(step[2:], [theirs])
        for index, start in enumerate(starts):
            expected = rotation_steps(
                start, [step[index] for step in grads], 0.2 * scales[index])
            # float32 in another order than numpy's: entries up to ~3.
            self.assertAllClose(ours[index], expected, atol=1e-5, rtol=0)
        self.assertAllClose(ours[2], theirs, atol=1e-7, rtol=0)

    def test_first_rotation_step_is_the_rate_along_the_gradient(self):
        rng = np.random.default_rng(8)
        start = rng.standard_normal((6, 6)).astype("float32")
        grad = rng.standard_normal((6, 6)).astype("float32")
        # Adam's per-entry step is not along the gradient.
        grad[0] *= 100.0
        p = variable_tags.mark_rotation_step(keras.Variable(start))
        optimizers.StiefelAdam(
            learning_rate=0.01, rotation_learning_rate=0.3).apply([grad], [p])
        step = start - np.asarray(p)
        self.assertAllClose(np.linalg.norm(step), 0.3, rtol=1e-5, atol=0)
        self.assertAllClose(step / 0.3, grad / np.linalg.norm(grad),
                            atol=1e-5, rtol=0)
        adam = keras.Variable(start)
        keras.optimizers.Adam(learning_rate=0.01).apply([grad], [adam])
        adam_step = start - np.asarray(adam)
        cosine = np.sum(adam_step * grad) / (
            np.linalg.norm(adam_step) * np.linalg.norm(grad))
        self.assertLess(cosine, 0.9)

    def test_fit_steps_a_default_layers_p_as_a_rotation(self):
        # Through `fit` (JAX's stateless step included): the first step of
        # a default GS layer's P has the rotation rate over √2 as its norm,
        # and R moves by the rate.
        rng = np.random.default_rng(0)
        x = rng.standard_normal((8, 6)).astype("float32")
        y = rng.standard_normal((8, 3)).astype("float32")
        keras.utils.set_random_seed(0)
        layer = layers.OPTDense(3, use_bias=False, use_gain=False)
        model = keras.Sequential([keras.Input((6,)), layer])
        model.compile(optimizer=optimizers.StiefelAdam(
            learning_rate=0.01, rotation_learning_rate=0.05), loss="mse")
        start = np.asarray(layer.rotation_parameter)
        rotation = np.asarray(layer.rotation, np.float64)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        step = np.asarray(layer.rotation_parameter) - start
        self.assertAllClose(np.linalg.norm(step), 0.05 / np.sqrt(2.0),
                            rtol=1e-4, atol=0)
        # Second order in the step: ‖ΔR‖ = √2·‖ΔP‖ + O(‖ΔP‖²).
        self.assertAllClose(
            np.linalg.norm(np.asarray(layer.rotation) - rotation), 0.05,
            rtol=0.02, atol=0)

    @parameterized.named_parameters(
        ("rotation_step", variable_tags.mark_rotation_step),
        ("damped_step", variable_tags.mark_damped_step),
    )
    def test_sgd_ignores_the_step_tags(self, mark):
        rng = np.random.default_rng(6)
        start = rng.standard_normal((4, 4)).astype("float32")
        tagged = mark(keras.Variable(start))
        plain = keras.Variable(start)
        ours = optimizers.StiefelSGD(learning_rate=0.1, momentum=0.9)
        theirs = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
        for _ in range(4):
            grad = rng.standard_normal((4, 4)).astype("float32")
            ours.apply([grad], [tagged])
            theirs.apply([grad], [plain])
        self.assertAllClose(tagged, plain, atol=1e-7, rtol=0)

    def test_weight_decay_never_touches_stiefel_variables(self):
        rng = np.random.default_rng(4)
        x0 = stiefel_sgd_test.random_stiefel(rng, 5, 5).astype("float32")
        grads = [rng.standard_normal((5, 5)).astype("f4") for _ in range(3)]
        results = []
        for weight_decay in (None, 0.5):
            variable = variable_tags.mark_stiefel(keras.Variable(x0))
            optimizer = optimizers.StiefelAdam(
                learning_rate=0.1, weight_decay=weight_decay
            )
            for g in grads:
                optimizer.apply([g], [variable])
            results.append(test_case.numpy(variable))
        self.assertAllEqual(results[0], results[1])

    @parameterized.named_parameters(("cayley", "cayley"), ("qr", "qr"))
    def test_fit_1000_steps_d64(self, retraction):
        optimizer = optimizers.StiefelAdam(
            learning_rate=0.01,
            rotation_learning_rate=0.5,
            retraction=retraction,
        )
        model = stiefel_sgd_test.fit_ogd_layer(optimizer, 64)
        rotation = model.layers[0].rotation
        self.assertOrthonormal(rotation, atol=1e-5)
        self.assertGreater(np.max(np.abs(test_case.numpy(rotation) - np.eye(64))), 0.3)

    def test_fit_1000_steps_d64_drifts_without_control(self):
        optimizer = optimizers.StiefelAdam(
            learning_rate=0.01, rotation_learning_rate=0.5, drift_tolerance=1e9
        )
        model = stiefel_sgd_test.fit_ogd_layer(optimizer, 64)
        error = stiefel_sgd_test.orthogonality_error(model.layers[0].rotation)
        self.assertGreater(error, 1e-5)

    @parameterized.named_parameters(("cayley", "cayley"), ("qr", "qr"))
    @absltest.skipUnless(RUN_SLOW, "set KERAS_OPT_RUN_SLOW_TESTS=1 to run")
    def test_fit_1000_steps_d576(self, retraction):
        optimizer = optimizers.StiefelAdam(
            learning_rate=0.01,
            rotation_learning_rate=0.5,
            retraction=retraction,
        )
        model = stiefel_sgd_test.fit_ogd_layer(optimizer, 576)
        self.assertOrthonormal(model.layers[0].rotation, atol=1e-5)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "beta_1=1.0"):
            optimizers.StiefelAdam(beta_1=1.0)
        with self.assertRaisesRegex(ValueError, "beta_2=-0.5"):
            optimizers.StiefelAdam(beta_2=-0.5)
        with self.assertRaisesRegex(ValueError, "epsilon=-1"):
            optimizers.StiefelAdam(epsilon=-1)
        with self.assertRaisesRegex(ValueError, "learning_rate=-0.001"):
            optimizers.StiefelAdam(learning_rate=-0.001)
        with self.assertRaisesRegex(ValueError, "retraction='svd'"):
            optimizers.StiefelAdam(retraction="svd")
        with self.assertRaisesRegex(TypeError, "use_group_form=1 of type int"):
            optimizers.StiefelAdam(use_group_form=1)

    def test_get_config(self):
        schedule = keras.optimizers.schedules.ExponentialDecay(0.02, 100, 0.5)
        optimizer = optimizers.StiefelAdam(
            learning_rate=keras.optimizers.schedules.CosineDecay(1e-3, 1000),
            rotation_learning_rate=schedule,
            beta_1=0.8,
            amsgrad=True,
            weight_decay=0.01,
            use_group_form=False,
        )
        revived = self.run_serialization_test(optimizer)
        self.assertIsInstance(revived, optimizers.StiefelAdam)
        self.assertIsInstance(
            revived._rotation_learning_rate,
            keras.optimizers.schedules.ExponentialDecay,
        )
        self.assertEqual(revived.beta_1, 0.8)
        self.assertTrue(revived.amsgrad)
        self.assertFalse(revived.use_group_form)


if __name__ == "__main__":
    absltest.main()
