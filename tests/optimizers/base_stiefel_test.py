import os
import re
import warnings

import keras
import numpy as np
import tensorflow as tf
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import optimizers
from keras_opt import variable_tags
from tests import test_case


def ogd_model(dim=16, units=4, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((dim,)),
            keras_opt.layers.OPTDense(8, orthogonalizer="ogd"),
            keras.layers.ReLU(),
            keras.layers.Dense(units, dtype="float32"),
        ]
    )


def regression_data(num=64, dim=16, units=4):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((num, dim)).astype("float32")
    y = rng.standard_normal((num, units)).astype("float32")
    return x, y


def optimizer_state(optimizer):
    return {v.path: test_case.numpy(v) for v in optimizer.variables}


def cube_products(graph, d, functions, skip_reorthonormalization=True):
    """The most `d×d×d` matrix products one run through `graph` makes.

    Every `MatMul`/`BatchMatMul*` op with two `(d, d)` inputs counts once.
    An `If` op (`ops.cond`) counts its costlier branch, found in
    `functions`, a dict of the traced branch graphs by name. A branch that
    re-orthonormalizes (it holds the cond between Cholesky-QR and
    Householder QR of `stiefel.reorthonormalize`) is skipped unless
    `skip_reorthonormalization=False`.
    """
    count = 0
    for op in graph.get_operations():
        if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMulV3"):
            count += all(tuple(t.shape) == (d, d) for t in op.inputs)
        elif op.type in ("If", "StatelessIf"):
            count += max(
                cube_products(branch, d, functions, skip_reorthonormalization)
                for branch in _branches(op, functions)
                if not (
                    skip_reorthonormalization
                    and _reorthonormalizes(branch, functions)
                )
            )
    return count


def _branches(op, functions):
    return [
        functions[op.get_attr(key).name]
        for key in ("then_branch", "else_branch")
    ]


def _reorthonormalizes(graph, functions):
    return any(
        other.type in ("Qr", "Cholesky")
        for op in graph.get_operations()
        if op.type in ("If", "StatelessIf")
        for branch in _branches(op, functions)
        for other in branch.get_operations()
    )


class _CrashAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("Simulated crash.")


