"""Every orthogonalizer under `jit_compile=True` (XLA), against eager-graph runs.

On TensorFlow this compiles the whole train step with XLA on CPU, the same
graph a TPU runs. A map whose `supports_jit` is false must make Keras fall
back to the non-XLA step instead of failing.
"""

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import orthogonalizers
from tests import test_case

ALL = sorted(orthogonalizers.ALL_OBJECTS, key=lambda cls: cls.__name__)


def optimizers_for(cls):
    if cls.is_stiefel:
        return [
            ("StiefelSGD", lambda: keras_opt.optimizers.StiefelSGD(0.1)),
            ("StiefelAdam", lambda: keras_opt.optimizers.StiefelAdam(0.01)),
        ]
    return [("SGD", lambda: keras.optimizers.SGD(0.1, momentum=0.9))]


def train(cls, make_optimizer, jit_compile):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((6,)), keras_opt.layers.OPTDense(4, orthogonalizer=cls())]
    )
    model.compile(make_optimizer(), "mse", jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 6)).astype("float32")
    y = rng.standard_normal((12, 4)).astype("float32")
    initial = [np.array(w) for w in model.trainable_weights]
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    return model, initial, [np.array(w) for w in model.trainable_weights]


class XLATest(test_case.TestCase):
    @parameterized.named_parameters((cls.__name__, cls) for cls in ALL)
    def test_trains_under_jit_like_without(self, cls):
        for name, make_optimizer in optimizers_for(cls):
            reference, initial, expected = train(cls, make_optimizer, False)
            model, _, weights = train(cls, make_optimizer, True)
            self.assertEqual(model.jit_compile, cls.supports_jit, name)
            self.assertFalse(reference.jit_compile)
            moved = max(np.max(np.abs(a - b)) for a, b in zip(expected, initial))
            self.assertGreater(moved, 1e-3, name)
            for value, target in zip(weights, expected):
                self.assertAllClose(value, target, atol=1e-5, rtol=0, msg=name)

    def test_supports_jit_flags(self):
        flags = {cls.__name__: cls.supports_jit for cls in ALL}
        self.assertEqual(
            flags,
            {
                "Cayley": True,
                "GramSchmidt": True,
                "Householder": True,
                # TF's XLA SVD is 100-1000x slower than the eager one on CPU;
                # JAX's compiled SVD is LAPACK's.
                "Lowdin": keras.backend.backend() != "tensorflow",
                "NewtonSchulz": True,
                "Penalty": True,
                "Stiefel": True,
                "Unconstrained": True,
            },
        )
        layer = keras_opt.layers.OPTDense(2, orthogonalizer="ls")
        self.assertEqual(layer.supports_jit, flags["Lowdin"])


if __name__ == "__main__":
    absltest.main()
