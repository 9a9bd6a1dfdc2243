import keras
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import optimizers
from tests import test_case
from tests.optimizers import base_stiefel_test

_IS_TF = keras.backend.backend() == "tensorflow"
_HAS_TWO_CPUS = False
if _IS_TF:
    import tensorflow as tf

    # Logical devices must be configured before any TensorFlow op runs.
    _cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
        )
    except RuntimeError:
        pass
    _HAS_TWO_CPUS = len(tf.config.list_logical_devices("CPU")) >= 2


def replica_values(variable):
    return [v.numpy() for v in variable.value.values]


@absltest.skipUnless(
    _IS_TF and _HAS_TWO_CPUS,
    "needs the TensorFlow backend and 2 logical CPUs configured before any "
    "TensorFlow op (run this file on its own)",
)
class DistributeTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("sgd_cayley", optimizers.StiefelSGD, "cayley"),
        ("adam_qr", optimizers.StiefelAdam, "qr"),
    )
    def test_mirrored_matches_single_device(self, cls, retraction):
        x, y = base_stiefel_test.regression_data(num=400)

        def train():
            model = base_stiefel_test.ogd_model()
            model.compile(
                optimizer=cls(
                    learning_rate=0.01,
                    rotation_learning_rate=0.05,
                    retraction=retraction,
                    weight_decay=1e-3,
                ),
                loss="mse",
            )
            model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
            self.assertEqual(model.optimizer.iterations.numpy(), 50)
            return model

        expected = train()
        strategy = tf.distribute.MirroredStrategy(
            ["/cpu:0", "/cpu:1"],
            # Collective all-reduce keys clash between strategies made in one
            # process (pytest runs every file in one); reduce to one device.
            cross_device_ops=tf.distribute.ReductionToOneDevice(),
        )
        with strategy.scope():
            mirrored = train()
        self.assertEqual(strategy.num_replicas_in_sync, 2)
        for a, b in zip(expected.get_weights(), mirrored.get_weights()):
            self.assertAllClose(a, b, atol=1e-6, rtol=0)
        self.assertOrthonormal(mirrored.layers[0].rotation, atol=1e-5)
        slots = mirrored.optimizer.variables[2:]
        self.assertIn("drift" if retraction == "cayley" else "velocity",
                      " ".join(v.path for v in slots))
        for variable in mirrored.trainable_variables + slots:
            first, second = replica_values(variable)
            self.assertAllEqual(first, second)


if __name__ == "__main__":
    absltest.main()