class BaseStiefelTest(test_case.TestCase):
    def test_roles_from_tags_and_add_stiefel_variables(self):
        tagged = variable_tags.mark_stiefel(keras.Variable(np.eye(3, dtype="f4")))
        added = keras.Variable(np.eye(4, 2, dtype="f4"))
        plain = keras.Variable(np.eye(3, dtype="f4"))
        optimizer = optimizers.StiefelSGD()
        optimizer.add_stiefel_variables([added])
        optimizer.build([plain, tagged, added])
        self.assertEqual(optimizer._stiefel_roles, (False, True, True))
        self.assertTrue(variable_tags.is_handled(tagged))
        self.assertTrue(variable_tags.is_handled(added))
        self.assertFalse(variable_tags.is_handled(plain))
        with self.assertRaisesRegex(ValueError, "before the optimizer"):
            optimizer.add_stiefel_variables([plain])

    @parameterized.named_parameters(("cayley", "cayley"), ("qr", "qr"))
    def test_first_step_puts_variable_on_manifold(self, retraction):
        rng = np.random.default_rng(0)
        value = np.linalg.qr(rng.standard_normal((6, 3)))[0]
        value = value + 0.05 * rng.standard_normal((6, 3))
        variable = keras.Variable(value.astype("float32"))
        optimizer = optimizers.StiefelSGD(0.01, retraction=retraction)
        optimizer.add_stiefel_variables([variable])
        optimizer.apply([np.zeros((6, 3), "float32")], [variable])
        self.assertOrthonormal(variable, atol=1e-6)

    @parameterized.named_parameters(
        (f"{name}_{kind}_{retraction}_{scale:.0e}", cls, shape, retraction,
         scale)
        for name, cls in (
            ("sgd", optimizers.StiefelSGD), ("adam", optimizers.StiefelAdam)
        )
        for kind, shape in (
            ("square", (6, 6)), ("tall", (8, 3)), ("stack", (3, 5, 5))
        )
        for retraction in ("cayley", "qr")
        for scale in (1e10, 1e20)
    )
    def test_large_finite_gradients_keep_the_variable_on_the_manifold(
        self, cls, shape, retraction, scale
    ):
        # Gradients of 1e10 and 1e20 are finite: the steps are taken (or
        # skipped) without a NaN or inf reaching the variable or a slot,
        # and the drift control keeps working through the normal steps
        # that follow.
        rng = np.random.default_rng(5)
        value = np.linalg.qr(rng.standard_normal(shape))[0].astype("f4")
        variable = variable_tags.mark_stiefel(keras.Variable(value))
        optimizer = cls(0.1, rotation_learning_rate=0.5, retraction=retraction)
        for step in range(12):
            gradient = rng.standard_normal(shape).astype("f4")
            if step < 6:
                gradient *= np.float32(scale)
            optimizer.apply([gradient], [variable])
            for slot in optimizer.variables:
                self.assertAllFinite(slot, msg=f"{slot.path} at step {step}")
            self.assertAllFinite(variable, msg=f"step {step}")
            self.assertOrthonormal(variable, atol=1e-5)
        moved = test_case.numpy(variable) - value
        self.assertGreater(np.max(np.abs(moved)), 1e-2)

    @parameterized.named_parameters(
        ("vector", (4,)),
        ("wide", (3, 5)),
        ("wide_stack", (2, 3, 5)),
        ("tensor", (2, 2, 2, 2)),
    )
    def test_invalid_stiefel_variable(self, shape):
        variable = variable_tags.mark_stiefel(
            keras.Variable(np.zeros(shape, "float32"), name="bad")
        )
        optimizer = optimizers.StiefelAdam()
        with self.assertRaisesRegex(
            ValueError, re.escape("'bad'") + ".*" + re.escape(
                f"Received: shape={tuple(shape)}"
            )
        ):
            optimizer.build([variable])

    @parameterized.named_parameters(
        ("sgd_cayley", optimizers.StiefelSGD, "cayley"),
        ("adam_qr", optimizers.StiefelAdam, "qr"),
    )
    def test_graph_matches_eager(self, cls, retraction):
        x, y = regression_data()
        results = []
        for run_eagerly in (True, False):
            model = ogd_model()
            model.compile(
                optimizer=cls(learning_rate=0.01, retraction=retraction),
                loss="mse",
                run_eagerly=run_eagerly,
            )
            model.fit(x, y, batch_size=8, epochs=2, verbose=0)
            results.append(model.get_weights())
        for a, b in zip(*results):
            self.assertAllClose(a, b, atol=1e-6, rtol=1e-5)

    def test_jit_compile(self):
        x, y = regression_data()
        results = []
        for jit_compile in (False, True):
            model = ogd_model()
            model.compile(
                optimizer=optimizers.StiefelSGD(
                    learning_rate=0.01, rotation_learning_rate=0.1
                ),
                loss="mse",
                jit_compile=jit_compile,
            )
            model.fit(x, y, batch_size=4, epochs=10, verbose=0)
            self.assertOrthonormal(model.layers[0].rotation, atol=1e-5)
            results.append(model.get_weights())
        for a, b in zip(*results):
            self.assertAllClose(a, b, atol=1e-4, rtol=1e-4)

    @parameterized.named_parameters(
        ("sgd", optimizers.StiefelSGD), ("adam", optimizers.StiefelAdam)
    )
    def test_group_form_step_costs_four_products(self, cls):
        # One `apply` on a d×d Stiefel variable, traced by `tf.function`:
        # its Cayley step (without the branch that re-orthonormalizes) makes
        # 4 d×d×d products in the group form, 6 in the official form.
        d = 256
        counts = {}
        for group_form in (True, False):
            variable = variable_tags.mark_stiefel(
                keras.Variable(np.eye(d, dtype="float32"))
            )
            optimizer = cls(0.1, use_group_form=group_form)
            optimizer.build([variable])
            step = tf.function(lambda g: optimizer.apply([g], [variable]))
            graph = step.get_concrete_function(
                tf.TensorSpec((d, d), "float32")
            ).graph
            functions = {
                name: function.graph
                for name, function in graph._functions.items()
            }
            counts[group_form] = cube_products(graph, d, functions)
            # The skipped branch is the QR and momentum transport.
            self.assertGreater(
                cube_products(
                    graph, d, functions, skip_reorthonormalization=False
                ),
                counts[group_form],
            )
        self.assertLessEqual(counts[True], 4)
        self.assertEqual(counts[False], 6)

    @parameterized.named_parameters(
        ("sgd", optimizers.StiefelSGD, 0.02),
        ("adam", optimizers.StiefelAdam, 0.5),
    )
    def test_group_form_stays_orthonormal_in_float32(self, cls, rate):
        # 1000 steps of an OPTDense at d = 256 in float32 (SGD at OGD's
        # rotation rate): the group form keeps max |RᵀR − I| <= 1e-5 with
        # the default drift control, which re-orthonormalizes on few steps.
        optimizer = cls(
            learning_rate=0.01, rotation_learning_rate=rate, use_group_form=True
        )
        resets = []

        def record_reset(batch, logs):
            if keras.backend.backend() == "jax":
                model.jax_state_sync()  # JAX's fit detaches the variables
            drift = test_case.numpy(optimizer._stiefel_drifts[0])
            resets.append(float(drift) == 0.0)

        callback = keras.callbacks.LambdaCallback(
            on_train_batch_end=record_reset
        )
        rng = np.random.default_rng(0)
        model = keras.Sequential(
            [
                keras.Input((256,)),
                keras_opt.layers.OPTDense(4, orthogonalizer="ogd"),
            ]
        )
        model.compile(optimizer=optimizer, loss="mse")
        x = rng.standard_normal((4000, 256)).astype("float32")
        y = rng.standard_normal((4000, 4)).astype("float32")
        model.fit(x, y, batch_size=4, verbose=0, callbacks=[callback])
        rotation = model.layers[0].rotation
        self.assertEqual(rotation.dtype, "float32")
        self.assertOrthonormal(rotation, atol=1e-5)
        rotation = test_case.numpy(rotation)
        self.assertGreater(np.max(np.abs(rotation - np.eye(256))), 0.05)
        self.assertLen(resets, 1000)
        self.assertLess(sum(resets), 100)

    @parameterized.named_parameters(
        ("float16", "mixed_float16"), ("bfloat16", "mixed_bfloat16")
    )
    def test_mixed_precision(self, policy):
        keras.config.set_dtype_policy(policy)
        x, y = regression_data(num=128)
        model = ogd_model()
        model.compile(
            optimizer=optimizers.StiefelSGD(
                learning_rate=0.01, rotation_learning_rate=0.1
            ),
            loss="mse",
        )
        if policy == "mixed_float16":
            self.assertIsInstance(
                model.optimizer, keras.optimizers.LossScaleOptimizer
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(x, y, batch_size=4, epochs=5, verbose=0)
        self.assertEqual(
            [w for w in caught if "Stiefel" in str(w.message)], []
        )
        self.assertTrue(np.all(np.isfinite(history.history["loss"])))
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        rotation = model.layers[0].rotation
        self.assertEqual(rotation.dtype, "float32")
        self.assertOrthonormal(rotation, atol=1e-5)
        rotation = test_case.numpy(rotation)
        self.assertGreater(np.max(np.abs(rotation - np.eye(16))), 0.05)

    def test_saving_with_optimizer_state(self):
        x, y = regression_data()
        model = ogd_model()
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [10], [0.02, 0.004]
        )
        model.compile(
            optimizer=optimizers.StiefelSGD(
                learning_rate=0.01, rotation_learning_rate=schedule
            ),
            loss="mse",
        )
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        restored = self.run_model_saving_test(model, x)
        self.assertIsInstance(restored.optimizer, optimizers.StiefelSGD)
        self.assertIsInstance(
            restored.optimizer._rotation_learning_rate,
            keras.optimizers.schedules.PiecewiseConstantDecay,
        )
        state = optimizer_state(model.optimizer)
        restored_state = optimizer_state(restored.optimizer)
        self.assertEqual(len(state), len(restored_state))
        for a, b in zip(state.values(), restored_state.values()):
            self.assertAllEqual(a, b)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        restored.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        for a, b in zip(model.get_weights(), restored.get_weights()):
            self.assertAllEqual(a, b)

    @parameterized.named_parameters(
        ("sgd", optimizers.StiefelSGD), ("adam", optimizers.StiefelAdam)
    )
    def test_backup_and_restore_resumes_exactly(self, cls):
        x, y = regression_data()
        backup_dir = os.path.join(self.get_temp_dir(), "backup")

        def run(callbacks):
            model = ogd_model()
            model.compile(
                optimizer=cls(learning_rate=0.01, rotation_learning_rate=0.2),
                loss="mse",
            )
            model.fit(
                x,
                y,
                batch_size=8,
                epochs=4,
                shuffle=False,
                callbacks=callbacks,
                verbose=0,
            )
            return model

        expected = run([])
        with self.assertRaisesRegex(RuntimeError, "Simulated crash"):
            run(
                [
                    keras.callbacks.BackupAndRestore(backup_dir),
                    _CrashAtEpoch(2),
                ]
            )
        resumed = run([keras.callbacks.BackupAndRestore(backup_dir)])
        self.assertEqual(int(resumed.optimizer.iterations), 32)
        for a, b in zip(expected.get_weights(), resumed.get_weights()):
            self.assertAllEqual(a, b)
        expected_state = optimizer_state(expected.optimizer)
        resumed_state = optimizer_state(resumed.optimizer)
        self.assertEqual(len(expected_state), len(resumed_state))
        for a, b in zip(expected_state.values(), resumed_state.values()):
            self.assertAllEqual(a, b)


if __name__ == "__main__":
    absltest.main()
