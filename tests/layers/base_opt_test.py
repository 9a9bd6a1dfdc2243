"""Invariants every OPT layer keeps, for every registered orthogonalizer."""

import os

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import orthogonalizers
from tests import test_case

TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")


def registered_names():
    """The first name of each registered orthogonalizer ("gram_schmidt", ...)."""
    names = {}
    for name, cls in orthogonalizers.ALIASES.items():
        names.setdefault(cls, name)
    return list(names.values())


NAMES = registered_names()
EXACT_NAMES = [n for n in NAMES if orthogonalizers.get(n).is_exact]


def numpy_energy(kernel, epsilon=1e-4):
    """Pair-averaged E_2 of the normalized neurons (last axis), in float64."""
    w = np.asarray(kernel, dtype=np.float64).reshape(-1, kernel.shape[-1])
    norms = np.sqrt(np.sum(w * w, axis=0) + epsilon)
    cosine = (w.T @ w) / np.outer(norms, norms)
    upper = np.triu_indices(w.shape[1], k=1)
    return float(np.mean(1.0 / (2.0 - 2.0 * cosine[upper])))


def small_model(orthogonalizer, **kwargs):
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras_opt.layers.OPTConv2D(
                4, 3, activation="relu", orthogonalizer=orthogonalizer, **kwargs
            ),
            keras.layers.Flatten(),
            keras_opt.layers.OPTDense(
                5, orthogonalizer=orthogonalizer, **kwargs
            ),
            keras.layers.Dense(3),
        ]
    )


def opt_layers(model):
    return [l for l in model.layers if isinstance(l, keras_opt.layers.BaseOPT)]


def training_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 6, 6, 2)).astype("float32")
    y = rng.integers(0, 3, size=(32,))
    return x, y


