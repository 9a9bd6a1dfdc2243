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


def _orthogonality_error(variable):
    x = np.asarray(variable, dtype=np.float64)
    return float(np.max(np.abs(x.T @ x - np.eye(x.shape[1]))))


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
        # A reset slot holds what a fresh build of the optimizer gives it.
        built = make()
        built.build([a, b])
        expected = _slot_values(built, a)
        self.assertEqual(sorted(reset), sorted(expected))
        for name, value in reset.items():
            self.assertAllEqual(value, expected[name], msg=name)
            if fresh is not None:
                self.assertAllEqual(
                    value, np.full(value.shape, fresh, value.dtype)
                )
        for name, value in _slot_values(optimizer, b).items():
            self.assertAllEqual(value, kept[name], msg=name)
            self.assertFalse(np.all(value == 0.0), msg=name)
        self.assertEqual(int(optimizer.iterations), iterations)

    @parameterized.named_parameters(
        ("stiefel_sgd", lambda: keras_opt.optimizers.StiefelSGD(
            0.1, rotation_learning_rate=0.002)),
        ("stiefel_adam", lambda: keras_opt.optimizers.StiefelAdam(
            0.01, rotation_learning_rate=0.002)),
    )
    def test_reset_puts_an_off_manifold_variable_back(self, make):
        # An S-OPT episode ends with P̃ reset to the identity, or (with a
        # Householder start) to a point slightly off the manifold; after
        # `reset_slots` the optimizer must treat it as a fresh optimizer
        # does: re-orthonormalize at the next step. (Small steps: their own
        # drift would take many more than 20 steps to trigger it.)
        rng = np.random.default_rng(7)
        errors = {}
        for kind in ("reset", "fresh"):
            optimizer = make()
            a, b = _trained(optimizer)
            if kind == "fresh":
                optimizer = make()
            off = np.linalg.qr(rng.standard_normal((3, 3)))[0]
            off *= 1.0021  # max |PᵀP − I| = 0.0042
            a.assign(off.astype("float32"))
            self.assertGreater(_orthogonality_error(a), 4e-3)
            slots.reset_slots(optimizer, [a])
            for _ in range(20):
                optimizer.apply(
                    [rng.standard_normal((3, 3)).astype("float32"),
                     np.ones((2,), "float32")],
                    [a, b],
                )
            errors[kind] = _orthogonality_error(a)
        self.assertLessEqual(errors["fresh"], 1e-5)
        self.assertLessEqual(errors["reset"], 1e-5)

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
