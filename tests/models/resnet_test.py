import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import layers
from keras_opt import models
from tests import test_case


class ResNetTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("resnet20", models.resnet20, 3), ("resnet32", models.resnet32, 5)
    )
    def test_every_convolution_is_opt(self, function, blocks):
        model = function(num_classes=10)
        convs = [
            layer
            for layer in model.layers
            if isinstance(layer, (layers.BaseOPT, keras.layers.Conv2D))
        ]
        self.assertLen(convs, 1 + 6 * blocks)
        for layer in convs:
            self.assertIsInstance(layer, layers.OPTConv2D)
            self.assertFalse(layer.use_bias)
        self.assertEqual(tuple(model.output.shape), (None, 10))
        # Only the classifier is a normal weight.
        fan_ins = [27] + [144] * 2 * blocks
        fan_ins += [144] + [288] * (2 * blocks - 1)
        fan_ins += [288] + [576] * (2 * blocks - 1)
        rotations = sum(d * (d - 1) // 2 for d in fan_ins)
        self.assertEqual(
            models.paper_parameter_count(model), rotations + 64 * 10
        )

    def test_baseline_count_is_he_et_al(self):
        # "0.27M" for ResNet-20 on CIFAR-10 (He et al., 2016, Table 6),
        # without BN: the 3×3 kernels of the three stages and the classifier.
        model = models.resnet20(num_classes=10, orthogonalizer=None)
        kernels = 27 * 16 + 6 * 144 * 16 + (144 * 32 + 5 * 288 * 32)
        kernels += 288 * 64 + 5 * 576 * 64
        self.assertEqual(models.paper_parameter_count(model), kernels + 640)
        self.assertEqual(kernels + 640, 268_336)

    def test_option_a_shortcut_subsamples_and_pads_zeros(self):
        model = models.resnet20(num_classes=10)
        pad = model.get_layer("conv3_block1_shortcut_pad")
        source = model.get_layer("conv2_block3_out").output
        probe = keras.Model(model.input, [source, pad.output])
        x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3))
        before, after = probe(x.astype("float32"))
        before, after = np.asarray(before), np.asarray(after)
        self.assertEqual(after.shape, (2, 16, 16, 32))
        self.assertAllEqual(after[..., :16], before[:, ::2, ::2, :])
        self.assertAllEqual(after[..., 16:], np.zeros_like(after[..., 16:]))

    def test_saved_model_gives_the_same_outputs(self):
        model = models.resnet20(num_classes=10)
        x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3))
        self.run_model_saving_test(model, x.astype("float32"))


if __name__ == "__main__":
    absltest.main()
