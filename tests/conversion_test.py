import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from tests import test_case

EXACT = sorted(
    name
    for name, cls in keras_opt.orthogonalizers.ALIASES.items()
    if cls.is_exact and len(name) > 3
)


def _opt_model(orthogonalizer):
    inputs = keras.Input((8, 8, 2), name="image")
    x = keras_opt.layers.OPTConv2D(
        4, 3, activation="relu", orthogonalizer=orthogonalizer
    )(inputs)
    inner = keras.Sequential(
        [
            keras.Input((6, 6, 4)),
            keras.layers.Flatten(),
            keras_opt.layers.OPTDense(
                6, orthogonalizer=orthogonalizer, bias_initializer="ones"
            ),
        ]
    )
    x = inner(x)
    x = keras_opt.layers.OPTConv1D(3, 2, padding="causal", use_bias=False)(
        keras.layers.Reshape((6, 1))(x)
    )
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def _move_off_identity(model, seed=0):
    """Moves every OPT layer's P, gain and bias off their starting values.

    At R = I and g = 1, W = V: a fold that copied V would pass.
    """
    rng = np.random.default_rng(seed)
    for layer in keras_opt.layers.opt_layers(model):
        p = np.asarray(layer.rotation_parameter)
        layer.rotation_parameter.assign(p + 0.3 * rng.standard_normal(p.shape))
        layer.log_gain.assign(rng.standard_normal(layer.log_gain.shape))
        if layer.bias is not None:
            layer.bias.assign(rng.standard_normal(layer.bias.shape))
    return model


