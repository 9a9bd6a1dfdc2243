"""Block-diagonal rotations: OPT layers with `block_size=b`."""

import functools

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import layers
from keras_opt import orthogonalizers
from keras_opt.layers import blocks
from tests import linalg_test
from tests import test_case

EXACT = ("gram_schmidt", "householder", "lowdin", "cayley", "newton_schulz")
STIEFEL = ("ogd",)
# Numpy references of the maps, applied to one block at a time.
REFERENCES = {
    orthogonalizers.GramSchmidt: linalg_test.numpy_gram_schmidt,
    orthogonalizers.Householder: linalg_test.numpy_householder,
    orthogonalizers.Lowdin: linalg_test.numpy_lowdin,
    orthogonalizers.Cayley: linalg_test.numpy_cayley,
    orthogonalizers.NewtonSchulz: linalg_test.numpy_lowdin,
    orthogonalizers.Stiefel: lambda p: p,
    orthogonalizers.Penalty: lambda p: p,
    orthogonalizers.Unconstrained: lambda p: p,
}
# d = 11 and b = 4: sizes 4, 4, 3 (two groups, an unused slot row/column).
FAN_IN, BLOCK = 11, 4


def numpy_rotation(layer):
    """R = Πᵀ·diag(map(P_i))·Π, built block by block in float64."""
    reference = REFERENCES[type(layer.orthogonalizer)]
    if isinstance(layer.orthogonalizer, orthogonalizers.GramSchmidt):
        # The default recipe's, which every layer here has.
        reference = functools.partial(reference, vectors="columns")
    p = np.asarray(layer._map_input(), np.float64)
    permutation = np.asarray(layer.block_permutation)
    d = len(permutation)
    diagonal = np.zeros((d, d))
    row = 0
    for index, size in enumerate(layer.block_layout.sizes):
        block = reference(p[index, :size, :size])
        diagonal[row : row + size, row : row + size] = block
        row += size
    pi = np.eye(d)[permutation]
    return pi.T @ diagonal @ pi


def random_orthogonal_blocks(layout, seed):
    """`(k, m, m)` orthogonal blocks, identity where a slot is unused."""
    rng = np.random.default_rng(seed)
    m = layout.storage
    value = np.tile(np.eye(m), (layout.num_blocks, 1, 1))
    for index, size in enumerate(layout.sizes):
        q, _ = np.linalg.qr(rng.standard_normal((size, size)))
        value[index, :size, :size] = q
    return value


def optimizer_for(layer, learning_rate=0.1):
    """StiefelSGD for OGD layers, SGD with momentum for the maps."""
    if layer.orthogonalizer.is_stiefel:
        return keras_opt.optimizers.StiefelSGD(
            learning_rate, rotation_learning_rate=0.3
        )
    return keras.optimizers.SGD(learning_rate, momentum=0.9)


def moved_parameter(layer, seed=1, scale=0.3):
    """P moved off its start (onto orthogonal blocks for OGD)."""
    if layer.orthogonalizer.is_stiefel:
        return random_orthogonal_blocks(layer.block_layout, seed)
    start = np.asarray(layer.rotation_parameter)
    noise = np.random.default_rng(seed).standard_normal(start.shape)
    return start + scale * noise


def angles(matrix):
    matrix = np.asarray(matrix, np.float64)
    unit = matrix / np.linalg.norm(matrix, axis=0)
    return unit.T @ unit


def unused_entries(layout):
    mask = np.zeros((layout.num_blocks, layout.storage, layout.storage), bool)
    for index, size in enumerate(layout.sizes):
        mask[index] = True
        mask[index, :size, :size] = False
    return mask


class LayoutTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("multiple", 4096, 64, [64] * 64),
        ("nine_by_eight", 9, 8, [5, 4]),
        ("twenty_seven", 27, 8, [7, 7, 7, 6]),
        ("cora", 1433, 64, [63] * 7 + [62] * 16),
        ("one_block", 16, 64, [16]),
        ("equal_not_b", 100, 64, [50, 50]),
        ("size_one", 3, 1, [1, 1, 1]),
    )
    def test_sizes(self, fan_in, block_size, expected):
        layout = blocks.Layout(block_size, fan_in)
        self.assertEqual(layout.sizes, expected)
        self.assertEqual(layout.num_blocks, -(-fan_in // block_size))
        self.assertEqual(layout.storage, max(expected))
        self.assertLessEqual(len(layout.groups), 2)


class BlocksTest(test_case.TestCase):
    @parameterized.named_parameters(
        *[(name, name) for name in EXACT + STIEFEL + ("or", "upt")]
    )
    def test_kernel_matches_numpy_blocks(self, orthogonalizer):
        layer = layers.OPTDense(
            5, block_size=BLOCK, orthogonalizer=orthogonalizer
        )
        layer.build((None, FAN_IN))
        self.assertEqual(tuple(layer.rotation_parameter.shape), (3, 4, 4))
        layer.rotation_parameter.assign(moved_parameter(layer))
        layer.log_gain.assign(np.linspace(-0.5, 0.5, 5))
        rotation = numpy_rotation(layer)
        gain = np.exp(np.asarray(layer.log_gain, np.float64))
        expected = rotation @ np.asarray(layer.basis, np.float64) * gain
        atol = 1e-4 if orthogonalizer == "newton_schulz" else 1e-5
        self.assertAllClose(layer.kernel, expected, atol=atol)
        self.assertAllClose(layer.rotation, rotation, atol=atol)
        x = np.random.default_rng(2).standard_normal((3, FAN_IN))
        outputs = layer(x.astype("float32"))
        self.assertAllClose(outputs, x @ expected + layer.bias, atol=atol)

    @parameterized.named_parameters(
        ("float64", "float64", 1e-10),
        ("mixed_bfloat16", "mixed_bfloat16", 3e-2),
    )
    def test_dtype_policies(self, policy, atol):
        keras.config.set_dtype_policy(policy)
        if policy == "float64":
            keras.config.set_floatx("float64")  # the inputs too
        model = keras.Sequential(
            [keras.Input((FAN_IN,)), layers.OPTDense(3, block_size=BLOCK)]
        )
        layer = model.layers[0]
        layer.rotation_parameter.assign(moved_parameter(layer))
        linalg_dtype = "float64" if policy == "float64" else "float32"
        self.assertEqual(layer.rotation_parameter.dtype, linalg_dtype)
        x = np.random.default_rng(2).standard_normal((4, FAN_IN))
        x = x.astype("float64" if policy == "float64" else "float32")
        expected = x @ (numpy_rotation(layer) @ np.asarray(layer.basis))
        expected = expected * np.exp(np.asarray(layer.log_gain))
        for output in (model(x), model.predict(x, verbose=0)):
            output = np.asarray(output, np.float64)
            self.assertAllClose(output, expected, atol=atol, rtol=atol)
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.fit(x, np.zeros((4, 3)), verbose=0)
        self.assertOrthonormal(layer.rotation)  # 1e-10 in float64

    def test_rotation_is_block_diagonal_on_the_permutation(self):
        layer = layers.OPTDense(3, block_size=BLOCK)
        layer.build((None, FAN_IN))
        layer.rotation_parameter.assign(moved_parameter(layer))
        permutation = np.asarray(layer.block_permutation)
        self.assertAllEqual(np.sort(permutation), np.arange(FAN_IN))
        permuted = np.asarray(layer.rotation)[permutation][:, permutation]
        off_blocks = np.ones((FAN_IN, FAN_IN), bool)
        row = 0
        for size in layer.block_layout.sizes:
            off_blocks[row : row + size, row : row + size] = False
            row += size
        self.assertAllEqual(permuted[off_blocks], 0.0)
        self.assertGreater(np.min(np.abs(permuted[~off_blocks])), 0.0)

    @parameterized.named_parameters(*[(name, name) for name in EXACT])
    def test_gradients_match_finite_differences(self, orthogonalizer):
        # Float64, at the identity, at orthogonal blocks and at random P;
        # the unused slot entries get an exactly zero gradient.
        orthogonalizer = orthogonalizers.get(orthogonalizer)
        layout = blocks.Layout(BLOCK, FAN_IN)
        rng = np.random.default_rng(3)
        permutation = rng.permutation(FAN_IN).astype("int32")
        basis = rng.standard_normal((FAN_IN, 3))
        cotangent = rng.standard_normal((FAN_IN, 3))
        shape = (layout.num_blocks, layout.storage, layout.storage)
        points = {
            "identity": np.tile(np.eye(layout.storage), (3, 1, 1)),
            "orthogonal": random_orthogonal_blocks(layout, 4),
            "random": rng.standard_normal(shape),
        }

        def loss(p):
            kernel = blocks.blockwise(
                layout, permutation, p, basis, orthogonalizer.rotate
            )
            return keras.ops.sum(kernel * cotangent)

        for name, p in points.items():
            analytic = test_case.gradient(loss, p)
            self.assertAllEqual(analytic[unused_entries(layout)], 0.0)
            numeric = np.zeros(shape)
            h = 1e-6
            for index in np.ndindex(shape):
                step = np.zeros(shape)
                step[index] = h
                numeric[index] = (
                    float(loss(p + step)) - float(loss(p - step))
                ) / (2 * h)
            scale = max(1.0, np.max(np.abs(numeric)))
            error = np.max(np.abs(analytic - numeric)) / scale
            self.assertLess(error, 1e-6, f"{name}: relative error {error:.3g}")

    @parameterized.named_parameters(*[(name, name) for name in EXACT + STIEFEL])
    def test_training_keeps_blocks_orthogonal_and_energy(self, orthogonalizer):
        keras.utils.set_random_seed(5)
        layer = layers.OPTConv2D(
            6, 3, block_size=7, orthogonalizer=orthogonalizer, padding="same"
        )
        model = keras.Sequential(
            [keras.Input((5, 5, 3)), layer, keras.layers.Flatten()]
        )
        # d = 27, b = 7: sizes 7, 7, 7, 6.
        self.assertEqual(layer.block_layout.sizes, [7, 7, 7, 6])
        model.compile(optimizer_for(layer, 0.5), "mse")
        rng = np.random.default_rng(0)
        x = rng.standard_normal((16, 5, 5, 3)).astype("float32")
        y = rng.standard_normal((16, 150)).astype("float32")
        start = np.asarray(layer.rotation_parameter)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)
        moved = np.max(np.abs(np.asarray(layer.rotation_parameter) - start))
        self.assertGreater(moved, 1e-2)
        self.assertOrthonormal(layer.rotation, atol=1e-5)
        kernel = np.reshape(np.asarray(layer.kernel), (27, 6))
        self.assertAllClose(
            angles(kernel), angles(layer.basis), atol=1e-5, rtol=0
        )
        # Without MHE's ε in the norms, which the gains would move.
        self.assertAllClose(
            keras_opt.energy.hyperspherical_energy(kernel, epsilon=0.0),
            keras_opt.energy.hyperspherical_energy(layer.basis, epsilon=0.0),
            atol=0,
            rtol=1e-5,
        )


class StiefelBlocksTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("sgd_cayley", keras_opt.optimizers.StiefelSGD, {}),
        ("sgd_every_step", keras_opt.optimizers.StiefelSGD,
         {"reorthonormalize_every": 1}),
        ("sgd_official_form", keras_opt.optimizers.StiefelSGD,
         {"use_group_form": False}),
        ("adam_qr", keras_opt.optimizers.StiefelAdam, {"retraction": "qr"}),
        ("adam_cayley", keras_opt.optimizers.StiefelAdam, {}),
    )
    def test_all_blocks_step_at_once_and_unused_slots_stay(self, cls, kwargs):
        layer = layers.OPTDense(4, block_size=BLOCK, orthogonalizer="ogd")
        model = keras.Sequential([keras.Input((FAN_IN,)), layer])
        layer.rotation_parameter.assign(
            random_orthogonal_blocks(layer.block_layout, 7)
        )
        model.compile(cls(0.1, rotation_learning_rate=0.3, **kwargs), "mse")
        rng = np.random.default_rng(1)
        x = rng.standard_normal((40, FAN_IN)).astype("float32")
        y = rng.standard_normal((40, 4)).astype("float32")
        start = np.asarray(layer.rotation_parameter)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)
        p = np.asarray(layer.rotation_parameter)
        unused = unused_entries(layer.block_layout)
        self.assertAllEqual(p[unused], start[unused])
        # Every block moved (one batched step), and each stays orthogonal.
        for index, size in enumerate(layer.block_layout.sizes):
            block = p[index, :size, :size]
            moved = np.max(np.abs(block - start[index, :size, :size]))
            self.assertGreater(moved, 1e-2)
            self.assertOrthonormal(block, atol=1e-5)
        self.assertOrthonormal(layer.rotation, atol=1e-5)
        momentum = model.optimizer._stiefel_momentums[0]
        self.assertEqual(tuple(momentum.shape), (3, 4, 4))

    def test_stack_step_equals_the_block_diagonal_step(self):
        # One StiefelSGD step of the (k, b, b) stack is that of the
        # block-diagonal d×d matrix: the blocks of the d×d step.
        layout = blocks.Layout(4, 12)
        x = random_orthogonal_blocks(layout, 2).astype("float32")
        gradient = np.random.default_rng(3).standard_normal(x.shape)
        gradient = gradient.astype("float32")
        full_x = np.zeros((12, 12), "float32")
        full_gradient = np.zeros((12, 12), "float32")
        for index in range(3):
            rows = slice(4 * index, 4 * index + 4)
            full_x[rows, rows] = x[index]
            full_gradient[rows, rows] = gradient[index]
        results = []
        for value, grad in ((x, gradient), (full_x, full_gradient)):
            variable = keras.Variable(value)
            optimizer = keras_opt.optimizers.StiefelSGD(
                0.1, rotation_learning_rate=0.3, reorthonormalize_every=100
            )
            optimizer.add_stiefel_variables([variable])
            for _ in range(3):
                optimizer.apply([grad], [variable])
            results.append(np.asarray(variable))
        stacked, full = results
        for index in range(3):
            rows = slice(4 * index, 4 * index + 4)
            self.assertAllClose(stacked[index], full[rows, rows], atol=1e-6)


