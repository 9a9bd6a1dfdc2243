"""Tests of keras_opt.distribute: multi-worker and fault-tolerant training.

The multi-worker tests run `tests/_workers/train_worker.py` in subprocesses
on 127.0.0.1 (ports from `bind(("127.0.0.1", 0))`), each wait bounded by a
timeout, stray processes killed by PID.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl.testing import absltest

import keras_opt
from keras_opt import distribute
from tests import test_case
from tests._workers import common

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WORKER = os.path.join(_ROOT, "tests", "_workers", "train_worker.py")
_TIMEOUT = 120
_MID_EPOCH = common.STEPS_PER_EPOCH + 5
_REFERENCES = {}


def reference(kind, epochs):
    """The uninterrupted single-process run, computed once per test process."""
    if (kind, epochs) not in _REFERENCES:
        model = common.make_model(kind)
        history = distribute.train(
            model, common.make_dataset_fn(), epochs,
            callbacks=common.make_callbacks(kind),
        )
        _REFERENCES[kind, epochs] = common.summary(model, history)
    return _REFERENCES[kind, epochs]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def load(path):
    with np.load(path) as data:
        count = sum(name.startswith("w") for name in data.files)
        return {
            "weights": [data[f"w{i}"] for i in range(count)],
            "loss": data["loss"],
            "episodes": list(data["episodes"]),
            "energy": data["energy"],
            "iterations": int(data["iterations"]),
            "orthogonality": data["orthogonality"],
            "training_path": str(data["training_path"]),
        }


def latest_step(checkpoint_dir):
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    return int(latest.rsplit("-", 1)[1]) if latest else 0


class TestCase(test_case.TestCase):
    def assertMatchesReference(self, result, expected):
        self.assertEqual(result["iterations"], expected["iterations"])
        self.assertEqual(list(result["episodes"]), expected["episodes"])
        for a, b in zip(result["weights"], expected["weights"], strict=True):
            self.assertAllClose(a, b, atol=1e-5, rtol=0)
        self.assertLessEqual(max(result["orthogonality"]), 1e-5)


class DistributeTest(TestCase):
    def setUp(self):
        super().setUp()
        self.directory = self.get_temp_dir()
        self.processes = []
        self.addCleanup(self._kill_all)

    def _kill_all(self):
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()

    def launch(self, config, num_workers=None):
        """Starts one process, or `num_workers` MWMS workers; returns them."""
        config = dict(config, out=self.directory)
        env = dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
            PYTHONPATH=_ROOT,
        )
        env.pop("TF_CONFIG", None)
        processes = []
        addresses = [f"127.0.0.1:{p}" for p in free_ports(num_workers or 1)]
        for index in range(num_workers or 1):
            if num_workers:
                env["TF_CONFIG"] = json.dumps(
                    {
                        "cluster": {"worker": addresses},
                        "task": {"type": "worker", "index": index},
                    }
                )
            log = open(
                os.path.join(self.directory, f"log{len(self.processes)}"), "w"
            )
            self.addCleanup(log.close)
            process = subprocess.Popen(
                [sys.executable, _WORKER, json.dumps(config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=_ROOT,
            )
            self.processes.append(process)
            processes.append(process)
        return processes

    def wait(self, processes, timeout=_TIMEOUT):
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self._kill_all()
                self.fail(f"Timed out after {timeout}s.\n{self.logs()}")
        return [process.returncode for process in processes]

    def logs(self):
        text = []
        for name in sorted(os.listdir(self.directory)):
            if name.startswith("log"):
                with open(os.path.join(self.directory, name)) as f:
                    text.append(f"--- {name}\n{f.read()[-3000:]}")
        return "\n".join(text)

    def kill_mid_epoch(self, process, checkpoint_dir):
        """SIGKILLs `process` once a mid-epoch step checkpoint exists."""
        deadline = time.monotonic() + _TIMEOUT
        while latest_step(checkpoint_dir) < _MID_EPOCH:
            if process.poll() is not None or time.monotonic() > deadline:
                self.fail(f"No mid-epoch checkpoint.\n{self.logs()}")
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        step = latest_step(checkpoint_dir)
        self.assertGreater(step, common.STEPS_PER_EPOCH, "not mid-epoch")
        self.assertLess(step, 2 * common.STEPS_PER_EPOCH, "not mid-epoch")
        return step

    def assertSurvivorFails(self, process, timeout=60):
        """Waits for the surviving worker to report the lost peer, kills it.

        The coordination service notices the missing heartbeats after about
        10 s and the collective raises `UnavailableError`; TensorFlow's exit
        can then wait on its shutdown barrier, so stop waiting at the error.
        """
        log = os.path.join(self.directory, f"log{self.processes.index(process)}")
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            with open(log) as f:
                if "UnavailableError" in f.read():
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
                    return
            if time.monotonic() > deadline:
                self._kill_all()
                self.fail(f"The survivor did not fail in {timeout}s.")
            time.sleep(0.1)
        self.assertNotEqual(process.returncode, 0, self.logs())

    def assertResumed(self, result, expected):
        """Resumed mid-epoch 1: one epoch left, its loss summed once per step."""
        self.assertLen(result["loss"], 1)
        self.assertAllClose(result["loss"][0], expected["loss"][-1], atol=1e-5)
        self.assertMatchesReference(result, expected)

    def test_two_workers_match_single_process(self):
        # "sopt" trains with callbacks: S-OPT episodes and the monitors.
        kinds = ["gs", "ogd", "sopt"]
        workers = self.launch(
            {"strategy": "multi_worker", "kinds": kinds, "epochs": 2},
            num_workers=2,
        )
        self.assertEqual(self.wait(workers), [0, 0], self.logs())
        for kind in kinds:
            first, second = (
                load(os.path.join(self.directory, f"worker{i}_{kind}.npz"))
                for i in range(2)
            )
            self.assertEqual(first["training_path"], "custom_loop")
            for a, b in zip(first["weights"], second["weights"], strict=True):
                self.assertAllEqual(a, b)
            self.assertEqual(first["iterations"], 2 * common.STEPS_PER_EPOCH)
            self.assertMatchesReference(first, reference(kind, 2))
        sopt = load(os.path.join(self.directory, "worker1_sopt.npz"))
        episodes = 2 * common.STEPS_PER_EPOCH // common.EPISODE_STEPS
        self.assertEqual(sopt["episodes"], [episodes, episodes])
        self.assertLen(sopt["energy"], 2)
        self.assertAllClose(
            sopt["energy"], reference("sopt", 2)["energy"], rtol=1e-5
        )

    def test_killed_worker_resumes_from_checkpoint(self):
        checkpoints = os.path.join(self.directory, "checkpoints")
        config = {
            "strategy": "multi_worker",
            "kinds": ["mixed"],
            "epochs": 2,
            "checkpoint_dir": checkpoints,
            "save_every": 5,
        }
        chief, worker = self.launch(dict(config, sleep=0.1), num_workers=2)
        self.kill_mid_epoch(worker, os.path.join(checkpoints, "mixed"))
        self.assertSurvivorFails(chief)
        workers = self.launch(config, num_workers=2)
        self.assertEqual(self.wait(workers), [0, 0], self.logs())
        results = [
            load(os.path.join(self.directory, f"worker{i}_mixed.npz"))
            for i in range(2)
        ]
        for a, b in zip(results[0]["weights"], results[1]["weights"]):
            self.assertAllEqual(a, b)
        for result in results:
            self.assertResumed(result, reference("mixed", 2))

    def test_killed_single_process_resumes_from_checkpoint(self):
        checkpoints = os.path.join(self.directory, "checkpoints")
        config = {
            "strategy": "default",
            "kinds": ["mixed"],
            "epochs": 2,
            "checkpoint_dir": checkpoints,
            "save_every": 5,
        }
        (process,) = self.launch(dict(config, sleep=0.1))
        self.kill_mid_epoch(process, os.path.join(checkpoints, "mixed"))
        (process,) = self.launch(config)
        self.assertEqual(self.wait([process]), [0], self.logs())
        result = load(os.path.join(self.directory, "single_mixed.npz"))
        self.assertEqual(result["training_path"], "fit")
        self.assertResumed(result, reference("mixed", 2))


class TrainTest(TestCase):
    def test_train_equals_fit(self):
        for kind in ("gs", "ogd"):
            dataset = common.make_dataset_fn(shuffle=False)(0)
            model = common.make_model(kind)
            history = distribute.train(model, dataset, epochs=2)
            fitted = common.make_model(kind)
            expected = fitted.fit(dataset, epochs=2, verbose=0).history
            self.assertAllClose(history["loss"], expected["loss"], atol=1e-6)
            for a, b in zip(model.get_weights(), fitted.get_weights()):
                self.assertAllClose(a, b, atol=1e-6, rtol=0)
            self.assertEqual(
                model.optimizer.iterations.numpy(),
                fitted.optimizer.iterations.numpy(),
            )

    def test_callbacks_see_what_fit_shows_them(self):
        dataset = common.make_dataset_fn(shuffle=False)(0)
        runs = {}
        for loop in ("train", "fit"):
            calls = []
            recorder = keras.callbacks.LambdaCallback(
                on_train_begin=lambda logs: calls.append("train_begin"),
                on_epoch_begin=lambda epoch, logs: calls.append(epoch),
                on_train_batch_end=lambda batch, logs: calls.append(
                    (batch, sorted(logs))
                ),
                on_epoch_end=lambda epoch, logs: calls.append(
                    (epoch, sorted(logs))
                ),
                on_train_end=lambda logs: calls.append("train_end"),
            )
            monitors = [
                recorder,
                keras_opt.callbacks.EnergyMonitor(),
                keras_opt.callbacks.OrthogonalityMonitor(),
            ]
            keras.backend.clear_session()  # the same layer names
            model = common.make_model("mixed")
            if loop == "fit":
                history = model.fit(
                    dataset, epochs=2, verbose=0, callbacks=monitors
                ).history
            else:
                history = distribute.train(
                    model, dataset, epochs=2, callbacks=monitors
                )
            runs[loop] = (calls, history, model.get_weights())
        (calls, history, weights), (fit_calls, fit_history, fit_weights) = (
            runs["train"], runs["fit"]
        )
        self.assertEqual(calls, fit_calls)
        self.assertEqual(sorted(history), sorted(fit_history))
        for key, values in fit_history.items():
            self.assertAllClose(history[key], values, atol=1e-6, msg=key)
        for a, b in zip(weights, fit_weights, strict=True):
            self.assertAllClose(a, b, atol=1e-6, rtol=0)

    def test_stop_training_ends_the_loop(self):
        stopper = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: setattr(
                model, "stop_training", batch == 4
            )
        )
        model = common.make_model("gs")
        history = distribute.train(
            model, common.make_dataset_fn(), epochs=3, callbacks=[stopper]
        )
        self.assertEqual(int(model.optimizer.iterations.numpy()), 5)
        self.assertLen(history["loss"], 1)

    def test_interrupted_sopt_run_resumes_like_an_uninterrupted_one(self):
        # Episodes of 7 steps, checkpoints every 5: the checkpoint of global
        # step 35 is saved after the episode that ends there; the run
        # crashes at step 37, resumes from step 35 and ends with the
        # episodes, weights and slots of the run that never stopped.
        directory = self.get_temp_dir()
        dataset_fn = common.make_dataset_fn()

        class Crash(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if int(self.model.optimizer.iterations.numpy()) == 37:
                    raise RuntimeError("Crash")

        model = common.make_model("sopt")
        with self.assertRaisesRegex(RuntimeError, "Crash"):
            distribute.train(
                model, dataset_fn, 2, checkpoint_dir=directory, save_every=5,
                callbacks=common.make_callbacks("sopt") + [Crash()],
            )
        self.assertEqual(latest_step(directory), 35)
        resumed = common.make_model("sopt", seed=1)
        history = distribute.train(
            resumed, dataset_fn, 2, checkpoint_dir=directory, save_every=5,
            callbacks=common.make_callbacks("sopt"),
        )
        expected = reference("sopt", 2)
        self.assertEqual(expected["episodes"], [5, 5])
        self.assertAllClose(history["loss"], expected["loss"][-1:], atol=1e-5)
        self.assertMatchesReference(common.summary(resumed, history), expected)

    def test_resume_after_the_last_epoch_trains_nothing(self):
        directory = self.get_temp_dir()
        dataset_fn = common.make_dataset_fn()
        model = common.make_model("ogd")
        distribute.train(model, dataset_fn, 1, checkpoint_dir=directory)
        again = common.make_model("ogd", seed=1)
        history = distribute.train(again, dataset_fn, 1, checkpoint_dir=directory)
        self.assertEqual(history, {"loss": []})
        self.assertEqual(again.optimizer.iterations.numpy(), 20)
        for a, b in zip(model.get_weights(), again.get_weights()):
            self.assertAllEqual(a, b)

    @absltest.skipIf(
        len(tf.config.list_logical_devices("CPU")) < 2,
        "needs the 2 logical CPUs that tests/conftest.py configures",
    )
    def test_mirrored_train_matches_single_process(self):
        strategy = tf.distribute.MirroredStrategy(
            ["/cpu:0", "/cpu:1"],
            # Collective keys clash between strategies in one process.
            cross_device_ops=tf.distribute.ReductionToOneDevice(),
        )
        self.assertEqual(distribute.training_path(strategy), "fit")
        with strategy.scope():
            model = common.make_model("mixed")
        history = distribute.train(model, common.make_dataset_fn(), 2)
        expected = reference("mixed", 2)
        self.assertAllClose(history["loss"], expected["loss"], atol=1e-5)
        result = common.summary(model, history)
        self.assertMatchesReference(result, expected)
        with self.assertRaisesRegex(ValueError, "drop_remainder=True"):
            distribute.train(
                model, common.make_dataset_fn()(0).unbatch().batch(7), 1
            )

    def test_train_errors(self):
        dataset = common.make_dataset_fn()(0)
        model = common.make_model("gs")
        with self.assertRaisesRegex(TypeError, "tf.data.Dataset"):
            distribute.train(model, [1, 2], epochs=1)
        with self.assertRaisesRegex(ValueError, "steps_per_epoch"):
            distribute.train(model, dataset.repeat(), epochs=1)
        with self.assertRaisesRegex(ValueError, "positive int"):
            distribute.train(model, dataset, epochs=0)
        with self.assertRaisesRegex(ValueError, "compiled"):
            distribute.train(
                common.keras.Sequential([common.keras.Input((16,))]),
                dataset,
                epochs=1,
            )


class GetStrategyTest(test_case.TestCase):
    def setUp(self):
        super().setUp()
        self.tf_config = os.environ.pop("TF_CONFIG", None)
        self.addCleanup(self._restore)

    def _restore(self):
        os.environ.pop("TF_CONFIG", None)
        if self.tf_config is not None:
            os.environ["TF_CONFIG"] = self.tf_config

    def test_default(self):
        strategy = distribute.get_strategy("default")
        self.assertIs(strategy, tf.distribute.get_strategy())
        self.assertEqual(distribute.training_path(strategy), "fit")

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "'multi_worker', 'tpu'"):
            distribute.get_strategy("parameter_server")
        with self.assertRaisesRegex(ValueError, "only applies"):
            distribute.get_strategy("mirrored", num_workers=2)
        with self.assertRaisesRegex(ValueError, "only applies"):
            distribute.get_strategy("default", tpu_address="grpc://x:8470")
        with self.assertRaisesRegex(ValueError, "TF_CONFIG.*not set"):
            distribute.get_strategy("multi_worker")
        os.environ["TF_CONFIG"] = "{not json"
        with self.assertRaisesRegex(ValueError, "Invalid `TF_CONFIG`"):
            distribute.get_strategy("multi_worker")
        os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": ["a:1"]}})
        with self.assertRaisesRegex(ValueError, "Invalid `TF_CONFIG`"):
            distribute.get_strategy("multi_worker")
        os.environ["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": ["a:1", "b:2"]},
                "task": {"type": "worker", "index": 0},
            }
        )
        with self.assertRaisesRegex(ValueError, "2 workers but num_workers=3"):
            distribute.get_strategy("multi_worker", num_workers=3)
        os.environ["TF_CONFIG"] = json.dumps(
            {"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}
        )
        with self.assertRaisesRegex(ValueError, "Invalid `TF_CONFIG`"):
            distribute.get_strategy("multi_worker")


if __name__ == "__main__":
    absltest.main()
