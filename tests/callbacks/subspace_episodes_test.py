import os

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import callbacks
from keras_opt import layers
from tests import test_case


def _model(orthogonalizer="gram_schmidt"):
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            layers.OPTConv2D(
                4, 3, subspace=0.5, orthogonalizer=orthogonalizer, name="conv"
            ),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Flatten(),
            layers.OPTDense(8, subspace=5, name="dense"),
            keras.layers.Dense(3, name="classifier"),
        ]
    )


def _data(samples=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 6, 6, 2)).astype("float32")
    y = rng.integers(0, 3, samples)
    return x, y


def _compile(model, optimizer=None):
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _state(model):
    return {
        f"{layer.name}/{name}": np.asarray(getattr(layer, name)).copy()
        for layer in callbacks.subspace_episodes.subspace_layers(model)
        for name in (
            "subspace_indices",
            "subspace_episode",
            "basis",
            "rotation_parameter",
        )
    }


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("Interrupted")


class SubspaceEpisodesTest(test_case.TestCase):
    def test_episodes_follow_the_step_counter(self):
        model = _compile(_model())
        x, y = _data()
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=2,  # 8 steps
            verbose=0,
            callbacks=[callbacks.SubspaceEpisodes(every_n_steps=3)],
        )
        for name in ("conv", "dense"):
            self.assertEqual(int(model.get_layer(name).subspace_episode), 2)

    def test_episode_resets_rotation_and_its_slots_only(self):
        model = _compile(_model())
        x, y = _data()
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        optimizer = model.optimizer
        conv = model.get_layer("conv")
        gamma = np.asarray(model.get_layer("bn").gamma).copy()
        slot = lambda v: np.asarray(  # noqa: E731
            optimizer.momentums[optimizer._get_variable_index(v)]
        )
        self.assertFalse(np.all(slot(conv.rotation_parameter) == 0))
        classifier_slot = slot(model.get_layer("classifier").kernel)
        expected = model.predict(x, verbose=0)
        self.assertEqual(callbacks.next_subspace_episode(model), 2)
        self.assertAllClose(model.predict(x, verbose=0), expected, atol=1e-5)
        for name in ("conv", "dense"):
            layer = model.get_layer(name)
            p = layer.subspace_size
            self.assertAllEqual(layer.rotation_parameter, np.eye(p))
            self.assertAllEqual(
                slot(layer.rotation_parameter), np.zeros((p, p))
            )
        self.assertAllEqual(slot(model.get_layer("classifier").kernel),
                            classifier_slot)
        self.assertAllEqual(model.get_layer("bn").gamma, gamma)

    @parameterized.named_parameters(
        ("stiefel_sgd", lambda: keras_opt.optimizers.StiefelSGD(
            0.1, rotation_learning_rate=0.05)),
        ("stiefel_adam", lambda: keras_opt.optimizers.StiefelAdam(0.01)),
    )
    def test_ogd_stays_on_the_manifold_across_episodes(self, make):
        model = _compile(_model("ogd"), make())
        x, y = _data()
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=3,
            verbose=0,
            callbacks=[callbacks.SubspaceEpisodes(every_n_steps=5)],
        )
        conv = model.get_layer("conv")
        self.assertEqual(int(conv.subspace_episode), 2)
        self.assertOrthonormal(conv.rotation_parameter, atol=1e-5)

    @parameterized.named_parameters(
        ("episodes_first", True), ("backup_first", False)
    )
    def test_backup_and_restore_resumes_the_same_episodes(self, first):
        # 4 epochs of 4 steps, episodes of 5 steps: 3 episodes, at steps 5,
        # 10 and 15. The run is interrupted at epoch 2 (step 8) and resumed
        # with the callbacks in either order.
        x, y = _data()
        kwargs = dict(batch_size=8, epochs=4, verbose=0, shuffle=False)

        def callbacks_list(backup):
            listed = [
                callbacks.SubspaceEpisodes(every_n_steps=5),
                keras.callbacks.BackupAndRestore(backup),
            ]
            return listed if first else listed[::-1]

        keras.utils.set_random_seed(3)
        reference = _compile(_model())
        reference.fit(
            x, y, callbacks=[callbacks.SubspaceEpisodes(every_n_steps=5)],
            **kwargs
        )

        backup = os.path.join(self.get_temp_dir(), "backup")
        keras.utils.set_random_seed(3)
        model = _compile(_model())
        with self.assertRaisesRegex(RuntimeError, "Interrupted"):
            model.fit(
                x, y, callbacks=callbacks_list(backup) + [_Interrupt(2)],
                **kwargs,
            )
        keras.utils.set_random_seed(99)  # a fresh process: other seeds
        resumed = _compile(_model())
        resumed.fit(x, y, callbacks=callbacks_list(backup), **kwargs)
        self.assertEqual(int(resumed.optimizer.iterations), 16)
        expected, actual = _state(reference), _state(resumed)
        self.assertEqual(int(expected["conv/subspace_episode"]), 3)
        for key, value in expected.items():
            self.assertAllClose(actual[key], value, atol=1e-6, msg=key)
        self.assertAllClose(
            resumed.predict(x, verbose=0),
            reference.predict(x, verbose=0),
            atol=1e-5,
        )

    def test_model_without_subspace_layers_raises(self):
        model = _compile(
            keras.Sequential([keras.Input((3,)), layers.OPTDense(2)])
        )
        with self.assertRaisesRegex(ValueError, "no S-OPT layer"):
            model.fit(
                np.ones((4, 3)), np.zeros(4, "int32"), verbose=0,
                callbacks=[callbacks.SubspaceEpisodes(2)],
            )

    def test_invalid_every_n_steps(self):
        with self.assertRaisesRegex(ValueError, "every_n_steps"):
            callbacks.SubspaceEpisodes(0)


class MirroredSubspaceEpisodesTest(test_case.TestCase):
    def test_replicas_sample_and_merge_identically(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("MirroredStrategy needs the TensorFlow backend.")
        import tensorflow as tf

        if len(tf.config.list_logical_devices("CPU")) < 2:
            self.skipTest("Could not configure 2 logical CPUs.")
        strategy = tf.distribute.MirroredStrategy(
            ["/cpu:0", "/cpu:1"],
            cross_device_ops=tf.distribute.ReductionToOneDevice(),
        )
        with strategy.scope():
            model = _compile(_model())
        x, y = _data()
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=3,
            verbose=0,
            callbacks=[callbacks.SubspaceEpisodes(every_n_steps=2)],
        )
        for layer in callbacks.subspace_episodes.subspace_layers(model):
            episode = keras.ops.convert_to_numpy(layer.subspace_episode)
            self.assertEqual(int(episode), 3)
            for variable in (
                layer.subspace_indices,
                layer.basis,
                layer.rotation_parameter,
            ):
                replicas = [
                    np.asarray(v) for v in variable.value.values
                ]
                self.assertLen(replicas, 2)
                self.assertAllEqual(replicas[0], replicas[1])


if __name__ == "__main__":
    absltest.main()