class BaseOPTTest(test_case.TestCase):
    @parameterized.named_parameters((n, n) for n in EXACT_NAMES)
    def test_energy_is_invariant_through_fit(self, name):
        model = small_model(name, recipe="official")
        model.compile(
            optimizer=keras.optimizers.SGD(0.5, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x, y = training_data()
        parameters = [np.asarray(l.rotation_parameter) for l in opt_layers(model)]
        model.fit(x, y, batch_size=8, epochs=3, verbose=0)
        for layer, before in zip(opt_layers(model), parameters):
            moved = np.max(np.abs(layer.rotation_parameter - before))
            self.assertGreater(moved, 1e-3)
            basis = np.asarray(layer.basis)
            kernel = np.asarray(layer.kernel).reshape(basis.shape)
            self.assertAlmostEqual(
                numpy_energy(kernel), numpy_energy(basis), delta=1e-5
            )
            self.assertOrthonormal(layer.rotation, atol=1e-5)

    @parameterized.named_parameters((n, n) for n in EXACT_NAMES)
    def test_default_recipe_kernel_is_gain_times_rotated_basis(self, name):
        model = small_model(name)
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        for layer in opt_layers(model):
            self.assertAllClose(layer.gain, np.ones(layer.basis.shape[1]))
            start = np.asarray(layer.rotation, np.float64)
            identity = np.eye(start.shape[0])
            if name != "householder":  # HR's identity point is a reflection
                self.assertAllClose(start, identity, atol=1e-6)
        x, y = training_data()
        model.fit(x, y, batch_size=8, epochs=3, verbose=0)
        for layer in opt_layers(model):
            gain = np.asarray(layer.gain, np.float64)
            self.assertGreater(np.abs(gain - 1.0).max(), 1e-4)
            basis = np.asarray(layer.basis, np.float64)
            rotated = np.asarray(layer.rotation, np.float64) @ basis
            kernel = np.asarray(layer.kernel).reshape(basis.shape)
            self.assertAllClose(kernel, gain * rotated, atol=1e-5, rtol=1e-5)
            self.assertAlmostEqual(
                numpy_energy(rotated), numpy_energy(basis), delta=1e-5
            )
            self.assertOrthonormal(layer.rotation, atol=1e-5)

    def test_energy_changes_without_orthogonality(self):
        model = small_model("upt")
        model.compile(
            optimizer=keras.optimizers.SGD(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x, y = training_data()
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        layer = opt_layers(model)[1]
        self.assertGreater(
            abs(numpy_energy(layer.kernel) - numpy_energy(layer.basis)), 1e-3
        )

    @parameterized.named_parameters((n, n) for n in NAMES)
    def test_only_rotation_and_bias_train(self, name):
        model = small_model(name)
        model.compile(
            optimizer=keras.optimizers.SGD(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        layers = opt_layers(model)
        for layer in layers:
            self.assertEqual(
                [v.path for v in layer.trainable_variables],
                [
                    layer.rotation_parameter.path,
                    layer.bias.path,
                    layer.log_gain.path,
                ],
            )
            self.assertEqual(
                [v.path for v in layer.non_trainable_variables],
                [layer.basis.path],
            )
        bases = [np.asarray(l.basis) for l in layers]
        x, y = training_data()
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        for layer, basis in zip(layers, bases):
            self.assertAllEqual(layer.basis, basis)

    def test_trainable_basis(self):
        model = small_model("gs", trainable_basis=True)
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        layers = opt_layers(model)
        bases = [np.asarray(l.basis) for l in layers]
        x, y = training_data()
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        for layer, basis in zip(layers, bases):
            self.assertIn(layer.basis.path, [v.path for v in layer.trainable_variables])
            self.assertGreater(np.max(np.abs(layer.basis - basis)), 1e-4)

    @parameterized.named_parameters((n, n) for n in NAMES)
    def test_keras_file_round_trip(self, name):
        model = small_model(name)
        x, _ = training_data()
        restored = self.run_model_saving_test(model, x)
        for layer in opt_layers(restored):
            self.assertIsInstance(
                layer.orthogonalizer, type(orthogonalizers.get(name))
            )
            self.assertEqual(
                keras_opt.variable_tags.is_stiefel_variable(
                    layer.rotation_parameter
                ),
                name == "stiefel",
            )

    def test_layer_config_round_trip(self):
        layer = keras_opt.layers.OPTDense(
            4,
            activation="tanh",
            use_bias=False,
            basis_initializer=keras.initializers.RandomNormal(0.01, 0.1, seed=3),
            rotation_regularizer="l2",
            orthogonalizer=orthogonalizers.Penalty(beta=0.3, squared=True),
            trainable_basis=True,
        )
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.orthogonalizer.beta, 0.3)
        self.assertTrue(revived.orthogonalizer.squared)

    @parameterized.named_parameters(
        ("float16", "mixed_float16"), ("bfloat16", "mixed_bfloat16")
    )
    def test_mixed_precision(self, policy):
        keras.config.set_dtype_policy(policy)
        model = small_model("gs")
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x, y = training_data()
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        self.assertTrue(np.all(np.isfinite(history.history["loss"])))
        compute_dtype = policy.split("_")[1]
        for layer in opt_layers(model):
            self.assertEqual(layer.rotation_parameter.dtype, "float32")
            self.assertEqual(layer.basis.dtype, "float32")
            self.assertEqual(
                keras.backend.standardize_dtype(layer.rotation.dtype), "float32"
            )
            # W is computed in float32, then cast to the compute dtype.
            self.assertEqual(
                keras.backend.standardize_dtype(layer.kernel.dtype),
                compute_dtype,
            )
            self.assertOrthonormal(layer.rotation, 1e-5)
            output = layer(np.ones((1,) + layer.input.shape[1:]))
            self.assertEqual(keras.backend.standardize_dtype(output.dtype), compute_dtype)

    def test_penalty_is_added_to_losses(self):
        layer = keras_opt.layers.OPTDense(3, orthogonalizer="or")
        layer.build((None, 4))
        p = np.asarray(layer.rotation_parameter, dtype=np.float64)
        expected = 0.1 * np.linalg.norm(p @ p.T - np.eye(4))
        self.assertLen(layer.losses, 1)
        self.assertAllClose(layer.losses[0], expected, atol=1e-4, rtol=1e-6)
        regularized = keras_opt.layers.OPTDense(
            3, orthogonalizer="or", rotation_regularizer=keras.regularizers.L2(0.5)
        )
        regularized.build((None, 4))
        p = np.asarray(regularized.rotation_parameter, dtype=np.float64)
        expected = 0.1 * np.linalg.norm(p @ p.T - np.eye(4)) + 0.5 * np.sum(
            p**2
        )
        self.assertAllClose(regularized.losses[0], expected, atol=1e-4, rtol=1e-6)
        plain = keras_opt.layers.OPTDense(3)
        plain.build((None, 4))
        self.assertEmpty(plain.losses)

    @parameterized.named_parameters((n, n) for n in NAMES)
    def test_rotation_is_read_only_r(self, name):
        layer = keras_opt.layers.OPTDense(3, orthogonalizer=name)
        with self.assertRaisesRegex(AttributeError, "build the layer"):
            layer.rotation
        layer.build((None, 5))
        rotation = layer.rotation
        self.assertNotIsInstance(rotation, keras.Variable)
        self.assertEqual(tuple(rotation.shape), (5, 5))
        self.assertEqual(keras.backend.standardize_dtype(rotation.dtype), "float32")
        self.assertAllEqual(
            rotation, layer.orthogonalizer(layer.rotation_parameter)
        )
        self.assertAllClose(
            layer.kernel, np.asarray(rotation) @ np.asarray(layer.basis),
            atol=1e-5,
        )
        if layer.orthogonalizer.is_exact or name == "stiefel":
            self.assertOrthonormal(rotation)
        with self.assertRaises(AttributeError):
            layer.rotation = np.eye(5, dtype="float32")
        self.assertEqual(
            [v.name for v in layer.weights],
            ["rotation_parameter", "bias", "log_gain", "basis"],
        )

    def test_rotation_regularizer_by_keras_opt_name(self):
        layer = keras_opt.layers.OPTDense(3, rotation_regularizer="srip")
        self.assertIsInstance(
            layer.rotation_regularizer, keras_opt.regularizers.SRIP
        )
        layer.build((None, 4))
        self.assertLen(layer.losses, 1)
        self.assertAllClose(
            layer.losses[0],
            keras_opt.regularizers.SRIP()(layer.rotation_parameter),
        )
        revived = self.run_serialization_test(layer)
        self.assertIsInstance(
            revived.rotation_regularizer, keras_opt.regularizers.SRIP
        )
        # With OR, the user's regularizer is added to OR's penalty.
        both = keras_opt.layers.OPTDense(
            3, orthogonalizer="or", rotation_regularizer="srip"
        )
        both.build((None, 4))
        p = both.rotation_parameter
        self.assertAllClose(
            both.losses[0],
            keras_opt.regularizers.SRIP()(p)
            + keras_opt.regularizers.OrthogonalityPenalty(0.1)(p),
            atol=1e-6,
        )

    def test_loads_keras_file_of_v0_1(self):
        # Written by testdata/make_legacy.py when `rotation` was the variable
        # P; weights load by position, so P lands in `rotation_parameter`.
        model = keras.saving.load_model(
            os.path.join(TESTDATA, "legacy_v0_1.keras")
        )
        x = np.load(os.path.join(TESTDATA, "legacy_v0_1_inputs.npy"))
        # Outputs computed on another machine: equal up to float32 rounding
        # (another CPU's kernels sum in another order), not bit for bit.
        self.assertAllClose(
            model.predict(x, verbose=0),
            np.load(os.path.join(TESTDATA, "legacy_v0_1_outputs.npy")),
            atol=1e-5,
            rtol=1e-5,
        )
        self.assertAllClose(
            [float(loss) for loss in model.losses],
            np.load(os.path.join(TESTDATA, "legacy_v0_1_losses.npy")),
        )
        conv, _, dense, penalty = model.layers
        self.assertIsInstance(conv.orthogonalizer, orthogonalizers.Stiefel)
        self.assertTrue(keras_opt.variable_tags.is_stiefel_variable(conv.rotation_parameter))
        self.assertIsInstance(dense.orthogonalizer, orthogonalizers.GramSchmidt)
        self.assertEqual(
            (penalty.orthogonalizer.beta, penalty.orthogonalizer.squared),
            (0.3, True),
        )
        self.assertIsInstance(
            penalty.rotation_regularizer,
            keras_opt.regularizers.OrthogonalityPenalty,
        )
        for layer in (conv, dense, penalty):
            self.assertAllEqual(
                layer.rotation, layer.orthogonalizer(layer.rotation_parameter)
            )
        self.assertOrthonormal(dense.rotation)
        # One SGD step moved P off its initializer before saving.
        self.assertGreater(
            np.max(np.abs(np.asarray(conv.rotation_parameter) - np.eye(8))),
            1e-4,
        )

    def test_custom_orthogonalizer(self):
        layer = keras_opt.layers.OPTDense(3, orthogonalizer=keras_opt.linalg.cayley)
        layer.build((None, 4))
        self.assertOrthonormal(layer.rotation)

        def wrong_shape(p):
            return p[:2]

        with self.assertRaisesRegex(ValueError, r"Expected: \(4, 4\).*\(2, 4\)"):
            keras_opt.layers.OPTDense(3, orthogonalizer=wrong_shape).build((None, 4))

    def test_stiefel_rotation_starts_at_identity_and_is_tagged(self):
        layer = keras_opt.layers.OPTDense(3, orthogonalizer="ogd")
        layer.build((None, 4))
        self.assertAllEqual(layer.rotation_parameter, np.eye(4))
        self.assertAllEqual(layer.rotation, np.eye(4))
        self.assertTrue(
            keras_opt.variable_tags.is_stiefel_variable(layer.rotation_parameter)
        )
        self.assertAllEqual(layer.kernel, layer.basis)

    def test_lowdin_layers_opt_out_of_jit(self):
        self.assertFalse(keras_opt.layers.OPTDense(3, orthogonalizer="ls").supports_jit)
        self.assertTrue(keras_opt.layers.OPTDense(3).supports_jit)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "Did you mean 'householder'"):
            keras_opt.layers.OPTDense(3, orthogonalizer="housholder")
        with self.assertRaisesRegex(ValueError, "orthogonalizer=None"):
            keras_opt.layers.OPTDense(3, orthogonalizer=None)
        with self.assertRaisesRegex(TypeError, "Use `basis_initializer`"):
            keras_opt.layers.OPTDense(3, kernel_initializer="ones")
        with self.assertRaisesRegex(TypeError, "kernel_constraint"):
            keras_opt.layers.OPTConv2D(3, 3, kernel_constraint="non_neg")


def _moved_layer(layer, input_shape, seed=0):
    """`layer` built on `input_shape`, with P and the gains off their start."""
    if not layer.built:
        layer.build(input_shape)
    rng = np.random.default_rng(seed)
    p = test_case.numpy(layer.rotation_parameter)
    layer.rotation_parameter.assign(p + 0.3 * rng.standard_normal(p.shape))
    if layer.log_gain is not None:
        gains = 0.5 * rng.standard_normal(layer.log_gain.shape)
        layer.log_gain.assign(gains.astype("float32"))
    return layer


class KernelRegularizerTest(test_case.TestCase):
    """`kernel_regularizer` penalizes the computed W as a stock layer's."""

    @parameterized.named_parameters(
        ("dense", lambda: keras_opt.layers.OPTDense(5), (None, 6)),
        ("conv2d", lambda: keras_opt.layers.OPTConv2D(4, 3), (None, 5, 5, 2)),
        ("classifier", lambda: keras_opt.layers.OPTClassifier(7), (None, 6)),
        ("blocks", lambda: keras_opt.layers.OPTDense(5, block_size=4),
         (None, 6)),
        ("official", lambda: keras_opt.layers.OPTDense(5, recipe="official"),
         (None, 6)),
    )
    def test_penalty_equals_stock_layers_on_same_kernel(self, make, shape):
        layer = make()
        layer.kernel_regularizer = keras.regularizers.L2(0.3)
        layer = _moved_layer(layer, shape)
        x = np.random.default_rng(1).standard_normal((2, *shape[1:]))
        layer(x.astype("float32"))
        kernel = test_case.numpy(layer.kernel).astype(np.float64)
        self.assertLen(layer.losses, 1)
        self.assertAllClose(
            layer.losses[0], 0.3 * np.sum(kernel**2), rtol=1e-5, atol=1e-6
        )

    def test_one_evaluation_of_the_map_per_call(self):
        calls = []

        def counting_cayley(p):
            calls.append(p)
            return keras_opt.linalg.cayley(p)

        layer = keras_opt.layers.OPTDense(
            3, orthogonalizer=counting_cayley,
            kernel_regularizer=keras.regularizers.L2(0.1),
        )
        _moved_layer(layer, (None, 4))
        del calls[:]
        outputs = layer(np.ones((2, 4), "float32"))
        self.assertLen(calls, 1)
        self.assertAllClose(
            outputs, np.ones((2, 4)) @ test_case.numpy(layer.kernel),
            atol=1e-6)
        self.assertAllClose(
            layer.losses[0], 0.1 * np.sum(test_case.numpy(layer.kernel) ** 2),
            rtol=1e-5)
        # The W of a call is not kept past it: the kernel follows P.
        p = np.random.default_rng(0).normal(size=(4, 4)).astype("float32")
        layer.rotation_parameter.assign(p)
        rotation = test_case.numpy(layer.orthogonalizer(p))
        kernel = rotation @ test_case.numpy(layer.basis)
        self.assertAllClose(
            layer.kernel, kernel * test_case.numpy(layer.gain), atol=1e-6)

    def test_l2_moves_the_gains_only(self):
        # ‖R·V·diag(g)‖² = Σ g²‖v‖² for an orthogonal R: one SGD step on the
        # penalty alone changes log g by −lr·2c·g²‖v‖², and R not at all.
        layer = keras_opt.layers.OPTDense(
            4, kernel_regularizer=keras.regularizers.L2(0.2)
        )
        model = keras.Sequential([keras.Input((6,)), layer])
        _moved_layer(layer, (None, 6))
        rotation = test_case.numpy(layer.rotation)
        gains = test_case.numpy(layer.gain).astype(np.float64)
        basis = test_case.numpy(layer.basis).astype(np.float64)
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=lambda y_true, y_pred: 0.0 * keras.ops.sum(y_pred),
        )
        model.train_on_batch(np.ones((2, 6), "float32"), np.zeros((2, 4)))
        expected = np.log(gains) - 0.1 * 2 * 0.2 * gains**2 * np.sum(
            basis**2, axis=0
        )
        self.assertAllClose(np.log(test_case.numpy(layer.gain)), expected,
                            atol=1e-5)
        self.assertAllClose(test_case.numpy(layer.rotation), rotation,
                            atol=1e-5)

    def test_evaluate_loss_includes_the_penalty(self):
        def model(regularizer):
            keras.utils.set_random_seed(3)
            return keras.Sequential([
                keras.Input((6,)),
                keras_opt.layers.OPTDense(4, kernel_regularizer=regularizer),
            ])

        x = np.random.default_rng(2).standard_normal((8, 6)).astype("float32")
        y = np.zeros((8, 4), "float32")
        losses = []
        for regularizer in (None, keras.regularizers.L2(0.5)):
            m = model(regularizer)
            m.compile(loss="mse")
            losses.append(m.evaluate(x, y, verbose=0))
        kernel = test_case.numpy(m.layers[0].kernel).astype(np.float64)
        self.assertAllClose(losses[1] - losses[0], 0.5 * np.sum(kernel**2),
                            rtol=1e-5)

    def test_config_keras_file_fold_and_convert_keep_it(self):
        model = keras.Sequential([
            keras.Input((6,)),
            keras_opt.layers.OPTDense(
                4, kernel_regularizer=keras.regularizers.L2(0.25)
            ),
        ])
        path = os.path.join(self.get_temp_dir(), "regularized.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        folded = keras_opt.fold(model)
        converted = keras_opt.convert(folded)
        for layer in (loaded.layers[0], folded.layers[0],
                      converted.layers[0]):
            self.assertIsInstance(layer.kernel_regularizer,
                                  keras.regularizers.L2)
            self.assertAllClose(layer.kernel_regularizer.l2, 0.25)
        self.assertIsInstance(converted.layers[0], keras_opt.layers.OPTDense)


if __name__ == "__main__":
    absltest.main()
