from unittest import mock

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from keras import ops

from keras_opt import _control
from keras_opt import optimizers
from keras_opt import variable_tags
from tests import test_case


def traced(function):
    """`function` traced into a graph: `tf.function` or `jax.jit`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if backend == "jax":
        import jax

        return jax.jit(function)
    raise NotImplementedError(f"No graph tracing for backend {backend}.")


class ControlTest(test_case.TestCase):
    @parameterized.parameters(True, False)
    def test_concrete_predicate_runs_one_branch_in_python(self, pred):
        calls = []

        def branch(name, value):
            def run():
                calls.append(name)
                return ops.convert_to_tensor(value)

            return run

        with mock.patch.object(ops, "cond", side_effect=AssertionError):
            result = _control.cond(
                ops.convert_to_tensor(pred),
                branch("true", 1.0),
                branch("false", 2.0),
            )
        self.assertEqual(calls, ["true" if pred else "false"])
        self.assertAllClose(result, 1.0 if pred else 2.0)
        concrete = _control.concrete_bool(ops.convert_to_tensor(pred))
        self.assertIs(concrete, pred)

    @parameterized.parameters(True, False)
    def test_traced_predicate_goes_to_ops_cond(self, pred):
        seen = []

        def run(x):
            seen.append(_control.concrete_bool(ops.greater(x, 0.0)))
            return _control.cond(
                ops.greater(x, 0.0), lambda: x + 1.0, lambda: x - 1.0
            )

        with mock.patch.object(ops, "cond", wraps=ops.cond) as cond:
            x = 3.0 if pred else -3.0
            result = traced(run)(ops.convert_to_tensor(x))
        self.assertEqual(seen, [None])
        cond.assert_called_once()
        self.assertAllClose(result, x + 1.0 if pred else x - 1.0)

    @parameterized.parameters("cayley", "qr")
    def test_eager_stiefel_step_takes_no_ops_cond(self, retraction):
        # An eager step runs its branches in Python (on JAX, ops.cond
        # compiled both branches at every call).
        rng = np.random.default_rng(0)
        value = np.linalg.qr(rng.standard_normal((6, 6)))[0].astype("f4")
        variable = variable_tags.mark_stiefel(keras.Variable(value))
        optimizer = optimizers.StiefelAdam(
            0.1, retraction=retraction, reorthonormalize_every=2
        )
        with mock.patch.object(ops, "cond", side_effect=AssertionError):
            for _ in range(3):
                optimizer.apply(
                    [rng.standard_normal((6, 6)).astype("f4")], [variable]
                )
        self.assertOrthonormal(variable, atol=1e-5)
        moved = test_case.numpy(variable) - value
        self.assertGreater(np.max(np.abs(moved)), 1e-3)


if __name__ == "__main__":
    absltest.main()