class BlocksIntegrationTest(test_case.TestCase):
    def test_saving_keeps_the_permutation_of_the_file(self):
        model = keras.Sequential(
            [keras.Input((FAN_IN,)), layers.OPTDense(3, block_size=BLOCK)]
        )
        layer = model.layers[0]
        layer.rotation_parameter.assign(moved_parameter(layer))
        # A permutation the seed would not draw: the file's must be used.
        layer.block_permutation.assign(np.arange(FAN_IN)[::-1].astype("int32"))
        x = np.random.default_rng(1).standard_normal((4, FAN_IN)).astype("f4")
        restored = self.run_model_saving_test(model, x).layers[0]
        self.assertAllEqual(restored.block_permutation, layer.block_permutation)
        self.assertEqual(restored.block_seed, layer.block_seed)
        self.assertEqual(restored.block_size, BLOCK)

    def test_serialization(self):
        layer = layers.OPTConv2D(4, 3, block_size=8, orthogonalizer="cayley")
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.block_seed, layer.block_seed)
        self.assertEqual(revived.block_size, 8)

    def test_weights(self):
        layer = layers.OPTDense(3, block_size=BLOCK)
        layer.build((None, FAN_IN))
        self.assertEqual(
            [w.name for w in layer.trainable_weights],
            ["rotation_parameter", "bias", "log_gain"],
        )
        self.assertEqual(
            [w.name for w in layer.non_trainable_weights],
            ["basis", "block_permutation", "block_episode"],
        )

    def test_classifier_computes_x_r_v(self):
        head = layers.OPTClassifier(6, block_size=BLOCK, orthogonalizer="cp")
        head.build((None, FAN_IN))
        head.rotation_parameter.assign(moved_parameter(head))
        x = np.random.default_rng(2).standard_normal((3, FAN_IN)).astype("f4")
        expected = x @ numpy_rotation(head) @ np.asarray(head.basis, np.float64)
        self.assertAllClose(head(x), expected, atol=1e-5)
        self.assertAllClose(head(x), x @ np.asarray(head.kernel), atol=1e-5)

    def test_fold_and_convert(self):
        model = keras.Sequential(
            [
                keras.Input((6, 6, 2)),
                layers.OPTConv2D(5, 3, block_size=5, orthogonalizer="hr"),
                keras.layers.Flatten(),
                layers.OPTDense(3, block_size=8),
            ]
        )
        for layer in layers.opt_layers(model):
            layer.rotation_parameter.assign(moved_parameter(layer))
        x = np.random.default_rng(0).standard_normal((2, 6, 6, 2)).astype("f4")
        expected = np.asarray(model(x))
        self.assertAllClose(keras_opt.fold(model)(x), expected, atol=1e-5)
        plain = keras_opt.fold(model)
        for orthogonalizer in ("hr", "ogd"):
            converted = keras_opt.convert(
                plain, orthogonalizer=orthogonalizer, block_size=4
            )
            for layer in layers.opt_layers(converted):
                self.assertEqual(layer.block_size, 4)
            self.assertAllClose(converted(x), expected, atol=1e-5)

    def test_paper_parameter_count(self):
        model = keras.Sequential(
            [
                keras.Input((FAN_IN,)),
                layers.OPTDense(3, block_size=BLOCK, use_bias=False,
                                use_gain=False),
                layers.OPTDense(2, block_size=2, use_bias=False,
                                use_gain=False, orthogonalizer="or"),
            ]
        )
        # Sizes 4, 4, 3 and then 2, 1: Σ b(b−1)/2 and Σ b² for OR.
        self.assertEqual(
            keras_opt.models.paper_parameter_count(model), 6 + 6 + 3 + 4 + 1
        )

    def test_orthogonality_penalty_is_that_of_the_block_diagonal(self):
        layer = layers.OPTDense(3, block_size=BLOCK, orthogonalizer="or")
        layer.build((None, FAN_IN))
        p = moved_parameter(layer, scale=0.5)
        layer.rotation_parameter.assign(p)
        diagonal = np.zeros((FAN_IN, FAN_IN))
        row = 0
        for index, size in enumerate(layer.block_layout.sizes):
            rows = slice(row, row + size)
            diagonal[rows, rows] = p[index, :size, :size]
            row += size
        expected = 0.1 * np.linalg.norm(diagonal @ diagonal.T - np.eye(FAN_IN))
        (loss,) = layer.losses
        self.assertAllClose(loss, expected, atol=1e-5, rtol=1e-5)

    def test_orthogonality_monitor(self):
        model = keras.Sequential(
            [keras.Input((FAN_IN,)), layers.OPTDense(3, block_size=BLOCK)]
        )
        monitor = keras_opt.callbacks.OrthogonalityMonitor(budget=1e-5)
        monitor.set_model(model)
        values = monitor.measure()
        key = f"orthogonality/{model.layers[0].name}"
        self.assertLessEqual(values[key], 1e-6)

    @parameterized.named_parameters(
        ("zero", 0, ValueError),
        ("negative", -3, ValueError),
        ("string", "8", TypeError),
        ("bool", True, TypeError),
        ("float", 8.0, TypeError),
    )
    def test_invalid_block_size(self, block_size, error):
        with self.assertRaisesRegex(
            error, f"Invalid (value|type) for argument `block_size`.*"
            f"Received: block_size={block_size!r}"
        ):
            layers.OPTDense(2, block_size=block_size)

    def test_subspace_and_blocks_are_refused(self):
        with self.assertRaisesRegex(ValueError, "not both"):
            layers.OPTDense(2, block_size=4, subspace=0.25)

    def test_matrix_regularizers_are_refused(self):
        layer = layers.OPTDense(2, block_size=4, rotation_regularizer="srip")
        with self.assertRaisesRegex(ValueError, "SRIP has no block form"):
            layer.build((None, 8))