def _plain_model():
    inputs = keras.Input((8, 8, 2), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(6, activation="tanh", name="d1")(x)
    x = keras.layers.Dense(5, use_bias=False, name="d2")(x)
    outputs = keras.layers.Dense(3, name="head")(x)
    return keras.Model(inputs, outputs)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


class FoldTest(test_case.TestCase):
    @parameterized.named_parameters(*[(name, name) for name in EXACT])
    def test_outputs_equal_and_no_opt_layer_left(self, orthogonalizer):
        model = _move_off_identity(_opt_model(orthogonalizer))
        x = np.random.default_rng(0).random((5, 8, 8, 2), dtype="float32")
        folded = keras_opt.fold(model)
        self.assertAllClose(
            folded.predict(x, verbose=0),
            model.predict(x, verbose=0),
            atol=1e-5,
            rtol=1e-5,
        )
        for layer in _all_layers(folded):
            self.assertFalse(type(layer).__module__.startswith("keras_opt"))
        config = str(folded.get_config())
        self.assertNotIn("keras_opt", config)

    def test_folded_kernel_is_r_times_v(self):
        layer = keras_opt.layers.OPTDense(4, orthogonalizer="cayley")
        model = _move_off_identity(
            keras.Sequential([keras.Input((7,)), layer])
        )
        folded = keras_opt.fold(model)
        rotation = np.asarray(layer.rotation, np.float64)
        self.assertGreater(np.abs(rotation - np.eye(7)).max(), 0.1)
        basis = np.asarray(layer.basis, np.float64)
        gain = np.exp(np.asarray(layer.log_gain, np.float64))
        self.assertAllClose(
            folded.layers[0].kernel, rotation @ basis * gain, atol=1e-6
        )
        self.assertEqual(folded.layers[0].name, layer.name)

    def test_subclassed_model_is_refused(self):
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.dense = keras_opt.layers.OPTDense(2)

            def call(self, x):
                return self.dense(x)

        net = Net()
        net(np.ones((1, 3), "float32"))
        with self.assertRaisesRegex(ValueError, "Sequential|Functional"):
            keras_opt.fold(net)

    def test_export_serves_without_keras_opt(self):
        model = _move_off_identity(_opt_model("gram_schmidt"))
        x = np.random.default_rng(1).random((3, 8, 8, 2), dtype="float32")
        expected = model.predict(x, verbose=0)
        export_dir = os.path.join(self.get_temp_dir(), "serving")
        keras_opt.fold(model).export(export_dir, verbose=False)
        np.save(os.path.join(export_dir, "x.npy"), x)
        script = textwrap.dedent(
            """
            import sys
            sys.modules["keras_opt"] = None  # `import keras_opt` fails
            try:
                import keras_opt
            except ImportError:
                pass
            else:
                raise SystemExit("keras_opt was importable")
            import numpy as np
            import tensorflow as tf
            served = tf.saved_model.load(sys.argv[1])
            x = np.load(sys.argv[1] + "/x.npy")
            out = served.serve(tf.constant(x)).numpy()
            ops = {
                op.type
                for f in served.serve.concrete_functions
                for op in f.graph.get_operations()
            }
            np.save(sys.argv[1] + "/y.npy", out)
            print(sorted(ops))
            """
        )
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(
            [sys.executable, "-c", script, export_dir],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=self.get_temp_dir(),
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertAllClose(
            np.load(os.path.join(export_dir, "y.npy")),
            expected,
            atol=1e-5,
            rtol=1e-5,
        )
        for op in ("Qr", "MatrixSolve", "Svd", "MatrixTriangularSolve"):
            self.assertNotIn(f"'{op}'", result.stdout)


class ConvertTest(test_case.TestCase):
    @parameterized.named_parameters(
        *[(name, name) for name in EXACT + ["penalty", "unconstrained"]]
    )
    def test_outputs_unchanged_at_conversion(self, orthogonalizer):
        model = _plain_model()
        x = np.random.default_rng(2).random((4, 8, 8, 2), dtype="float32")
        converted = keras_opt.convert(model, orthogonalizer=orthogonalizer)
        self.assertAllClose(
            converted.predict(x, verbose=0),
            model.predict(x, verbose=0),
            atol=1e-5,
            rtol=1e-5,
        )
        kinds = {layer.name: type(layer).__name__ for layer in converted.layers}
        self.assertEqual(kinds["c1"], "OPTConv2D")
        self.assertEqual(kinds["head"], "OPTDense")
        self.assertIsNone(converted.get_layer("d2").bias)

    def test_layer_selection(self):
        model = _plain_model()
        converted = keras_opt.convert(model, layers=["d1", "d2"])
        kinds = {layer.name: type(layer).__name__ for layer in converted.layers}
        self.assertEqual(kinds["c1"], "Conv2D")
        self.assertEqual(kinds["d1"], "OPTDense")
        self.assertEqual(kinds["head"], "Dense")
        converted = keras_opt.convert(
            model, layers=lambda layer: layer.name == "c1"
        )
        self.assertEqual(type(converted.get_layer("c1")).__name__, "OPTConv2D")
        with self.assertRaisesRegex(ValueError, "Unknown layer names.*'nope'"):
            keras_opt.convert(model, layers=["nope"])
        with self.assertRaisesRegex(TypeError, "layers"):
            keras_opt.convert(model, layers="d1")

    def test_dropped_kernel_constraint_warns(self):
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(3, kernel_constraint="non_neg")]
        )
        with self.assertWarnsRegex(UserWarning, "kernel_constraint"):
            keras_opt.convert(model)

    @parameterized.named_parameters(("ogd", "ogd"), ("gram_schmidt", "gs"))
    def test_fine_tune_keeps_energy_then_fold(self, orthogonalizer):
        model = _plain_model()
        rng = np.random.default_rng(3)
        x = rng.random((32, 8, 8, 2), dtype="float32")
        y = rng.integers(0, 3, 32)
        converted = keras_opt.convert(
            model, orthogonalizer=orthogonalizer, layers=["d1", "head"]
        )
        head = converted.get_layer("head")
        energy_before = keras_opt.energy.hyperspherical_energy(head.kernel)
        converted.compile(
            optimizer=keras_opt.optimizers.StiefelSGD(
                learning_rate=0.05, rotation_learning_rate=0.05
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        kernel_before = np.asarray(head.kernel)
        converted.fit(x, y, epochs=2, batch_size=8, verbose=0)
        self.assertGreater(np.abs(np.asarray(head.kernel) - kernel_before).max(), 1e-4)
        self.assertOrthonormal(head.rotation)
        self.assertAllClose(
            keras_opt.energy.hyperspherical_energy(head.kernel),
            energy_before,
            atol=1e-4,
            rtol=1e-5,
        )
        folded = keras_opt.fold(converted)
        self.assertAllClose(
            folded.predict(x, verbose=0),
            converted.predict(x, verbose=0),
            atol=1e-5,
            rtol=1e-5,
        )


if __name__ == "__main__":
    absltest.main()
