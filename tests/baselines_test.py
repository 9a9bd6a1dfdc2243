import math

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import baselines
from keras_opt import callbacks
from keras_opt import regularizers
from tests import test_case


class BaselinesTest(test_case.TestCase):
    def test_orthogonal_initializes_plain_layers_orthogonally(self):
        method = baselines.get("orthogonal")
        dense = method.dense(8)
        dense.build((None, 20))
        conv = method.conv2d(16, 3)
        conv.build((None, 8, 8, 4))
        for layer in (dense, conv):
            self.assertIsInstance(
                layer, (keras.layers.Dense, keras.layers.Conv2D)
            )
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            kernel = kernel.reshape(-1, kernel.shape[-1]) / math.sqrt(2.0)
            self.assertOrthonormal(kernel, atol=1e-5)
            self.assertIsNone(layer.kernel_regularizer)

    def test_regularized_baselines(self):
        srip = baselines.get("srip")
        self.assertIsInstance(
            srip.dense(4).kernel_regularizer, regularizers.SRIP
        )
        self.assertIsInstance(
            srip.dense(4, classifier=True).kernel_regularizer,
            regularizers.SRIP,
        )
        (scheduler,) = srip.callbacks()
        self.assertIsInstance(scheduler, callbacks.SRIPScheduler)

        hs_mhe = baselines.get("hs_mhe")
        hidden = hs_mhe.conv1d(4, 3).kernel_regularizer
        head = hs_mhe.dense(10, classifier=True).kernel_regularizer
        self.assertEqual((hidden.factor, hidden.half_space), (1.0, True))
        self.assertEqual((head.factor, head.half_space), (10.0, False))
        mhe = baselines.get("mhe").dense(3).kernel_regularizer
        self.assertFalse(mhe.half_space)
        self.assertEqual(hs_mhe.callbacks(), [])

        plain = baselines.get("baseline").conv3d(2, 2)
        self.assertIsInstance(plain, keras.layers.Conv3D)
        self.assertIsNone(plain.kernel_regularizer)

    @parameterized.parameters("gs", "cayley", "or", "ogd")
    def test_opt_methods_use_opt_hidden_layers_and_plain_classifier(self, name):
        method = baselines.get(name)
        self.assertTrue(method.is_opt)
        self.assertIsInstance(method.dense(4), keras_opt.layers.OPTDense)
        self.assertIsInstance(
            method.conv2d(4, 3, padding="same"), keras_opt.layers.OPTConv2D
        )
        head = method.dense(10, classifier=True)
        self.assertIsInstance(head, keras.layers.Dense)
        self.assertNotIsInstance(head, keras_opt.layers.BaseOPT)

    def test_every_name_builds_and_trains(self):
        x = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype("float32")
        y = keras.utils.to_categorical(np.arange(8) % 3, 3)
        for name in ("baseline", "orthogonal", "srip", "mhe", "hs_mhe", "gs"):
            method = baselines.get(name)
            model = keras.Sequential(
                [
                    keras.Input((6, 6, 2)),
                    method.conv2d(4, 3),
                    keras.layers.Flatten(),
                    method.dense(3, classifier=True),
                ]
            )
            model.compile(optimizer="sgd", loss="categorical_crossentropy")
            history = model.fit(
                x, y, epochs=1, verbose=0, callbacks=method.callbacks()
            )
            self.assertAllFinite(history.history["loss"], msg=name)

    def test_unknown_name_lists_choices(self):
        with self.assertRaisesRegex(
            ValueError, "'hs_mhe'.*Received: name='hsmhe'"
        ):
            baselines.get("hsmhe")
        with self.assertRaisesRegex(ValueError, "rank=4"):
            baselines.get("baseline").conv(4, 2, 2)


if __name__ == "__main__":
    absltest.main()