class BlockEpisodesTest(test_case.TestCase):
    @parameterized.named_parameters(*[(name, name) for name in EXACT + STIEFEL])
    def test_next_episode_keeps_the_function(self, orthogonalizer):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 5, 5, 3)).astype("float32")
        layer = layers.OPTConv2D(
            5, 3, block_size=7, orthogonalizer=orthogonalizer
        )
        layer.build(x.shape)
        start = np.asarray(layer.rotation_parameter)
        layer.rotation_parameter.assign(moved_parameter(layer))
        before = np.asarray(layer(x))
        permutation = np.asarray(layer.block_permutation)
        layer.next_episode()
        atol = 1e-4 if orthogonalizer == "newton_schulz" else 1e-5
        self.assertAllClose(layer(x), before, atol=atol, rtol=atol)
        self.assertAllEqual(layer.rotation_parameter, start)
        self.assertEqual(int(layer.block_episode), 1)
        new = np.asarray(layer.block_permutation)
        self.assertAllEqual(np.sort(new), np.arange(27))
        self.assertFalse(np.array_equal(new, permutation))
        self.assertOrthonormal(layer.rotation, atol=1e-5)
        # The merged V keeps the angles of the first V.
        self.assertAllClose(
            angles(np.reshape(np.asarray(layer.kernel), (27, 5))),
            angles(layer.basis),
            atol=1e-5,
            rtol=0,
        )

    def test_episodes_are_a_function_of_seed_and_episode(self):
        def make_layer(seed):
            layer = layers.OPTDense(2, block_size=4, block_seed=seed)
            layer.build((None, 32))
            return layer

        draws = self.assertEpisodesFollowTheSeed(
            make_layer, "block_permutation", 2
        )
        self.assertLen({tuple(row) for row in draws}, 3)
        self.assertFalse(np.array_equal(draws[0], np.arange(32)))

    def test_fit_with_subspace_episodes_resets_and_resumes(self):
        model = keras.Sequential(
            [keras.Input((FAN_IN,)), layers.OPTDense(3, block_size=BLOCK)]
        )
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
        rng = np.random.default_rng(0)
        x = rng.standard_normal((24, FAN_IN)).astype("float32")
        y = rng.standard_normal((24, 3)).astype("float32")
        model.fit(
            x, y, batch_size=4, epochs=1, verbose=0,
            callbacks=[keras_opt.callbacks.SubspaceEpisodes(4)],
        )
        layer = model.layers[0]
        self.assertEqual(int(layer.block_episode), 1)  # after step 4
        restored = self.run_model_saving_test(model, x).layers[0]
        self.assertEqual(int(restored.block_episode), 1)
        self.assertAllEqual(restored.block_permutation, layer.block_permutation)
        layer.next_episode()
        restored.next_episode()
        self.assertAllEqual(restored.block_permutation, layer.block_permutation)
        self.assertAllClose(restored(x), layer(x), atol=0)

    def test_episodes_need_a_fixed_saved_basis(self):
        for layer in (
            layers.OPTDense(2, block_size=4, trainable_basis=True),
            layers.OPTClassifier(3, block_size=4, save_basis=False),
        ):
            layer.build((None, 8))
            with self.assertRaisesRegex(ValueError, "new block episode"):
                layer.next_episode()


