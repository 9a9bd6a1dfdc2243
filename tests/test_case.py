"""Shared test harness for keras_opt, built on the public Keras API only."""

import json
import os
import tempfile

import keras
import numpy as np
from absl.testing import parameterized

class TestCase(parameterized.TestCase):
    """Base class of every keras_opt test."""

    def setUp(self):
        super().setUp()
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")
        keras.utils.set_random_seed(1337)

    def tearDown(self):
        keras.config.set_dtype_policy("float32")
        keras.backend.clear_session()
        super().tearDown()

    def get_temp_dir(self):
        temp_dir = tempfile.mkdtemp()
        self.addCleanup(_rmtree, temp_dir)
        return temp_dir

    def assertAllClose(self, x1, x2, atol=1e-6, rtol=1e-6, msg=None):
        x1 = np.asarray(keras.ops.convert_to_numpy(x1))
        x2 = np.asarray(keras.ops.convert_to_numpy(x2))
        np.testing.assert_allclose(x1, x2, atol=atol, rtol=rtol, err_msg=msg or "")

    def assertAllEqual(self, x1, x2, msg=None):
        x1 = np.asarray(keras.ops.convert_to_numpy(x1))
        x2 = np.asarray(keras.ops.convert_to_numpy(x2))
        np.testing.assert_array_equal(x1, x2, err_msg=msg or "")

    def assertAllFinite(self, x, msg=None):
        x = np.asarray(keras.ops.convert_to_numpy(x))
        self.assertTrue(np.all(np.isfinite(x)), msg or f"Not finite: {x}")

    def assertOrthonormal(self, x, atol=None):
        """Asserts `max |XᵀX − I| <= atol` for `x` of shape `(..., n, p)`."""
        x = np.asarray(keras.ops.convert_to_numpy(x))
        if atol is None:
            atol = 1e-10 if x.dtype == np.float64 else 1e-5
        gram = np.swapaxes(x, -1, -2).astype(np.float64) @ x.astype(np.float64)
        error = np.max(np.abs(gram - np.eye(x.shape[-1])))
        self.assertLessEqual(error, atol, f"max |XᵀX − I| = {error:.3g}")

    def assertEpisodesFollowTheSeed(self, make_layer, name, episodes):
        """Asserts the draws of weight `name` depend on the seed only.

        `make_layer(seed)` returns a built layer with episodes; its weight
        `name` over `episodes` episodes must be the same for the same seed
        whatever the global random state, differ for another seed, and
        change between episodes. Returns the draws of seed 7.
        """

        def run(seed):
            return episode_draws(make_layer(seed), name, episodes)

        keras.utils.set_random_seed(1)
        first = run(7)
        keras.utils.set_random_seed(2)  # other global state, same draws
        self.assertAllEqual(run(7), first)
        self.assertFalse(np.array_equal(run(8), first))
        self.assertGreater(len({tuple(row) for row in first}), 1)
        return first

    def run_serialization_test(self, instance):
        """Checks that a config round trip through JSON gives an equal object."""
        config = keras.saving.serialize_keras_object(instance)
        config = json.loads(json.dumps(config))
        revived = keras.saving.deserialize_keras_object(config)
        self.assertEqual(
            json.dumps(keras.saving.serialize_keras_object(revived), sort_keys=True),
            json.dumps(config, sort_keys=True),
        )
        # Keras records in `_auto_config_error_args` that a constructor took
        # positional arguments; it only matters without a `get_config`.
        missing = set(dir(instance)) - set(dir(revived))
        self.assertEqual(missing - {"_auto_config_error_args"}, set())
        return revived

    def run_model_saving_test(self, model, input_data):
        """Saves `model` to a `.keras` file, loads it and compares outputs."""
        path = os.path.join(self.get_temp_dir(), "model.keras")
        expected = model.predict(input_data, verbose=0)
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertAllEqual(restored.predict(input_data, verbose=0), expected)
        return restored


def numpy(x):
    """The value of a tensor or variable of any backend, as a numpy array."""
    return keras.ops.convert_to_numpy(x)


def episode_draws(layer, name, episodes):
    """The weight `name` of a built layer at each of `episodes` + 1 episodes.

    Ends `episodes` episodes with `layer.next_episode()`; returns the values
    stacked, the current one first.
    """
    draws = [np.asarray(getattr(layer, name))]
    for _ in range(episodes):
        layer.next_episode()
        draws.append(np.asarray(getattr(layer, name)))
    return np.stack(draws)


def gradient(function, x):
    """The gradient of the scalar `function` at `x`, as a numpy array."""
    return value_and_gradient(function, x)[1]


def value_and_gradient(function, x, jit_compile=None):
    """`function(x)` and its gradient at `x`, as numpy arrays, on any backend.

    Args:
        function: A scalar function of one tensor, in `keras.ops`.
        x: A numpy array or tensor.
        jit_compile: `None` differentiates eagerly; `False` traces the
            function and its gradient into a graph first (TensorFlow:
            `tf.function`; JAX: `jax.jit`, which always compiles with XLA);
            `True` compiles it with XLA.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = function(x)
            return y, tape.gradient(y, x)

        if jit_compile is not None:
            run = tf.function(run, jit_compile=jit_compile)
        y, grad = run(tf.convert_to_tensor(x))
    elif backend == "jax":
        import jax

        run = jax.value_and_grad(function)
        if jit_compile is not None:
            run = jax.jit(run)
        y, grad = run(jax.numpy.asarray(x))
    elif backend == "torch" and jit_compile is None:
        import torch

        x = torch.tensor(np.asarray(x), requires_grad=True)
        y = function(x)
        (grad,) = torch.autograd.grad(y, x)
    else:
        raise NotImplementedError(
            f"No gradient helper for backend {backend} with "
            f"jit_compile={jit_compile}."
        )
    return keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(grad)


def trainable_gradients(model, x, training):
    """Gradients of mean(model(x)²) for `model.trainable_variables`.

    Numpy arrays, or `None` where the backend reports no gradient.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            outputs = keras.ops.cast(model(x, training=training), "float32")
            loss = keras.ops.mean(keras.ops.square(outputs))
        gradients = tape.gradient(loss, model.trainable_variables)
        return [None if g is None else np.asarray(g) for g in gradients]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss(trainable):
            outputs, _ = model.stateless_call(
                trainable, non_trainable, x, training=training
            )
            return jnp.mean(jnp.square(outputs.astype("float32")))

        trainable = [v.value for v in model.trainable_variables]
        return [np.asarray(g) for g in jax.grad(loss)(trainable)]
    raise NotImplementedError(f"No gradient helper for backend {backend}.")


def _rmtree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)
