import warnings

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import optimizers
from keras_opt import stiefel
from tests import test_case


def guarded_variable():
    variable = keras.Variable(np.eye(4, dtype="float32"), name="guarded")
    variable.constraint = stiefel.StiefelGuard()
    return stiefel.mark_stiefel(variable)


def stiefel_warnings(caught):
    return [w for w in caught if "does not handle Stiefel" in str(w.message)]


class StiefelTest(test_case.TestCase):
    def setUp(self):
        super().setUp()
        stiefel._reset_unhandled_warning()

    def test_tags(self):
        variable = keras.Variable(np.eye(3, dtype="float32"))
        self.assertFalse(stiefel.is_stiefel(variable))
        self.assertFalse(stiefel.is_handled(variable))
        self.assertIs(stiefel.mark_stiefel(variable), variable)
        self.assertIs(stiefel.mark_handled(variable), variable)
        self.assertTrue(stiefel.is_stiefel(variable))
        self.assertTrue(stiefel.is_handled(variable))

    def test_guard_returns_value_unchanged(self):
        variable = guarded_variable()
        stiefel.mark_handled(variable)
        value = stiefel.StiefelGuard()(variable)
        self.assertAllEqual(value, np.eye(4))
        self.run_serialization_test(stiefel.StiefelGuard())

    def test_guard_warns_once_with_euclidean_optimizer(self):
        variable = guarded_variable()
        optimizer = keras.optimizers.SGD(0.1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            optimizer.apply([np.ones((4, 4), "float32")], [variable])
            optimizer.apply([np.ones((4, 4), "float32")], [variable])
        caught = stiefel_warnings(caught)
        self.assertLen(caught, 1)
        self.assertIn("'guarded'", str(caught[0].message))
        self.assertIn("UPT", str(caught[0].message))
        self.assertIn("StiefelSGD", str(caught[0].message))

    def test_guard_silent_with_stiefel_optimizer(self):
        variable = guarded_variable()
        optimizer = optimizers.StiefelSGD(0.1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            optimizer.apply([np.ones((4, 4), "float32")], [variable])
        self.assertEqual(stiefel_warnings(caught), [])
        self.assertOrthonormal(variable)

    @parameterized.named_parameters(
        ("sgd", keras.optimizers.SGD, 1),
        ("stiefel_sgd", optimizers.StiefelSGD, 0),
    )
    def test_guard_in_fit_with_loss_scale_optimizer(self, cls, num_warnings):
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras_opt.layers.OPTDense(2, orthogonalizer="ogd"),
            ]
        )
        optimizer = keras.optimizers.LossScaleOptimizer(cls(learning_rate=0.1))
        model.compile(optimizer=optimizer, loss="mse")
        x = np.ones((8, 4), "float32")
        y = np.zeros((8, 2), "float32")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, y, batch_size=4, epochs=2, verbose=0)
        self.assertLen(stiefel_warnings(caught), num_warnings)


if __name__ == "__main__":
    absltest.main()
