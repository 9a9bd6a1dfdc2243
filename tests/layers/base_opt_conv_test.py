import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from tests import test_case

CASES = [
    ("conv1d_same", 1, dict(kernel_size=3, padding="same")),
    ("conv1d_strided_dilated", 1, dict(kernel_size=2, strides=2, dilation_rate=1)),
    ("conv1d_causal", 1, dict(kernel_size=3, padding="causal", dilation_rate=2)),
    ("conv2d_valid", 2, dict(kernel_size=(3, 2))),
    ("conv2d_same_strided", 2, dict(kernel_size=3, strides=2, padding="same")),
    ("conv2d_dilated", 2, dict(kernel_size=2, dilation_rate=2)),
    ("conv3d_valid", 3, dict(kernel_size=2)),
    ("conv3d_same", 3, dict(kernel_size=(1, 2, 3), padding="same", strides=(1, 2, 1))),
]
OPT = {1: "OPTConv1D", 2: "OPTConv2D", 3: "OPTConv3D"}
PLAIN = {1: "Conv1D", 2: "Conv2D", 3: "Conv3D"}


class BaseOPTConvTest(test_case.TestCase):
    @parameterized.named_parameters(CASES)
    def test_matches_keras_conv_with_computed_kernel(self, rank, kwargs):
        layer = getattr(keras_opt.layers, OPT[rank])(
            6, orthogonalizer="cayley", bias_initializer="random_normal", **kwargs
        )
        channels_first = kwargs.get("data_format") == "channels_first"
        shape = (2,) + (3,) + (7,) * rank if channels_first else (2,) + (7,) * rank + (3,)
        x = np.random.default_rng(0).standard_normal(shape).astype("float32")
        y = layer(x)
        plain = getattr(keras.layers, PLAIN[rank])(6, **kwargs)
        plain.build(shape)
        plain.set_weights([np.asarray(layer.kernel), np.asarray(layer.bias)])
        self.assertAllClose(y, plain(x), atol=1e-5, rtol=1e-5)
        self.assertEqual(tuple(y.shape), layer.compute_output_shape(shape))

    def test_channels_first_shapes(self):
        # TensorFlow's CPU kernels only convolve channels_last, so this
        # checks the build and the shape logic.
        layer = keras_opt.layers.OPTConv2D(6, 3, data_format="channels_first")
        layer.build((None, 3, 7, 7))
        self.assertEqual(tuple(layer.rotation_parameter.shape), (27, 27))
        self.assertEqual(layer.compute_output_shape((2, 3, 7, 7)), (2, 6, 5, 5))

    def test_kernel_layout_is_reshaped_r_times_v(self):
        layer = keras_opt.layers.OPTConv2D(5, (3, 2), orthogonalizer="hr")
        layer.build((None, 8, 8, 4))
        d = 3 * 2 * 4
        self.assertEqual(tuple(layer.rotation_parameter.shape), (d, d))
        self.assertEqual(tuple(layer.basis.shape), (d, 5))
        r = np.asarray(layer.rotation, dtype=np.float64)
        w = r @ np.asarray(layer.basis, dtype=np.float64)
        kernel = np.asarray(layer.kernel)
        self.assertEqual(kernel.shape, (3, 2, 4, 5))
        # Flattened index ((i * kw + j) * C_in + c), as the official code.
        for i, j, c in [(0, 0, 0), (1, 1, 2), (2, 0, 3)]:
            self.assertAllClose(kernel[i, j, c], w[(i * 2 + j) * 4 + c], atol=1e-5)

    def test_bad_input(self):
        # The stock checks of keras.layers.ConvND, then the OPT ones.
        with self.assertRaisesRegex(ValueError, "filters=0"):
            keras_opt.layers.OPTConv2D(0, 3)
        with self.assertRaisesRegex(ValueError, "`kernel_size`.*tuple of 2"):
            keras_opt.layers.OPTConv2D(4, (3, 3, 3))
        with self.assertRaisesRegex(ValueError, r"`padding`.*causal"):
            keras_opt.layers.OPTConv2D(4, 3, padding="causal")
        with self.assertRaisesRegex(ValueError, "`data_format`"):
            keras_opt.layers.OPTConv2D(4, 3, data_format="nhwc")
        with self.assertRaisesRegex(ValueError, "Received: groups=2"):
            keras_opt.layers.OPTConv2D(4, 3, groups=2)
        with self.assertRaisesRegex(TypeError, "Use `basis_initializer`"):
            keras_opt.layers.OPTConv1D(4, 3, 1, "valid", None, 1, 1, None,
                                       True, "ones")
        layer = keras_opt.layers.OPTConv2D(4, 3)
        with self.assertRaisesRegex(ValueError, "channel dimension.*known"):
            layer.build((None, 8, 8, None))
        with self.assertRaisesRegex(ValueError, "rank 4"):
            keras_opt.layers.OPTConv2D(4, 3).build((None, 8, 3))

    def test_config_round_trip(self):
        layer = keras_opt.layers.OPTConv3D(
            2, (1, 2, 3), strides=2, padding="same", orthogonalizer="ls"
        )
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.kernel_size, (1, 2, 3))
        self.assertEqual(revived.strides, (2, 2, 2))


if __name__ == "__main__":
    absltest.main()
