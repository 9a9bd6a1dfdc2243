import warnings

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import optimizers
from keras_opt import variable_tags
from tests import test_case


def guarded_variable():
    variable = keras.Variable(np.eye(4, dtype="float32"), name="guarded")
    variable.constraint = variable_tags.StiefelGuard()
    return variable_tags.mark_stiefel(variable)


def stiefel_warnings(caught):
    return [w for w in caught if "does not handle Stiefel" in str(w.message)]


class VariableTagsTest(test_case.TestCase):
    def test_tags(self):
        variable = keras.Variable(np.eye(3, dtype="float32"))
        self.assertFalse(variable_tags.is_stiefel_variable(variable))
        self.assertFalse(variable_tags.is_handled(variable))
        self.assertIs(variable_tags.mark_stiefel(variable), variable)
        self.assertIs(variable_tags.mark_handled(variable), variable)
        self.assertTrue(variable_tags.is_stiefel_variable(variable))
        self.assertTrue(variable_tags.is_handled(variable))

    def test_rotation_step_scale(self):
        variable = keras.Variable(np.eye(3, dtype="float32"))
        self.assertFalse(variable_tags.is_rotation_step(variable))
        self.assertIsNone(variable_tags.rotation_step_scale(variable))
        self.assertIs(variable_tags.mark_rotation_step(variable, 0.5), variable)
        self.assertTrue(variable_tags.is_rotation_step(variable))
        self.assertEqual(variable_tags.rotation_step_scale(variable), 0.5)
        other = variable_tags.mark_rotation_step(keras.Variable(np.eye(2)))
        self.assertEqual(variable_tags.rotation_step_scale(other), 1.0)

    @parameterized.parameters(0.0, -1.0, float("inf"), float("nan"))
    def test_rotation_step_scale_must_be_positive(self, scale):
        variable = keras.Variable(np.eye(3, dtype="float32"))
        with self.assertRaisesRegex(
                ValueError, r"argument `scale`.*Received: scale="):
            variable_tags.mark_rotation_step(variable, scale)
        self.assertFalse(variable_tags.is_rotation_step(variable))

    def test_guard_returns_value_unchanged(self):
        variable = guarded_variable()
        variable_tags.mark_handled(variable)
        value = variable_tags.StiefelGuard()(variable)
        self.assertAllEqual(value, np.eye(4))
        self.run_serialization_test(variable_tags.StiefelGuard())

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

    def test_guard_warns_again_for_a_second_model(self):
        x = np.ones((8, 4), "float32")
        y = np.zeros((8, 2), "float32")
        names = []
        for _ in range(2):
            model = keras.Sequential(
                [
                    keras.Input((4,)),
                    keras_opt.layers.OPTDense(2, orthogonalizer="ogd"),
                ]
            )
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(x, y, batch_size=4, epochs=2, verbose=0)
            caught = stiefel_warnings(caught)
            self.assertLen(caught, 1)
            names.append(str(caught[0].message).split("'")[1])
        self.assertNotEqual(names[0], names[1])

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