def train_block_model(orthogonalizer, jit_compile=False, strategy=None):
    """Two epochs of an OPTDense with unequal blocks; returns the model."""
    keras.utils.set_random_seed(3)
    scope = strategy.scope() if strategy else _null_scope()
    with scope:
        model = keras.Sequential(
            [
                keras.Input((FAN_IN,)),
                layers.OPTDense(
                    4, block_size=BLOCK, orthogonalizer=orthogonalizer,
                    block_seed=11,
                ),
            ]
        )
        model.compile(
            optimizer_for(model.layers[0]), "mse", jit_compile=jit_compile
        )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, FAN_IN)).astype("float32")
    y = rng.standard_normal((32, 4)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return model


def _null_scope():
    import contextlib

    return contextlib.nullcontext()


class BlocksCompiledTest(test_case.TestCase):
    @parameterized.named_parameters(
        *[(name, name) for name in ("gram_schmidt", "householder", "cayley",
                                    "newton_schulz", "ogd")]
    )
    def test_xla_matches_no_xla(self, orthogonalizer):
        expected = train_block_model(orthogonalizer).get_weights()
        model = train_block_model(orthogonalizer, jit_compile=True)
        self.assertTrue(model.jit_compile)
        for value, target in zip(model.get_weights(), expected):
            self.assertAllClose(value, target, atol=1e-5, rtol=0)
        self.assertOrthonormal(model.layers[0].rotation, atol=1e-5)

    def test_mirrored_strategy_matches_one_device(self):
        import tensorflow as tf

        for orthogonalizer in ("gram_schmidt", "ogd"):
            expected = train_block_model(orthogonalizer).get_weights()
            strategy = tf.distribute.MirroredStrategy(
                cross_device_ops=tf.distribute.ReductionToOneDevice()
            )
            self.assertEqual(strategy.num_replicas_in_sync, 2)
            model = train_block_model(orthogonalizer, strategy=strategy)
            for value, target in zip(model.get_weights(), expected):
                self.assertAllClose(value, target, atol=1e-6, rtol=0)
            mirrored = [
                variable
                for variable in model.variables + model.optimizer.variables
                if hasattr(variable.value, "values")
            ]
            paths = " ".join(variable.path for variable in mirrored)
            self.assertIn("block_permutation", paths)
            self.assertIn("momentum", paths)
            for variable in mirrored:
                first, second = (np.asarray(v) for v in variable.value.values)
                self.assertAllEqual(first, second, msg=variable.path)
            self.assertOrthonormal(model.layers[0].rotation, atol=1e-5)

if __name__ == "__main__":
    absltest.main()
