import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt.optimizers import slots
from tests import test_case


def _trained(optimizer):
    a = keras.Variable(np.eye(3, dtype="float32"), name="a")
    b = keras.Variable(np.ones((2,), "float32"), name="b")
    keras_opt.variable_tags.mark_stiefel(a)
    optimizer.build([a, b])
    for _ in range(2):
        optimizer.apply(
            [np.full((3, 3), 0.1, "float32") * np.triu(np.ones((3, 3))),
             np.ones((2,), "float32")],
            [a, b],
        )
    return a, b


def _slot_values(optimizer, variable):
    index = optimizer._get_variable_index(variable)
    return {
        name: np.asarray(value[index])
        for name, value in vars(optimizer).items()
        if isinstance(value, list)
        and len(value) == 2
        and isinstance(value[index], keras.Variable)
        and value[index] is not variable
    }


class ResetSlotsTest(test_case.TestCase):
    @parameterized.named_parameters(
        ("sgd", lambda: keras.optimizers.SGD(0.1, momentum=0.9), 0.0),
        ("adam", lambda: keras.optimizers.Adam(0.1, amsgrad=True), 0.0),
        ("adagrad", lambda: keras.optimizers.Adagrad(0.1), 0.1),
        ("stiefel_sgd", lambda: keras_opt.optimizers.StiefelSGD(0.1), None),
        ("stiefel_adam", lambda: keras_opt.optimizers.StiefelAdam(0.1), None),
    )
    def test_resets_only_the_given_variable(self, make, fresh):
        optimizer = make()
        a, b = _trained(optimizer)
        kept = _slot_values(optimizer, b)
        iterations = int(optimizer.iterations)
        slots.reset_slots(optimizer, [a])
        reset = _slot_values(optimizer, a)
        self.assertNotEmpty(reset)
        for name, value in reset.items():
            expected = 1.0 if name == "_drifts" else (fresh or 0.0)
            self.assertAllEqual(
                value, np.full(value.shape, expected, value.dtype), msg=name
            )
        for name, value in _slot_values(optimizer, b).items():
            self.assertAllEqual(value, kept[name], msg=name)
            self.assertFalse(np.all(value == 0.0), msg=name)
        self.assertEqual(int(optimizer.iterations), iterations)

    def test_unknown_variable_raises(self):
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
        _trained(optimizer)
        with self.assertRaisesRegex(ValueError, "is not trained by"):
            slots.reset_slots(optimizer, [keras.Variable(np.ones(2), name="c")])

    def test_unbuilt_optimizer_is_a_no_op(self):
        slots.reset_slots(keras.optimizers.SGD(), [keras.Variable(1.0)])

    def test_not_an_optimizer_raises(self):
        with self.assertRaisesRegex(TypeError, "Expected a `keras.optimizers"):
            slots.reset_slots("sgd", [])


if __name__ == "__main__":
    absltest.main()
