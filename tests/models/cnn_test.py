import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import layers
from keras_opt import models
from tests import test_case


def _opt_layers(model):
    return [
        layer for layer in model.layers if isinstance(layer, layers.BaseOPT)
    ]


class CNNTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("cnn6_opt", models.cnn6, "gram_schmidt", 1_358_527),
        ("cnn6_baseline", models.cnn6, None, 257_984),
        ("wide_cnn9_opt", models.wide_cnn9, "gram_schmidt", 16_204_351),
        ("wide_cnn9_baseline", models.wide_cnn9, None, 2_992_832),
        ("cnn6_ogd", models.cnn6, "ogd", 1_358_527),
        ("cnn6_cayley", models.cnn6, "cayley", 1_358_527),
    )
    def test_paper_parameter_count(self, function, orthogonalizer, expected):
        model = function(orthogonalizer=orthogonalizer)
        self.assertEqual(models.paper_parameter_count(model), expected)

    @parameterized.named_parameters(
        ("cnn6_quarter", models.cnn6, 0.25, 90_871),
        ("wide_cnn9_quarter", models.wide_cnn9, 0.25, 1_035_799),
        ("wide_cnn9_eighth", models.wide_cnn9, 1 / 8, 277_979),
        ("wide_cnn9_sixteenth", models.wide_cnn9, 1 / 16, 88_741),
        ("wide_cnn9_16", models.wide_cnn9, 16, 27_031),
        ("wide_cnn9_3", models.wide_cnn9, 3, 25_978),
    )
    def test_paper_parameter_count_of_s_opt(self, function, subspace, expected):
        # opt_reference.md §9.4: p(p−1)/2 per S-OPT layer, the first conv
        # full OPT (27·26/2 = 351), plus the classifier.
        model = function(subspace=subspace)
        self.assertEqual(models.paper_parameter_count(model), expected)
        first, *rest = _opt_layers(model)
        self.assertIsNone(first.subspace_size)
        self.assertAllEqual(first.rotation_parameter, np.eye(27))
        for layer in rest:
            self.assertIsNotNone(layer.subspace_size)

    def test_s_opt_needs_an_orthogonalizer(self):
        with self.assertRaisesRegex(ValueError, "`subspace` needs OPT layers"):
            models.cnn6(orthogonalizer=None, subspace=0.25)

    def test_cnn6_layers_as_in_the_official_code(self):
        model = models.cnn6()
        fan_ins = [layer.rotation.shape[0] for layer in _opt_layers(model)]
        self.assertEqual(fan_ins, [27] + [576] * 5 + [1024])
        for layer in _opt_layers(model):
            self.assertFalse(layer.use_bias)
        fc6 = model.get_layer("fc6")
        self.assertEqual(fc6.kernel_size, (4, 4))
        self.assertEqual(fc6.padding, "valid")
        self.assertEqual(tuple(fc6.output.shape), (None, 1, 1, 64))
        score = model.get_layer("score")
        self.assertIsInstance(score, keras.layers.Dense)
        self.assertFalse(score.use_bias)
        # BN follows each 3×3 convolution, and nothing follows fc6 but the
        # flatten and the classifier.
        names = [layer.name for layer in model.layers]
        for layer in _opt_layers(model)[:-1]:
            following = model.layers[names.index(layer.name) + 1]
            self.assertIsInstance(following, keras.layers.BatchNormalization)
            self.assertEqual(following.epsilon, 1e-3)
            self.assertEqual(following.momentum, 0.999)
        self.assertEqual(names[-3:], ["fc6", "flatten", "score"])

    def test_scales_pixels_inside_the_model(self):
        model = models.cnn6()
        x = np.array([0.0, 127.5, 255.0], "float32")
        self.assertAllClose(
            model.get_layer("rescale")(x), (x - 127.5) / 128.0, atol=1e-7
        )

    def test_baseline_kernels_are_he_normal(self):
        model = models.wide_cnn9(orthogonalizer=None)
        kernel = np.asarray(model.get_layer("conv3_2").kernel)
        self.assertAlmostEqual(
            float(np.std(kernel)), np.sqrt(2 / 2304), delta=2e-4
        )
        self.assertEqual(len(_opt_layers(model)), 0)

    def test_weight_decay_is_the_official_l2(self):
        wd = 5e-4
        model = models.cnn6(weight_decay=wd)
        conv = model.get_layer("conv1_1")
        p = np.asarray(conv.rotation)
        self.assertAllClose(
            conv.rotation_regularizer(conv.rotation),
            wd * np.sum(p**2) / 2,
            rtol=1e-5,
        )
        bn = model.get_layer("conv1_1_bn")
        self.assertIsNotNone(bn.gamma_regularizer)
        self.assertIsNotNone(bn.beta_regularizer)
        self.assertIsNotNone(model.get_layer("score").kernel_regularizer)
        ogd = models.cnn6(orthogonalizer="ogd", weight_decay=wd)
        self.assertIsNone(ogd.get_layer("conv1_1").rotation_regularizer)

    @parameterized.named_parameters(
        ("cnn6_opt", models.cnn6, "gram_schmidt"),
        ("cnn6_baseline", models.cnn6, None),
        ("cnn9_ogd", models.cnn9, "ogd"),
    )
    def test_saved_model_gives_the_same_outputs(self, function, orthogonalizer):
        model = function(orthogonalizer=orthogonalizer, num_classes=10)
        x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3))
        self.run_model_saving_test(model, x.astype("float32"))

    def test_saved_s_opt_model_gives_the_same_outputs(self):
        model = models.cnn6(subspace=0.25, num_classes=10)
        for layer in _opt_layers(model)[1:]:
            layer.next_episode()
        x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3))
        self.run_model_saving_test(model, x.astype("float32"))


if __name__ == "__main__":
    absltest.main()
