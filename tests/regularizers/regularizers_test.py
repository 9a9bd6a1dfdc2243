import keras
import numpy as np
from absl.testing import absltest

from keras_opt import regularizers
from tests import test_case


class RegularizersTest(test_case.TestCase):
    def test_get_by_name_config_instance_and_keras_fallback(self):
        for name, cls in (
            ("mhe", regularizers.MHE),
            ("MHE", regularizers.MHE),
            ("srip", regularizers.SRIP),
            ("orthogonality_penalty", regularizers.OrthogonalityPenalty),
        ):
            self.assertIsInstance(regularizers.get(name), cls)
        srip = regularizers.SRIP(0.3)
        self.assertIs(regularizers.get(srip), srip)
        revived = regularizers.get(regularizers.serialize(srip))
        self.assertIsInstance(revived, regularizers.SRIP)
        self.assertEqual(revived.factor, 0.3)
        self.assertIsInstance(regularizers.get("l2"), keras.regularizers.L2)
        l2 = keras.regularizers.serialize(keras.regularizers.L2(0.3))
        l2 = regularizers.get(l2)
        self.assertIsInstance(l2, keras.regularizers.L2)
        self.assertAllClose(l2.l2, 0.3)
        self.assertIsNone(regularizers.get(None))

    def test_get_unknown_lists_choices(self):
        with self.assertRaisesRegex(
            ValueError, "'srip'.*Received: identifier='sirp'"
        ):
            regularizers.get("sirp")
        with self.assertRaisesRegex(ValueError, "Could not interpret"):
            regularizers.get(3)

    def test_model_saving_with_every_regularizer(self):
        model = keras.Sequential(
            [
                keras.Input((6, 6, 2)),
                keras.layers.Conv2D(
                    4, 3, kernel_regularizer=regularizers.MHE(half_space=True)
                ),
                keras.layers.Flatten(),
                keras.layers.Dense(
                    5, kernel_regularizer=regularizers.OrthogonalityPenalty()
                ),
                keras.layers.Dense(3, kernel_regularizer=regularizers.SRIP()),
            ]
        )
        restored = self.run_model_saving_test(model, np.ones((2, 6, 6, 2)))
        self.assertAllClose(
            keras.ops.stack(restored.losses),
            keras.ops.stack(model.losses),
            rtol=1e-6,
        )


if __name__ == "__main__":
    absltest.main()
